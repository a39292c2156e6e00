"""Fixtures for the interoperability tests: a real collector per test, on free loopback ports
with a temporary data dir, and a small client for its HTTP API."""

import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

BIN = os.environ.get("MCP_AUDIT_BIN", "target/debug/mcp-audit")
NODE_MODULES = os.environ.get("INTEROP_NODE_MODULES", "target/interop-node/node_modules")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, timeout=30.0, every=0.1):
    """Polls check() until it returns something truthy; fails naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class Collector:
    """One `mcp-audit serve` child process; `stop()` and `start()` keep its data dir and ports,
    so a test can kill the collector and bring the same one back."""

    def __init__(self, data_dir, env=None):
        self.data_dir = str(data_dir)
        # The log sits beside the data dir, reached through it: both must exist.
        os.makedirs(self.data_dir, exist_ok=True)
        self.grpc_port = free_port()
        self.http_port = free_port()
        # MCP_AUDIT_* variables are config keys to the collector; the harness's own are not.
        inherited = {k: v for k, v in os.environ.items() if k != "MCP_AUDIT_BIN"}
        self.env = dict(inherited, MCP_AUDIT_LOG="warn", **(env or {}))
        self.proc = None
        self.log = os.path.join(self.data_dir, "..", f"collector-{self.http_port}.log")
        self.token = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self):
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [BIN, "serve", "--data-dir", self.data_dir,
                 "--grpc-listen", f"127.0.0.1:{self.grpc_port}",
                 "--http-listen", f"127.0.0.1:{self.http_port}"],
                env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        wait_until("the collector to be ready", self.ready, timeout=60)
        return self

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the collector exited with {self.proc.returncode}: {self.log_text()}")
        try:
            with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=30)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def create_token(self, tenant, role):
        out = subprocess.run([BIN, "token", "create", "--tenant", tenant, "--role", role,
                              "--data-dir", self.data_dir], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def get(self, path, **params):
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        req = urllib.request.Request(f"{self.base}{path}{'?' + query if query else ''}")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def search(self, q="", **params):
        return self.get("/api/v1/search", q=q, start=params.pop("start", "-7d"), **params)

    def wait_for_events(self, q, count, timeout=30.0):
        """Waits until a search for q finds at least count events; returns them."""
        def found():
            answer = self.search(q, limit=max(count, 100))
            return answer["hits"] if answer["total"] >= count else None
        return wait_until(f"{count} events matching {q!r}", found, timeout)


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path / "data")
    c.start()
    yield c
    c.stop()
    errors = [line for line in c.log_text().splitlines() if "panicked" in line or " ERROR " in line]
    assert not errors, f"the collector logged errors: {errors}"
