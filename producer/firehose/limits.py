"""Firehose API limits and default Direct PUT quotas, each with the page it comes from."""

from __future__ import annotations

from dataclasses import dataclass

# PutRecordBatch: "Each PutRecordBatch request supports up to 500 records. Each record in the
# request can be as large as 1,000 KB (before base64 encoding), up to a limit of 4 MB for the
# entire request."  The service checks 1,000 KiB exactly as 1,024,000 bytes.
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1_024_000

# Control-plane operations (Create/Describe/List/Delete...) are limited to about 5 per second.
# https://docs.aws.amazon.com/firehose/latest/dev/limits.html
CONTROL_PLANE_CALLS_PER_S = 5

# Delivery stream names: 1-64 characters of [a-zA-Z0-9_.-].
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html
STREAM_NAME_PATTERN = r"[a-zA-Z0-9_.-]{1,64}"

# Buffering hints: SizeInMBs 1-128 (default 5), IntervalInSeconds 0-900 (default 300).
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
# OpenSearch destinations take 1-100 MiB.
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_AmazonopensearchserviceBufferingHints.html
S3_BUFFER_MIB_RANGE = (1, 128)
# With record format conversion the S3 buffer size must be >= 64 MiB (default 128).
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
FORMAT_CONVERSION_MIN_BUFFER_MIB = 64
OPENSEARCH_BUFFER_MIB_RANGE = (1, 100)
BUFFER_INTERVAL_S_RANGE = (0, 900)
DEFAULT_BUFFER_MIB = 5
DEFAULT_BUFFER_INTERVAL_S = 300


@dataclass(frozen=True, slots=True)
class DirectPutQuota:
    """Per-stream Direct PUT quota; PutRecord and PutRecordBatch share it."""

    records_per_s: int
    requests_per_s: int
    bytes_per_s: int


# https://docs.aws.amazon.com/firehose/latest/dev/limits.html
# "For US East (N. Virginia), US West (Oregon), and Europe (Ireland): 500,000 records/second,
# 2,000 requests/second, and 5 MiB/second. For other AWS Regions: 100,000 records/second,
# 1,000 requests/second, and 1 MiB/second."
LARGE_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
LARGE_REGION_QUOTA = DirectPutQuota(500_000, 2_000, 5 * 1024 * 1024)
OTHER_REGION_QUOTA = DirectPutQuota(100_000, 1_000, 1 * 1024 * 1024)


def direct_put_quota(region: str) -> DirectPutQuota:
    """The default quota a new stream gets in ``region``."""
    return LARGE_REGION_QUOTA if region in LARGE_REGIONS else OTHER_REGION_QUOTA


# The console and older docs give 60 s as the smallest IntervalInSeconds; the API now takes 0.
# The local Firehose accepts anything the API takes and warns below this, so a test may use 1 s.
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
CLASSIC_MIN_BUFFER_INTERVAL_S = 60

# Lambda processor buffering: BufferSizeInMBs 0.2-3 (default 1), BufferIntervalInSeconds
# 0-900 (default 60); invocation retries (NumberOfRetries) default 3.
# https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
# https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html
PROCESSOR_BUFFER_MIB_RANGE = (0.2, 3.0)
PROCESSOR_BUFFER_INTERVAL_S_RANGE = (0.0, 900.0)
DEFAULT_PROCESSOR_BUFFER_MIB = 1.0
DEFAULT_PROCESSOR_INTERVAL_S = 60
DEFAULT_LAMBDA_RETRIES = 3
# "The Lambda synchronous invocation mode has a payload size limit of 6 MB for both the request
# and the response." https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
LAMBDA_PAYLOAD_MAX_BYTES = 6 * 1024 * 1024
