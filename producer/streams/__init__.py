"""Which streams a run sends to, configured how (resolution.py)."""
