"""pos_proxy agent/*: against a real ocp_agentd running the real pos_proxy worker, driven by `engine remote`."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import orjson
import pytest

from engine.cli import main as engine_main
from conftest import wait_for
from engine.osapi import stop_process
from engine.testbed.ports import free_port

SECRET = "agent-test-secret-42"


def config_text(home, port: int, secret_file, extra: str = "") -> str:
    off = "".join(f"[workers.{w}]\nenabled = false\n" for w in
                  ("node_exporter", "ocp_exporter", "obstat2", "ob_logtailer", "ob_cleaner"))
    return (f'[agent]\nhome = "{home}"\n{extra}\n[workers.pos_proxy]\nport = {port}\n'
            f'secret_file = "{secret_file}"\n{off}'
            '[[programs]]\nname = "sleeper"\ncommand = ["/bin/sleep", "600"]\n')


@pytest.fixture
def agent(tmp_path):
    """A real ocp_agentd (foreground, by PID) guarding pos_proxy and one program."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    port = free_port()
    path = tmp_path / "agent.toml"
    path.write_text(config_text(tmp_path / "home", port, secret))
    proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(path), "start", "--foreground"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"path": path, "port": port, "home": tmp_path / "home", "secret": secret, "proc": proc}
    try:
        wait_for(lambda: remote(env, "agent/status")[0].get("successful") is not None
                 and _ready(remote(env, "agent/status")[0]))
        yield env
    finally:
        stop_process(proc, 30)


def _ready(env: dict) -> bool:
    workers = {w["name"]: w for w in (env.get("data") or {}).get("workers", [])}
    return all(workers.get(n, {}).get("state") == "RUNNING" for n in ("pos_proxy", "sleeper"))


def remote(env, call, *args, hosts=None) -> list[dict]:
    """`engine remote --json` in-process; one envelope per host."""
    import contextlib
    import io
    out = io.StringIO()
    argv = ["remote", "--json", "--secret-file", str(env["secret"])]
    for h in hosts or [f"127.0.0.1:{env['port']}"]:
        argv += ["--host", h]
    with contextlib.redirect_stdout(out):
        try:
            engine_main(argv + [call, *args])
        except SystemExit:
            pass
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def workers(env) -> dict:
    return {w["name"]: w for w in remote(env, "agent/status")[0]["data"]["workers"]}


@pytest.mark.integration
def test_status_restart_reload_and_config_push(agent, tmp_path):
    status = remote(agent, "agent/status")[0]
    assert status["data"]["supervisor"]["pid"] == agent["proc"].pid
    assert status["data"]["pos_proxy"]["version"]
    old_pid = workers(agent)["sleeper"]["pid"]

    answer = remote(agent, "agent/restart", 'names=["sleeper"]')[0]
    assert answer["successful"] and answer["data"]["names"] == ["sleeper"]
    wait_for(lambda: workers(agent)["sleeper"]["pid"] not in (old_pid, None)
             and workers(agent)["sleeper"]["state"] == "RUNNING")

    bad = remote(agent, "agent/restart", 'names=["nope"]')[0]
    assert bad["status"] == 409 and "unknown worker" in bad["error"]["message"]
    assert remote(agent, "agent/reload")[0]["data"]["restarted"] == []

    before = agent["path"].read_text()
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text("[agent]\nbogus = 1\n")
    refused = remote(agent, "agent/config/push", f"config=@{bad_cfg}")[0]
    assert refused["status"] == 400 and "agent.bogus: unknown key" in refused["error"]["message"]
    no_secret = config_text(agent["home"], agent["port"], "").replace('secret_file = ""', 'secret_env = "NOPE_X"')
    bad_cfg.write_text(no_secret)
    refused = remote(agent, "agent/config/push", f"config=@{bad_cfg}")[0]
    assert refused["status"] == 400 and "lock every caller out" in refused["error"]["message"]
    assert agent["path"].read_text() == before            # the running config stays

    good = tmp_path / "good.toml"
    good.write_text(config_text(agent["home"], agent["port"], agent["secret"], extra='log_level = "debug"'))
    pushed = remote(agent, "agent/config/push", f"config=@{good}")[0]
    assert pushed["successful"] and pushed["data"]["reloaded"], pushed
    assert agent["path"].read_text() == good.read_text()
    assert (tmp_path / "agent.toml.prev").read_text() == before
    assert remote(agent, "agent/config")[0]["data"]["config"]["agent"]["log_level"] == "debug"
    assert oct(agent["path"].stat().st_mode & 0o777) == oct(0o644 & ~_umask())

    # a push that changes pos_proxy's own section restarts it: the answer still arrives
    good.write_text(config_text(agent["home"], agent["port"], agent["secret"], extra='log_level = "debug"')
                    .replace("[workers.pos_proxy]\n", "[workers.pos_proxy]\nmax_concurrent = 32\n"))
    pushed = remote(agent, "agent/config/push", f"config=@{good}")[0]
    assert pushed["successful"] and "pos_proxy" in pushed["data"]["restarted"], pushed
    wait_for(lambda: _ready(remote(agent, "agent/status")[0]))

    audit = (agent["home"] / "log" / "pos_proxy_audit.log").read_text()
    assert '"op":"agent/config/push"' in audit and '"config":"***"' in audit and "log_level" not in audit


