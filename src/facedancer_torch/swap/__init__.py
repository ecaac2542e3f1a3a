"""The swap pipeline for images, folders and videos."""
