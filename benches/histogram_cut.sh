#!/usr/bin/env bash
# Aggregations over a range that cuts segments (issue 15). `bench` stamps its events with the
# time it sends them, so `-24h` never cuts its segments; a dashboard at noon cuts all of
# yesterday's. This spreads a `bench --write` file's events (copied 3 times with new ids) evenly
# over [now-25h, now-1h], ships them with `ship` into a fresh collector (rules off), waits until
# all are searchable and the collector is idle, then times 60 requests each of a `-24h`
# histogram and terms (the range start falls inside yesterday's segments) and a `-7d`
# histogram (nothing cut) with curl.
# Usage: benches/histogram_cut.sh [BIN] EVENTS.jsonl
#   EVENTS.jsonl from: mcp-audit bench --events 200000 --write EVENTS.jsonl
set -euo pipefail
bin="${1:-target/release/mcp-audit}"
src="${2:?a file from mcp-audit bench --write}"
grpc=127.0.0.1:24617
http=127.0.0.1:28380
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
python3 - "$src" "$dir/events.jsonl" <<'PY'
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc)
start = now - datetime.timedelta(hours=25)
lines = open(sys.argv[1]).read().splitlines()
n = len(lines) * 3
with open(sys.argv[2], "w") as out:
    k = 0
    for rep in range(3):
        for line in lines:
            e = json.loads(line)
            e["event_id"] = f"{e['event_id']}-r{rep}"
            ts = start + datetime.timedelta(seconds=24 * 3600.0 * ((k * 7919) % n) / n)
            e["timestamp"] = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.write(json.dumps(e, separators=(",", ":")) + "\n")
            k += 1
PY
printf '[rules]\nenabled = false\n' > "$dir/config.toml"
MCP_AUDIT_LOG=warn "$bin" serve --config "$dir/config.toml" --data-dir "$dir/data" \
  --grpc-listen "$grpc" --http-listen "$http" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.1; done
"$bin" ship --endpoint "http://$grpc" "$dir/events.jsonl" | tail -1
n=$(wc -l < "$dir/events.jsonl")
for _ in $(seq 3000); do
  total=$(curl -s "http://$http/api/v1/search?start=-7d&limit=1&exact_total=true" | grep -o '"total":[0-9]*' | cut -d: -f2)
  [ "${total:-0}" -ge "$n" ] && break
  sleep 0.1
done
echo "searchable: ${total:-0} of $n"
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
for _ in $(seq 48); do a=$(cpu); sleep 5; b=$(cpu); [ $((b - a)) -lt 25 ] && break; done
for what in "histogram?start=-24h&interval=5m" "terms?start=-24h&field=user" "histogram?start=-7d&interval=1h"; do
  for _ in $(seq 60); do curl -s -o /dev/null -w '%{time_total}\n' "http://$http/api/v1/$what"; done |
    sort -n | awk -v w="$what" '{a[NR]=$1} END {printf "%s: p50 %.1f ms  p90 %.1f ms  max %.1f ms (60 requests)\n", w, a[int(NR/2)]*1000, a[int(NR*0.9)]*1000, a[NR]*1000}'
done