@pytest.mark.integration
def test_several_hosts_at_once(agent):
    answers = remote(agent, "info", hosts=[f"127.0.0.1:{agent['port']}", f"127.0.0.1:{free_port()}"])
    assert answers[0]["successful"] and answers[0]["data"]["pid"]
    assert answers[1]["error"]["code"] == "unreachable"


def test_push_without_a_config_file_is_refused(rpc_server, monkeypatch):
    monkeypatch.setenv("OCP_AGENT_SECRET", "x")
    srv = rpc_server()
    status, env = srv.call("agent/config/push", {"config": "[agent]\n"})
    assert status == 409 and env["error"]["code"] == "no_config_file"


def test_without_a_supervisor(rpc_server):
    srv = rpc_server()
    status, env = srv.call("agent/status")
    assert status == 200 and env["data"]["supervisor"] is None and "not running" in env["data"]["supervisor_error"]
    status, env = srv.call("agent/restart", {"names": ["obstat2"]})
    assert status == 503 and env["error"]["code"] == "supervisor_not_running"
    status, env = srv.call("agent/restart", {"names": ["a;b"]})
    assert status == 400


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_the_worker_without_a_secret_waits_for_config_and_stops_when_asked(tmp_path, monkeypatch):
    import http.client
    import threading
    from engine import config as config_mod
    from engine.runtime import WorkerContext, read_status
    from engine.workers import pos_proxy
    monkeypatch.delenv("OCP_AGENT_SECRET", raising=False)
    port = free_port()
    cfg = config_mod.from_dict({"workers": {"pos_proxy": {"port": port, "secret_env": "NO_SUCH_SECRET_VAR"}}},
                               home=str(tmp_path / "home"))
    ctx = WorkerContext.standalone("pos_proxy", cfg)
    worker = threading.Thread(target=pos_proxy.main, args=(ctx,))
    worker.start()
    try:
        status = wait_for(lambda: (s := read_status(ctx.segments, "pos_proxy")) and s["ready"] and s)
        assert status["state"] == "waiting for config" and "secret" in status["detail"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/v1/health")
        assert conn.getresponse().status == 200
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/v1/time", body=b"{}")
        assert conn.getresponse().status == 503
        conn.close()
    finally:
        ctx.request_stop()
        worker.join(30)
        ctx.close()
    assert not worker.is_alive()


def test_a_refused_reload_restores_the_file_and_keeps_the_true_previous_one(tmp_path, monkeypatch):
    """.prev is the config before the push, with the config's own mode; a reload the
    supervisor refuses puts the file back without overwriting .prev with the refused text."""
    from engine import config as config_mod
    from engine.errors import ControlError
    from engine.rpc import RpcError
    from engine.rpc.agent import Agent
    monkeypatch.setenv("OCP_AGENT_SECRET", "x")
    path = tmp_path / "agent.toml"
    oldest, running = '[agent]\nlog_level = "warning"\n', '[agent]\nlog_level = "info"\n'
    (tmp_path / "agent.toml.prev").write_text(oldest)
    path.write_text(running)
    path.chmod(0o600)
    agent = Agent(config_mod.load(str(path), home=str(tmp_path / "home")))

    class Refusing:
        def call(self, op, **args):
            raise ControlError("reload refused: bad [programs]")

    agent.control = Refusing()
    with pytest.raises(RpcError) as exc:
        agent.push_config({"config": '[agent]\nlog_level = "debug"\n'})
    assert exc.value.code == "reload_refused"
    assert path.read_text() == running
    prev = tmp_path / "agent.toml.prev"
    assert prev.read_text() in (running, oldest)       # never the refused config
    assert oct(prev.stat().st_mode & 0o777) == "0o600"     # as private as the config it copies
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_concurrent_pushes_do_not_collide(tmp_path, monkeypatch):
    """Two pushes at once (two threads of the server): each is whole, none fails, no temp file stays."""
    import threading
    from engine import config as config_mod
    from engine.rpc.agent import Agent
    monkeypatch.setenv("OCP_AGENT_SECRET", "x")
    path = tmp_path / "agent.toml"
    first = '[agent]\nlog_level = "info"\n'
    path.write_text(first)
    agent = Agent(config_mod.load(str(path), home=str(tmp_path / "home")))
    texts = ['[agent]\nlog_level = "debug"\n# ' + "a" * 200000 + "\n", '[agent]\nlog_level = "warning"\n']
    errors = []

    def push(text):
        for _ in range(20):
            try:
                agent.push_config({"config": text, "reload": False})
            except Exception as exc:     # noqa: BLE001 - collected for the assertion
                errors.append(repr(exc))
                return

    threads = [threading.Thread(target=push, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_text() in texts and (tmp_path / "agent.toml.prev").read_text() in texts + [first]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["agent.toml", "agent.toml.prev"]


# ---------------------------------------------------------------- issue 12: a push cannot lock the server out

@pytest.mark.integration
def test_a_push_pos_proxy_could_not_start_with_is_refused(agent, tmp_path):
    """Issue 12: missing tls files, file_roots = [1], audit_log = "" were accepted (200) and
    pos_proxy then exited six times in 4 s. The push is checked by the code the worker runs."""
    before = agent["path"].read_text()
    base = config_text(agent["home"], agent["port"], agent["secret"])
    cases = {"tls_cert": f'tls_cert = "{tmp_path}/no-cert.pem"\ntls_key = "{tmp_path}/no-key.pem"\n',
             "file_roots": "file_roots = [1]\n", "file_roots[0]": f'file_roots = ["{tmp_path}/nope"]\n',
             "audit_log": 'audit_log = ""\n'}
    bad = tmp_path / "bad.toml"
    for key, lines in cases.items():
        bad.write_text(base.replace("[workers.pos_proxy]\n", "[workers.pos_proxy]\n" + lines))
        refused = remote(agent, "agent/config/push", f"config=@{bad}")[0]
        assert refused["status"] == 400 and refused["error"]["code"] == "bad_config", (key, refused)
        assert f"workers.pos_proxy.{key}" in refused["error"]["message"], refused
    assert agent["path"].read_text() == before
    assert _ready(remote(agent, "agent/status")[0])


@pytest.mark.integration
def test_a_push_whose_pos_proxy_does_not_come_up_is_taken_back(agent, tmp_path):
    """What no check can foresee (here: the new port is taken): the new pos_proxy fails to
    start, puts the previous config back by itself and the agent comes back as it was."""
    before = agent["path"].read_text()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        new = tmp_path / "new.toml"
        new.write_text(config_text(agent["home"], taken.getsockname()[1], agent["secret"]))
        pushed = remote(agent, "agent/config/push", f"config=@{new}")[0]
        assert pushed["successful"] and "pos_proxy" in pushed["data"]["restarted"], pushed
        wait_for(lambda: agent["path"].read_text() == before, what="the previous config restored")
        wait_for(lambda: _ready(remote(agent, "agent/status")[0]), what="pos_proxy back on its old port")
        assert (tmp_path / "agent.toml.failed").read_text() == new.read_text()
        assert not (agent["home"] / "run" / "pos_proxy_push.json").exists()
        assert remote(agent, "time")[0]["successful"]
    finally:
        taken.close()
