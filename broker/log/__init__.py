"""Partition logs on disk: segments, sparse indexes, group commit, recovery, cleanup."""
