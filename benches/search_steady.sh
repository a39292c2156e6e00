#!/usr/bin/env bash
# Search and histograms on a settled index (issue 15). `bench --searches` times its requests
# right after its fill, or right after the one event of a `--events 1` run, while the
# collector is still merging and counting new segments on the same two cores. This fills one
# fresh collector (rules off) in stages with `bench` events (by default 500,000, then
# 4,500,000 more: 5M in all), and after each stage waits until the collector has used under
# 5% of a core for 5 s, then times, one request at a time: 600 `user:X AND tool:Y` searches
# over `-24h`, newest 100 (the 48 pairs of `bench`, in its order), and 300 histograms `-24h`
# by 5 minutes. It prints the slowest five searches with the server's `took_ms`, then p50 /
# p99 / max of each 300.
# Usage: benches/search_steady.sh [BIN] [EVENTS...]
set -euo pipefail
bin="${1:-target/release/mcp-audit}"
shift || true
stages=("${@:-500000 4500000}")
# shellcheck disable=SC2206
stages=(${stages[*]})
grpc=127.0.0.1:24717
http=127.0.0.1:28480
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
printf '[rules]\nenabled = false\n' > "$dir/config.toml"
MCP_AUDIT_LOG=warn "$bin" serve --config "$dir/config.toml" --data-dir "$dir/data" \
    --grpc-listen "$grpc" --http-listen "$http" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
total=0
for n in "${stages[@]}"; do
    total=$((total + n))
    echo "== $total events"
    "$bin" bench --endpoint "http://$grpc" --http-endpoint "http://$http" --events "$n" \
        --searches 0 --findings 0 | grep -E "acked|searchable"
    for i in $(seq 60); do
        a=$(cpu); sleep 5; b=$(cpu)
        if [ $((b - a)) -lt 25 ]; then echo "idle after $((i * 5)) s"; break; fi
    done
    python3 - "$http" <<'PY'
import json, sys, time, urllib.parse, urllib.request
http = sys.argv[1]
users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
tools = ["read_file", "list_issues", "query", "post_message", "fetch", "create_ticket"]

def timed(path, params):
    url = f"http://{http}{path}?" + urllib.parse.urlencode(params)
    t = time.perf_counter()
    answer = json.load(urllib.request.urlopen(url))
    return (time.perf_counter() - t) * 1000, answer

def summary(name, ms):
    ms = sorted(ms)
    print(f"{name}: p50 {ms[149]:.1f} ms  p99 {ms[296]:.1f} ms  max {ms[-1]:.1f} ms")

rows = []
for i in range(600):
    q = f"user:{users[i % 8]} AND tool:{tools[(i // 8) % 6]}"
    ms, answer = timed("/api/v1/search", {"q": q, "start": "-24h", "limit": 100})
    rows.append((ms, answer.get("took_ms"), i, q))
print("slowest searches:")
for ms, took, i, q in sorted(rows, reverse=True)[:5]:
    print(f"  {ms:.1f} ms (server {took} ms) #{i} {q}")
summary("searches 1-300", [r[0] for r in rows[:300]])
summary("searches 301-600", [r[0] for r in rows[300:]])
hist = [timed("/api/v1/histogram", {"start": "-24h", "interval": "5m"})[0] for _ in range(300)]
summary("histograms", hist)
PY
done
