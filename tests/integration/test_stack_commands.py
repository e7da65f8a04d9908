"""``firehose-loadgen stack deploy|outputs|delete`` and the ``run --stack`` lookup.

Two kinds of fake AWS, for two kinds of question:
- moto's server (on 127.0.0.1) for the flow of real calls: change sets, parameters kept on update,
  outputs, emptying a versioned bucket, deletion. moto's CloudFormation cannot create Firehose
  or OpenSearch resources, so these tests deploy a small stand-in template; a green moto deploy
  proves nothing about deploy/pipeline.yaml (tests/unit/test_pipeline_template.py and cfn-lint
  check that).
- aiobotocore's AioStubber for what moto does not model: a rollback with its failure reason, and
  AWS's way of reporting an update without changes (a FAILED change set).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from aiobotocore.stub import AioStubber
from moto.server import ThreadedMotoServer

from producer.aws.cloudformation import StackClient, StackFailed, StackSettings, stream_names_from_stack
from producer.errors import UsageError
from tests.helpers import run_cli

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"

STAND_IN = """
AWSTemplateFormatVersion: "2010-09-09"
Description: Stand-in for deploy/pipeline.yaml (moto cannot create Firehose or OpenSearch).
Parameters:
  S3BufferSizeMiB: {Type: Number, Default: 128, MinValue: 64, MaxValue: 128}
  StreamPrefix: {Type: String, Default: realtime-data-stream}
Resources:
  DataBucket:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration: {Status: Enabled}
  # Something that changes with the parameters (moto cannot update a bucket without a BucketName,
  # nor an SSM parameter without a Name).
  Settings:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/settings"
      Type: String
      Value: !Sub "${StreamPrefix}:${S3BufferSizeMiB}"
Outputs:
  S3StreamName: {Value: !Ref StreamPrefix}
  OpenSearchStreamName: {Value: !Sub "${StreamPrefix}-opensearch"}
  BucketName: {Value: !Ref DataBucket}
