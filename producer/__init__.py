"""firehose-loadgen: realistic load for Amazon Data Firehose pipelines."""

__version__ = "0.1.0"
