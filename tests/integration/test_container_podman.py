"""A real image build and run with podman, (`make deps` installs podman).

No registry is reachable for base images here, so the base is made from Debian's packages
(debootstrap: bookworm's python3 is 3.11, the version the project is tested on) and imported,
then passed as the Dockerfile's BASE_IMAGE. podman runs with runc and `default_ulimits = []`
because crun and the default ulimits fail in this sandbox. `make test` installs podman first
(`make deps`); a missing one fails the test, so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.helpers import REPO

BASE_TAG = "localhost/firehose-loadgen-base:bookworm"
IMAGE_TAG = "localhost/firehose-loadgen:test"
WORKDIR = "/var/lib/firehose-loadgen"


def _need(tool: str) -> None:
    # A failure, never a skip: `make test` installs these first (`make deps`).
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run `make deps` (Debian: podman runc debootstrap uidmap)")


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    for tool in ("podman", "runc", "debootstrap"):
        _need(tool)
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n', encoding="utf-8")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def _podman(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image(podman_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _podman(podman_env, "image", "exists", BASE_TAG).returncode != 0:
        rootfs = tmp_path_factory.mktemp("rootfs")
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm", str(rootfs)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # debootstrap's downloaded .debs and package lists are not part of a base image.
        for leftover in [*rootfs.glob("var/cache/apt/archives/*.deb"), *rootfs.glob("var/lib/apt/lists/*_*")]:
            leftover.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "--change", 'CMD ["python3"]', "-", BASE_TAG],
            stdin=tar.stdout,
            env=podman_env,
            capture_output=True,
            timeout=600,
        )
        tar.wait()
        assert imported.returncode == 0, imported.stderr[-3000:]
    mounts: list[str] = []
    ca = os.environ.get("PIP_CERT")
    if ca:
        # A site CA (a TLS-inspecting proxy) reaches pip through a build-time mount of
        # /etc/pip.conf, which does not end up in any layer of the image.
        pip_conf = tmp_path_factory.mktemp("pipconf") / "pip.conf"
        pip_conf.write_text("[global]\ncert = /run/build-ca.pem\n", encoding="utf-8")
        mounts = ["-v", f"{ca}:/run/build-ca.pem:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
    built = _podman(
        podman_env,
        "build",
        "--format",
        "docker",  # the OCI format has no HEALTHCHECK
        "--network",
        "host",
        *mounts,
        "--build-arg",
        f"BASE_IMAGE={BASE_TAG}",
        "-t",
        IMAGE_TAG,
        str(REPO),
        timeout=900,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    try:
        yield IMAGE_TAG
    finally:
        _podman(podman_env, "rmi", "-f", IMAGE_TAG)
        _podman(podman_env, "image", "prune", "-f")  # the untagged build stage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_the_image_runs_passes_its_healthcheck_and_stops_cleanly(
    podman_env: dict[str, str], image: str, tmp_path: Path
) -> None:
    config = orjson.loads(_podman(podman_env, "image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["firehose-loadgen"] and config["Cmd"] == ["run"]
    assert not any(e.startswith("PIP_") for e in config["Env"]), "build settings leaked into the image"
    listing = _podman(podman_env, "run", "--rm", "--entrypoint", "ls", image, "/opt/firehose-loadgen/bin")
    assert "firehose-loadgen" in listing.stdout and "pip" not in listing.stdout.split()

    name = f"loadgen-test-{os.getpid()}"
    port = _free_port()
    started = _podman(podman_env, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:9450", image)
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 90
        while _podman(podman_env, "healthcheck", "run", name, timeout=30).returncode != 0:
            assert time.monotonic() < deadline, _podman(podman_env, "logs", name).stderr
            time.sleep(1)
        # The published port answers from the host too: /metrics listens on 0.0.0.0 inside.
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"loadgen_records_total" in body
        time.sleep(3)
        stopped = time.monotonic()
        # SIGTERM, then SIGKILL after 30s; a graceful stop needs only the 10s grace.
        assert _podman(podman_env, "stop", "-t", "30", name, timeout=60).returncode == 0
        assert time.monotonic() - stopped < 15
        state = orjson.loads(_podman(podman_env, "inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, _podman(podman_env, "logs", name).stderr
        copied = _podman(podman_env, "cp", f"{name}:{WORKDIR}/loadgen-output/runs", str(tmp_path / "runs"))
        assert copied.returncode == 0, copied.stderr
        (summary_path,) = (tmp_path / "runs").glob("*.json")
        summary = orjson.loads(summary_path.read_bytes())
        assert summary["profile"] == "mixed" and summary["duration_s"] < 30
        for stream, counts in summary["streams"].items():
            assert counts["sent"] > 0, stream
            assert counts["sent"] == counts["accepted"] + counts["dead_lettered"], (stream, counts)
    finally:
        _podman(podman_env, "rm", "-f", name)


@pytest.mark.slow
def test_two_containers_share_a_results_volume_and_merge_as_one_run(
    podman_env: dict[str, str], image: str, tmp_path: Path
) -> None:
    # Two shards of one run in two containers (the image's user, 10001), a host folder as the
    # shared results volume, a local Firehose on the host; merge on the host adds them up.
    from producer import pipeline
    from producer.cli.main import main
    from tests.helpers import ThreadedLocalFirehose

    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)  # the containers write as 10001
    server = ThreadedLocalFirehose(tmp_path / "endpoint")
    server.start()
    try:
        server.botocore_client().create_delivery_stream(**pipeline.stream_request("pod-stream"))
        shards = [
            subprocess.Popen(
                [
                    "podman", "run", "--rm", "--network", "host", "-v", f"{results}:/results", image,
                    "run", "--endpoint-url", server.url, "--stream", "pod-stream", "--rate", "40",
                    "--duration", "2s", "--quiet", "--no-metrics", "--run-id", "pod-run",
                    "--shard-index", str(i), "--shard-count", "2", "--results-url", "file:///results",
                ],
                env=podman_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for i in range(2)
        ]  # fmt: skip
        for p in shards:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
    finally:
        server.stop()
    names = sorted(p.name for p in (results / "pod-run" / "shards").iterdir())
    assert names == ["shard-0-of-2.json", "shard-1-of-2.json"]
    parts = [orjson.loads((results / "pod-run" / "shards" / n).read_bytes()) for n in names]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "sys.argv",
            ["firehose-loadgen", "merge", "--run-id", "pod-run", "--results-url", f"file://{results}",
             "--expect", "2", "--output-dir", str(tmp_path / "merged")],
        )  # fmt: skip
        with pytest.raises(SystemExit) as ended:
            main()
    assert ended.value.code == 0
    merged = orjson.loads((tmp_path / "merged" / "runs" / "pod-run.json").read_bytes())
    assert merged["shards"]["found"] == [0, 1] and merged["complete"] is True
    stream = merged["streams"]["pod-stream"]
    assert stream["sent"] == stream["accepted"] == sum(p["streams"]["pod-stream"]["sent"] for p in parts) > 0