"""


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        # moto's backends are process-wide: reset them so the next test starts empty.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
        server.stop()


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    path = tmp_path / "stand-in.yaml"
    path.write_text(STAND_IN)
    return path


def _client(url: str, service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().create_client(
        service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="t"
    )


def _stack(url: str, name: str) -> dict[str, Any]:
    stack: dict[str, Any] = _client(url, "cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return stack


def _create_directly(url: str, name: str) -> str:
    """moto fills in Outputs only for CreateStack, not for change sets: create it that way."""
    _client(url, "cloudformation").create_stack(StackName=name, TemplateBody=STAND_IN)
    resource = _client(url, "cloudformation").describe_stack_resource(
        StackName=name, LogicalResourceId="DataBucket"
    )
    return str(resource["StackResourceDetail"]["PhysicalResourceId"])


def _stack_cli(url: str, *args: str) -> Any:
    return run_cli("stack", *args, "--region", REGION, "--endpoint-url", url, env=CREDENTIALS, timeout=60)


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# ---------------------------------------------------------------- moto: the call flow


def test_deploy_creates_then_no_changes_then_updates_one_parameter(moto_url: str, stand_in: Path) -> None:
    create = _stack_cli(
        moto_url, "deploy", "--name", "soak", "--template", str(stand_in), "--param", "StreamPrefix=s1"
    )
    assert create.returncode == 0, create.stderr
    assert "creating stack soak" in create.stdout
    assert _stack(moto_url, "soak")["StackStatus"] == "CREATE_COMPLETE"

    again = _stack_cli(moto_url, "deploy", "--name", "soak", "--template", str(stand_in))
    assert again.returncode == 0, again.stderr
    assert "stack soak: no changes" in again.stdout

    update = _stack_cli(
        moto_url, "deploy", "--name", "soak", "--template", str(stand_in), "--param", "S3BufferSizeMiB=64"
    )
    assert update.returncode == 0, update.stderr
    stack = _stack(moto_url, "soak")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    # The unchanged parameter kept its earlier value instead of falling back to the default.
    assert params == {"S3BufferSizeMiB": "64", "StreamPrefix": "s1"}


def test_outputs_lines_and_json(moto_url: str) -> None:
    bucket = _create_directly(moto_url, "pipe")
    lines = _stack_cli(moto_url, "outputs", "--name", "pipe")
    assert lines.returncode == 0, lines.stderr
    assert lines.stdout.splitlines() == [
        f"BucketName={bucket}",
        "OpenSearchStreamName=realtime-data-stream-opensearch",
        "S3StreamName=realtime-data-stream",
    ]
    as_json = _stack_cli(moto_url, "outputs", "--name", "pipe", "--json")
    assert json.loads(as_json.stdout)["BucketName"] == bucket


async def test_run_stack_reads_both_stream_names(moto_url: str) -> None:
    _create_directly(moto_url, "pipe")
    names = await stream_names_from_stack(StackSettings(REGION, moto_url), "pipe")
    assert names == ("realtime-data-stream", "realtime-data-stream-opensearch")
    with pytest.raises(UsageError, match="no stack named 'other'"):
        await stream_names_from_stack(StackSettings(REGION, moto_url), "other")


def test_delete_empties_every_version_then_deletes(moto_url: str) -> None:
    bucket = _create_directly(moto_url, "gone")
    s3 = _client(moto_url, "s3")
    # moto's CloudFormation ignores VersioningConfiguration; the real bucket is versioned.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="errors/processing-failed/x.json", Body=f"v{i}".encode())
    s3.put_object(Bucket=bucket, Key="raw-data/y.parquet", Body=b"p")
    s3.delete_object(Bucket=bucket, Key="raw-data/y.parquet")  # leaves a delete marker
    result = _stack_cli(moto_url, "delete", "--name", "gone", "--yes")
    assert result.returncode == 0, result.stderr
    assert f"emptied bucket {bucket} (5 object versions)" in result.stdout
    assert "stack gone: deleted" in result.stdout
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    missing = _stack_cli(moto_url, "outputs", "--name", "gone")
    assert missing.returncode == 2
    assert "no stack named 'gone'" in _one_error_line(missing.stderr)


def test_delete_asks_unless_yes(moto_url: str) -> None:
    _create_directly(moto_url, "keep")
    result = _stack_cli(moto_url, "delete", "--name", "keep")  # stdin is not a terminal here
    assert result.returncode == 2
    assert "pass --yes" in _one_error_line(result.stderr)
    assert _stack(moto_url, "keep")["StackStatus"] == "CREATE_COMPLETE"


# ---------------------------------------------------------------- bad input: exit 2, one line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["deploy", "--param", "S3BufferSizeMiB"], "expected KEY=VALUE"),
        (["deploy", "--param", "NoSuch=1"], "--param NoSuch: the template has no such parameter"),
        (["deploy", "--param", "S3BufferSizeMiB=32"], "must be between 64 and 128"),
        (["deploy", "--param", "ProcessorBufferSizeMB=3"], "must be between 0.2 and 0.9"),
        (["deploy", "--template", "missing.yaml"], "--template missing.yaml: No such file"),
        (["outputs"], "stack commands need a region"),
    ],
)
def test_bad_input(args: list[str], expected: str) -> None:
    result = run_cli("stack", *args)
    assert result.returncode == 2
    assert expected in _one_error_line(result.stderr)


def test_missing_credentials() -> None:
    result = run_cli("stack", "outputs", "--region", "eu-west-1")
    assert result.returncode == 2
    assert "no AWS credentials found" in _one_error_line(result.stderr)


# ---------------------------------------------------------------- AioStubber: what moto cannot show

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/pipe/6d0f1b40-0000-0000-0000-000000000000"
CHANGE_SET_ID = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/firehose-loadgen-x/1"


@pytest.fixture
async def stubbed() -> AsyncIterator[tuple[StackClient, AioStubber, list[str]]]:
    session = get_session()
    async with (
        session.create_client("cloudformation", region_name=REGION, **_keys()) as cfn,
        session.create_client("s3", region_name=REGION, **_keys()) as s3,
    ):
        lines: list[str] = []
        with AioStubber(cfn) as stubber:
            yield StackClient(cfn, s3, poll_s=0, progress=lines.append), stubber, lines
            stubber.assert_no_pending_responses()


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _event(n: int, logical: str, status: str, reason: str = "") -> dict[str, Any]:
    event: dict[str, Any] = {
        "StackId": STACK_ID,
        "EventId": f"e{n}",
        "StackName": "pipe",
        "LogicalResourceId": logical,
        "ResourceType": "AWS::KinesisFirehose::DeliveryStream"
        if logical != "pipe"
        else "AWS::CloudFormation::Stack",
        "Timestamp": "2026-12-01T08:00:00Z",
        "ResourceStatus": status,
    }
    if reason:
        event["ResourceStatusReason"] = reason
    return event


def _stack_status(status: str) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": "pipe",
                "StackId": STACK_ID,
                "CreationTime": "2026-12-01T08:00:00Z",
                "StackStatus": status,
            }
        ]
    }


async def test_rollback_reports_the_first_real_failure(
    stubbed: tuple[StackClient, AioStubber, list[str]],
) -> None:
    stacks, stub, lines = stubbed
    stub.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id pipe does not exist", http_status_code=400
    )
    stub.add_response("create_change_set", {"Id": CHANGE_SET_ID, "StackId": STACK_ID})
    stub.add_response(
        "describe_change_set",
        {
            "Status": "CREATE_COMPLETE",
            "Changes": [
                {"Type": "Resource", "ResourceChange": {"Action": "Add", "LogicalResourceId": "S3Stream"}}
            ],
        },
    )
    stub.add_response("describe_stack_events", {"StackEvents": []})
    stub.add_response("execute_change_set", {})
    stub.add_response("describe_stacks", _stack_status("ROLLBACK_COMPLETE"))
    stub.add_response(
        "describe_stack_events",
        {
            # Newest first, as the API returns them.
            "StackEvents": [
                _event(4, "pipe", "ROLLBACK_COMPLETE"),
                _event(3, "OpenSearchStream", "CREATE_FAILED", "Resource creation cancelled"),
                _event(2, "S3Stream", "CREATE_FAILED", "Role is not authorized to perform glue:GetTable"),
                _event(1, "pipe", "CREATE_IN_PROGRESS", "User Initiated"),
            ]
        },
    )
    with pytest.raises(StackFailed) as failed:
        await stacks.deploy("pipe", STAND_IN, {})
    assert str(failed.value) == (
        "stack 'pipe' ended ROLLBACK_COMPLETE: S3Stream: Role is not authorized to perform glue:GetTable"
    )
    assert failed.value.exit_code == 1
    assert any("Add     S3Stream" in line for line in lines)
    # Events are shown oldest first.
    shown = [
        line.split()[0] for line in lines if line.startswith("  CREATE") or line.startswith("  ROLLBACK")
    ]
    assert shown == ["CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_FAILED", "ROLLBACK_COMPLETE"]


async def test_update_without_changes_as_aws_reports_it(
    stubbed: tuple[StackClient, AioStubber, list[str]],
) -> None:
    stacks, stub, lines = stubbed
    stub.add_response("describe_stacks", _stack_status("UPDATE_COMPLETE"))
    stub.add_response("create_change_set", {"Id": CHANGE_SET_ID, "StackId": STACK_ID})
    stub.add_response(
        "describe_change_set",
        {
            "Status": "FAILED",
            "StatusReason": "The submitted information didn't contain changes. Submit different information "
            "to create a change set.",
        },
    )
    stub.add_response("delete_change_set", {}, {"StackName": "pipe", "ChangeSetName": CHANGE_SET_ID})
    assert await stacks.deploy("pipe", STAND_IN, {}) == "UPDATE_COMPLETE"
    assert lines[-1] == "stack pipe: no changes"


async def test_busy_stack_is_a_usage_error(stubbed: tuple[StackClient, AioStubber, list[str]]) -> None:
    stacks, stub, _ = stubbed
    stub.add_response("describe_stacks", _stack_status("UPDATE_IN_PROGRESS"))
    with pytest.raises(UsageError, match="busy"):
        await stacks.deploy("pipe", STAND_IN, {})
