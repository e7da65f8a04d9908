"""Builds the local Firehose's streams from a CloudFormation template (the shipped pipeline).

Reads each AWS::KinesisFirehose::DeliveryStream's properties, resolves the intrinsics the
template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join) with the Parameters' defaults and --param
overrides, attaches the Glue table's columns to a DataFormatConversionConfiguration (the local
Firehose has no Glue) and returns the Lambda transform's inline code (Code.ZipFile) so the
sandbox runs exactly what the template deploys. Intrinsic functions:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from producer.errors import UsageError
from producer.pipeline import LOCAL_BUCKET

ACCOUNT_ID = "000000000000"
STREAM_TYPE = "AWS::KinesisFirehose::DeliveryStream"
# The pipeline the project deploys; `run` builds its embedded Firehose from it by default
# (a data file of the wheel, see producer/shipped.py).
SHIPPED_TEMPLATE = "deploy/pipeline.yaml"
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass(frozen=True, slots=True)
class TemplateStreams:
    """CreateDeliveryStream requests for the template's streams and the transform's inline code."""

    requests: list[dict[str, Any]]
    transform_code: str | None


class _Resolver:
    def __init__(self, template: Mapping[str, Any], params: Mapping[str, str], region: str) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources") or {}
        self.values: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            spec = spec or {}
            value = params.get(name, spec.get("Default"))
            if value is not None and spec.get("Type") == "Number":
                try:
                    value = int(value) if float(value).is_integer() else float(value)
                except (TypeError, ValueError):
                    raise UsageError(f"--param {name}={value}: not a number") from None
            self.values[name] = value
        self.values.update(
            {
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Region": region,
                "AWS::Partition": "aws",
                "AWS::StackName": "local",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NoValue": None,
            }
        )

    def ref(self, name: str) -> Any:
        if name in self.values:
            if self.values[name] is None and not name.startswith("AWS::"):
                raise UsageError(f"template parameter {name} has no Default: pass --param {name}=VALUE")
            return self.values[name]
        resource = self.resources.get(name)
        if resource is None:
            raise UsageError(f"template: !Ref {name} names no parameter or resource")
        props = resource.get("Properties") or {}
        kind = resource.get("Type")
        # What Ref returns for the resources the streams point at; the physical name when the
        # template sets one, else the logical id (CloudFormation would generate one).
        for key in ("BucketName", "FunctionName", "DomainName", "RoleName", "DatabaseName"):
            if key in props and not (kind == "AWS::Glue::Table" and key == "DatabaseName"):
                return self.resolve(props[key])
        if kind == "AWS::Glue::Database":
            return self.resolve((props.get("DatabaseInput") or {}).get("Name", name))
        if kind == "AWS::Glue::Table":
            return self.resolve((props.get("TableInput") or {}).get("Name", name))
        # An unnamed bucket is the local Firehose's usual one, so outputs land where they always do.
        return LOCAL_BUCKET if kind == "AWS::S3::Bucket" else name

    def get_att(self, name: str, attribute: str) -> Any:
        kind = (self.resources.get(name) or {}).get("Type")
        if kind is None:
            raise UsageError(f"template: !GetAtt {name}.{attribute} names no resource")
        ref = self.ref(name)
        region = self.values["AWS::Region"]
        if attribute != "Arn":
            return f"{name}.{attribute}"
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{ref}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{ref}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{ref}",
            "AWS::OpenSearchService::Domain": f"arn:aws:es:{region}:{ACCOUNT_ID}:domain/{ref}",
            STREAM_TYPE: f"arn:aws:firehose:{region}:{ACCOUNT_ID}:deliverystream/{ref}",
        }
        return arns.get(kind, f"arn:aws:local:{region}:{ACCOUNT_ID}:{name}")

    def _sub(self, text: str, extra: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in extra:
                return str(extra[key])
            if "." in key and key.split(".", 1)[0] in self.resources:
                return str(self.get_att(*key.split(".", 1)))
            return str(self.ref(key))

        # ${!Literal} is written as ${Literal}.
        return _SUB.sub(one, text).replace("${!", "${")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, arg)] = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(str(parts[0]), str(parts[1]))
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self._sub(str(arg[0]), {k: self.resolve(v) for k, v in arg[1].items()})
                return self._sub(str(arg), {})
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(v)) for v in self.resolve(arg[1]))
            if key.startswith("Fn::") or key == "Condition":
                raise UsageError(f"template: {key} is not supported by the local Firehose's template reader")
        return {k: self.resolve(v) for k, v in value.items()}


def _columns(resolver: _Resolver, schema: Mapping[str, Any]) -> list[dict[str, str]]:
    table_ref = schema.get("TableName")
    table_name = resolver.resolve(table_ref)
    for logical, resource in resolver.resources.items():
        if resource.get("Type") != "AWS::Glue::Table":
            continue
        if table_ref == {"Ref": logical} or resolver.ref(logical) == table_name:
            table_input = (resource.get("Properties") or {}).get("TableInput") or {}
            columns = (table_input.get("StorageDescriptor") or {}).get("Columns") or []
            return [resolver.resolve(c) for c in columns]
    raise UsageError(f"template: no AWS::Glue::Table named {table_name!r} for the format conversion")


def _transform_code(resolver: _Resolver, properties: Any) -> str | None:
    """The inline code of the Lambda a stream's processor names (Fn::GetAtt Function.Arn)."""
    if isinstance(properties, dict):
        for key, value in properties.items():
            if key == "ParameterValue" and isinstance(value, dict) and "Fn::GetAtt" in value:
                att = value["Fn::GetAtt"]
                name = att[0] if isinstance(att, list) else str(att).split(".")[0]
                resource = resolver.resources.get(name) or {}
                if resource.get("Type") == "AWS::Lambda::Function":
                    code = ((resource.get("Properties") or {}).get("Code") or {}).get("ZipFile")
                    if isinstance(code, str):
                        return code
            found = _transform_code(resolver, value)
            if found is not None:
                return found
    elif isinstance(properties, list):
        for item in properties:
            found = _transform_code(resolver, item)
            if found is not None:
                return found
    return None


