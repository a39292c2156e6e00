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
if ! "$venv/bin/pytest" --version >/dev/null 2>&1 || ! "$venv/bin/python" -c "import playwright" 2>/dev/null; then
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet "playwright==$PLAYWRIGHT_VERSION" pytest
fi

work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc_port="$(free_port)"
http_port="$(free_port)"
server=""
secured=""
cleanup() {
    for pid in $server $secured; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
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

# A second collector that requires credentials, for the token dialog (test_auth.py): one
# event shipped with an ingest token; the test reads it with a read token.
secure_http="$(free_port)"
secure_grpc="$(free_port)"
"$bin" token create --tenant browser --role ingest --data-dir "$work/secured" >"$work/ingest.token" 2>/dev/null
"$bin" token create --tenant browser --role read --data-dir "$work/secured" >"$work/read.token" 2>/dev/null
MCP_AUDIT_LOG=warn "$bin" serve --data-dir "$work/secured" \
    --grpc-listen "127.0.0.1:$secure_grpc" --http-listen "127.0.0.1:$secure_http" \
    2>"$work/secured.log" &
secured=$!
secure_base="http://127.0.0.1:$secure_http"
for _ in $(seq 1 240); do curl -fsS "$secure_base/readyz" >/dev/null 2>&1 && break; sleep 0.25; done
printf '{"event_id":"secured-1","method":"tools/call","server":"github","tool":"list_issues","user":"sam"}\n' \
    | curl -fsS -H "authorization: Bearer $(cat "$work/ingest.token")" --data-binary @- "$secure_base/api/v1/ingest" >/dev/null

status=0
MCP_AUDIT_SECURE_URL="$secure_base" MCP_AUDIT_READ_TOKEN="$(cat "$work/read.token")" \
MCP_AUDIT_URL="$base" "$venv/bin/pytest" -q -p no:cacheprovider tests/browser "$@" || status=$?
if grep -E "panicked|ERROR" "$work/collector.log" "$work/secured.log"; then
    echo "the collector logged errors or panics during the browser tests (above)"
    status=1
fi
exit "$status"
