"""Delivery stream definitions: CreateDeliveryStream parsing, validation and Describe output.

API: https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html
Describe shape: https://docs.aws.amazon.com/firehose/latest/APIReference/API_DeliveryStreamDescription.html
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from producer.firehose import limits
from producer.local import keys
from producer.local.errors import InvalidArgument, Validation, validation_errors
from producer.local.parquet import COMPRESSIONS, ParquetFormat, UnsupportedType, hive_type

ACCOUNT_ID = "000000000000"
# A stream has one destination; the service names it like this in DescribeDeliveryStream.
DESTINATION_ID = "destinationId-000000000001"
_NAME = re.compile(limits.STREAM_NAME_PATTERN)
_COMPRESSION = {"UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"}
_ROTATIONS = {"NoRotation", "OneHour", "OneDay", "OneWeek", "OneMonth"}
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_Processor.html
_PROCESSOR_TYPES = {
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Processing:
    """ProcessingConfiguration as the local Firehose runs it: an optional Lambda transform and an
    optional delimiter appended to every record (AppendDelimiterToRecord)."""

    lambda_arn: str | None
    buffer_bytes: int
    retries: int
    delimiter: bytes | None
    buffer_interval_s: float = float(limits.DEFAULT_PROCESSOR_INTERVAL_S)


@dataclass(frozen=True, slots=True)
class S3Target:
    """Where objects go: a bucket folder under the output directory."""

    bucket: str
    prefix: str
    error_prefix: str
    buffer_bytes: int
    buffer_interval_s: float
    gzip: bool
    file_extension: str | None = None
    # Record format conversion to Parquet (None: records are written as they arrive).
    parquet: ParquetFormat | None = None


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
    processing: Processing | None = None
    created_at: float = field(default_factory=time.time)
    version_id: str = "1"
    updated_at: float | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:firehose:{self.region}:{ACCOUNT_ID}:deliverystream/{self.name}"

    # Hints, read when a buffer opens (UpdateDestination replaces the stream's fields live).
    def processor_hints(self) -> tuple[int, float]:
        if self.processing is None:
            return 1, 0.0  # never used: no Lambda, no processor buffer
        return self.processing.buffer_bytes, self.processing.buffer_interval_s

    def destination_hints(self) -> tuple[int, float]:
        return self.destination.buffer_bytes, self.destination.buffer_interval_s

    def backup_hints(self) -> tuple[int, float]:
        dest = self.destination
        if isinstance(dest, OpenSearchTarget):
            return dest.backup.buffer_bytes, dest.backup.buffer_interval_s
        return dest.buffer_bytes, dest.buffer_interval_s

    def backs_up_all(self) -> bool:
        return isinstance(self.destination, OpenSearchTarget) and self.destination.backup_all

    def describe(self) -> dict[str, Any]:
        """A DeliveryStreamDescription in the service's shape (checked against botocore's model)."""
        return {
            "DeliveryStreamName": self.name,
            "DeliveryStreamARN": self.arn,
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
            "DeliveryStreamType": "DirectPut",
            "VersionId": self.version_id,
            "CreateTimestamp": self.created_at,
            "LastUpdateTimestamp": self.updated_at or self.created_at,
            "Destinations": [{"DestinationId": DESTINATION_ID, **_destination_description(self)}],
            "HasMoreDestinations": False,
        }


def _s3_description(config: dict[str, Any], extended: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "RoleARN": config["RoleARN"],
        "BucketARN": config["BucketARN"],
        "Prefix": config.get("Prefix", ""),
        "BufferingHints": {
            "SizeInMBs": limits.DEFAULT_BUFFER_MIB,
            "IntervalInSeconds": limits.DEFAULT_BUFFER_INTERVAL_S,
            **(config.get("BufferingHints") or {}),
        },
        "CompressionFormat": config.get("CompressionFormat", "UNCOMPRESSED"),
        "EncryptionConfiguration": config.get("EncryptionConfiguration")
        or {"NoEncryptionConfig": "NoEncryption"},
        "CloudWatchLoggingOptions": config.get("CloudWatchLoggingOptions") or {"Enabled": False},
    }
    if "ErrorOutputPrefix" in config:
        out["ErrorOutputPrefix"] = config["ErrorOutputPrefix"]
    if extended:
        out["S3BackupMode"] = config.get("S3BackupMode", "Disabled")
        for key in (
            "ProcessingConfiguration",
            "DataFormatConversionConfiguration",
            "DynamicPartitioningConfiguration",
            "FileExtension",
            "CustomTimeZone",
        ):
            if key in config:
                out[key] = config[key]
        if "S3BackupConfiguration" in config:
            out["S3BackupDescription"] = _s3_description(config["S3BackupConfiguration"], extended=False)
    return out


def _destination_description(stream: LocalStream) -> dict[str, Any]:
    config = stream.config
    if stream.destination_key in ("ExtendedS3DestinationConfiguration", "S3DestinationConfiguration"):
        # The service describes an S3 stream under both keys, whichever one created it.
        return {
            "S3DestinationDescription": _s3_description(config, extended=False),
            "ExtendedS3DestinationDescription": _s3_description(config, extended=True),
        }
    out: dict[str, Any] = {
        key: value
        for key, value in config.items()
        if key not in ("S3Configuration", "VpcConfiguration", "ProcessingConfiguration")
    }
    out.setdefault("IndexRotationPeriod", "OneDay")
    out["BufferingHints"] = {"IntervalInSeconds": 300, "SizeInMBs": 5, **(config.get("BufferingHints") or {})}
    out.setdefault("RetryOptions", {"DurationInSeconds": 300})
    out.setdefault("S3BackupMode", "FailedDocumentsOnly")
    out["S3DestinationDescription"] = _s3_description(config["S3Configuration"], extended=False)
    if "ProcessingConfiguration" in config:
        out["ProcessingConfiguration"] = config["ProcessingConfiguration"]
    out.setdefault("CloudWatchLoggingOptions", {"Enabled": False})
    return {"AmazonopensearchserviceDestinationDescription": out}


def _bucket(arn: Any) -> str:
    if not isinstance(arn, str) or not arn.startswith("arn:aws:s3:::") or len(arn) <= 13:
        raise InvalidArgument(f"BucketARN {arn!r} is not an S3 bucket ARN (arn:aws:s3:::NAME).")
    return arn.removeprefix("arn:aws:s3:::")


def _hints(stream: str, config: dict[str, Any], max_mib: int) -> tuple[int, float]:
    """BufferingHints within the model's ranges (S3 1-128 MiB, OpenSearch 1-100 MiB, 0-900 s):
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_AmazonopensearchserviceBufferingHints.html
    """
    hints = config.get("BufferingHints") or {}
    size = hints.get("SizeInMBs", limits.DEFAULT_BUFFER_MIB)
    interval = hints.get("IntervalInSeconds", limits.DEFAULT_BUFFER_INTERVAL_S)
    if not isinstance(size, int) or not 1 <= size <= max_mib:
        raise Validation(
            f"1 validation error detected: Value '{size}' at 'bufferingHints.sizeInMBs' "
            f"failed to satisfy constraint: Member must have value between 1 and {max_mib}"
        )
    low, high = limits.BUFFER_INTERVAL_S_RANGE
    if not isinstance(interval, int | float) or not low <= interval <= high:
        raise Validation(
            f"1 validation error detected: Value '{interval}' at 'bufferingHints.intervalInSeconds'"
            f" failed to satisfy constraint: Member must have value between {low} and {high}"
        )
    if 0 < interval < limits.CLASSIC_MIN_BUFFER_INTERVAL_S:
        log.warning(
            "stream %s: IntervalInSeconds=%s is below the classic %d s minimum; fine for tests, "
            "but check that your AWS setup accepts it",
            stream,
            interval,
            limits.CLASSIC_MIN_BUFFER_INTERVAL_S,
        )
    return size * 1024 * 1024, float(interval)


def _check_prefixes(prefix: str, error_prefix: str) -> None:
    # Messages as the service words them (typo included): "Ths supplied prefix(es) do not
    # satisfy the following constraint: ..." https://github.com/serverless/serverless/issues/6015
    for text in (prefix, error_prefix):
        try:
            keys.expand_prefix(text, keys.utc(0.0), "processing-failed")
        except ValueError as exc:
            raise InvalidArgument(
                f"Ths supplied prefix(es) do not satisfy the following constraint: {exc}"
            ) from None
    if keys.has_expressions(prefix) and not error_prefix:
        raise InvalidArgument(
            "Ths supplied prefix(es) do not satisfy the following constraint: "
            "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
        )


def _refuse_zero_buffering(interval: float, where: str) -> None:
    """Zero buffering (IntervalInSeconds 0) is for the destination itself: "not available for
    Amazon S3 backup destination" https://docs.aws.amazon.com/firehose/latest/dev/create-configure-backup.html
    (and https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html), and "not available
    for dynamic partitioning" https://docs.aws.amazon.com/firehose/latest/dev/buffering.html"""
    if interval == 0:
        raise InvalidArgument(
            f"BufferingHints.IntervalInSeconds 0 (zero buffering) is not supported for {where}; "
            "use an interval of at least 1 second."
        )