def _stringify_processor_parameters(value: Any) -> None:
    # The API takes processor ParameterValue as strings; a !Ref to a Number parameter is a number.
    if isinstance(value, dict):
        if "ParameterName" in value and "ParameterValue" in value:
            value["ParameterValue"] = str(value["ParameterValue"])
        for item in value.values():
            _stringify_processor_parameters(item)
    elif isinstance(value, list):
        for item in value:
            _stringify_processor_parameters(item)


def write_local_config(streams: TemplateStreams, state_dir: Path) -> tuple[Path, Path | None]:
    """The stream requests (a --config file) and the inline transform (a --transform file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "template-streams.json"
    config.write_bytes(orjson.dumps(streams.requests, option=orjson.OPT_INDENT_2))
    transform: Path | None = None
    if streams.transform_code is not None:
        transform = state_dir / "template-transform.py"
        transform.write_text(streams.transform_code)
    return config, transform


def streams_from_template(
    template: Mapping[str, Any], params: Mapping[str, str], region: str = "us-east-1"
) -> TemplateStreams:
    resolver = _Resolver(template, params, region)
    requests: list[dict[str, Any]] = []
    code: str | None = None
    for resource in resolver.resources.values():
        if resource.get("Type") != STREAM_TYPE:
            continue
        raw = resource.get("Properties") or {}
        code = code or _transform_code(resolver, raw)
        props = resolver.resolve(raw)
        props.pop("DeliveryStreamEncryptionConfigurationInput", None)
        props.pop("Tags", None)
        _stringify_processor_parameters(props)
        extended = props.get("ExtendedS3DestinationConfiguration") or {}
        conversion = extended.get("DataFormatConversionConfiguration")
        if isinstance(conversion, dict) and conversion.get("Enabled", True) is not False:
            schema = conversion.setdefault("SchemaConfiguration", {})
            raw_schema = raw["ExtendedS3DestinationConfiguration"]["DataFormatConversionConfiguration"]
            schema["Columns"] = _columns(resolver, raw_schema.get("SchemaConfiguration") or {})
        requests.append(props)
    if not requests:
        raise UsageError("the template has no AWS::KinesisFirehose::DeliveryStream")
    return TemplateStreams(requests=requests, transform_code=code)


def prepare(
    template: Path, params: list[str], region: str, state_dir: Path
) -> tuple[Path, Path | None, tuple[str, ...]]:
    """``--template``/``--param`` for `local serve` and `run`: the stream config and transform
    files written under ``state_dir``, and the template's stream names."""
    from producer.aws.cloudformation import load_template, parse_params

    if not template.is_file():
        raise UsageError(f"--template {template}: no such file")
    data = load_template(template.read_text())
    streams = streams_from_template(data, parse_params(params, data.get("Parameters") or {}), region)
    config, transform = write_local_config(streams, state_dir)
    return config, transform, tuple(str(r["DeliveryStreamName"]) for r in streams.requests)
