"""`engine remote` pieces (argument parsing, host specs, tables) and `engine bench rpc`'s output shape."""
from __future__ import annotations

import pytest

from engine.commands.remote import parse_args, render, table
from engine.errors import EngineError
from engine.rpc.client import split_host


def test_parse_args(tmp_path):
    (tmp_path / "c.toml").write_text("[agent]\n")
    got = parse_args(["lines=50", "async=true", 'names=["obstat2"]', "path=/var/log/x", "params.path=/y",
                      "params.n=3", f"config=@{tmp_path / 'c.toml'}", "empty="])
    assert got == {"lines": 50, "async": True, "names": ["obstat2"], "path": "/var/log/x",
                   "params": {"path": "/y", "n": 3}, "config": "[agent]\n", "empty": ""}
    with pytest.raises(EngineError):
        parse_args(["novalue"])
    with pytest.raises(EngineError):
        parse_args([f"config=@{tmp_path / 'missing'}"])


@pytest.mark.parametrize("spec, want", [("h", ("h", 62888)), ("h:1", ("h", 1)), ("[::1]", ("::1", 62888)),
                                        ("[::1]:5", ("::1", 5)), ("::1", ("::1", 62888))])
def test_split_host(spec, want):
    assert split_host(spec) == want


def test_render_tables_and_errors():
    ok = {"successful": True, "traceId": "t1", "data": {
        "entries": [{"name": "a", "size": 1}, {"name": "bb", "size": 22, "extra": None}],
        "stdout": "one\ntwo\n", "count": 2, "nested": {"k": [1, 2]}}}
    text = render("h:1", 200, ok)
    assert "== h:1  (200, trace t1)" in text
    assert "  name  size  extra" in text and "  bb    22    -" in text
    assert "stdout:\n  one\n  two" in text and "count: 2" in text and 'k: [1,2]' in text
    err = render("h:1", 401, {"successful": False, "error": {"code": "bad_signature", "message": "no"}})
    assert err.endswith("error: bad_signature: no")
    assert table([{"a": "x" * 100}])[1].endswith("...")


def test_remote_without_a_secret_fails_clearly(monkeypatch, capsys):
    from engine.cli import main
    monkeypatch.delenv("OCP_AGENT_SECRET", raising=False)
    assert main(["remote", "--host", "127.0.0.1:1", "time"]) == 2
    assert "no secret" in capsys.readouterr().err


def test_remote_against_a_real_server(rpc_server, monkeypatch, capsys):
    from engine.cli import main
    from fixtures.pos_proxy import SECRET
    srv = rpc_server()
    monkeypatch.setenv("OCP_AGENT_SECRET", SECRET)
    assert main(["remote", "--host", f"127.0.0.1:{srv.port}", "--trace-id", "abc", "info"]) == 0
    out = capsys.readouterr().out
    assert "(200, trace abc)" in out and "version: " in out
    monkeypatch.setenv("OCP_AGENT_SECRET", "wrong")
    assert main(["remote", "--host", f"127.0.0.1:{srv.port}", "info"]) == 1
    assert "bad_signature" in capsys.readouterr().out


@pytest.mark.integration
def test_bench_rpc_prints_its_shape():
    from engine.commands.bench import load_scenario
    out = load_scenario("rpc").run(quick=True)
    for c in (1, 32):
        assert out["metrics"][f"signed_calls_per_s_c{c}"] > 0 and out["metrics"][f"p99_ms_c{c}"] > 0
        assert out["peers"][f"asyncio_calls_per_s_c{c}"] > 0
        assert f"vs_asyncio_c{c}" in out["ratios"] and f"vs_asyncio_c{c}" in out["targets"]


def test_tls_options_without_tls_and_bad_ports_fail_clearly(monkeypatch, capsys):
    """--cafile/--insecure without --tls would silently call over plain HTTP; a bad
    port is a usage error, not a traceback."""
    from engine.cli import main
    monkeypatch.setenv("OCP_AGENT_SECRET", "x")
    assert main(["remote", "--host", "127.0.0.1:1", "--cafile", "/etc/ssl/ca.pem", "time"]) == 2
    assert "--tls" in capsys.readouterr().err
    assert main(["remote", "--host", "127.0.0.1:1", "--insecure", "time"]) == 2
    assert "--tls" in capsys.readouterr().err
    for spec in ("h:abc", "[::1]:x", "h:99999"):
        assert main(["remote", "--host", spec, "time"]) == 2
        assert "port" in capsys.readouterr().err
