#!/usr/bin/env bash
# Resident memory of a restarted collector as stored history grows (issue 8, part 2).
# Fills a fresh data dir with `mcp-audit bench` to N1 and then N2 events, restarts the
# collector after each fill, and reads its memory from /proc once it is ready and idle.
# Usage: benches/resident_memory.sh [BIN] [N1] [N2]   (defaults: target/release/mcp-audit 200000 1200000)
set -euo pipefail
bin="${1:-target/release/mcp-audit}"
n1="${2:-200000}"
n2="${3:-1200000}"
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
grpc=127.0.0.1:24417
http=127.0.0.1:28180
start() {
    MCP_AUDIT_LOG=warn "$bin" serve --data-dir "$dir/data" --grpc-listen "$grpc" --http-listen "$http" 2>>"$dir/log" &
    pid=$!
    for _ in $(seq 1 600); do
        curl -fsS "http://$http/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "collector not ready"; cat "$dir/log"; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }
measure() {
    # Three samples after start-up work (filter build, first commit) settles; the median.
    local samples=() rss filter
    for s in 5 5 5; do
        sleep "$s"
        samples+=("$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")")
    done
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    filter=$(curl -fsS "http://$http/metrics" | awk '/^mcp_audit_dedup_filter_bytes / {print $2}')
    local anon
    anon=$(printf '%s\n' "${samples[@]}" | sort -n | sed -n 2p)
    echo "$1 events stored: RssAnon ${samples[*]} KiB (median ${anon}), VmRSS ${rss} KiB, duplicate filter ${filter:-?} bytes" >&2
    echo "$anon"
}
fill() {
    "$bin" bench --endpoint "http://$grpc" --http-endpoint "http://$http" --events "$1" --searches 0 >/dev/null 2>&1
}
start; fill "$n1"; stop
start; a=$(measure "$n1"); stop
start; fill $((n2 - n1)); stop
start; b=$(measure "$n2"); stop
awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN {
    printf "growth: %.1f bytes of anonymous resident memory per stored event (%d -> %d events)\n", (b - a) * 1024 / (n2 - n1), n1, n2 }'
