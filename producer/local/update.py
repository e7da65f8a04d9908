"""UpdateDestination: a destination update merged into a stream's configuration, as the service does.

https://docs.aws.amazon.com/firehose/latest/APIReference/API_UpdateDestination.html
- CurrentDeliveryStreamVersionId must be the VersionId DescribeDeliveryStream shows, else
  ConcurrentModificationException; each update bumps VersionId.
- "If the destination type is the same, Firehose merges the configuration parameters specified
  with the destination configuration that already exists": here a nested structure given in the
  update is merged member by member, a list (Processors) replaces the old one.
- "Switching between Amazon OpenSearch Service and other services is not supported."
- The merged configuration passes the same checks as CreateDeliveryStream.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

from producer.local.errors import ConcurrentModification, InvalidArgument, validation_errors
from producer.local.streams import DESTINATION_ID, LocalStream, destination_member, stream_from_request

_S3_KEYS = ("ExtendedS3DestinationConfiguration", "S3DestinationConfiguration")
_OPENSEARCH_KEYS = ("AmazonopensearchserviceDestinationConfiguration",)
# Update member -> (configuration keys it may update, update member names that differ from the
# configuration's, configuration key the merged result is created under).
_UPDATES: dict[str, tuple[tuple[str, ...], dict[str, str], str | None]] = {
    "ExtendedS3DestinationUpdate": (
        _S3_KEYS,
        {"S3BackupUpdate": "S3BackupConfiguration"},
        "ExtendedS3DestinationConfiguration",
    ),
    "S3DestinationUpdate": (_S3_KEYS, {}, None),
    "AmazonopensearchserviceDestinationUpdate": (_OPENSEARCH_KEYS, {"S3Update": "S3Configuration"}, None),
}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _required(payload: dict[str, Any]) -> tuple[str, str]:
    problems = [
        f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
        for key, where in (
            ("CurrentDeliveryStreamVersionId", "currentDeliveryStreamVersionId"),
            ("DestinationId", "destinationId"),
        )
        if payload.get(key) is None
    ]
    if problems:
        raise validation_errors(problems)
    return str(payload["CurrentDeliveryStreamVersionId"]), str(payload["DestinationId"])


def updated_stream(stream: LocalStream, payload: dict[str, Any], now: float | None = None) -> LocalStream:
    """The stream as it is after the update in ``payload`` (an UpdateDestination body), or the
    service's error. ``stream`` itself is left unchanged."""
    version, destination_id = _required(payload)
    key, spec = destination_member(payload, "DestinationUpdate", _UPDATES)
    families, renames, new_key = spec
    if stream.destination_key not in families:
        raise InvalidArgument(
            "Switching between Amazon OpenSearch Service and other services is not supported: "
            f"stream {stream.name} has a {stream.destination_key.removesuffix('Configuration')}, "
            f"not a destination {key} updates."
        )
    if destination_id != DESTINATION_ID:
        raise InvalidArgument(
            f"Destination Id {destination_id} not found for Firehose {stream.name}; "
            "DescribeDeliveryStream lists its DestinationId."
        )
    if version != stream.version_id:
        raise ConcurrentModification(
            f"Firehose {stream.name} has been modified: CurrentDeliveryStreamVersionId {version} is "
            f"not the current version {stream.version_id}; describe the stream and retry."
        )
    update = payload[key]
    if not isinstance(update, dict):
        raise InvalidArgument(f"{key} must be an object.")
    renamed = {str(renames.get(name, name)): value for name, value in update.items()}
    config_key = new_key or stream.destination_key
    merged = _merge(stream.config, renamed)
    fresh = stream_from_request({"DeliveryStreamName": stream.name, config_key: merged}, stream.region)
    return dataclasses.replace(
        fresh,
        created_at=stream.created_at,
        version_id=str(int(stream.version_id) + 1),
        updated_at=time.time() if now is None else now,
    )