def _s3_target(stream: str, config: Any, *, backup: bool = False) -> S3Target:
    if not isinstance(config, dict):
        raise InvalidArgument("S3 destination configuration must be an object.")
    missing = [k for k in ("RoleARN", "BucketARN") if k not in config]
    if missing:
        raise validation_errors(
            [
                f"Value null at '{k[0].lower() + k[1:]}' failed to satisfy constraint: "
                "Member must not be null"
                for k in missing
            ]
        )
    compression = config.get("CompressionFormat", "UNCOMPRESSED")
    if compression not in _COMPRESSION:
        raise InvalidArgument(f"CompressionFormat {compression!r} is not one of {sorted(_COMPRESSION)}.")
    if compression not in ("UNCOMPRESSED", "GZIP"):
        log.warning("stream %s: %s is written uncompressed by the local Firehose", stream, compression)
    size, interval = _hints(stream, config, limits.S3_BUFFER_MIB_RANGE[1])
    if backup:
        _refuse_zero_buffering(interval, "an Amazon S3 backup destination")
    partitioning = config.get("DynamicPartitioningConfiguration")
    if isinstance(partitioning, dict) and partitioning.get("Enabled") is True:
        _refuse_zero_buffering(interval, "a stream with dynamic partitioning")
    source_backup = config.get("S3BackupConfiguration")
    if config.get("S3BackupMode") == "Enabled" and source_backup is not None:
        _s3_target(stream, source_backup, backup=True)
    prefix = str(config.get("Prefix", ""))
    error_prefix = str(config.get("ErrorOutputPrefix", ""))
    _check_prefixes(prefix, error_prefix)
    extension = config.get("FileExtension")
    parquet = _parquet_format(stream, config, size)
    if parquet is not None and compression != "UNCOMPRESSED":
        # Parquet compresses inside the file; Firehose rejects S3 compression on top of it.
        # https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
        raise InvalidArgument(
            "CompressionFormat must be UNCOMPRESSED when record format conversion is enabled."
        )
    return S3Target(
        bucket=_bucket(config.get("BucketARN")),
        prefix=prefix,
        error_prefix=error_prefix,
        buffer_bytes=size,
        buffer_interval_s=interval,
        gzip=compression == "GZIP",
        file_extension=str(extension) if extension else None,
        parquet=parquet,
    )


