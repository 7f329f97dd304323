"""pos_proxy command/* and task/*: the allow-list, parameter validation, injection attempts, limits."""
from __future__ import annotations

import os
import pwd
import time

import pytest

from engine.rpc.commands import parse_allowlist

SH = "/bin/sh"

COMMANDS = {
    "echo": {"argv": ["/bin/echo", "{msg}"], "params": {"msg": {"type": "str"}}},
    "echo_any": {"argv": ["/bin/echo", "{msg}"], "params": {"msg": {"type": "str", "pattern": ".*"}}},
    "count": {"argv": ["/usr/bin/seq", "1", "{n}"], "params": {"n": {"type": "int", "min": 1, "max": 10 ** 7}}},
    "level": {"argv": ["/bin/echo", "level={lvl}"],
              "params": {"lvl": {"type": "choice", "choices": ["info", "warn"]}}},
    "cat": {"argv": ["/bin/cat", "{file}"], "params": {"file": {"type": "path"}}},
    "sleep": {"argv": ["/bin/sleep", "{secs}"], "params": {"secs": {"type": "int", "max": 60}}, "timeout": 0.5},
    "slow": {"argv": [SH, "-c", "sleep 0.2; echo done; exit 3"], "async": True},
    "env": {"argv": ["/usr/bin/env"], "env": {"EXTRA": "1"}},
    "fail": {"argv": [SH, "-c", "echo oops >&2; exit 7"]},
    "opt": {"argv": ["/bin/echo", "a", "{b}"], "params": {"b": {"type": "str", "required": False}}},
    "as_nobody": {"argv": ["/usr/bin/id", "-u"], "user": "nobody"},
    "missing": {"argv": ["/nonexistent/bin/observer", "-V"]},
    "bad_cwd": {"argv": ["/bin/true"], "cwd": "/nonexistent-dir"},
}


@pytest.fixture
def srv(rpc_server, tmp_path):
    (tmp_path / "f.txt").write_text("content\n")
    return rpc_server(commands=COMMANDS, file_roots=[str(tmp_path)], max_output_bytes=8192)


def run(srv, name, **params):
    return srv.call("command/run", {"name": name, "params": params})


def ok(srv, name, **params):
    status, env = run(srv, name, **params)
    assert status == 200, env
    return env["data"]


def refused(srv, name, **params):
    status, env = run(srv, name, **params)
    assert status in (400, 403), env
    return env["error"]["code"]


def test_list_shows_the_templates(srv):
    status, env = srv.call("command/list")
    names = {c["name"] for c in env["data"]["commands"]}
    assert status == 200 and names == set(COMMANDS)


def test_run_captures_output_and_exit_code(srv, tmp_path):
    out = ok(srv, "echo", msg="hello")
    assert out["stdout"] == "hello\n" and out["exit_code"] == 0 and not out["timed_out"]
    out = ok(srv, "fail")
    assert out["exit_code"] == 7 and out["stderr"] == "oops\n"
    assert ok(srv, "level", lvl="warn")["stdout"] == "level=warn\n"
    assert ok(srv, "cat", file=str(tmp_path / "f.txt"))["stdout"] == "content\n"
    assert ok(srv, "opt")["argv"] == ["/bin/echo", "a"]
    assert ok(srv, "opt", b="x")["argv"] == ["/bin/echo", "a", "x"]


def test_environment_is_clean(srv):
    os.environ["LEAK_ME"] = "1"
    try:
        env = dict(line.split("=", 1) for line in ok(srv, "env")["stdout"].splitlines())
    finally:
        del os.environ["LEAK_ME"]
    assert set(env) == {"PATH", "LANG", "EXTRA"}


def test_not_on_the_list(srv):
    assert refused(srv, "rm") == "not_allowed"
    assert refused(srv, "../bin/sh") == "not_allowed"


@pytest.mark.parametrize("value", ["a;id", "$(id)", "`id`", "a b", "a|b", "x\nid", "a&&b", "'q'", "-rf", "--help"])
def test_injection_attempts_are_refused(srv, value):
    assert refused(srv, "echo", msg=value) in ("bad_parameter", "option_injection")


