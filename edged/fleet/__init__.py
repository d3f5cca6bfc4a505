"""Many boxes, one memory of faces: signed records on the broker the boxes share."""