def _parquet_format(stream: str, config: dict[str, Any], buffer_bytes: int) -> ParquetFormat | None:
    """DataFormatConversionConfiguration as the local Firehose runs it. The real service reads the
    columns from the Glue table named in SchemaConfiguration; the local one has no Glue, so the
    columns come with it (``SchemaConfiguration.Columns``: [{Name, Type}], filled in from the
    template's AWS::Glue::Table when the streams are built from a template).
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_DataFormatConversionConfiguration.html
    """
    conversion = config.get("DataFormatConversionConfiguration")
    if not isinstance(conversion, dict) or conversion.get("Enabled") is False:
        return None
    # With conversion the buffer size must be at least 64 MiB.
    # https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
    if buffer_bytes < limits.FORMAT_CONVERSION_MIN_BUFFER_MIB * 1024 * 1024:
        raise InvalidArgument(
            f"BufferingHints.SizeInMBs must be at least {limits.FORMAT_CONVERSION_MIN_BUFFER_MIB} "
            "when record format conversion is enabled."
        )
    output = (conversion.get("OutputFormatConfiguration") or {}).get("Serializer") or {}
    parquet = output.get("ParquetSerDe")
    if not isinstance(parquet, dict):
        raise InvalidArgument(f"stream {stream}: the local Firehose converts to Parquet only (ParquetSerDe).")
    compression = str(parquet.get("Compression", "SNAPPY"))
    if compression not in COMPRESSIONS:
        raise InvalidArgument(
            f"ParquetSerDe Compression {compression!r} is not one of {sorted(COMPRESSIONS)}."
        )
    deserializer = (conversion.get("InputFormatConfiguration") or {}).get("Deserializer") or {}
    openx = deserializer.get("OpenXJsonSerDe") or {}
    columns_in = (conversion.get("SchemaConfiguration") or {}).get("Columns")
    if not isinstance(columns_in, list) or not columns_in:
        raise InvalidArgument(
            f"stream {stream}: record format conversion needs the table's columns "
            "(SchemaConfiguration.Columns: [{Name, Type}]) in the local Firehose."
        )
    columns: list[tuple[str, str]] = []
    for column in columns_in:
        if not isinstance(column, dict) or not column.get("Name") or not column.get("Type"):
            raise InvalidArgument(f"stream {stream}: column {column!r} needs Name and Type.")
        try:
            hive_type(str(column["Type"]))
        except UnsupportedType as exc:
            raise InvalidArgument(f"stream {stream}: {exc}.") from None
        columns.append((str(column["Name"]), str(column["Type"])))
    return ParquetFormat(
        columns=tuple(columns),
        compression=compression,
        case_insensitive=openx.get("CaseInsensitive", True) is not False,
    )


