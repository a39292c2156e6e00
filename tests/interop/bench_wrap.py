"""Added latency per call through `mcp-audit wrap` (stdio), as the official Python MCP client sees it.

Two sessions with the same server (server-everything's `echo`), one direct and one through
`wrap` shipping to a real collector, are opened side by side; calls alternate between them, so
both see the same machine load, and each wrapped call is paired with the direct call before it.
Prints p50/p99 of each session's call latency and of the paired difference.

    target=${CARGO_TARGET_DIR:-target}
    tests/interop/run.sh -k nothing                      # once: venv and node_modules
    cargo build --release
    INTEROP_NODE_MODULES=$target/interop-node/node_modules \\
      $target/interop-venv/bin/python tests/interop/bench_wrap.py --bin $target/release/mcp-audit
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from mcp import Client, StdioServerParameters  # noqa: E402

from conftest import NODE_MODULES, Collector, wait_until  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def bench(binary, calls, warmup, collector, spool):
    server = ["node", os.path.join(NODE_MODULES, "@modelcontextprotocol/server-everything/dist/index.js"), "stdio"]
    wrapped = [binary, "wrap", "--endpoint", collector.grpc, "--spool", spool, "--server-name", "bench", "--"] + server
    direct_c = Client(StdioServerParameters(command=server[0], args=server[1:]), cache=None)
    wrapped_c = Client(StdioServerParameters(command=wrapped[0], args=wrapped[1:]), cache=None)
    d_ms, w_ms = [], []
    async with direct_c as d, wrapped_c as w:
        await d.list_tools()
        await w.list_tools()
        for i in range(warmup + calls):
            args = {"message": f"call {i}"}
            t0 = time.perf_counter()
            await d.call_tool("echo", args)
            t1 = time.perf_counter()
            await w.call_tool("echo", args)
            t2 = time.perf_counter()
            if i >= warmup:
                d_ms.append((t1 - t0) * 1000)
                w_ms.append((t2 - t1) * 1000)
    return d_ms, w_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("MCP_AUDIT_BIN", "target/release/mcp-audit"))
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=200)
    a = ap.parse_args()
    os.environ["MCP_AUDIT_BIN"] = a.bin
    import conftest
    conftest.BIN = a.bin
    with tempfile.TemporaryDirectory() as tmp:
        collector = Collector(os.path.join(tmp, "data"))
        collector.start()
        try:
            d, w = asyncio.run(bench(a.bin, a.calls, a.warmup, collector, os.path.join(tmp, "spool")))
            want = a.calls + a.warmup
            q = "server:bench AND tool:echo"
            wait_until(f"{want} events", lambda: collector.search(q, limit=1)["total"] >= want, timeout=120)
            shipped = collector.search(q, limit=1)["total"]
        finally:
            collector.stop()
    diff = [wi - di for wi, di in zip(w, d)]
    print(f"calls: {len(d)} per session (after {a.warmup} warm-up), binary {a.bin}")
    print(f"direct   p50 {pct(d, 50):.3f} ms  p99 {pct(d, 99):.3f} ms  mean {statistics.mean(d):.3f} ms")
    print(f"wrapped  p50 {pct(w, 50):.3f} ms  p99 {pct(w, 99):.3f} ms  mean {statistics.mean(w):.3f} ms")
    print(f"added    p50 {pct(w, 50) - pct(d, 50):.3f} ms  p99 {pct(w, 99) - pct(d, 99):.3f} ms  (difference of percentiles)")
    print(f"paired   p50 {pct(diff, 50):.3f} ms  p99 {pct(diff, 99):.3f} ms  (percentiles of wrapped minus direct, call by call)")
    print(f"recorded in the collector: {shipped} of {a.calls + a.warmup} calls")


if __name__ == "__main__":
    main()
