#!/usr/bin/env bash
# Interoperability tests: the collector (and `mcp-audit wrap`) driven by the real MCP and
# OpenTelemetry software people run, installed here from PyPI and the npm registry:
# the official Python `mcp` SDK, the OpenTelemetry SDK and OTLP exporters, and the reference
# MCP servers from npm. Builds the debug binary, makes a venv from requirements.txt and a
# node_modules from package.json (both kept under the target dir, so a second run is offline),
# then runs pytest; every test starts its own collector on free loopback ports (conftest.py).
# Extra arguments go to pytest (e.g. `tests/interop/run.sh -k wrap`).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
target="$(cd "$target" && pwd)"
here="$PWD/tests/interop"

cargo build --quiet
export MCP_AUDIT_BIN="$target/debug/mcp-audit"

venv="$target/interop-venv"
stamp="$venv/.requirements"
if ! "$venv/bin/pytest" --version >/dev/null 2>&1 || ! cmp -s "$here/requirements.txt" "$stamp"; then
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi

if ! command -v npm >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
node_dir="$target/interop-node"
if [ -s "$here/package.json" ] && ! cmp -s "$here/package.json" "$node_dir/package.json"; then
    mkdir -p "$node_dir"
    cp "$here/package.json" "$node_dir/package.json"
    (cd "$node_dir" && npm install --silent --no-audit --no-fund --ignore-scripts >/dev/null)
fi
export INTEROP_NODE_MODULES="$node_dir/node_modules"

"$venv/bin/pytest" -q -p no:cacheprovider "$here" "$@"
