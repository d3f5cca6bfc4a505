"""Seeing faces: detection (MTCNN), boxes, alignment, embeddings, drawing."""
