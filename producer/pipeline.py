"""The reference pipeline's two delivery streams as CreateDeliveryStream requests.

Used to create them on the embedded local Firehose; the same names and settings as
deploy/ builds in AWS. Request shape:
https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html
"""

from __future__ import annotations

from typing import Any

S3_STREAM = "realtime-data-stream"
OPENSEARCH_STREAM = "realtime-data-stream-opensearch"
DEFAULT_STREAMS = (S3_STREAM, OPENSEARCH_STREAM)

LOCAL_BUCKET = "realtime-data-bucket"
ROLE_ARN = "arn:aws:iam::000000000000:role/firehose-delivery-role"
TIME_PARTITIONS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"


def s3_stream_request(name: str, interval_s: int = 60, size_mib: int = 5) -> dict[str, Any]:
    return {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": ROLE_ARN,
            "BucketARN": f"arn:aws:s3:::{LOCAL_BUCKET}",
            "Prefix": f"raw-data/{TIME_PARTITIONS}",
            "ErrorOutputPrefix": f"errors/!{{firehose:error-output-type}}/{TIME_PARTITIONS}",
            "BufferingHints": {"SizeInMBs": size_mib, "IntervalInSeconds": interval_s},
            "CompressionFormat": "UNCOMPRESSED",
        },
    }


def opensearch_stream_request(name: str, interval_s: int = 60, size_mib: int = 5) -> dict[str, Any]:
    return {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "DirectPut",
        "AmazonopensearchserviceDestinationConfiguration": {
            "RoleARN": ROLE_ARN,
            "DomainARN": "arn:aws:es:us-east-1:000000000000:domain/realtime-events",
            "IndexName": "realtime-events",
            "IndexRotationPeriod": "OneDay",
            "BufferingHints": {"SizeInMBs": size_mib, "IntervalInSeconds": interval_s},
            "RetryOptions": {"DurationInSeconds": 300},
            "S3BackupMode": "FailedDocumentsOnly",
            "S3Configuration": {
                "RoleARN": ROLE_ARN,
                "BucketARN": f"arn:aws:s3:::{LOCAL_BUCKET}",
                "Prefix": "opensearch-backup/",
                "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
                "CompressionFormat": "UNCOMPRESSED",
            },
        },
    }


def stream_request(name: str) -> dict[str, Any]:
    """The request for a stream named like the reference pipeline's (``*-opensearch`` or S3)."""
    if name.endswith("-opensearch"):
        return opensearch_stream_request(name)
    return s3_stream_request(name)
