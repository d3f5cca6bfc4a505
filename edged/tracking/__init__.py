"""Faces through time: the tracker, identity votes, quality, strangers, scene cuts."""
