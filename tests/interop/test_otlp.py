"""OTLP in: an MCP server built with the official Python SDK (mcp 2.x) exports its spans with
the official OpenTelemetry SDK and OTLP exporters to a real collector, over gRPC and over
HTTP, while the SDK's own client calls its tools (tests/interop/otlp_mcp_server.py)."""

import asyncio
import os
import re
import subprocess
import sys
import urllib.request

import pytest
from conftest import BIN, Collector, wait_until

from mcp import Client
from mcp.client.stdio import StdioServerParameters

SERVER = os.path.join(os.path.dirname(__file__), "otlp_mcp_server.py")
SECRET = "AKIAZ3MHQ7VWXR4TPL2N"


@pytest.fixture
def collector(tmp_path):
    """conftest's `collector`, with two fixes to the shared fixture: the data dir is made first
    (the log is opened at `data/../collector-<port>.log`, which does not resolve while `data`
    does not exist), and `MCP_AUDIT_BIN` is kept out of the collector's environment (it reads
    every `MCP_AUDIT_*` variable as a config key and refuses unknown ones)."""
    (tmp_path / "data").mkdir()
    c = Collector(tmp_path / "data")
    c.env.pop("MCP_AUDIT_BIN", None)
    c.start()
    yield c
    c.stop()
    errors = [line for line in c.log_text().splitlines() if "panicked" in line or " ERROR " in line]
    assert not errors, f"the collector logged errors: {errors}"


def create_token(collector, tenant, role):
    """`Collector.create_token`, without `MCP_AUDIT_BIN` in the command's environment."""
    out = subprocess.run([BIN, "token", "create", "--tenant", tenant, "--role", role,
                          "--data-dir", collector.data_dir],
                         check=True, capture_output=True, text=True, env=collector.env)
    return out.stdout.strip()


async def drive(env):
    params = StdioServerParameters(command=sys.executable, args=[SERVER], env=dict(os.environ, **env))
    async with Client(params) as client:
        added = await client.call_tool("add", {"a": 2, "b": 3})
        assert not added.is_error, added
        failed = await client.call_tool("fail", {"reason": "no budget"})
        assert failed.is_error, failed
        deployed = await client.call_tool("deploy", {"region": "eu-west-1", "aws_key": SECRET})
        assert not deployed.is_error, deployed


def metric(collector, name):
    req = urllib.request.Request(f"{collector.base}/metrics")
    if collector.token:
        req.add_header("Authorization", f"Bearer {collector.token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def check(collector, service):
    calls = collector.wait_for_events(f"server:{service} AND method:tools/call", 3)
    by_tool = {hit["tool"]: hit for hit in calls}
    assert set(by_tool) == {"add", "fail", "deploy"}, calls
    for hit in calls:
        assert hit["server"] == service and hit["source"] == service, hit
        assert re.fullmatch(r"[0-9a-f]{32}", hit["trace_id"]), hit
        assert re.fullmatch(r"[0-9a-f]{16}", hit["span_id"]), hit
        assert hit["event_id"] == f"otel-{hit['trace_id']}-{hit['span_id']}", hit
        assert hit["labels"]["otel.span.kind"] == "server", hit
        assert hit["labels"]["otel.scope.name"] == "mcp-python-sdk", hit
        assert hit["labels"]["jsonrpc.request.id"], hit
    add = by_tool["add"]
    assert add["outcome"] == "ok", add
    # The tool sleeps 50 ms inside its database span.
    assert add["duration_ms"] >= 50, add
    fail = by_tool["fail"]
    assert fail["outcome"] == "error" and fail["error"].startswith("tool_error"), fail
    deploy = by_tool["deploy"]
    assert deploy["arguments"]["region"] == "eu-west-1", deploy
    assert deploy["arguments"]["aws_key"].startswith("[REDACTED:"), deploy
    assert SECRET not in str(collector.search(f"server:{service}"))

    # The database span inside `add` shares its trace but is no audit event: only counted.
    assert collector.search("postgresql")["total"] == 0
    assert collector.search(f"trace_id:{add['trace_id']}")["total"] == 1
    dropped = 'mcp_audit_otlp_dropped_total{signal="traces",reason="not_mcp"}'
    assert wait_until("the database span to be counted", lambda: metric(collector, dropped) >= 1)


def test_python_sdk_spans_over_otlp_grpc(collector):
    env = {
        "OTEL_SERVICE_NAME": "calc-grpc",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc,
    }
    asyncio.run(drive(env))
    check(collector, "calc-grpc")


def test_python_sdk_spans_over_otlp_http_with_a_token(collector):
    # Tokens are read at start: stop the collector, make them, start it again.
    collector.stop()
    ingest = create_token(collector, "acme", "ingest")
    collector.token = create_token(collector, "acme", "read")
    collector.start()
    env = {
        "OTEL_SERVICE_NAME": "calc-http",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.base,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{ingest}",
    }
    asyncio.run(drive(env))
    check(collector, "calc-http")
    assert collector.search("server:calc-http")["hits"][0]["tenant"] == "acme"
