"""Datasets: align a dataset, WebDataset shards, pair sampling and augmentation."""
