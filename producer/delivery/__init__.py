"""The delivery engine: accumulator, ledger, sender, per-stream channel, packing stage, retry
outcomes, adaptive rate, dead-letter spool."""
