"""The ``command/*`` and ``task/*`` namespaces: allow-listed command templates only.

There is no generic exec. A call names a template from
``workers.pos_proxy.commands`` and gives its parameters; each parameter is
typed and validated, and becomes exactly one argv element (or part of one).
The program is started with ``exec`` directly, never through a shell, with a
clean environment, stdin from /dev/null, in its own session (so a timeout
kills the whole process group), as the template's ``user`` when the agent runs
as root. stdout and stderr are captured up to a cap each (the rest is read and
counted, not kept). A template with ``async = true`` returns a task id at once;
``task/status`` polls it. Finished tasks are kept in memory (the last
:data:`MAX_TASKS`); they do not survive a restart of pos_proxy.

The allow-list format is documented in docs/pos_proxy.md and conf/agent.toml.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import secrets
import signal
import time
from dataclasses import dataclass, field

from engine.rpc import RpcError, bad_request, forbidden
from engine.rpc.params import get_bool, get_str, only

MAX_TASKS = 256
SAFE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
# no path separator, no "..", no "%": a value cannot walk out of a directory the template names
# (a template that wants a path declares a `path` parameter, which is confined and opened)
DEFAULT_PATTERN = r"(?!.*\.\.)[A-Za-z0-9_.:@+=,][A-Za-z0-9_.:@+=,-]*"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")   # {{ and }} are literal braces
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
TYPES = ("str", "int", "choice", "path")
TEMPLATE_KEYS = {"argv", "description", "timeout", "user", "cwd", "async", "env", "params", "max_output_bytes"}
PARAM_KEYS = {"type", "required", "default", "pattern", "max_len", "min", "max", "choices", "description"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool = True
    default: object = None
    pattern: re.Pattern | None = None
    max_len: int = 256
    min: int = 0
    max: int = 2 ** 31
    choices: tuple = ()
    description: str = ""


@dataclass(frozen=True)
class Template:
    name: str
    argv: tuple[str, ...]
    params: dict[str, Param] = field(default_factory=dict)
    description: str = ""
    timeout: float = 60.0
    user: str = ""
    cwd: str = "/"
    run_async: bool = False
    env: dict = field(default_factory=dict)
    max_output_bytes: int = 65536


# ---------------------------------------------------------------- the allow-list

def parse_allowlist(raw: dict, max_output_bytes: int = 1 << 20) -> dict[str, Template]:
    """Templates from ``workers.pos_proxy.commands``; ValueError names the bad key."""
    if not isinstance(raw, dict):
        raise ValueError("commands: expected a table of templates")
    return {name: _template(name, spec, max_output_bytes) for name, spec in raw.items()}


def _template(name: str, spec, max_output: int) -> Template:
    where = f"commands.{name}"
    if not _NAME.fullmatch(name):
        raise ValueError(f"{where}: a name of letters, digits, '.', '-' and '_'")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a table")
    extra = set(spec) - TEMPLATE_KEYS
    if extra:
        raise ValueError(f"{where}.{sorted(extra)[0]}: unknown key")
    argv = spec.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and "\x00" not in a for a in argv):
        raise ValueError(f"{where}.argv: a non-empty list of strings")
    if not argv[0].startswith("/") or _names(argv[0]):
        raise ValueError(f"{where}.argv: the program must be an absolute path with no parameter in it")
    params = {p: _param(f"{where}.params.{p}", p, s) for p, s in _table(spec, "params", where).items()}
    used = {m for a in argv for m in _names(a)}
    if used - set(params):
        raise ValueError(f"{where}.argv: undeclared parameter {{{sorted(used - set(params))[0]}}}")
    if set(params) - used:
        raise ValueError(f"{where}.params.{sorted(set(params) - used)[0]}: not used in argv")
    env = _table(spec, "env", where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError(f"{where}.env: a table of strings")
    return Template(
        name=name, argv=tuple(argv), params=params, description=_typed(spec, "description", str, "", where),
        timeout=float(_typed(spec, "timeout", (int, float), 60.0, where)), user=_typed(spec, "user", str, "", where),
        cwd=_typed(spec, "cwd", str, "/", where), run_async=_typed(spec, "async", bool, False, where), env=env,
        max_output_bytes=min(int(_typed(spec, "max_output_bytes", int, 65536, where)), max_output // 4))


def _param(where: str, name: str, spec) -> Param:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a table")
    extra = set(spec) - PARAM_KEYS
    if extra:
        raise ValueError(f"{where}.{sorted(extra)[0]}: unknown key")
    kind = spec.get("type", "str")
    if kind not in TYPES:
        raise ValueError(f"{where}.type: one of {', '.join(TYPES)}")
    pattern = _typed(spec, "pattern", str, DEFAULT_PATTERN if kind == "str" else "", where)
    try:
        compiled = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise ValueError(f"{where}.pattern: {exc}") from None
    choices = _typed(spec, "choices", list, [], where)
    if kind == "choice" and not (choices and all(isinstance(c, str) for c in choices)):
        raise ValueError(f"{where}.choices: a non-empty list of strings")
    lo = _typed(spec, "min", int, 0, where)
    if lo < 0:
        raise ValueError(f"{where}.min: must be >= 0 (a negative value would read as an option)")
    return Param(name=name, type=kind, required=_typed(spec, "required", bool, "default" not in spec, where),
                 default=spec.get("default"), pattern=compiled, max_len=_typed(spec, "max_len", int, 256, where),
                 min=lo, max=_typed(spec, "max", int, 2 ** 31, where), choices=tuple(choices),
                 description=_typed(spec, "description", str, "", where))


def _typed(spec: dict, key: str, kind, default, where: str):
    value = spec.get(key, default)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ValueError(f"{where}.{key}: wrong type {type(value).__name__}")
    return value


def _table(spec: dict, key: str, where: str) -> dict:
    value = spec.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}.{key}: expected a table")
    return value


# ---------------------------------------------------------------- validation

def check_value(p: Param, value, open_path, fds: list, paths: dict | None = None) -> str:
    """One parameter's value as the text of an argv element; RpcError if refused.

    A ``path`` value is opened (``open_path`` -> (O_PATH descriptor, real path, tail),
    confined to the file roots) and becomes ``/proc/self/fd/N`` (plus ``/name`` for
    a file yet to be created, in the directory opened): the program
    opens the very file that was checked, whatever is renamed or swapped for
    a symlink meanwhile (no check-then-use). The descriptor is appended to
    ``fds``, to be passed to the program and closed after it starts."""
    if p.type == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not p.min <= value <= p.max:
            raise bad_request(f"parameter {p.name!r}: an integer within [{p.min}, {p.max}]", "bad_parameter")
        return str(value)
    if not isinstance(value, str):
        raise bad_request(f"parameter {p.name!r}: a string", "bad_parameter")
    if not value or len(value) > p.max_len or any(c < " " or c == "\x7f" for c in value):
        raise bad_request(f"parameter {p.name!r}: 1..{p.max_len} printable characters", "bad_parameter")
    if value.startswith("-"):
        raise bad_request(f"parameter {p.name!r}: may not start with '-'", "option_injection")
    if p.type == "choice" and value not in p.choices:
        raise bad_request(f"parameter {p.name!r}: one of {', '.join(p.choices)}", "bad_parameter")
    if p.type == "path":
        fd, real, tail = open_path(value)
        fds.append(fd)
        if paths is not None:
            paths[p.name] = str(real)
        if p.pattern is not None and not p.pattern.fullmatch(str(real)):
            raise bad_request(f"parameter {p.name!r}: does not match {p.pattern.pattern!r}", "bad_parameter")
        return f"/proc/self/fd/{fd}{tail}"
    if p.pattern is not None and not p.pattern.fullmatch(value):
        raise bad_request(f"parameter {p.name!r}: does not match {p.pattern.pattern!r}", "bad_parameter")
    return value


def render(t: Template, params: dict, open_path, fds: list, paths: dict | None = None) -> list[str]:
    """The argv of ``t`` with ``params`` filled in; every value validated first. Descriptors
    opened for ``path`` parameters are appended to ``fds`` (the caller closes them)."""
    values = {}
    for p in t.params.values():
        if p.name in params:
            values[p.name] = check_value(p, params[p.name], open_path, fds, paths)
        elif p.required:
            raise bad_request(f"parameter {p.name!r} is required", "bad_parameter")
        elif p.default is not None:
            values[p.name] = str(p.default)
    extra = set(params) - set(t.params)
    if extra:
        raise bad_request(f"unknown parameter(s) for {t.name}: {', '.join(sorted(extra))}", "bad_parameter")
    argv = []
    for arg in t.argv:
        names = _names(arg)
        if names and all(n not in values for n in names) and arg == f"{{{names[0]}}}":
            continue    # a whole-element optional parameter left out: drop the element
        argv.append(_PLACEHOLDER.sub(lambda m: _fill(m, values), arg))
    return argv


def _names(arg: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(arg) if m.group(1)]


def _fill(m: re.Match, values: dict) -> str:
    if m.group(1):
        return values.get(m.group(1), "")
    return m.group(0)[0]


# ---------------------------------------------------------------- running

def close_fds(fds: list) -> None:
    """Close and forget ``fds`` (safe to call twice: the list is emptied)."""
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


async def run(t: Template, argv: list[str], timeout: float, fds: list | None = None) -> dict:
    """Run ``argv`` per the template, handing it ``fds``; the exit code and capped output."""
    fds = fds if fds is not None else []
    t0 = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=t.cwd, env={**SAFE_ENV, **t.env},
            start_new_session=True, pass_fds=tuple(fds), **_run_as(t))
    except OSError as exc:     # not installed here, not executable, cwd gone: the host's state
        where = exc.filename or argv[0]
        raise RpcError(409, "cannot_start", f"{t.name}: cannot start: {where}: {exc.strerror}") from None
    finally:
        close_fds(fds)        # the program has its copies
    out, err = _Capture(t.max_output_bytes), _Capture(t.max_output_bytes)
    timed_out = finished = False
    try:
        await asyncio.wait_for(asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr), proc.wait()),
                               timeout)
        finished = True
    except TimeoutError:
        timed_out = True
    finally:
        if not finished:
            # the group, even if its leader is gone: a child it left behind (holding
            # stdout, say) would otherwise outlive the timeout for good
            _kill_group(proc.pid)
            await proc.wait()
            with contextlib.suppress(TimeoutError):    # what the group wrote before it died
                await asyncio.wait_for(asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr)), 1.0)
    return {"command": t.name, "argv": argv, "exit_code": proc.returncode, "timed_out": timed_out,
            "duration": round(time.monotonic() - t0, 3), "stdout": out.text(), "stderr": err.text(),
            "stdout_bytes": out.total, "stderr_bytes": err.total,
            "truncated": out.total > len(out.kept) or err.total > len(err.kept)}


def _run_as(t: Template) -> dict:
    me = pwd.getpwuid(os.geteuid()).pw_name
    if not t.user or t.user == me:
        return {}
    if os.geteuid() != 0:
        raise forbidden(f"{t.name} runs as {t.user!r}: the agent must run as root for that", "run_as")
    try:
        ent = pwd.getpwnam(t.user)
    except KeyError:
        raise RpcError(409, "no_such_user", f"{t.name}: user {t.user!r} does not exist") from None
    return {"user": ent.pw_uid, "group": ent.pw_gid, "extra_groups": []}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class _Capture:
    def __init__(self, cap: int):
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.total += len(chunk)
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]

    def text(self) -> str:
        return self.kept.decode("utf-8", "replace")


# ---------------------------------------------------------------- the namespace

class Commands:
    def __init__(self, templates: dict[str, Template], open_path, call_timeout: float):
        self.templates = templates
        self.open_path = open_path
        self.call_timeout = call_timeout
        self.tasks: dict[str, dict] = {}
        self._running: set[asyncio.Task] = set()

    def ops(self) -> dict:
        return {"command/list": self.list, "command/run": self.run,
                "task/status": self.task_status, "task/list": self.task_list}

    async def list(self, params: dict) -> dict:
        only(params)
        return {"commands": [_describe(t) for t in self.templates.values()]}

    async def run(self, params: dict) -> dict:
        only(params, "name", "params", "async")
        name = get_str(params, "name", max_len=64)
        t = self.templates.get(name)
        if t is None:
            raise forbidden(f"{name!r} is not on the command allow-list", "not_allowed")
        args = params.get("params", {})
        if not isinstance(args, dict):
            raise bad_request("'params' must be an object", "bad_parameter")
        fds: list[int] = []
        paths: dict[str, str] = {}
        try:
            argv = render(t, args, self.open_path, fds, paths)
            _run_as(t)   # refuse before starting anything
            run_async = t.run_async or get_bool(params, "async", False)
        except BaseException:
            close_fds(fds)
            raise
        if run_async:
            return {**self._start_task(t, argv, fds), "paths": paths}     # the task closes them
        result = await run(t, argv, min(t.timeout, max(self.call_timeout - 1.0, 0.1)), fds)   # run does
        return {**result, "paths": paths}

    def _start_task(self, t: Template, argv: list[str], fds: list) -> dict:
        try:
            self._evict()
        except BaseException:
            close_fds(fds)
            raise
        task_id = secrets.token_hex(8)
        record = {"task_id": task_id, "command": t.name, "state": "running", "started": time.time(),
                  "finished": None, "result": None}
        self.tasks[task_id] = record

        async def work():
            try:
                record["result"] = await run(t, argv, t.timeout, fds)
                record["state"] = "done"
            except Exception as exc:   # a failed start is the task's result, not a crash
                record["state"], record["result"] = "failed", {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                close_fds(fds)
            record["finished"] = time.time()

        job = asyncio.get_running_loop().create_task(work())
        self._running.add(job)
        job.add_done_callback(self._running.discard)
        return {"task_id": task_id, "state": "running"}

    def _evict(self) -> None:
        if len(self.tasks) < MAX_TASKS:
            return
        for task_id, rec in list(self.tasks.items()):
            if rec["state"] != "running":
                del self.tasks[task_id]
                return
        raise RpcError(503, "busy", f"{MAX_TASKS} tasks still running")

    async def task_status(self, params: dict) -> dict:
        only(params, "task_id")
        task_id = get_str(params, "task_id", max_len=64)
        record = self.tasks.get(task_id)
        if record is None:
            raise RpcError(404, "no_such_task", f"no task {task_id!r} (finished tasks are kept in memory only)")
        return record

    async def task_list(self, params: dict) -> dict:
        only(params)
        return {"tasks": [{k: r[k] for k in ("task_id", "command", "state", "started", "finished")}
                          for r in self.tasks.values()]}

    async def close(self) -> None:
        for job in list(self._running):
            job.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


def _describe(t: Template) -> dict:
    return {"name": t.name, "description": t.description, "async": t.run_async, "timeout": t.timeout,
            "user": t.user, "params": [{"name": p.name, "type": p.type, "required": p.required,
                                        "choices": list(p.choices), "description": p.description}
                                       for p in t.params.values()]}
