#!/usr/bin/env bash
# Index layout comparison (issue 15, part 4): merge policy and document store settings.
# For each variant, a fresh collector (rules off, to measure the index alone) is filled by
# `mcp-audit bench` with N events over the last 24 h; bench prints the ingest rate, how long
# after the last ack every event was searchable, the search and aggregation latencies. Then
# this script adds what bench cannot see: segments and bytes of the index on disk, and the
# latency of a one-hour slice of the day (`start=-1h`), which is what hourly partitions would
# serve. Variants run in the order given, ROUNDS times over, so a drifting machine hits each.
# Usage: benches/layout.sh [BIN] [N] [ROUNDS] [VARIANT...]
#   a VARIANT is merge/compression/block_kib, e.g. log/lz4/16 fewer/lz4/16 none/lz4/16 log/zstd3/16
set -euo pipefail
bin="${1:-target/release/mcp-audit}"
n="${2:-1000000}"
rounds="${3:-2}"
shift 3 || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(log/lz4/16 fewer/lz4/16 none/lz4/16 log/zstd3/16 log/lz4/64)
grpc=127.0.0.1:24517
http=127.0.0.1:28280
dir="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

slice_latency() {
    # 100 searches for one user's calls of one tool in the last hour, newest 100: p50 / p99 ms.
    python3 - "$http" <<'EOF'
import json, sys, time, urllib.parse, urllib.request
base = f"http://{sys.argv[1]}/api/v1/search"
users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
lat = []
for i in range(100):
    q = urllib.parse.urlencode({"q": f"user:{users[i % len(users)]} AND method:\"tools/call\"",
                                "start": "-1h", "limit": 100})
    t = time.perf_counter()
    with urllib.request.urlopen(f"{base}?{q}", timeout=30) as r:
        json.load(r)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(f"1 h slice search: p50 {lat[49]:.1f} ms  p99 {lat[98]:.1f} ms")
EOF
}

for round in $(seq 1 "$rounds"); do
    for v in "${variants[@]}"; do
        IFS=/ read -r merge compression block <<<"$v"
        rm -rf "$dir/data"
        echo "== round $round: merge_policy=$merge docstore_compression=$compression docstore_block_kib=$block ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
        MCP_AUDIT_RULES_ENABLED=false MCP_AUDIT_INDEX_MERGE_POLICY="$merge" \
        MCP_AUDIT_INDEX_DOCSTORE_COMPRESSION="$compression" MCP_AUDIT_INDEX_DOCSTORE_BLOCK_KIB="$block" \
        MCP_AUDIT_LOG=warn "$bin" serve --data-dir "$dir/data" --grpc-listen "$grpc" --http-listen "$http" \
            2>>"$dir/log" &
        pid=$!
        for _ in $(seq 1 600); do curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
        "$bin" bench --endpoint "http://$grpc" --http-endpoint "http://$http" --events "$n" \
            --searches 300 --findings 0 2>&1 | grep -E 'ingest|acked|searchable|search|histogram|terms' || true
        # Let background merges finish, then look at the disk and search a slice.
        sleep 10
        segments=$(find "$dir/data/index" -name '*.store' | wc -l)
        bytes=$(du -sb "$dir/data/index" | cut -f1)
        store=$(find "$dir/data/index" -name '*.store' -printf '%s\n' | awk '{s+=$1} END {print s}')
        echo "index on disk: $((bytes >> 20)) MiB in $segments segments (document store $((store >> 20)) MiB)"
        slice_latency
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    done
done
