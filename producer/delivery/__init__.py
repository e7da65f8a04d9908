"""The delivery engine: accumulator, per-stream channel, retry decisions, adaptive rate, dead-letter spool."""
