"""Synthetic OBServer 4.x logs for the demo: observer.log, rootservice.log,
election.log and their ``.wf`` companions, written and rotated as OBServer does.

- Lines carry the 4.x header (``engine.logs.synth.header``: ``[time] LEVEL
  [MOD] func (file:line) [tid][thread][T<tenant>][trace] [lt=N][errcode=N]``)
  with the current wall-clock time, so a tailer reading from the end sees
  fresh lines.
- The mix: mostly INFO, some WDIAG (everyday failures), and every
  ``alert_every`` seconds one ERROR line a default alert rule fires on (clog
  disk almost full, -4013 memory, data disk full, CRASH ERROR...).
- ERROR and WARN lines are also written to ``<name>.wf`` (WDIAG/EDIAG stay in
  the main file only, as OBServer's default ``wf_level``).
- A file that reaches ``max_bytes`` is renamed ``<name>.YYYYMMDDHHMMSSmmm``
  and its ``.wf`` is renamed with the same stamp; the new file starts with
  the ``New syslog file info`` line. With ``max_files`` > 0 the oldest rotated
  files of a name beyond that count are unlinked at rotation, like OBServer's
  ``max_syslog_file_count`` (0, OBServer's default, keeps them all).
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from pathlib import Path

from engine.logs.synth import file_info_line, header, trace_id

log = logging.getLogger("engine.demo")

FILES = ("observer.log", "rootservice.log", "election.log")
SHARE = (0.80, 0.12, 0.08)          # of the lines, per file
NULL_TRACE = b"Y0-0000000000000000-0-0"

# (module, func, file:line, thread, body) per file
INFO = {
    "observer.log": (
        (b"[SQL.EXE]", b"start_stmt", b"ob_sql_trans_control.cpp:619", b"T1002_TeRec",
         b"start stmt(ret=0, auto_commit=true, session_id=3221487633, savepoint=0)"),
        (b"[SQL.EXE]", b"end_stmt", b"ob_sql_trans_control.cpp:701", b"T1002_TeRec",
         b"end stmt(ret=0, session_id=3221487633, plan_type=1, stmt_type=1)"),
        (b"[SERVER]", b"refresh_schema", b"ob_server_schema_updater.cpp:412", b"SerScheQueue0",
         b"succ to get schema(tenant_id=1002, refreshed_schema_version=1718962334448384)"),
        (b"[STORAGE]", b"print_io_status", b"ob_io_struct.cpp:1013", b"IO_HEALTH0",
         b"print_io_status(tenant_id=1002, io_status=sys_group_name: OTHER_GROUPS, mode: read, size: 4096, iops: 12.0)"),
        (b"[COMMON]", b"dump_tenant_info", b"ob_multi_tenant.cpp:2088", b"MultiTenant",
         b"dump tenant info(tenant={id:1002, unit_min_cpu:2, unit_max_cpu:2}, token_cnt:8)"),
    ),
    "rootservice.log": (
        (b"[RS]", b"check_server_alive", b"ob_server_manager.cpp:1180", b"RSHeartbeat",
         b"server heartbeat ok(server=\"127.0.0.1:2882\", with_rootserver=true)"),
        (b"[RS]", b"process", b"ob_root_service.cpp:1612", b"RootBalance",
         b"rootservice balance round(ret=0, tenant_cnt=3, unit_migrate_cnt=0)"),
    ),
    "election.log": (
        (b"[ELECT]", b"renew_lease", b"election_proposer.cpp:611", b"T1_Occam",
         b"leader lease renewed(ls_id={id:1}, lease_interval=4000000, role=LEADER)"),
        (b"[ELECT]", b"on_change_leader", b"election_impl.cpp:320", b"T1002_Occam",
         b"dump election proposer(ls_id={id:1001}, priority={is_valid:true, is_primary_region:true})"),
    ),
}
WDIAG = {
    "observer.log": (
        (b"[STORAGE]", b"get_tablet", b"ob_ls_tablet_service.cpp:512", b"T1002_TeRec", -4018,
         b"failed to get tablet(ret=-4018, key={tablet_id:200001})"),
        (b"[SERVER]", b"process", b"ob_rpc_processor.cpp:88", b"T1002_L0_G0", -4012,
         b"rpc timeout(ret=-4012, timeout=2000000)"),
    ),
    "rootservice.log": (
        (b"[RS]", b"create_database", b"ob_root_service.cpp:3039", b"DDLQueueTh0", -5086,
         b"create database failed(ret=-5086, arg={tenant_id:1002, database_name:\"demo\"})"),
    ),
    "election.log": (
        (b"[ELECT]", b"check_leader", b"election_acceptor.cpp:402", b"T1_Occam", -4038,
         b"not master, lease expired(ret=-4038, ls_id={id:1})"),
    ),
}
# (file, level, module, func, file:line, thread, errcode, body): a default rule fires on each
ALERTS = (
    ("observer.log", b"ERROR", b"[PALF]", b"try_recycle_blocks", b"palf_env_impl.cpp:637", b"T1002_PalfGC", None,
     b"clog disk space is almost full(total_size(MB)=165888, used_percent(%)=80, warn_size(MB)=132710)"),
    ("observer.log", b"ERROR", b"[STORAGE]", b"alloc_memtable", b"ob_tablet_memtable_mgr.cpp:220", b"T1002_TeRec",
     -4013, b"failed to create memtable(ret=-4013, tablet_id={id:200001})"),
    ("observer.log", b"ERROR", b"[COMMON]", b"check_disk_full", b"ob_io_manager.cpp:410", b"IO_HEALTH0", -4184,
     b"Server out of disk space(ret=-4184, msg=\"data disk is almost full\")"),
    ("observer.log", b"ERROR", b"[COMMON]", b"coredump_cb", b"ob_signal_handle.cpp:152", b"T1002_TeRec", None,
     b"CRASH ERROR!!! sig=11, sig_code=1, sig_addr=7f3a1c000000, timestamp=1718962334448384, tid=43378, "
     b"tname=T1002_TeRec, trace_id=0-0-0-0, extra_info=((null)), lbt=0x113b8115 0x3a6f0c1"),
    ("rootservice.log", b"ERROR", b"[RS]", b"check_server_alive", b"ob_server_manager.cpp:1207", b"RSHeartbeat",
     -4012, b"server is not alive(ret=-4012, server=\"127.0.0.1:2882\")"),
    ("election.log", b"WARN ", b"[ELECT]", b"switch_leader", b"election_proposer.cpp:877", b"T1_Occam", -4038,
     b"switch to follower forcedly success(ls_id={id:1001}, reason=CLOG_DISK_HANG)"),
)
WF_LEVELS = (b"ERROR", b"WARN ")


def rotated_name(name: str, t: float) -> str:
    """``observer.log`` at ``t`` -> ``observer.log.20241219182047574`` (local time, ms)."""
    return f"{name}.{time.strftime('%Y%m%d%H%M%S', time.localtime(t))}{int((t % 1) * 1000):03d}"


class LogWriter:
    """Writes the three logs and their .wf files into ``log_dir``; call
    :meth:`write` from one thread (or use :meth:`start`/:meth:`stop`)."""

    def __init__(self, log_dir: str | os.PathLike, *, max_bytes: int = 1 << 20, max_files: int = 0,
                 lines_per_second: float = 200.0, alert_every: float = 15.0, wdiag_share: float = 0.04,
                 seed: int = 1, clock=time.time):
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.max_files = max_bytes, max_files
        self.lines_per_second, self.alert_every, self.wdiag_share = lines_per_second, alert_every, wdiag_share
        self.rng, self.clock = random.Random(seed), clock
        self.lines = self.alerts = self.rotations = self.errors = 0
        self._next_alert = clock() + min(alert_every, 3.0)
        self._alert_turn = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        for name in FILES:
            self._open_new(name)

    # ------------------------------------------------------------ lines
    def write(self, count: int) -> None:
        """Append ``count`` ordinary lines (and an alert line when one is due)."""
        batches: dict[str, list[bytes]] = {name: [] for name in FILES}
        for _ in range(count):
            name = self.rng.choices(FILES, SHARE)[0]
            batches[name].append(self._ordinary(name))
        if self.clock() >= self._next_alert:
            name, line = self._alert()
            batches[name].append(line)
            self._next_alert = self.clock() + self.alert_every
        for name, lines in batches.items():
            if lines:
                self._append(name, lines)

    def _ordinary(self, name: str) -> bytes:
        rng, t = self.rng, self.clock()
        tid, tenant = rng.randrange(1000, 200000), rng.choice((0, 1, 1001, 1002))
        trace = trace_id(rng) if rng.random() < 0.7 else NULL_TRACE
        if rng.random() < self.wdiag_share:
            mod, func, fl, thread, code, body = rng.choice(WDIAG[name])
            return header(t, b"WDIAG", mod, func, fl, tid, thread, tenant, trace, rng.randrange(99), code) + body + b"\n"
        mod, func, fl, thread, body = rng.choice(INFO[name])
        return header(t, b"INFO", mod, func, fl, tid, thread, tenant, trace, rng.randrange(99), None) + body + b"\n"

    def _alert(self) -> tuple[str, bytes]:
        name, level, mod, func, fl, thread, code, body = ALERTS[self._alert_turn % len(ALERTS)]
        self._alert_turn += 1
        self.alerts += 1
        rng = self.rng
        line = header(self.clock(), level, mod, func, fl, rng.randrange(1000, 200000), thread, 1002,
                      trace_id(rng), rng.randrange(99), code) + body + b"\n"
        return name, line

    # ------------------------------------------------------------ files
    def _append(self, name: str, lines: list[bytes]) -> None:
        data = b"".join(lines)
        wf = b"".join(ln for ln in lines if ln[29:34] in WF_LEVELS)
        with open(self.dir / name, "ab") as fh:
            fh.write(data)
            size = fh.tell()
        if wf:
            with open(self.dir / f"{name}.wf", "ab") as fh:
                fh.write(wf)
        self.lines += len(lines)
        if size >= self.max_bytes:
            self.rotate(name)

    def _open_new(self, name: str) -> None:
        for path in (self.dir / name, self.dir / f"{name}.wf"):
            if not path.exists():
                path.write_bytes(file_info_line(self.clock()))

    def rotate(self, name: str) -> None:
        """Rename ``name`` and ``name.wf`` to their stamped names; start new files."""
        stamp = rotated_name(name, self.clock())[len(name):]
        os.rename(self.dir / name, self.dir / f"{name}{stamp}")
        wf = self.dir / f"{name}.wf"
        if wf.exists():
            os.rename(wf, self.dir / f"{name}.wf{stamp}")
        self.rotations += 1
        self._open_new(name)
        if self.max_files > 0:
            self._recycle(name)

    def _recycle(self, name: str) -> None:
        for prefix in (f"{name}.", f"{name}.wf."):
            old = sorted(p for p in os.listdir(self.dir)
                         if p.startswith(prefix) and p[len(prefix):].isdigit())
            for p in old[:max(0, len(old) - self.max_files)]:
                os.unlink(self.dir / p)

    # ------------------------------------------------------------ thread
    def start(self, period: float = 0.2) -> "LogWriter":
        self._thread = threading.Thread(target=self._run, args=(period,), name="demo-oblog", daemon=True)
        self._thread.start()
        return self

    def _run(self, period: float) -> None:
        carry = 0.0
        while not self._stop.wait(period):
            carry += self.lines_per_second * period
            n, carry = int(carry), carry - int(carry)
            try:
                self.write(n)
            except OSError as exc:     # a full disk, a removed dir: skip a beat, go on
                self.errors += 1
                if self.errors <= 10:
                    log.warning("demo log writer: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
