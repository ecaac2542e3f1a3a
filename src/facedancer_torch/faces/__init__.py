"""Face analysis: detection backends, 5-point alignment and its inverse, tracking, masks."""
