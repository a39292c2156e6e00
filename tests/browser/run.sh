#!/usr/bin/env bash
# The dashboard's browser tests: builds the debug binary, makes sure Debian's chromium and a
# Playwright venv exist (no browser download: Playwright drives /usr/bin/chromium), starts
# `mcp-audit serve --demo` on free loopback ports with a temporary data dir, waits until the
# demo data is searchable and the rules have fired, runs pytest, and always stops the server.
# Extra arguments go to pytest (e.g. `tests/browser/run.sh -k search`).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
venv="$target/browser-venv"
PLAYWRIGHT_VERSION=1.65.2

cargo build --quiet
bin="$target/debug/mcp-audit"

if [ ! -x /usr/bin/chromium ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c "import playwright" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "playwright==$PLAYWRIGHT_VERSION" pytest
fi

work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc_port="$(free_port)"
http_port="$(free_port)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
MCP_AUDIT_LOG=warn "$bin" serve --demo --data-dir "$work/data" \
    --grpc-listen "127.0.0.1:$grpc_port" --http-listen "127.0.0.1:$http_port" \
    2>"$work/collector.log" &
server=$!
base="http://127.0.0.1:$http_port"
ready() { curl -fsS "$base/readyz" >/dev/null 2>&1; }
searchable() { curl -fsS "$base/api/v1/search?limit=1" 2>/dev/null | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["total"] >= 4000 else 1)'; }
firing() { curl -fsS "$base/api/v1/alerts?status=firing&limit=1" 2>/dev/null | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["total"] >= 3 else 1)'; }
for check in ready searchable firing; do
    for _ in $(seq 1 240); do
        if "$check"; then break; fi
        kill -0 "$server" 2>/dev/null || { cat "$work/collector.log"; exit 1; }
        sleep 0.5
    done
    "$check" || { echo "the collector never became $check"; cat "$work/collector.log"; exit 1; }
done

status=0
MCP_AUDIT_URL="$base" "$venv/bin/pytest" -q -p no:cacheprovider tests/browser "$@" || status=$?
if grep -E "panicked|ERROR" "$work/collector.log"; then
    echo "the collector logged errors or panics during the browser tests (above)"
    status=1
fi
exit "$status"
