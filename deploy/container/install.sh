#!/bin/sh
# Builds firehose-loadgen's wheel from a source tree and installs it, with the dependencies
# pinned by constraints.txt (the lock file), into a fresh virtualenv.
#
#   deploy/container/install.sh SOURCE_DIR VENV_DIR
#
# The Dockerfile's build stage runs exactly this, and tests/integration/test_container_image.py
# runs it too, so what the image contains and what the test proves cannot drift apart.
# PYTHON picks the interpreter the venv is made from (default: python3).
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 SOURCE_DIR VENV_DIR" >&2
    exit 2
fi
src=$1
venv=$2
python=${PYTHON:-python3}

# Only what the wheel is built from: pyproject.toml, the readme it names, the lock file, the
# package, and every [tool.setuptools.data-files] glob, read from pyproject.toml itself so a new
# data file cannot be forgotten here. Staging a copy keeps setuptools' build/ and egg-info out of
# the source tree (a shared checkout in the test); a missing file fails here, by name.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
"$python" - "$src" "$stage" <<'PY'
import glob, shutil, sys, tomllib
from pathlib import Path

src, stage = Path(sys.argv[1]), Path(sys.argv[2])
meta = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
wanted = ["pyproject.toml", meta["project"]["readme"], "constraints.txt", "producer"]
for patterns in meta.get("tool", {}).get("setuptools", {}).get("data-files", {}).values():
    for pattern in patterns:
        found = sorted(glob.glob(pattern, root_dir=src))
        if not found:
            sys.exit(f"install.sh: data-files {pattern!r} matches nothing in {src} (.dockerignore?)")
        wanted += found
for rel in wanted:
    path = src / rel
    if not path.exists():
        sys.exit(f"install.sh: {path} is missing (is it excluded by .dockerignore?)")
    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.copytree(path, stage / rel, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
    else:
        shutil.copy2(path, stage / rel)
PY

"$python" -m venv "$venv"
pip="$venv/bin/python -m pip --disable-pip-version-check --no-input"

# The wheel, not an editable or in-place install: the image must hold only installed files.
# The build backend (setuptools, from pyproject's build-system) lives in pip's isolated build
# environment, which is thrown away, so no build tool reaches the venv.
$pip wheel --no-deps --wheel-dir "$stage/dist" "$stage"
# --only-binary: every locked dependency has wheels for linux x86_64/aarch64, so no compiler
# is ever needed, and a missing wheel fails the build instead of silently compiling.
$pip install --only-binary :all: -c "$stage/constraints.txt" "$stage"/dist/firehose_loadgen-*.whl

# pip and setuptools are installers, not part of the program; the final image does not need them.
$pip uninstall --quiet --yes pip setuptools
"$venv/bin/firehose-loadgen" version
