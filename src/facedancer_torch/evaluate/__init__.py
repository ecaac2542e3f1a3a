"""Evaluation: ID retrieval, pose, expression, FID, reports."""