def _opensearch_target(stream: str, config: Any) -> OpenSearchTarget:
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
    mode = config.get("S3BackupMode", "FailedDocumentsOnly")
    if mode not in ("FailedDocumentsOnly", "AllDocuments"):
        raise InvalidArgument(f"S3BackupMode {mode!r} is not FailedDocumentsOnly or AllDocuments.")
    size, interval = _hints(stream, config, limits.OPENSEARCH_BUFFER_MIB_RANGE[1])
    return OpenSearchTarget(
        index_name=str(config["IndexName"]),
        rotation=str(rotation),
        buffer_bytes=size,
        buffer_interval_s=interval,
        backup_all=mode == "AllDocuments",
        backup=_s3_target(stream, config["S3Configuration"], backup=True),
    )


_DESTINATIONS: dict[str, Callable[[str, Any], S3Target | OpenSearchTarget]] = {
    "ExtendedS3DestinationConfiguration": _s3_target,
    "S3DestinationConfiguration": _s3_target,
    "AmazonopensearchserviceDestinationConfiguration": _opensearch_target,
}


def _processing(stream: str, config: dict[str, Any]) -> Processing | None:
    """ProcessingConfiguration: https://docs.aws.amazon.com/firehose/latest/APIReference/API_ProcessingConfiguration.html"""
    spec = config.get("ProcessingConfiguration")
    if not isinstance(spec, dict) or not spec.get("Enabled", False):
        return None
    lambda_arn: str | None = None
    buffer_mib = limits.DEFAULT_PROCESSOR_BUFFER_MIB
    interval_s = float(limits.DEFAULT_PROCESSOR_INTERVAL_S)
    retries = limits.DEFAULT_LAMBDA_RETRIES
    delimiter: bytes | None = None
    for processor in spec.get("Processors") or []:
        kind = processor.get("Type") if isinstance(processor, dict) else None
        if kind not in _PROCESSOR_TYPES:
            raise InvalidArgument(f"Processor type {kind!r} is not one of {sorted(_PROCESSOR_TYPES)}.")
        params = {p.get("ParameterName"): p.get("ParameterValue") for p in processor.get("Parameters") or []}
        if kind == "Lambda":
            if not params.get("LambdaArn"):
                raise InvalidArgument("LambdaArn is required for a Lambda processor.")
            lambda_arn = str(params["LambdaArn"])
            # The values are strings (API_ProcessorParameter); ranges from data-transformation.html.
            buffer_mib = _processor_number(
                params, "BufferSizeInMBs", buffer_mib, limits.PROCESSOR_BUFFER_MIB_RANGE
            )
            interval_s = _processor_number(
                params, "BufferIntervalInSeconds", interval_s, limits.PROCESSOR_BUFFER_INTERVAL_S_RANGE
            )
            # No documented maximum for NumberOfRetries; any whole number from 0 is taken.
            retries = int(_processor_number(params, "NumberOfRetries", retries, (0, float("inf"))))
        elif kind == "AppendDelimiterToRecord":
            raw = str(params.get("Delimiter", "\\n"))
            delimiter = raw.encode().decode("unicode_escape").encode()
        else:
            log.warning("stream %s: processor %s is not run by the local Firehose", stream, kind)
    return Processing(lambda_arn, int(buffer_mib * 1024 * 1024), retries, delimiter, interval_s)


