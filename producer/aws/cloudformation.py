"""The only module that talks to CloudFormation and S3 for stacks (``firehose-loadgen stack ...``).

Deploys go through a change set so one code path creates and updates, and a no-op update is
reported as such instead of failing. Progress comes from DescribeStackEvents, polled; waiters
would hide the events. The SDK retries control-plane throttling itself here (standard mode),
unlike the data path in producer/firehose/client.py, because nothing above it retries these calls.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets.html
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.parsers import ResponseParserError

from producer.errors import LoadgenError, UsageError
from producer.shipped import shipped_path

DEFAULT_STACK = "firehose-loadgen"
# deploy/ is not a package (DESIGN: never imported); the template is found next to the checkout.
DEFAULT_TEMPLATE = shipped_path("deploy/pipeline.yaml")

# TemplateBody limit; bigger templates would need an upload to S3 and TemplateURL.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
MAX_TEMPLATE_BODY_BYTES = 51_200
# The roles and the managed policy have generated names, so CAPABILITY_IAM is enough.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
CAPABILITIES = ["CAPABILITY_IAM"]
# DeleteObjects takes at most 1,000 keys a call.
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
DELETE_BATCH = 1000

S3_STREAM_OUTPUT = "S3StreamName"
OPENSEARCH_STREAM_OUTPUT = "OpenSearchStreamName"
BUCKET_RESOURCE = "DataBucket"

_FAILED_OR_ROLLED_BACK = ("FAILED", "ROLLBACK_COMPLETE")
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class StackFailed(LoadgenError):
    """The stack operation ran and failed (rolled back, delete failed...): exit 1."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class StackSettings:
    region: str
    endpoint_url: str | None = None  # one endpoint for CloudFormation and S3 (LocalStack, moto)
    poll_s: float = 5.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0


Progress = Callable[[str], None]


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (!Ref, !Sub...) become plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)  # the short form "Resource.Attribute", as CloudFormation reads it
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(text: str) -> dict[str, Any]:
    """The template as plain data (intrinsics as their long form)."""
    data = yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(data, dict) or "Resources" not in data:
        raise UsageError("the template is not a CloudFormation template (no Resources)")
    return data


