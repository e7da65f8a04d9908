#!/usr/bin/env bash
# The Debian packages the test suite starts for real, installed when missing (`make deps`,
# which `make test` runs first): prometheus and promtool (metrics tests), chromium (the audit
# report renders headless), podman with runc, debootstrap and uidmap (a real image build and
# run on a base made from Debian's packages). Nothing is installed when every tool is there.
# Without root or passwordless sudo it prints one line saying what to install, and fails, so
# no test runs (and none skips) without its tool.
set -euo pipefail

# tool on PATH -> the Debian package that provides it
declare -A package=(
    [prometheus]=prometheus [promtool]=prometheus [chromium]=chromium
    [podman]=podman [runc]=runc [debootstrap]=debootstrap [newuidmap]=uidmap
)
need=()
for tool in "${!package[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || need+=("${package[$tool]}")
done
((${#need[@]})) || exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the tests need these Debian packages (or your system's equivalents): ${need[*]}" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: the tests need Debian packages that are missing; install them with: sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
fi
echo "installing Debian packages the tests need: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
