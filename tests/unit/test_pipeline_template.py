"""deploy/pipeline.yaml: lint clean, checkov clean, and none of the recipe's 14 defects back.

Defect numbers refer to /work/shared/FIREHOSE.md ("Defects in the recipe's pipeline"). These
checks read the template as data; no AWS account is involved.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from producer.aws.cloudformation import MAX_TEMPLATE_BODY_BYTES, load_template

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TEMPLATE = DEPLOY / "pipeline.yaml"
TRANSFORM = DEPLOY / "lambda" / "transform.py"

# Every metric name the Firehose developer guide documents for the destinations and features this
# pipeline uses (namespace AWS/Firehose, dimension DeliveryStreamName).
# https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html
DOCUMENTED_FIREHOSE_METRICS = {
    "DeliveryToS3.Bytes",
    "DeliveryToS3.DataFreshness",
    "DeliveryToS3.Records",
    "DeliveryToS3.Success",
    "DeliveryToAmazonOpenSearchService.Bytes",
    "DeliveryToAmazonOpenSearchService.DataFreshness",
    "DeliveryToAmazonOpenSearchService.Records",
    "DeliveryToAmazonOpenSearchService.Success",
    "DeliveryToAmazonOpenSearchService.AuthFailure",
    "DeliveryToAmazonOpenSearchService.DeliveryRejected",
    "BackupToS3.DataFreshness",
    "BackupToS3.Success",
    "ExecuteProcessing.Duration",
    "ExecuteProcessing.Success",
    "SucceedProcessing.Records",
    "FailedConversion.Records",
    "SucceedConversion.Records",
    "IncomingRecords",
    "IncomingBytes",
    "ThrottledRecords",
}
# Metrics that count successes: an alarm when they are high fires on a healthy stream (defect 9).
SUCCESS_COUNTS = re.compile(r"\.(Records|Bytes)$|^Incoming|^Succeed")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE.read_text(encoding="utf-8"))


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _streams(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v["Properties"] for k, v in _resources(template, "AWS::KinesisFirehose::DeliveryStream").items()
    }


def _s3_dest(template: dict[str, Any]) -> dict[str, Any]:
    dest: dict[str, Any] = _streams(template)["S3Stream"]["ExtendedS3DestinationConfiguration"]
    return dest


def _os_dest(template: dict[str, Any]) -> dict[str, Any]:
    dest: dict[str, Any] = _streams(template)["OpenSearchStream"][
        "AmazonopensearchserviceDestinationConfiguration"
    ]
    return dest


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _parameter(template: dict[str, Any], value: Any) -> dict[str, Any]:
    """The Parameters entry ``value`` refers to; fails if ``value`` is a literal."""
    assert isinstance(value, dict) and set(value) == {"Ref"}, f"{value!r} is not a parameter reference"
    spec: dict[str, Any] = template["Parameters"][value["Ref"]]
    return spec


def _processor_params(dest: dict[str, Any]) -> dict[str, Any]:
    (processor,) = dest["ProcessingConfiguration"]["Processors"]
    assert processor["Type"] == "Lambda"
    return {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}


# ---------------------------------------------------------------- the 14 defects


def test_1_processing_and_conversion_only_under_extended_s3(template: dict[str, Any]) -> None:
    for name, stream in _streams(template).items():
        plain = stream.get("S3DestinationConfiguration", {})
        assert "ProcessingConfiguration" not in plain, name
        assert "DataFormatConversionConfiguration" not in plain, name
    dest = _s3_dest(template)
    assert dest["ProcessingConfiguration"]["Enabled"] is True
    assert dest["DataFormatConversionConfiguration"]["Enabled"] is True


def test_2_opensearch_destination_key(template: dict[str, Any]) -> None:
    stream = _streams(template)["OpenSearchStream"]
    assert "AmazonopensearchserviceDestinationConfiguration" in stream
    assert not {"OpenSearchDestinationConfiguration", "ElasticsearchDestinationConfiguration"} & set(stream)


def test_3_parquet_conversion_has_schema_and_input_format(template: dict[str, Any]) -> None:
    conversion = _s3_dest(template)["DataFormatConversionConfiguration"]
    assert "OpenXJsonSerDe" in conversion["InputFormatConfiguration"]["Deserializer"]
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    schema = conversion["SchemaConfiguration"]
    assert schema["DatabaseName"] == {"Ref": "GlueDatabase"}
    assert schema["TableName"] == {"Ref": "EventsTable"}
    assert template["Resources"]["GlueDatabase"]["Type"] == "AWS::Glue::Database"
    table = template["Resources"]["EventsTable"]
    assert table["Type"] == "AWS::Glue::Table"
    columns = {
        c["Name"]: c["Type"] for c in table["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
    }
    # The four enrichment fields the transform adds must survive the conversion.
    for field in ("processed_timestamp", "processing_status", "user_category", "amount_category"):
        assert field in columns
    assert columns["amount"] == "double"  # the transform turns "250" into 250.0 for this


def _hive_type(value: object) -> object:
    """The Hive type the OpenX JSON SerDe needs for a JSON value; structs as {field: type}."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return {k: _hive_type(v) for k, v in value.items()}
    raise AssertionError(f"no column type for {type(value).__name__}: {value!r}")


