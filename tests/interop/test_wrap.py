"""`mcp-audit wrap` between the official Python MCP SDK client and the reference MCP servers
from npm (server-everything, server-filesystem), against a real collector.

Each test drives the same server directly and through `wrap` and compares what the client sees,
then reads the events back from the collector's search API."""

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.types import Implementation

from conftest import BIN, NODE_MODULES, free_port, wait_until

EVERYTHING = os.path.join(NODE_MODULES, "@modelcontextprotocol/server-everything/dist/index.js")
FILESYSTEM = os.path.join(NODE_MODULES, "@modelcontextprotocol/server-filesystem/dist/index.js")

# A GitHub personal access token shape (fake, checksum-free detectors match it).
SECRET = "ghp_" + "R8x2Kq9LmT4vB7nW1cZp5Yd3Hs6Jf0Ga2Ue8"


def wrap_argv(collector, spool, server_name, *extra):
    return [BIN, "wrap", "--endpoint", collector.grpc, "--spool", str(spool),
            "--server-name", server_name, "--data-dir", collector.data_dir, *extra, "--"]


def params(argv):
    return StdioServerParameters(command=argv[0], args=argv[1:])


def dump(x):
    """A result as plain JSON, for exact comparison."""
    return json.loads(x.model_dump_json(by_alias=True))


async def everything_session(argv):
    """One session against server-everything; returns everything the client saw."""
    seen = {}
    async with Client(params(argv), cache=None) as c:
        tools = await c.list_tools()
        seen["tools"] = dump(tools)
        seen["echo"] = dump(await c.call_tool("echo", {"message": "hello through wrap"}))
        seen["sum"] = dump(await c.call_tool("get-sum", {"a": 2, "b": 40}))
        seen["structured"] = dump(await c.call_tool("get-structured-content", {"location": "New York"}))
        seen["bad"] = dump(await c.call_tool("get-sum", {"a": "not a number"}))
        t0 = time.monotonic()
        seen["long"] = dump(await c.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 2}))
        seen["long_wall_ms"] = (time.monotonic() - t0) * 1000
        seen["resource"] = dump(await c.read_resource("demo://resource/static/document/architecture.md"))
        seen["prompt"] = dump(await c.get_prompt("args-prompt", {"city": "Paris"}))
    return seen


def test_stdio_wrap_is_transparent_and_every_call_lands(collector, tmp_path):
    everything = ["node", EVERYTHING, "stdio"]
    direct = asyncio.run(everything_session(everything))
    wrapped = asyncio.run(everything_session(wrap_argv(collector, tmp_path / "spool", "everything") + everything))
    long_wall_ms = wrapped.pop("long_wall_ms")
    direct.pop("long_wall_ms")
    assert wrapped == direct

    calls = collector.wait_for_events('server:everything AND method:"tools/call"', 5)
    by_tool = {}
    for ev in calls:
        by_tool.setdefault(ev["tool"], []).append(ev)
    listed = {t["name"]: t for t in direct["tools"]["tools"]}

    echo = by_tool["echo"][0]
    assert echo["arguments"] == {"message": "hello through wrap"}
    assert echo["outcome"] == "ok"
    assert "Echo: hello through wrap" in echo["result"]
    assert echo["transport"] == "stdio"
    assert echo["annotations"] == {"read_only": True, "destructive": False, "idempotent": True, "open_world": False}
    assert len(echo["tool_description_hash"]) == 64

    sums = sorted(by_tool["get-sum"], key=lambda e: e["timestamp"])
    assert sums[0]["arguments"] == {"a": 2, "b": 40} and sums[0]["outcome"] == "ok"
    assert sums[1]["arguments"] == {"a": "not a number"}
    assert sums[1]["outcome"] == "error", sums[1]

    long = by_tool["trigger-long-running-operation"][0]
    assert 900 <= long["duration_ms"] <= long_wall_ms + 50, (long["duration_ms"], long_wall_ms)

    # The description hash on a call is the one its tools/list answer gave: the same definition
    # hashes the same, a different one differently.
    hashes = {e["tool"]: e["tool_description_hash"] for e in calls}
    assert hashes["echo"] != hashes["get-sum"]
    lists = collector.wait_for_events('server:everything AND method:"tools/list"', 1)
    assert listed["echo"]["description"] in lists[0]["result"]

    reads = collector.wait_for_events('server:everything AND method:"resources/read"', 1)
    assert reads[0]["tool"] == "demo://resource/static/document/architecture.md"
    prompts = collector.wait_for_events('server:everything AND method:"prompts/get"', 1)
    assert prompts[0]["tool"] == "args-prompt" and prompts[0]["arguments"] == {"city": "Paris"}


