"""OTLP in: an MCP server built with the official Python SDK (mcp 2.x) exports its spans with
the official OpenTelemetry SDK and OTLP exporters to a real collector, over gRPC and over
HTTP, while the SDK's own client calls its tools and exports its spans too
(tests/interop/otlp_mcp_server.py, tests/interop/otlp_mcp_client.py)."""

import os
import re
import subprocess
import sys
import urllib.request

import pytest
from conftest import BIN, Collector, wait_until

CLIENT = os.path.join(os.path.dirname(__file__), "otlp_mcp_client.py")
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


def drive(env, host):
    """Runs otlp_mcp_client.py: the SDK's client (service `host`) calls the server's tools."""
    env = dict(os.environ, OTEL_SERVICE_NAME=host, **env)
    env.pop("MCP_AUDIT_BIN", None)
    subprocess.run([sys.executable, CLIENT], env=env, check=True, timeout=120)


def metric(collector, name):
    req = urllib.request.Request(f"{collector.base}/metrics")
    if collector.token:
        req.add_header("Authorization", f"Bearer {collector.token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def check(collector, service, host):
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

    # The host's CLIENT spans: the host is the client, the server is unknown over stdio (no
    # `server.address`), the tool comes from the span name (`MCP send tools/call add`), and
    # each shares its trace with the server's span of the same call (`_meta` propagation).
    host_calls = collector.wait_for_events(f"client:{host} AND method:tools/call", 3)
    assert {hit["tool"] for hit in host_calls} == {"add", "fail", "deploy"}, host_calls
    for hit in host_calls:
        assert hit["source"] == host and hit.get("server", "") == "", hit
        assert hit["labels"]["otel.span.kind"] == "client", hit
        assert hit["trace_id"] == by_tool[hit["tool"]]["trace_id"], (hit, by_tool[hit["tool"]])
        assert hit["span_id"] != by_tool[hit["tool"]]["span_id"], hit

    # The database span inside `add` shares its trace but is no audit event: only counted.
    assert collector.search("postgresql")["total"] == 0
    assert collector.search(f"trace_id:{add['trace_id']}")["total"] == 2
    dropped = 'mcp_audit_otlp_dropped_total{signal="traces",reason="not_mcp"}'
    assert wait_until("the database span to be counted", lambda: metric(collector, dropped) >= 1)


def test_python_sdk_spans_over_otlp_grpc(collector):
    env = {
        "SERVER_SERVICE_NAME": "calc-grpc",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc,
    }
    drive(env, "host-grpc")
    check(collector, "calc-grpc", "host-grpc")


def test_python_sdk_spans_over_otlp_http_with_a_token(collector):
    # Tokens are read at start: stop the collector, make them, start it again.
    collector.stop()
    ingest = create_token(collector, "acme", "ingest")
    collector.token = create_token(collector, "acme", "read")
    collector.start()
    env = {
        "SERVER_SERVICE_NAME": "calc-http",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.base,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{ingest}",
    }
    drive(env, "host-http")
    check(collector, "calc-http", "host-http")
    assert collector.search("server:calc-http")["hits"][0]["tenant"] == "acme"