def test_without_a_shell_metacharacters_stay_literal(srv):
    """Even a template that lets anything through runs no shell: `$(id)` is one literal argument."""
    assert ok(srv, "echo_any", msg="$(id); echo pwned")["stdout"] == "$(id); echo pwned\n"
    assert refused(srv, "echo_any", msg="-n") == "option_injection"
    assert refused(srv, "echo_any", msg="a\nb") == "bad_parameter"
    assert refused(srv, "echo_any", msg="a\x00b") == "bad_parameter"


def test_typed_parameters(srv, tmp_path):
    assert refused(srv, "count", n="5") == "bad_parameter"
    assert refused(srv, "count", n=0) == "bad_parameter"
    assert refused(srv, "count", n=-5) == "bad_parameter"
    assert refused(srv, "count", n=True) == "bad_parameter"
    assert refused(srv, "level", lvl="debug") == "bad_parameter"
    assert refused(srv, "cat", file="/etc/passwd") == "outside_roots"
    assert refused(srv, "cat", file=str(tmp_path / ".." / "x")) == "outside_roots"
    assert refused(srv, "echo") == "bad_parameter"
    assert refused(srv, "echo", msg="a", extra="b") == "bad_parameter"
    status, env = srv.call("command/run", {"name": "echo", "params": ["hi"]})
    assert status == 400


def test_output_is_capped(srv):
    out = ok(srv, "count", n=200000)
    assert out["truncated"] and len(out["stdout"]) == 8192 // 4 and out["stdout_bytes"] > 1_000_000
    assert out["exit_code"] == 0


def test_timeout_kills_the_command(srv):
    out = ok(srv, "sleep", secs=30)
    assert out["timed_out"] and out["exit_code"] == -9 and out["duration"] < 30


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"     # a zombie nobody reaped yet
    except FileNotFoundError:
        return True