async def read_file_session(argv, path):
    async with Client(params(argv), cache=None) as c:
        await c.list_tools()
        return dump(await c.call_tool("read_text_file", {"path": path}))


def test_a_secret_read_through_the_server_is_redacted_before_it_is_stored(collector, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    secret_file = root / "deploy.env"
    secret_file.write_text(f"GITHUB_TOKEN={SECRET}\nREGION=eu-west-1\n")
    spool = tmp_path / "spool"
    fs = ["node", FILESYSTEM, str(root)]
    direct = asyncio.run(read_file_session(fs, str(secret_file)))
    wrapped = asyncio.run(read_file_session(wrap_argv(collector, spool, "files") + fs, str(secret_file)))
    assert wrapped == direct
    assert SECRET in json.dumps(wrapped), "the client must see the file as it is"

    ev = collector.wait_for_events("server:files AND tool:read_text_file", 1)[0]
    stored = json.dumps(ev)
    assert SECRET not in stored
    assert "[REDACTED:" in ev["result"] and "REGION=eu-west-1" in ev["result"]
    assert ev["annotations"]["read_only"] is True
    # Nothing unscrubbed was left on disk either.
    for f in spool.glob("*") if spool.exists() else []:
        assert SECRET not in f.read_text()


async def many_calls_session(argv, collector, n_before, n_during):
    async with Client(params(argv), cache=None) as c:
        await c.list_tools()
        for i in range(n_before):
            await c.call_tool("echo", {"message": f"before {i}"})
        collector.stop(kill=True)
        t0 = time.monotonic()
        for i in range(n_during):
            r = await c.call_tool("echo", {"message": f"during {i}"})
            assert r.content[0].text == f"Echo: during {i}"
        during_s = time.monotonic() - t0
        collector.start()
        # The session goes on after the collector is back, too.
        await c.call_tool("echo", {"message": "after"})
    return during_s


def test_the_collector_killed_mid_session_loses_nothing(collector, tmp_path):
    everything = ["node", EVERYTHING, "stdio"]
    argv = wrap_argv(collector, tmp_path / "spool", "killed") + everything
    during_s = asyncio.run(many_calls_session(argv, collector, 5, 30))
    # 30 calls with the collector gone: the proxy never waited for it.
    assert during_s < 5, during_s
    # Spooled events are shipped by the next session (or this one, once it reconnects).
    asyncio.run(read_nothing(argv))
    events = collector.wait_for_events('server:killed AND tool:echo', 36, timeout=60)
    messages = sorted(e["arguments"]["message"] for e in events)
    expected = sorted([f"before {i}" for i in range(5)] + [f"during {i}" for i in range(30)] + ["after"])
    assert messages == expected, "each call exactly once"


async def read_nothing(argv):
    async with Client(params(argv), cache=None) as c:
        await c.list_tools()


def test_http_mode_relays_json_and_sse_answers(collector, tmp_path):
    upstream_port, listen_port = free_port(), free_port()
    env = dict(os.environ, PORT=str(upstream_port))
    upstream = subprocess.Popen(["node", EVERYTHING, "streamableHttp"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen(
        [BIN, "wrap", "--endpoint", collector.grpc, "--spool", str(tmp_path / "spool"),
         "--server-name", "everything-http", "--listen", f"127.0.0.1:{listen_port}",
         "--upstream", f"http://127.0.0.1:{upstream_port}/mcp"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up(port):
            import socket
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_until("the upstream server", lambda: up(upstream_port))
        wait_until("the proxy", lambda: up(listen_port))

        async def session(url):
            async with Client(url, cache=None) as c:
                tools = dump(await c.list_tools())
                echo = dump(await c.call_tool("echo", {"message": "over http"}))
                sums = dump(await c.call_tool("get-sum", {"a": 1, "b": 2}))
                return tools, echo, sums

        direct = asyncio.run(session(f"http://127.0.0.1:{upstream_port}/mcp"))
        wrapped = asyncio.run(session(f"http://127.0.0.1:{listen_port}/mcp"))
        assert wrapped == direct
        ev = collector.wait_for_events("server:everything-http AND tool:echo", 1)[0]
        assert ev["transport"] == "streamable_http"
        assert ev["remote_addr"].startswith("127.0.0.1:")
        assert ev["arguments"] == {"message": "over http"} and "Echo: over http" in ev["result"]
        assert ev["session_id"], "Mcp-Session-Id of the 2025-11-25 session"
        assert ev["client"] == "mcp", "the client named in `initialize`, an earlier HTTP request"
        assert len(ev["tool_description_hash"]) == 64
    finally:
        proxy.terminate()
        upstream.terminate()
        assert proxy.wait(timeout=30) == 0, proxy.stderr.read()
        upstream.wait(timeout=30)


async def guarded_session(argv, root, consent=False):
    out = {}
    async with Client(params(argv), cache=None) as c:
        await c.list_tools()
        meta = {"io.mcp-audit/consent": "allowed_once"} if consent else None
        try:
            out["write"] = await c.call_tool("write_file", {"path": str(root / "new.txt"), "content": "x"}, meta=meta)
        except MCPError as e:
            out["write"] = e
        out["read"] = await c.call_tool("list_directory", {"path": str(root)})
    return out


def test_destructive_calls_without_consent_are_denied_and_recorded(collector, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    argv = wrap_argv(collector, tmp_path / "spool", "guarded", "--deny-destructive-without-consent") \
        + ["node", FILESYSTEM, str(root)]
    out = asyncio.run(guarded_session(argv, root))
    assert isinstance(out["write"], MCPError), out["write"]
    assert "consent" in str(out["write"])
    assert not (root / "new.txt").exists(), "a denied call never reaches the server"
    assert not out["read"].is_error
    denied = collector.wait_for_events("server:guarded AND outcome:denied", 1)
    assert denied[0]["tool"] == "write_file" and denied[0]["annotations"]["destructive"] is True

    out = asyncio.run(guarded_session(argv, root, consent=True))
    assert not isinstance(out["write"], MCPError) and not out["write"].is_error, out["write"]
    assert (root / "new.txt").read_text() == "x"
    ok = collector.wait_for_events("server:guarded AND tool:write_file AND outcome:ok", 1)
    assert ok[0]["consent"] == "allowed_once"


async def call_once(argv, tool, args):
    """The tool's result, or the JSON-RPC error the proxy answered with."""
    async with Client(params(argv), cache=None) as c:
        await c.list_tools()
        try:
            return await c.call_tool(tool, args)
        except MCPError as e:
            return e


def test_a_changed_pinned_tool_is_refused_until_approved(collector, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    pin = tmp_path / "pins.json"
    argv = wrap_argv(collector, tmp_path / "spool", "pinned", "--pin", str(pin)) + ["node", FILESYSTEM, str(root)]
    r = asyncio.run(call_once(argv, "list_allowed_directories", {}))
    assert not isinstance(r, MCPError) and not r.is_error
    pins = json.loads(pin.read_text())
    good = pins["tools"]["list_allowed_directories"]["hash"]
    assert len(good) == 64
    # As if the server had shipped a different description since the pin.
    pins["tools"]["list_allowed_directories"]["hash"] = "0" * 64
    pin.write_text(json.dumps(pins))
    r = asyncio.run(call_once(argv, "list_allowed_directories", {}))
    assert isinstance(r, MCPError) and "approve" in str(r), r
    denied = collector.wait_for_events("server:pinned AND outcome:denied", 1)
    assert denied[0]["tool"] == "list_allowed_directories"
    assert denied[0]["tool_description_hash"] == good

    approve = subprocess.run([BIN, "wrap", "approve", "--pin", str(pin), "list_allowed_directories"],
                             capture_output=True, text=True)
    assert approve.returncode == 0, approve.stderr
    assert json.loads(pin.read_text())["tools"]["list_allowed_directories"]["hash"] == good
    r = asyncio.run(call_once(argv, "list_allowed_directories", {}))
    assert not isinstance(r, MCPError) and not r.is_error, r


def test_a_policy_rule_refuses_matching_calls(collector, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (root / "a.txt").write_text("a")
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "id: no-txt-reads\ntitle: no reading text files\nlevel: high\n"
        "detection:\n  sel:\n    tool: read_text_file\n    arguments.path|endswith: .txt\n  condition: sel\n")
    argv = wrap_argv(collector, tmp_path / "spool", "policed", "--policy", str(policy)) \
        + ["node", FILESYSTEM, str(root)]
    r = asyncio.run(call_once(argv, "read_text_file", {"path": str(root / "a.txt")}))
    assert isinstance(r, MCPError) and "no-txt-reads" in str(r), r
    denied = collector.wait_for_events("server:policed AND outcome:denied", 1)
    assert denied[0]["error"].startswith("refused by policy rule no-txt-reads")


def test_exit_code_signals_and_stdin_close(collector, tmp_path):
    base = wrap_argv(collector, tmp_path / "spool", "plain")
    # The host closes stdin: the child sees EOF, exits with its own code, and so do we.
    child = [sys.executable, "-c", "import sys; sys.stdin.read(); sys.stderr.write('bye'); sys.exit(3)"]
    p = subprocess.run(base + child, input=b"", capture_output=True, timeout=30)
    assert p.returncode == 3
    assert b"bye" in p.stderr, "the child's stderr passes through"
    # SIGTERM is forwarded to the child, which reports it by its own exit code.
    child = [sys.executable, "-c",
             "import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n"]
    p = subprocess.Popen(base + child, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.terminate()
    assert p.wait(timeout=30) == 42
    # A child that ignores its closed stdin is killed after the grace period.
    child = [sys.executable, "-c", "import time; time.sleep(60)"]
    t0 = time.monotonic()
    p = subprocess.run(base + child, input=b"", capture_output=True, timeout=40)
    assert p.returncode == 128 + 9 and time.monotonic() - t0 < 30
    # Bytes that are not JSON-RPC still pass through unchanged.
    child = [sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"]
    data = b'{"jsonrpc":"2.0","id":1,"method":"ping"}\nnot json \xff\n{"partial":'
    p = subprocess.run(base + child, input=data, capture_output=True, timeout=30)
    assert p.stdout == data and p.returncode == 0


NOTES = os.path.join(os.path.dirname(__file__), "servers", "notes_server.py")


async def notes_session(server, user):
    """A 2026-07-28 session (no handshake; identity in each request's `_meta`)."""
    async with Client(server, cache=None, mode="2026-07-28",
                      client_info=Implementation(name="interop-host", version="1.0")) as c:
        await c.list_tools()
        put = await c.call_tool("put_note", {"key": "k", "text": "v"},
                                meta={"user": user, "conversationId": f"conv-{user}"})
        get = await c.call_tool("get_note", {"key": "k"}, meta={"user": user, "conversationId": f"conv-{user}"})
        return dump(put), dump(get)


def test_2026_07_28_identity_comes_from_each_requests_meta(collector, tmp_path):
    notes = [sys.executable, NOTES, "stdio"]
    direct = asyncio.run(notes_session(params(notes), "carol"))
    wrapped = asyncio.run(notes_session(params(wrap_argv(collector, tmp_path / "spool", "notes") + notes), "carol"))
    assert wrapped == direct
    ev = collector.wait_for_events("server:notes AND tool:put_note", 1)[0]
    assert (ev["client"], ev["user"], ev["conversation_id"]) == ("interop-host", "carol", "conv-carol")
    assert ev["labels"]["mcp.protocol_version"] == "2026-07-28"
    assert ev["arguments"] == {"key": "k", "text": "v"}

    # The same over streamable HTTP, where the client also sends Mcp-Method and Mcp-Name.
    upstream_port, listen_port = free_port(), free_port()
    upstream = subprocess.Popen([sys.executable, NOTES, "http", str(upstream_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen(
        [BIN, "wrap", "--endpoint", collector.grpc, "--spool", str(tmp_path / "spool"),
         "--server-name", "notes-http", "--listen", f"127.0.0.1:{listen_port}",
         "--upstream", f"http://127.0.0.1:{upstream_port}/mcp"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("the upstream server", lambda: port_open(upstream_port))
        wait_until("the proxy", lambda: port_open(listen_port))
        direct = asyncio.run(notes_session(f"http://127.0.0.1:{upstream_port}/mcp", "dave"))
        wrapped = asyncio.run(notes_session(f"http://127.0.0.1:{listen_port}/mcp", "dave"))
        assert wrapped == direct
        ev = collector.wait_for_events("server:notes-http AND tool:get_note", 1)[0]
        assert (ev["client"], ev["user"], ev["conversation_id"]) == ("interop-host", "dave", "conv-dave")
        assert ev["transport"] == "streamable_http" and ev["remote_addr"].startswith("127.0.0.1:")
        assert ev["labels"]["mcp.method_header"] == "tools/call"
        assert ev["labels"]["mcp.name_header"] == "get_note"
        assert not ev.get("session_id"), "2026-07-28 has no protocol sessions"
    finally:
        proxy.terminate()
        upstream.terminate()
        assert proxy.wait(timeout=30) == 0
        upstream.wait(timeout=30)


def port_open(port):
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