def _processor_number(
    params: dict[Any, Any], name: str, default: float, bounds: tuple[float, float]
) -> float:
    """A Lambda processor parameter within its range; ParameterValue is a string in the API.
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_ProcessorParameter.html"""
    raw = params.get(name)
    if raw is None:
        return default
    low, high = bounds
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        shown_low, shown_high = (f"{b:g}" for b in bounds)
        raise InvalidArgument(
            f"Processor parameter {name} value {raw!r} is invalid: "
            f"it must be a number between {shown_low} and {shown_high}."
        )
    return value


def validate_name(name: Any, where: str = "deliveryStreamName") -> str:
    problem = name_problem(name, where)
    if problem:
        raise validation_errors([problem])
    return str(name)


def name_problem(name: Any, where: str = "deliveryStreamName") -> str | None:
    """The front end's constraint message for a bad stream name, or None."""
    if name is None:
        return f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        if isinstance(name, str) and len(name) > 64:
            return (
                f"Value '{name}' at '{where}' failed to satisfy constraint: "
                "Member must have length less than or equal to 64"
            )
        return (
            f"Value '{name}' at '{where}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )
    return None


_T = TypeVar("_T")


def destination_member(payload: dict[str, Any], suffix: str, known: dict[str, _T]) -> tuple[str, _T]:
    """The one ``*DestinationConfiguration`` (Create) or ``*DestinationUpdate`` (Update) member
    of a request, and what ``known`` holds for it; the service's error when there is not exactly
    one, or it names a destination the local Firehose does not have."""
    given = [key for key in payload if key.endswith(suffix)]
    if len(given) != 1:
        kind = "configuration" if suffix.endswith("Configuration") else "update"
        raise InvalidArgument(f"Exactly one destination {kind} must be specified.")
    key = given[0]
    found = known.get(key)
    if found is None:
        raise InvalidArgument(f"{key} is not supported by the local Firehose.")
    return key, found


def stream_from_request(payload: dict[str, Any], region: str) -> LocalStream:
    """Build a stream from a CreateDeliveryStream request body, or raise the service's error."""
    name = validate_name(payload.get("DeliveryStreamName"))
    stream_type = payload.get("DeliveryStreamType", "DirectPut")
    if stream_type != "DirectPut":
        raise InvalidArgument(f"DeliveryStreamType {stream_type!r} is not supported here; use DirectPut.")
    key, parse = destination_member(payload, "DestinationConfiguration", _DESTINATIONS)
    config = payload[key]
    for misplaced in ("ProcessingConfiguration", "DataFormatConversionConfiguration"):
        if key == "S3DestinationConfiguration" and isinstance(config, dict) and misplaced in config:
            # The CLI/SDK reject this member client-side; a raw client gets the same advice.
            raise InvalidArgument(
                f"{misplaced} is not valid in S3DestinationConfiguration; "
                "use ExtendedS3DestinationConfiguration."
            )
    destination = parse(name, config)
    return LocalStream(
        name=name,
        region=region,
        destination=destination,
        config=config,
        destination_key=key,
        processing=_processing(name, config),
    )


def stream_requests_from_file_data(data: Any) -> list[dict[str, Any]]:
    """A stream config file holds one CreateDeliveryStream request (a ``--cli-input-json`` file),
    a list of them, or ``{"DeliveryStreams": [...]}``."""
    if isinstance(data, dict) and "DeliveryStreams" in data:
        data = data["DeliveryStreams"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("a stream config file holds a CreateDeliveryStream request object or a list of them")
    return data
