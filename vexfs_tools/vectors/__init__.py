"""Vector files: their content format, reading them out of an image, and exact search."""
