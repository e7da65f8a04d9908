"""The container image, proven without a container engine.

The test reads the Dockerfile itself: it builds from a context filtered by .dockerignore, runs
the build stage's RUN (deploy/container/install.sh) into a fresh virtualenv, then starts the
ENTRYPOINT with the default CMD and the final stage's ENV, exactly as `docker run IMAGE` would,
against the embedded local Firehose; it polls the HEALTHCHECK command, sends SIGTERM and checks
a graceful exit. Only two things differ from the image, both so the test stays on loopback and
off fixed ports: LOADGEN_METRICS_HOST is 127.0.0.1 and LOADGEN_METRICS_PORT a free port.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from producer.durations import parse_duration
from tests.helpers import REPO

DOCKERFILE = REPO / "Dockerfile"
VENV_IN_IMAGE = "/opt/firehose-loadgen"
SRC_IN_IMAGE = "/src"


# --- a small Dockerfile reader: enough for the instructions this Dockerfile uses ----------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in stage {self.name or self.base}, got {found}"
        return found[0]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
        return env


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) from a Dockerfile; continuation lines are joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif keyword == "ARG" and not stages:
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)  # shell form would not parse as JSON: exec form is required
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


# --- a build context as `docker build` would send it --------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        rules.append((include, _pattern_regex(line.lstrip("!").strip("/"))))
    return rules


def is_excluded(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for include, regex in rules:
        if any(regex.match(p) for p in prefixes):
            excluded = not include
    return excluded


def build_context(dest: Path) -> list[str]:
    rules = dockerignore_rules((REPO / ".dockerignore").read_text(encoding="utf-8"))
    copied = []
    for path in sorted(REPO.rglob("*")):
        rel = path.relative_to(REPO).as_posix()
        if path.is_dir() or rel.startswith(".git/") or is_excluded(rel, rules):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied.append(rel)
    return copied


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class Image:
    """What the image would hold: its parsed Dockerfile and the venv the build stage made."""

    args: dict[str, str]
    build: Stage
    final: Stage
    venv: Path
    context_files: list[str]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    args, stages = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(stages) == 2, "multi-stage: a build stage and a final stage"
    build, final = stages
    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    files = build_context(context)
    venv = root / "venv"
    assert build.one("WORKDIR") == SRC_IN_IMAGE
    assert build.one("COPY") == ". ."
    command = build.one("RUN").replace(SRC_IN_IMAGE, str(context)).replace(VENV_IN_IMAGE, str(venv))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(build.env())
    # Same interpreter version as the pinned base; a pip cache only saves downloads on re-runs.
    env["PYTHON"] = sys.executable
    env.pop("PIP_NO_CACHE_DIR", None)
    done = subprocess.run(
        ["sh", "-c", command], cwd=context, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"build stage failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return Image(args, build, final, venv, files)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _container_env(image: Image, home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # the conftest's safe ones
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["HOME"] = str(home)
    for key, value in image.final.env().items():
        env[key] = value.replace(VENV_IN_IMAGE, str(image.venv)).replace("$PATH", env["PATH"])
    env["LOADGEN_METRICS_HOST"] = "127.0.0.1"
    env["LOADGEN_METRICS_PORT"] = str(port)
    return env


# --- tests --------------------------------------------------------------------------------------


def test_dockerfile_shape(image: Image) -> None:
    base = image.args["BASE_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), f"pin the slim base by version: {base}"
    assert image.build.base == image.final.base == "${BASE_IMAGE}"
    assert (
        image.build.name
        and f"--from={image.build.name} {VENV_IN_IMAGE} {VENV_IN_IMAGE}" in image.final.all("COPY")
    )
    assert image.final.one("USER").split(":")[0] not in ("", "0", "root")
    assert exec_form(image.final.one("ENTRYPOINT")) == ["firehose-loadgen"]
    assert exec_form(image.final.one("CMD"))[0] == "run"
    env = image.final.env()
    assert env["LOADGEN_PROFILE"] == "mixed"
    assert env["LOADGEN_METRICS_HOST"] == "0.0.0.0"
    assert image.final.one("EXPOSE") == env["LOADGEN_METRICS_PORT"]
    health = image.final.one("HEALTHCHECK")
    assert "/healthz" in health and "curl" not in health
    # The final stage installs nothing: no compiler, no package manager run, no pip.
    for run in image.final.all("RUN"):
        assert not re.search(r"apt-get|apk|pip|gcc|make", run), run


def test_context_and_venv_hold_only_what_they_should(image: Image) -> None:
    assert "deploy/container/install.sh" in image.context_files
    assert not [f for f in image.context_files if f.startswith((".venv/", "tests/", "loadgen-output/"))]
    assert not [f for f in image.context_files if "__pycache__" in f]
    bins = {p.name for p in (image.venv / "bin").iterdir()}
    assert "firehose-loadgen" in bins
    assert not {"pip", "pip3"} & bins, "pip must not reach the final image"
    where = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", "import producer; print(producer.__file__)"],
        cwd=image.venv,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(image.venv), f"imported from the source tree: {where}"
    assert (image.venv / "share" / "firehose-loadgen" / "profiles" / "mixed.yaml").is_file()
    # `run`'s embedded Firehose is built from the shipped template: the installed copy, not a checkout's.
    template = subprocess.run(
        [
            str(image.venv / "bin" / "python"),
            "-c",
            "from producer.shipped import shipped_path; print(shipped_path('deploy/pipeline.yaml'))",
        ],
        cwd=image.venv,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert template == str(image.venv / "share" / "firehose-loadgen" / "deploy" / "pipeline.yaml")
    assert Path(template).is_file()


def _healthy(command: list[str], env: dict[str, str]) -> bool:
    return subprocess.run(command, env=env, capture_output=True, timeout=10).returncode == 0


def _accepted(port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    pattern = r'^loadgen_records_total\{[^}]*outcome="accepted"[^}]*\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, body, re.MULTILINE))


@pytest.fixture
def container(image: Image, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], Path]]:
    workdir = tmp_path / "workdir"  # stands in for the image's WORKDIR
    workdir.mkdir()
    env = _container_env(image, tmp_path, _free_port())
    entry = exec_form(image.final.one("ENTRYPOINT"))
    program = shutil.which(entry[0], path=env["PATH"])
    assert program and Path(program).is_relative_to(image.venv), program
    proc = subprocess.Popen(
        [program, *entry[1:], *exec_form(image.final.one("CMD"))],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, env, workdir
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_default_cmd_runs_is_healthy_and_stops_gracefully_on_sigterm(
    image: Image, container: tuple[subprocess.Popen[str], dict[str, str], Path]
) -> None:
    proc, env, workdir = container
    health = exec_form(image.final.one("HEALTHCHECK").partition("CMD ")[2])
    deadline = time.monotonic() + 60
    while not _healthy(health, env):
        assert proc.poll() is None, f"exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, "HEALTHCHECK never passed"
        time.sleep(0.5)
    port = int(env["LOADGEN_METRICS_PORT"])
    while _accepted(port) == 0:
        assert time.monotonic() < deadline, "no record accepted within 60s"
        time.sleep(0.5)
    time.sleep(2)  # a few seconds of steady sending, so batches are in flight at the signal

    proc.send_signal(signal.SIGTERM)
    grace_s = parse_duration(env.get("LOADGEN_SHUTDOWN_GRACE", "10s"))
    signalled = time.monotonic()
    try:
        stdout, stderr = proc.communicate(timeout=grace_s + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {grace_s + 5:g}s after SIGTERM (grace {grace_s:g}s)")
    assert time.monotonic() - signalled <= grace_s + 5
    assert proc.returncode == 0, stderr

    runs = list((workdir / "loadgen-output" / "runs").glob("*.json"))
    assert len(runs) == 1, runs
    summary = orjson.loads(runs[0].read_bytes())
    assert summary["profile"] == "mixed"
    assert summary["events_generated"] > 0
    assert summary["duration_s"] < 30, "the signal, not the profile's 30s, must have ended the run"
    assert summary["streams"], "no stream in the summary"
    for name, counts in summary["streams"].items():
        assert counts["sent"] > 0, name
        assert counts["sent"] == counts["accepted"] + counts["dead_lettered"], (name, counts)
    assert "accepted" in stdout
    assert not _healthy(health, env), "nothing should answer /healthz after exit"


def test_a_mounted_profile_file_is_used_by_path(image: Image, tmp_path: Path) -> None:
    mounted = tmp_path / "etc-profiles" / "tiny.yaml"  # stands in for /etc/firehose-loadgen/profiles
    mounted.parent.mkdir()
    mounted.write_text(
        "name: tiny\ndescription: one web event stream\nmix: {web: 1}\n"
        "rate: {shape: constant, rate: 50}\nduration: 1s\n",
        encoding="utf-8",
    )
    assert "/etc/firehose-loadgen/profiles" in image.final.one("VOLUME")
    env = _container_env(image, tmp_path, _free_port())
    env["LOADGEN_PROFILE"] = str(mounted)
    env["LOADGEN_SUMMARY_JSON"] = str(tmp_path / "summary.json")
    entry = exec_form(image.final.one("ENTRYPOINT"))
    done = subprocess.run(
        [*entry, *exec_form(image.final.one("CMD"))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["profile"] == "tiny"
    assert 0 < summary["events_generated"] <= 80