def test_timeout_kills_the_group_even_after_its_leader_exited():
    """The leader exits at once, a child it left behind keeps stdout open: at the
    timeout the whole group is killed, not only a leader that is already gone."""
    import asyncio
    import signal
    from engine.rpc import commands
    t = parse_allowlist({"bg": {"argv": [SH, "-c", "sleep 60 & echo $!"], "timeout": 0.3}})["bg"]
    out = asyncio.run(commands.run(t, list(t.argv), t.timeout))
    pid = int(out["stdout"])
    try:
        assert out["timed_out"] and out["exit_code"] == 0
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _gone(pid), "the background child of a timed-out command was left running"
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_program_that_cannot_start_is_a_409_not_a_500(srv):
    """A template whose program is not installed on this host (or whose cwd is gone)."""
    for name in ("missing", "bad_cwd"):
        status, env = run(srv, name)
        assert status == 409 and env["error"]["code"] == "cannot_start", env
        assert "nonexistent" in env["error"]["message"]
    status, env = srv.call("command/run", {"name": "missing", "async": True})
    task_id = env["data"]["task_id"]
    deadline = time.monotonic() + 30
    while (rec := srv.call("task/status", {"task_id": task_id})[1]["data"])["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert rec["state"] == "failed" and "nonexistent" in rec["result"]["error"]


def test_async_task_is_polled_to_completion(srv):
    status, env = run(srv, "slow")
    assert status == 200 and env["data"]["state"] == "running"
    task_id = env["data"]["task_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, env = srv.call("task/status", {"task_id": task_id})
        if env["data"]["state"] != "running":
            break
        time.sleep(0.05)
    assert env["data"]["state"] == "done"
    assert env["data"]["result"]["stdout"] == "done\n" and env["data"]["result"]["exit_code"] == 3
    status, env = srv.call("task/list")
    assert [t["task_id"] for t in env["data"]["tasks"]] == [task_id]
    status, env = srv.call("task/status", {"task_id": "nope"})
    assert status == 404


def test_any_template_can_be_asked_to_run_async(srv):
    status, env = srv.call("command/run", {"name": "echo", "params": {"msg": "x"}, "async": True})
    assert status == 200 and "task_id" in env["data"]


@pytest.mark.skipif(os.geteuid() != 0, reason="run-as needs root")
def test_run_as_user_when_root(srv):
    assert ok(srv, "as_nobody")["stdout"].strip() == str(pwd.getpwnam("nobody").pw_uid)


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the refusal when not root")
def test_run_as_another_user_needs_root(srv):
    assert refused(srv, "as_nobody") == "run_as"


def test_calls_are_audited_with_parameters(srv):
    ok(srv, "echo", msg="hello")
    records = (srv.home / "log" / "pos_proxy_audit.log").read_text().splitlines()
    assert '"op":"command/run"' in records[-1] and '"msg":"hello"' in records[-1]


@pytest.mark.parametrize("bad, where", [
    ({"x": {"argv": ["echo", "hi"]}}, "commands.x.argv"),
    ({"x": {"argv": ["/bin/{p}"], "params": {"p": {}}}}, "commands.x.argv"),
    ({"x": {"argv": ["/bin/echo", "{p}"]}}, "commands.x.argv"),
    ({"x": {"argv": ["/bin/echo"], "params": {"p": {}}}}, "commands.x.params.p"),
    ({"x": {"argv": ["/bin/echo", "{p}"], "params": {"p": {"type": "float"}}}}, "commands.x.params.p.type"),
    ({"x": {"argv": ["/bin/echo", "{p}"], "params": {"p": {"type": "int", "min": -1}}}}, "commands.x.params.p.min"),
    ({"x": {"argv": ["/bin/echo", "{p}"], "params": {"p": {"pattern": "("}}}}, "commands.x.params.p.pattern"),
    ({"x": {"argv": ["/bin/echo"], "shell": True}}, "commands.x.shell"),
    ({"x": {"argv": []}}, "commands.x.argv"),
    ({"x y": {"argv": ["/bin/echo"]}}, "commands.x y"),
])
def test_bad_allowlists_are_refused_with_the_key(bad, where):
    with pytest.raises(ValueError) as exc:
        parse_allowlist(bad)
    assert str(exc.value).startswith(where + ":")


def test_shipped_allowlist_parses():
    import tomllib
    from pathlib import Path
    raw = tomllib.loads((Path(__file__).parents[1] / "conf" / "agent.toml").read_text())
    templates = parse_allowlist(raw["workers"]["pos_proxy"].get("commands", {}))
    assert templates, "conf/agent.toml ships an example allow-list"


# ---------------------------------------------------------------- issue 12: no check-then-use, no walking out

def test_a_path_parameter_is_handed_over_opened_not_reopened_by_name(rpc_server, tmp_path):
    """Issue 12: a `path` value was checked, then passed as a string the program opened again,
    so a directory swapped for a symlink in between led outside. The program now gets the
    checked file's descriptor (/proc/self/fd/N): the swap after the check changes nothing."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "f.txt").write_text("inside\n")
    (outside / "f.txt").write_text("CANARY\n")
    srv = rpc_server(file_roots=[str(root)], commands={"late_cat": {
        "argv": [SH, "-c", 'sleep 1; exec /bin/cat "$0"', "{file}"], "async": True,
        "params": {"file": {"type": "path"}}}})
    status, env = srv.call("command/run", {"name": "late_cat", "params": {"file": str(root / "d" / "f.txt")}})
    assert status == 200, env
    (root / "d").rename(root / "d.old")            # what a local user with write access to the root does
    (root / "d").symlink_to(outside)
    from conftest import wait_for
    record = wait_for(lambda: (r := srv.call("task/status", {"task_id": env["data"]["task_id"]})[1]["data"])
                      and r["state"] != "running" and r, what="the task")
    assert record["state"] == "done" and record["result"]["stdout"] == "inside\n", record
    assert record["result"]["argv"][-1].startswith("/proc/self/fd/")
    assert not [f for f in os.listdir("/proc/self/fd") if _points_into(f, root)]   # closed after the start


def _points_into(fd: str, root) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(str(root))
    except OSError:
        return False


def test_the_default_str_pattern_admits_no_path(rpc_server, tmp_path):
    """Issue 12: `cat -- <root>/{name}` with name=../../outside/canary.txt returned the canary:
    the default `str` pattern admitted '/', '..' and '%'."""
    root = tmp_path / "a" / "b"
    root.mkdir(parents=True)
    (root / "ok.txt").write_text("fine\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "canary.txt").write_text("CANARY\n")
    srv = rpc_server(commands={"show": {"argv": ["/bin/cat", "--", f"{root}/{{leaf}}"],
                                        "params": {"leaf": {"type": "str"}}}})
    for evil in ("../../outside/canary.txt", "..", "x/../../outside/canary.txt", "%2e%2e", "a/b"):
        assert refused(srv, "show", leaf=evil) == "bad_parameter", evil
    assert ok(srv, "show", leaf="ok.txt")["stdout"] == "fine\n"
