"""A small MCP server built with the official Python SDK (mcp 2.x) that exports its
OpenTelemetry spans over OTLP, configured the way operators do it: OTEL_SERVICE_NAME,
OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL (grpc or http/protobuf) and
OTEL_EXPORTER_OTLP_HEADERS. Run over stdio by tests/interop/test_otlp.py.

The SDK makes the MCP spans itself (one SERVER span per request). The tools add what a real
server might: `add` runs a database query traced as its own span (not an audit event), and
`deploy` opts in to recording its arguments on the MCP span (`gen_ai.tool.call.arguments`).
Spans are exported synchronously as they end, so a call's span has reached the collector
before the client gets its answer."""

import json
import os
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mcp.server.mcpserver import MCPServer

if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

provider = TracerProvider(resource=Resource.create())
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("interop-tools")

server = MCPServer("interop-otlp")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers, looking the answer up in a (pretend) database."""
    with tracer.start_as_current_span("SELECT sums", kind=trace.SpanKind.CLIENT) as span:
        span.set_attribute("db.system.name", "postgresql")
        span.set_attribute("db.query.text", "SELECT a + b")
        time.sleep(0.05)
    return a + b


@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"refused: {reason}")


@server.tool()
def deploy(region: str, aws_key: str) -> str:
    """Deploys; records its arguments on the MCP span (the opt-in of the conventions)."""
    trace.get_current_span().set_attribute(
        "gen_ai.tool.call.arguments", json.dumps({"region": region, "aws_key": aws_key})
    )
    return f"deployed to {region}"


if __name__ == "__main__":
    try:
        server.run("stdio")
    finally:
        provider.shutdown()