def parse_params(pairs: list[str], allowed: Mapping[str, Any]) -> dict[str, str]:
    """``["K=V", ...]`` as a dict; unknown keys and bad syntax are usage errors."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE, e.g. --param S3BufferSizeMiB=64")
        if key not in allowed:
            raise UsageError(
                f"--param {key}: the template has no such parameter; it has {', '.join(allowed)}"
            )
        _check_value(key, value, allowed[key] or {})
        params[key] = value
    return params


def _check_value(key: str, value: str, spec: Mapping[str, Any]) -> None:
    """The template's own constraints, checked before CloudFormation does, so a bad value is a
    usage error (exit 2) instead of a failed change set."""
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--param {key}={value}: must be a number") from None
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise UsageError(f"--param {key}={value}: must be between {low} and {high}")
    allowed_values = spec.get("AllowedValues")
    if allowed_values and value not in [str(v) for v in allowed_values]:
        raise UsageError(f"--param {key}={value}: must be one of {', '.join(map(str, allowed_values))}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(str(pattern), value):
        raise UsageError(f"--param {key}={value}: must match {pattern}")


def _error(exc: Exception, what: str) -> LoadgenError:
    if isinstance(exc, NoCredentialsError):
        return UsageError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, EndpointConnectionError):
        return UsageError(f"cannot reach {what}: {exc}")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "Unknown")), str(err.get("Message", ""))
        if code in ("AccessDenied", "AccessDeniedException", "ExpiredToken", "InvalidClientTokenId"):
            return UsageError(f"{what}: {code}: {message}")
        return StackFailed(f"{what}: {code}: {message}")
    return StackFailed(f"{what}: {type(exc).__name__}: {exc}")


def _missing(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    return err.get("Code") == "ValidationError" and "does not exist" in str(err.get("Message", ""))


class StackClient:
    """Stack operations on an open CloudFormation client and S3 client (plain dicts)."""

    def __init__(self, cfn: Any, s3: Any, poll_s: float = 5.0, progress: Progress | None = None) -> None:
        self._cfn = cfn
        self._s3 = s3
        self._poll_s = poll_s
        self._progress = progress or (lambda _line: None)
        self._first_failure = ""

    async def _call(self, client: Any, op: str, **params: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await getattr(client, op)(**params)
        except (ClientError, BotoCoreError, ResponseParserError, OSError) as exc:
            raise _error(exc, op) from exc
        return result

    async def describe(self, name: str) -> dict[str, Any] | None:
        """The stack, or None when there is none by that name."""
        try:
            result = await self._cfn.describe_stacks(StackName=name)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise _error(exc, "DescribeStacks") from exc
        except (BotoCoreError, ResponseParserError, OSError) as exc:
            raise _error(exc, "DescribeStacks") from exc
        stacks: list[dict[str, Any]] = result.get("Stacks", [])
        return stacks[0] if stacks else None

    async def outputs(self, name: str) -> dict[str, str]:
        stack = await self.describe(name)
        if stack is None:
            raise UsageError(f"no stack named {name!r} in this region")
        return {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs", [])}

    async def deploy(self, name: str, template_body: str, params: Mapping[str, str]) -> str:
        """Create or update ``name``; returns the final stack status. Raises StackFailed on rollback."""
        if len(template_body.encode("utf-8")) > MAX_TEMPLATE_BODY_BYTES:
            raise UsageError(
                f"the template is larger than CloudFormation's {MAX_TEMPLATE_BODY_BYTES}-byte limit"
            )
        declared = load_template(template_body).get("Parameters", {}) or {}
        stack = await self.describe(name)
        status = str(stack["StackStatus"]) if stack else ""
        if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
            raise UsageError(f"stack {name!r} is busy ({status}); wait for it to finish")
        if status == "ROLLBACK_COMPLETE":
            raise UsageError(
                f"stack {name!r} failed to create earlier (ROLLBACK_COMPLETE) and cannot be updated: "
                f"run `firehose-loadgen stack delete --name {name}` first"
            )
        creating = stack is None or status == "REVIEW_IN_PROGRESS"
        parameters: list[dict[str, Any]] = [
            {"ParameterKey": k, "ParameterValue": v} for k, v in params.items()
        ]
        if not creating:
            # A soak test changes one buffer setting at a time: keep every other value as it is.
            previous = {str(p["ParameterKey"]) for p in (stack or {}).get("Parameters", [])}
            parameters += [
                {"ParameterKey": k, "UsePreviousValue": True}
                for k in declared
                if k not in params and k in previous
            ]
        change_set = f"firehose-loadgen-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        self._progress(f"{'creating' if creating else 'updating'} stack {name} (change set {change_set})")
        try:
            created = await self._cfn.create_change_set(
                StackName=name,
                ChangeSetName=change_set,
                ChangeSetType="CREATE" if creating else "UPDATE",
                TemplateBody=template_body,
                Parameters=parameters,
                Capabilities=CAPABILITIES,
            )
        except ClientError as exc:
            # AWS reports "no changes" as a FAILED change set (below); some emulators refuse the call.
            if any(text in str(exc.response.get("Error", {}).get("Message", "")) for text in _NO_CHANGES):
                self._progress(f"stack {name}: no changes")
                return status
            raise _error(exc, "CreateChangeSet") from exc
        except (BotoCoreError, ResponseParserError, OSError) as exc:
            raise _error(exc, "CreateChangeSet") from exc
        change_set_id = str(created["Id"])
        described = await self._wait_change_set(name, change_set_id)
        if described["Status"] == "FAILED":
            reason = str(described.get("StatusReason", ""))
            if any(text in reason for text in _NO_CHANGES):
                await self._call(self._cfn, "delete_change_set", StackName=name, ChangeSetName=change_set_id)
                self._progress(f"stack {name}: no changes")
                return status
            raise StackFailed(f"change set for stack {name!r} failed: {reason}")
        for change in described.get("Changes", []):
            rc = change.get("ResourceChange", {})
            replace = " (replacement)" if rc.get("Replacement") == "True" else ""
            self._progress(f"  {rc.get('Action', '?'):<7} {rc.get('LogicalResourceId', '?')}{replace}")
        seen = await self._event_ids(name)
        await self._call(self._cfn, "execute_change_set", StackName=name, ChangeSetName=change_set_id)
        final = await self._wait_stack(name, seen)
        if final.endswith(_FAILED_OR_ROLLED_BACK):
            raise StackFailed(
                f"stack {name!r} ended {final}: {self._first_failure or 'see the events above'}"
            )
        self._progress(f"stack {name}: {final}")
        return final

    async def delete(self, name: str) -> None:
        """Empty the data bucket (every version), then delete the stack and wait until it is gone."""
        if await self.describe(name) is None:
            raise UsageError(f"no stack named {name!r} in this region")
        bucket = await self._bucket(name)
        for attempt in (1, 2):
            if bucket:
                await self.empty_bucket(bucket)
            seen = await self._event_ids(name)
            await self._call(self._cfn, "delete_stack", StackName=name)
            final = await self._wait_stack(name, seen)
            if final in ("DELETE_COMPLETE", "GONE"):
                self._progress(f"stack {name}: deleted")
                return
            # A stream still flushing its buffer can write an object after the bucket was emptied.
            if attempt == 1 and bucket:
                self._progress(f"stack {name}: {final}; emptying the bucket again and retrying once")
                continue
            raise StackFailed(
                f"stack {name!r} ended {final}: {self._first_failure or 'see the events above'}"
            )

    async def _bucket(self, name: str) -> str | None:
        try:
            result = await self._cfn.describe_stack_resource(
                StackName=name, LogicalResourceId=BUCKET_RESOURCE
            )
        except ClientError:
            return None  # a template without the bucket, or it was never created
        except (BotoCoreError, ResponseParserError, OSError) as exc:
            raise _error(exc, "DescribeStackResource") from exc
        physical = result.get("StackResourceDetail", {}).get("PhysicalResourceId")
        return str(physical) if physical else None

    async def empty_bucket(self, bucket: str) -> int:
        """Delete every object version and delete marker in ``bucket``; returns how many."""
        deleted = 0
        kwargs: dict[str, Any] = {"Bucket": bucket}
        while True:
            try:
                page = await self._s3.list_object_versions(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                    return deleted
                raise _error(exc, f"ListObjectVersions {bucket}") from exc
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for i in range(0, len(keys), DELETE_BATCH):
                result = await self._call(
                    self._s3,
                    "delete_objects",
                    Bucket=bucket,
                    Delete={"Objects": keys[i : i + DELETE_BATCH], "Quiet": True},
                )
                if result.get("Errors"):
                    first = result["Errors"][0]
                    raise StackFailed(
                        f"cannot empty bucket {bucket}: {first.get('Code')}: {first.get('Message')}"
                    )
                deleted += len(keys[i : i + DELETE_BATCH])
            if not page.get("IsTruncated"):
                break
            kwargs = {
                "Bucket": bucket,
                "KeyMarker": page.get("NextKeyMarker"),
                "VersionIdMarker": page.get("NextVersionIdMarker"),
            }
        self._progress(f"emptied bucket {bucket} ({deleted} object versions)")
        return deleted

    async def _wait_change_set(self, name: str, change_set_id: str) -> dict[str, Any]:
        while True:
            described = await self._call(
                self._cfn, "describe_change_set", StackName=name, ChangeSetName=change_set_id
            )
            if described.get("Status") in ("CREATE_COMPLETE", "FAILED"):
                return described
            await asyncio.sleep(self._poll_s)

    async def _event_ids(self, name: str) -> set[str]:
        try:
            result = await self._cfn.describe_stack_events(StackName=name)
        except ClientError:
            return set()
        return {str(e["EventId"]) for e in result.get("StackEvents", [])}

    async def _wait_stack(self, name: str, seen: set[str]) -> str:
        """Print new events until the stack settles; returns its status ("GONE" once deleted)."""
        self._first_failure = ""
        while True:
            stack = await self.describe(name)
            try:
                result = await self._cfn.describe_stack_events(StackName=name)
            except ClientError:
                result = {}
            # Newest first in the API; print oldest first.
            for event in reversed(result.get("StackEvents", [])):
                event_id = str(event["EventId"])
                if event_id in seen:
                    continue
                seen.add(event_id)
                status = str(event.get("ResourceStatus", ""))
                reason = str(event.get("ResourceStatusReason", "") or "")
                # "Resource creation cancelled" events follow the real failure; keep the first real one.
                first = not self._first_failure and "cancelled" not in reason.lower()
                if status.endswith("FAILED") and reason and first:
                    self._first_failure = f"{event.get('LogicalResourceId')}: {reason}"
                tail = f"  {reason}" if reason else ""
                self._progress(
                    f"  {status:<28} {event.get('ResourceType', '')} {event.get('LogicalResourceId')}{tail}"
                )
            if stack is None:
                return "GONE"
            status = str(stack["StackStatus"])
            if not status.endswith("_IN_PROGRESS"):
                return status
            await asyncio.sleep(self._poll_s)


@asynccontextmanager
async def open_stacks(
    settings: StackSettings, progress: Progress | None = None
) -> AsyncIterator[StackClient]:
    """A StackClient for ``settings``; UsageError when credentials are missing."""
    session = get_session()
    if await session.get_credentials() is None:
        raise UsageError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    config = AioConfig(
        retries={"max_attempts": 10, "mode": "standard"},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
    )
    async with AsyncExitStack() as stack:
        clients = []
        for service in ("cloudformation", "s3"):
            client = session.create_client(
                service, region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
            )
            clients.append(await stack.enter_async_context(client))
        cfn, s3 = clients
        yield StackClient(cfn, s3, poll_s=settings.poll_s, progress=progress)


async def stream_names_from_stack(settings: StackSettings, name: str) -> tuple[str, str]:
    """(S3 stream, OpenSearch stream) from the stack's outputs."""
    async with open_stacks(settings) as stacks:
        outputs = await stacks.outputs(name)
    missing = [k for k in (S3_STREAM_OUTPUT, OPENSEARCH_STREAM_OUTPUT) if not outputs.get(k)]
    if missing:
        raise UsageError(
            f"stack {name!r} has no output {missing[0]}: is it a firehose-loadgen pipeline stack?"
        )
    return outputs[S3_STREAM_OUTPUT], outputs[OPENSEARCH_STREAM_OUTPUT]


def stack_stream_names(name: str, region: str, endpoint_url: str | None = None) -> tuple[str, str]:
    """For ``run --stack NAME`` (sync, before the run's loop starts): both stream names."""
    return asyncio.run(stream_names_from_stack(StackSettings(region, endpoint_url), name))
