"""Benchmarks: load generator and comparison servers (not part of the installed package)."""