def _parse_glue_type(text: str) -> object:
    """'struct<a:string,b:struct<c:bigint>>' as {'a': 'string', 'b': {'c': 'bigint'}}."""
    if not text.startswith("struct<"):
        return text
    assert text.endswith(">"), text
    fields: dict[str, object] = {}
    body, depth, start = text[len("struct<") : -1], 0, 0
    for i, char in enumerate(body + ","):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            name, _, kind = body[start:i].partition(":")
            fields[name] = _parse_glue_type(kind)
            start = i + 1
    return fields


def _produced_fields() -> dict[str, object]:
    """Field -> Hive type over what the pipeline receives: every shipped generator's events (a
    fixed seed, enough events to reach the rare branches: firmware updates, late mobile events),
    the trace fields producer/generation.py adds, then the transform's enrichment."""
    import importlib.util

    from producer.events.registry import GENERATORS, build_generator

    spec = importlib.util.spec_from_file_location("loadgen_transform_for_glue", TRANSFORM)
    assert spec is not None and spec.loader is not None
    transform = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(transform)
    generator = build_generator(dict.fromkeys(GENERATORS, 1.0), 7)
    fields: dict[str, set[str]] = {}
    for seq in range(60_000):
        event = generator.next_event(1.8e9 + seq / 100)
        event["run_id"], event["seq"] = "20261204T041500Z-abcdef", seq  # as generation.py does
        for name, value in transform.enrich(event, "2026-12-04T04:15:00.000Z").items():
            fields.setdefault(name, set()).add(json.dumps(_hive_type(value), sort_keys=True))
    types = {name: [json.loads(t) for t in found] for name, found in fields.items()}
    mixed = {name: found for name, found in types.items() if len(found) > 1}
    assert not mixed, f"fields with more than one JSON type: {mixed}"
    return {name: found[0] for name, found in types.items()}


def test_glue_columns_are_every_field_the_pipeline_keeps(template: dict[str, Any]) -> None:
    table = template["Resources"]["EventsTable"]["Properties"]["TableInput"]
    columns = {c["Name"]: _parse_glue_type(c["Type"]) for c in table["StorageDescriptor"]["Columns"]}
    produced = _produced_fields()
    for must in ("run_id", "seq", "received_at", "order_id", "price", "cart_items", "temperature_c", "geo"):
        assert must in produced, f"the generators no longer produce {must}"
    assert columns == produced
    # The OpenX JSON SerDe lower-cases JSON keys before matching them to columns.
    assert all(name == name.lower() for name in columns)


def test_glue_database_has_an_explicit_name(template: dict[str, Any]) -> None:
    database = template["Resources"]["GlueDatabase"]["Properties"]["DatabaseInput"]
    assert database["Name"] == {"Ref": "GlueDatabaseName"}
    parameter = template["Parameters"]["GlueDatabaseName"]
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    assert not re.fullmatch(parameter["AllowedPattern"], "Has-Hyphen")  # Athena needs [a-z0-9_]


def test_4_conversion_buffer_at_least_64_mib_and_uncompressed(template: dict[str, Any]) -> None:
    dest = _s3_dest(template)
    assert dest["CompressionFormat"] == "UNCOMPRESSED"
    size = _parameter(template, dest["BufferingHints"]["SizeInMBs"])
    # https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
    assert size["MinValue"] >= 64
    assert 64 <= size["Default"] <= size["MaxValue"] <= 128


