"""Duplicate removal: exact (normalised hash) and near-duplicate (MinHash LSH with datasketch)."""
