"""Delivery stream definitions: CreateDeliveryStream parsing, validation and Describe output.

API: https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from producer import limits
from producer.local.errors import InvalidArgument, Validation

ACCOUNT_ID = "000000000000"
_NAME = re.compile(limits.STREAM_NAME_PATTERN)
_COMPRESSION = {"UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"}
_ROTATIONS = {"NoRotation", "OneHour", "OneDay", "OneWeek", "OneMonth"}


@dataclass(frozen=True, slots=True)
class S3Target:
    """Where objects go: a bucket folder under the output directory."""

    bucket: str
    prefix: str
    error_prefix: str
    buffer_bytes: int
    buffer_interval_s: float
    gzip: bool


@dataclass(frozen=True, slots=True)
class OpenSearchTarget:
    index_name: str
    rotation: str
    buffer_bytes: int
    buffer_interval_s: float
    backup_all: bool
    backup: S3Target


@dataclass(slots=True)
class LocalStream:
    name: str
    region: str
    destination: S3Target | OpenSearchTarget
    config: dict[str, Any]
    destination_key: str
    created_at: float = field(default_factory=time.time)
    version_id: str = "1"

    @property
    def arn(self) -> str:
        return f"arn:aws:firehose:{self.region}:{ACCOUNT_ID}:deliverystream/{self.name}"

    def describe(self) -> dict[str, Any]:
        description_key = self.destination_key.replace("Configuration", "Description")
        return {
            "DeliveryStreamName": self.name,
            "DeliveryStreamARN": self.arn,
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamType": "DirectPut",
            "VersionId": self.version_id,
            "CreateTimestamp": self.created_at,
            "LastUpdateTimestamp": self.created_at,
            "Destinations": [
                {
                    "DestinationId": "destinationId-000000000001",
                    description_key: _with_defaults(self.config),
                }
            ],
            "HasMoreDestinations": False,
        }


def _with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    out.setdefault(
        "BufferingHints",
        {
            "SizeInMBs": limits.DEFAULT_BUFFER_MIB,
            "IntervalInSeconds": limits.DEFAULT_BUFFER_INTERVAL_S,
        },
    )
    out.setdefault("CompressionFormat", "UNCOMPRESSED")
    out.setdefault("EncryptionConfiguration", {"NoEncryptionConfig": "NoEncryption"})
    return out


def _bucket(arn: Any) -> str:
    if not isinstance(arn, str) or not arn.startswith("arn:aws:s3:::") or len(arn) <= 13:
        raise InvalidArgument(f"BucketARN {arn!r} is not an S3 bucket ARN (arn:aws:s3:::NAME).")
    return arn.removeprefix("arn:aws:s3:::")


def _hints(config: dict[str, Any], max_mib: int) -> tuple[int, float]:
    hints = config.get("BufferingHints") or {}
    size = hints.get("SizeInMBs", limits.DEFAULT_BUFFER_MIB)
    interval = hints.get("IntervalInSeconds", limits.DEFAULT_BUFFER_INTERVAL_S)
    if not isinstance(size, int) or not 1 <= size <= max_mib:
        raise Validation(
            f"1 validation error detected: Value '{size}' at 'bufferingHints.sizeInMBs' "
            f"failed to satisfy constraint: Member must be between 1 and {max_mib}"
        )
    low, high = limits.BUFFER_INTERVAL_S_RANGE
    if not isinstance(interval, int | float) or not low <= interval <= high:
        raise Validation(
            f"1 validation error detected: Value '{interval}' at 'bufferingHints.intervalInSeconds'"
            f" failed to satisfy constraint: Member must be between {low} and {high}"
        )
    return size * 1024 * 1024, float(interval)


def _s3_target(config: dict[str, Any]) -> S3Target:
    if not isinstance(config, dict):
        raise InvalidArgument("S3 destination configuration must be an object.")
    if "RoleARN" not in config:
        raise InvalidArgument("RoleARN is required for the S3 destination.")
    compression = config.get("CompressionFormat", "UNCOMPRESSED")
    if compression not in _COMPRESSION:
        raise InvalidArgument(f"CompressionFormat {compression!r} is not one of {sorted(_COMPRESSION)}.")
    size, interval = _hints(config, limits.S3_BUFFER_MIB_RANGE[1])
    return S3Target(
        bucket=_bucket(config.get("BucketARN")),
        prefix=str(config.get("Prefix", "")),
        error_prefix=str(config.get("ErrorOutputPrefix", "")),
        buffer_bytes=size,
        buffer_interval_s=interval,
        gzip=compression == "GZIP",
    )


def _opensearch_target(config: dict[str, Any]) -> OpenSearchTarget:
    if not isinstance(config, dict) or "IndexName" not in config:
        raise InvalidArgument("IndexName is required for the OpenSearch destination.")
    if config.get("TypeName"):
        # OpenSearch 2.x has no mapping types; the service rejects a TypeName for it.
        raise InvalidArgument("TypeName is not supported for OpenSearch 2.x domains; remove it.")
    rotation = config.get("IndexRotationPeriod", "OneDay")
    if rotation not in _ROTATIONS:
        raise InvalidArgument(f"IndexRotationPeriod {rotation!r} is not one of {sorted(_ROTATIONS)}.")
    if "S3Configuration" not in config:
        raise InvalidArgument("S3Configuration is required for the OpenSearch destination backup.")
    size, interval = _hints(config, limits.OPENSEARCH_BUFFER_MIB_RANGE[1])
    return OpenSearchTarget(
        index_name=str(config["IndexName"]),
        rotation=str(rotation),
        buffer_bytes=size,
        buffer_interval_s=interval,
        backup_all=config.get("S3BackupMode", "FailedDocumentsOnly") == "AllDocuments",
        backup=_s3_target(config["S3Configuration"]),
    )


_DESTINATIONS: dict[str, Callable[[dict[str, Any]], S3Target | OpenSearchTarget]] = {
    "ExtendedS3DestinationConfiguration": _s3_target,
    "S3DestinationConfiguration": _s3_target,
    "AmazonopensearchserviceDestinationConfiguration": _opensearch_target,
}


def validate_name(name: Any, where: str = "deliveryStreamName") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Validation(
            f"1 validation error detected: Value '{name}' at '{where}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ "
            f"and have length between 1 and 64"
        )
    return name


def stream_from_request(payload: dict[str, Any], region: str) -> LocalStream:
    """Build a stream from a CreateDeliveryStream request body, or raise the service's error."""
    name = validate_name(payload.get("DeliveryStreamName"))
    stream_type = payload.get("DeliveryStreamType", "DirectPut")
    if stream_type != "DirectPut":
        raise InvalidArgument(f"DeliveryStreamType {stream_type!r} is not supported here; use DirectPut.")
    given = [key for key in payload if key.endswith("DestinationConfiguration")]
    if len(given) != 1:
        raise InvalidArgument("Exactly one destination configuration must be specified.")
    key = given[0]
    parse = _DESTINATIONS.get(key)
    if parse is None:
        raise InvalidArgument(f"{key} is not supported by the local Firehose.")
    if key == "S3DestinationConfiguration" and "ProcessingConfiguration" in payload[key]:
        raise InvalidArgument(
            "ProcessingConfiguration is not valid in S3DestinationConfiguration; "
            "use ExtendedS3DestinationConfiguration."
        )
    return LocalStream(
        name=name,
        region=region,
        destination=parse(payload[key]),
        config=payload[key],
        destination_key=key,
    )
