"""syncpipe."""