def test_5_lambda_has_its_own_role_trusted_by_lambda(template: dict[str, Any]) -> None:
    function = template["Resources"]["TransformFunction"]["Properties"]
    role_name = function["Role"]["Fn::GetAtt"][0]
    assert role_name != "FirehoseRole"
    trust = template["Resources"][role_name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    firehose_trust = template["Resources"]["FirehoseRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in firehose_trust["Statement"]] == [{"Service": "firehose.amazonaws.com"}]


def test_6_firehose_role_has_glue_and_opensearch_permissions(template: dict[str, Any]) -> None:
    actions = {a for s in _statements(template["Resources"]["FirehoseRole"]) for a in _actions(s)}
    assert {"glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"} <= actions
    assert {"es:DescribeDomain", "es:DescribeDomains", "es:DescribeDomainConfig"} <= actions
    assert {"es:ESHttpGet", "es:ESHttpPost", "es:ESHttpPut"} <= actions
    assert {"lambda:InvokeFunction", "s3:PutObject", "logs:PutLogEvents"} <= actions
    # Old Elasticsearch-era names that no longer exist must not stand in for the current ones.
    assert not {a for a in actions if a.startswith("es:") and "Elasticsearch" in a}


def test_7_every_logging_target_exists(template: dict[str, Any]) -> None:
    groups = _resources(template, "AWS::Logs::LogGroup")
    streams = _resources(template, "AWS::Logs::LogStream")
    options = []
    for stream in _streams(template).values():
        for dest in stream.values():
            if isinstance(dest, dict) and "CloudWatchLoggingOptions" in dest:
                options.append(dest["CloudWatchLoggingOptions"])
                backup = dest.get("S3Configuration", {}).get("CloudWatchLoggingOptions")
                if backup:
                    options.append(backup)
    assert len(options) >= 3
    for opt in options:
        assert opt["Enabled"] is True
        assert opt["LogGroupName"]["Ref"] in groups
        assert opt["LogStreamName"]["Ref"] in streams
        assert streams[opt["LogStreamName"]["Ref"]]["Properties"]["LogGroupName"] == opt["LogGroupName"]
    function = template["Resources"]["TransformFunction"]["Properties"]
    assert function["LoggingConfig"]["LogGroup"]["Ref"] in groups


def test_8_no_type_name_for_opensearch_2(template: dict[str, Any]) -> None:
    assert "TypeName" not in _os_dest(template)
    default = template["Parameters"]["OpenSearchEngineVersion"]["Default"]
    assert re.fullmatch(r"OpenSearch_([2-9]|\d\d+)\.\d+", default)


def test_9_alarms_watch_documented_failure_signals(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    firehose = {k: v["Properties"] for k, v in alarms.items() if v["Properties"]["Namespace"] != "AWS/SQS"}
    assert firehose
    watched: dict[str, set[str]] = {}
    for name, alarm in firehose.items():
        metric = alarm["MetricName"]
        assert alarm["Namespace"] == "AWS/Firehose", name
        assert metric in DOCUMENTED_FIREHOSE_METRICS, f"{name}: {metric} is not a documented metric"
        op = alarm["ComparisonOperator"]
        if metric.endswith(".Success"):
            assert op == "LessThanThreshold" and alarm["Threshold"] in (1, "1"), name
        elif metric.endswith(".DataFreshness"):
            assert op == "GreaterThanThreshold", name
        else:
            assert not SUCCESS_COUNTS.search(metric) or metric.startswith("Failed"), (
                f"{name} fires on success"
            )
            assert op == "GreaterThanThreshold" and alarm["Threshold"] in (0, "0"), name
        (dimension,) = alarm["Dimensions"]
        assert dimension["Name"] == "DeliveryStreamName"
        watched.setdefault(dimension["Value"]["Ref"], set()).add(metric)
    assert {
        "DeliveryToS3.DataFreshness",
        "DeliveryToS3.Success",
        "ExecuteProcessing.Success",
        "ThrottledRecords",
    } <= watched["S3Stream"]
    assert {
        "DeliveryToAmazonOpenSearchService.DataFreshness",
        "DeliveryToAmazonOpenSearchService.Success",
        "ExecuteProcessing.Success",
        "ThrottledRecords",
    } <= watched["OpenSearchStream"]


def test_10_processor_buffer_bounded_for_the_6_mb_response(template: dict[str, Any]) -> None:
    """The numbers behind the bound are measured in test_transform.py; here: it is a parameter,
    both streams use it, and AWS's own range is not loosened."""
    for dest in (_s3_dest(template), _os_dest(template)):
        params = _processor_params(dest)
        size = _parameter(template, params["BufferSizeInMBs"])
        assert 0.2 <= size["MinValue"] <= size["Default"] <= size["MaxValue"] < 3
        interval = _parameter(template, params["BufferIntervalInSeconds"])
        assert interval["MinValue"] == 0 and interval["MaxValue"] == 900
        assert params["LambdaArn"] == {"Fn::GetAtt": ["TransformFunction", "Arn"]}


def test_11_inline_code_is_the_tested_transform(template: dict[str, Any]) -> None:
    code = template["Resources"]["TransformFunction"]["Properties"]["Code"]["ZipFile"]
    assert code == TRANSFORM.read_text(encoding="utf-8")
    assert template["Resources"]["TransformFunction"]["Properties"]["Handler"] == "index.lambda_handler"
    assert "utcnow" not in code
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "sync_inline_code.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_12_error_prefixes_feed_an_encrypted_queue_with_an_alarm(template: dict[str, Any]) -> None:
    res = template["Resources"]
    s3_error = _s3_dest(template)["ErrorOutputPrefix"]
    os_error = _os_dest(template)["S3Configuration"]["ErrorOutputPrefix"]
    for prefix in (s3_error, os_error):
        assert "!{firehose:error-output-type}" in prefix
    notifications = res["DataBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    watched = {n["Filter"]["S3Key"]["Rules"][0]["Value"]: n["Queue"] for n in notifications}
    for prefix in (s3_error, os_error):
        matches = [p for p in watched if prefix.startswith(p)]
        assert matches, f"no notification covers {prefix}"
        assert watched[matches[0]] == {"Fn::GetAtt": ["ErrorQueue", "Arn"]}
    assert res["ErrorQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    depth = [
        a["Properties"]
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SQS"
    ]
    assert [a["MetricName"] for a in depth] == ["ApproximateNumberOfMessagesVisible"]
    assert depth[0]["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ErrorQueue", "QueueName"]}
    # S3 must be allowed to send, else the bucket's notification configuration is rejected.
    policy = res["ErrorQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Principal"] == {"Service": "s3.amazonaws.com"} and s["Effect"] == "Allow" for s in policy)
    assert "ErrorQueuePolicy" in res["DataBucket"]["DependsOn"]


def test_13_opensearch_access_is_iam_with_the_firehose_role(template: dict[str, Any]) -> None:
    domain = template["Resources"]["Domain"]["Properties"]
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert domain["NodeToNodeEncryptionOptions"]["Enabled"] is True
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    # No internal user database: `curl -u admin:password` cannot work; SigV4 is the way in.
    assert not domain.get("AdvancedSecurityOptions", {}).get("InternalUserDatabaseEnabled", False)
    principals = [s["Principal"]["AWS"] for s in domain["AccessPolicies"]["Statement"]]
    assert {"Fn::GetAtt": ["FirehoseRole", "Arn"]} in principals
    assert "*" not in principals
    assert "SigV4" in TEMPLATE.read_text(encoding="utf-8")


def test_14_hygiene(template: dict[str, Any]) -> None:
    res = template["Resources"]
    for name, role in _resources(template, "AWS::IAM::Role").items():
        for statement in _statements(role):
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            assert "*" not in resources, f"{name}: {statement}"
            assert not [a for a in _actions(statement) if a.endswith(":*")], f"{name}: {statement}"
    bucket = res["DataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == {"Ref": "DataRetentionDays"}
    tls = res["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in tls
    )
    trust = res["FirehoseRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


# ---------------------------------------------------------------- the rest of the issue


BUFFER_RANGES = {
    # parameter: (min, max) from the pages linked in the template's header
    "S3BufferSizeMiB": (64, 128),
    "S3BufferIntervalSeconds": (0, 900),
    "OpenSearchBufferSizeMiB": (1, 100),
    "OpenSearchBufferIntervalSeconds": (0, 900),
    "OpenSearchBackupBufferSizeMiB": (1, 128),
    "OpenSearchBackupBufferIntervalSeconds": (60, 900),
    "ProcessorBufferIntervalSeconds": (0, 900),
}


def test_every_buffer_setting_is_a_constrained_parameter(template: dict[str, Any]) -> None:
    os_dest = _os_dest(template)
    hints = {
        "S3": _s3_dest(template)["BufferingHints"],
        "OpenSearch": os_dest["BufferingHints"],
        "OpenSearchBackup": os_dest["S3Configuration"]["BufferingHints"],
    }
    for prefix, hint in hints.items():
        assert hint["SizeInMBs"] == {"Ref": f"{prefix}BufferSizeMiB"}
        assert hint["IntervalInSeconds"] == {"Ref": f"{prefix}BufferIntervalSeconds"}
    for name, (low, high) in BUFFER_RANGES.items():
        spec = template["Parameters"][name]
        assert (spec["Type"], spec["MinValue"], spec["MaxValue"]) == ("Number", low, high), name
        assert low <= spec["Default"] <= high


def test_streams_prefixes_and_backup(template: dict[str, Any]) -> None:
    streams = _streams(template)
    assert streams["S3Stream"]["DeliveryStreamName"] == {"Ref": "StreamPrefix"}
    assert streams["OpenSearchStream"]["DeliveryStreamName"] == {"Fn::Sub": "${StreamPrefix}-opensearch"}
    assert template["Parameters"]["StreamPrefix"]["Default"] == "realtime-data-stream"
    assert _s3_dest(template)["Prefix"] == (
        "raw-data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
    )
    os_dest = _os_dest(template)
    assert os_dest["IndexRotationPeriod"] == "OneDay"
    assert os_dest["S3BackupMode"] == "AllDocuments"


def test_outputs_and_producer_policy(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for key in (
        "S3StreamName",
        "S3StreamArn",
        "OpenSearchStreamName",
        "OpenSearchStreamArn",
        "BucketName",
        "OpenSearchEndpoint",
        "ProducerPolicyArn",
    ):
        assert key in outputs
    statement, describe = template["Resources"]["ProducerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(_actions(statement)) == [
        "firehose:DescribeDeliveryStream",
        "firehose:PutRecord",
        "firehose:PutRecordBatch",
    ]
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["S3Stream", "Arn"]},
        {"Fn::GetAtt": ["OpenSearchStream", "Arn"]},
    ]
    # run --stack reads this stack's outputs (DescribeStacks), and only this stack's.
    assert describe["Effect"] == "Allow"
    assert _actions(describe) == ["cloudformation:DescribeStacks"]
    stack_arn = (
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${AWS::StackName}/*"
    )
    assert describe["Resource"] == {"Fn::Sub": stack_arn}


def test_alarm_topic_key_lets_cloudwatch_publish(template: dict[str, Any]) -> None:
    """A topic encrypted with alias/aws/sns never receives alarms: CloudWatch needs kms:Decrypt
    and kms:GenerateDataKey* on the topic's key, which only a customer-managed key can grant."""
    resources = template["Resources"]
    key_ref = resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    assert isinstance(key_ref, dict) and set(key_ref) == {"Ref"}, key_ref
    key = resources[key_ref["Ref"]]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    granted: set[str] = set()
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if statement["Effect"] == "Allow" and statement["Principal"] == {
            "Service": "cloudwatch.amazonaws.com"
        }:
            assert "Condition" not in statement  # a condition CloudWatch does not send would deny it
            granted.update(_actions(statement))
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= granted
    # Every alarm notifies that topic.
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms and all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)


def test_template_fits_in_a_template_body() -> None:
    assert len(TEMPLATE.read_bytes()) <= MAX_TEMPLATE_BODY_BYTES


def _templates() -> list[Path]:
    return sorted(
        p for p in DEPLOY.rglob("*.y*ml") if "AWSTemplateFormatVersion" in p.read_text(encoding="utf-8")
    )


def test_cfn_lint_has_no_errors_or_warnings() -> None:
    templates = _templates()
    assert TEMPLATE in templates
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=1)
    assert result.returncode == 0, result.stderr


def _checkov() -> str:
    """checkov lives in its own virtualenv (it pins an older botocore than ours); the Makefile
    makes .venv-tools, and CHECKOV may point elsewhere. Missing is a failure, never a skip."""
    candidate = os.environ.get("CHECKOV") or str(REPO / ".venv-tools" / "bin" / "checkov")
    if not Path(candidate).is_file():
        pytest.fail(f"checkov not found at {candidate}: run `make tools` or set CHECKOV=/path/to/checkov")
    return candidate


def test_checkov_has_no_failed_checks() -> None:
    templates = _templates()
    # --skip-download: no calls to the vendor's API (the scan itself is offline).
    result = subprocess.run(
        [_checkov(), "--framework", "cloudformation", "--skip-download", "--output", "json"]
        + [arg for t in templates for arg in ("--file", str(t))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        (c["check_id"], c["resource"], c["file_path"]) for r in reports for c in r["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 20  # it really scanned the resources
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)


def test_every_checkov_skip_has_a_reason(template: dict[str, Any]) -> None:
    skips = [
        (name, skip)
        for name, res in template["Resources"].items()
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "").split()) >= 6, f"{name}: skip {skip['id']} needs a written reason"
