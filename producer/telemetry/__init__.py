"""Counters, histograms and the Prometheus view of them (the only prometheus_client imports)."""
