"""Benchmarks: trials, the hand-written and stock-client references, generator and local-ingest checks."""
