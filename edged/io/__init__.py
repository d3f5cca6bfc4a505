"""Where pictures come from: cameras and files, video, photos, S3."""
