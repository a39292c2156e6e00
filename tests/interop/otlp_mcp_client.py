"""The host side of test_otlp.py: the official Python SDK's client (mcp 2.x) drives
tests/interop/otlp_mcp_server.py over stdio and calls its three tools, exporting its own
CLIENT spans over OTLP like the server does (OTEL_* variables of this process). The server
is started with SERVER_SERVICE_NAME as its OTEL_SERVICE_NAME. The client injects the trace
context into each request's `_meta`, so a call's CLIENT and SERVER spans share a trace.
Exits non-zero if a tool call does not answer as expected."""

import asyncio
import os
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mcp import Client
from mcp.client.stdio import StdioServerParameters

if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otlp_mcp_server.py")
SECRET = "AKIAZ3MHQ7VWXR4TPL2N"

provider = TracerProvider(resource=Resource.create())
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)


async def main():
    env = dict(os.environ, OTEL_SERVICE_NAME=os.environ["SERVER_SERVICE_NAME"])
    params = StdioServerParameters(command=sys.executable, args=[SERVER], env=env)
    async with Client(params) as client:
        added = await client.call_tool("add", {"a": 2, "b": 3})
        assert not added.is_error, added
        failed = await client.call_tool("fail", {"reason": "no budget"})
        assert failed.is_error, failed
        deployed = await client.call_tool("deploy", {"region": "eu-west-1", "aws_key": SECRET})
        assert not deployed.is_error, deployed


try:
    asyncio.run(main())
finally:
    provider.shutdown()
