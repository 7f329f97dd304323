"""Synthetic OBServer 4.x log lines, written the way OBServer writes them.

Used by the benchmark (a large generated observer.log), by the tests (real
files that rotate) and available to a demo. The header layout follows
``ObLogger::log_head``: ``[time] LEVEL [MOD] func (file:line) [tid][thread][T<tenant>][trace] [lt=N][errcode=N] msg``,
with LEVEL printed as ``%-5s`` and ``[errcode=N]`` only on ERROR/WARN/EDIAG/WDIAG.
The mix is deterministic for a given seed.
"""
from __future__ import annotations

import random
import time

INFO_BODIES = (
    b"start stmt(ret=0, auto_commit=true, session_id=3221487633, snapshot={this:0x7f1c, valid:true}, savepoint=0)",
    b"end stmt(ret=0, tx_id={txid:123456}, session_id=3221487633, plan_type=1, stmt_type=1)",
    b"succ to get schema(tenant_id=1002, refreshed_schema_version=1718962334448384, received_schema_version=1718962334448384)",
    b"dump tenant info(tenant={id:1002, tenant_meta:{unit_min_cpu:2, unit_max_cpu:2}, actual_min_cpu:2, token_cnt:8})",
    b"[COMPACTION DAG STATUS] (start_time=1718962334448384, end_time=1718962344448384, total_running_task_cnt=0)",
    b"get_max_applied_scn(scn={val:1718962334448384000}, ls_id={id:1001}, this={ls_id:{id:1001}, role:1})",
    b"ObArchiveSender is running(thread_index=0)",
    b"print_io_status(tenant_id=1002, io_status=sys_group_name: OTHER_GROUPS, mode: read, size: 4096, iops: 12.0)",
)
WARN_BODIES = (   # everyday WDIAG/WARN noise: no default rule fires on these
    (b"WDIAG", b"[RS]", b"create_database", b"ob_root_service.cpp:3039", -4016,
     b"create database failed(ret=-4016, arg={tenant_id:1002})"),
    (b"WDIAG", b"[STORAGE]", b"get_tablet", b"ob_ls_tablet_service.cpp:512", -4018,
     b"failed to get tablet(ret=-4018, key={tablet_id:200001})"),
    (b"WDIAG", b"[SERVER]", b"process", b"ob_rpc_processor.cpp:88", -4012,
     b"rpc timeout(ret=-4012, timeout=2000000)"),
    (b"WDIAG", b"[SQL.RESV]", b"resolve_table", b"ob_dml_resolver.cpp:1642", -5019,
     b"table not exist(ret=-5019, table_name=t1)"),
    (b"WDIAG", b"[TRANS]", b"handle_trans_msg", b"ob_trans_service.cpp:733", -4038,
     b"not master(ret=-4038, ls_id={id:1001}, tx_id=123456)"),
    (b"WARN ", b"[SERVER]", b"check_server_progress", b"ob_server_checker.cpp:91", -4012,
     b"server progress slow(ret=-4012, svr=\"127.0.0.1:2882\")"),
)
ALERT_BODIES = (  # lines a default rule alerts on
    (b"WARN ", b"[CLOG]", b"check_disk_usage", b"ob_server_log_block_mgr.cpp:301", -4264,
     b"log disk space is almost full(ret=-4264, total_size=107374182400, used_size=96636764160)"),
    (b"WDIAG", b"[STORAGE]", b"alloc", b"ob_tenant_memory.cpp:120", -4013,
     b"alloc memory failed(ret=-4013, size=2097152, tenant_id=1002)"),
    (b"TRACE", b"[TRACE]", b"after_process", b"ob_mp_query.cpp:512", None,
     b"[slow query](TRACE=begin_ts=1718962334448384 2024-06-21 17:32:14.448384|[process_begin] u=0)"),
    (b"ERROR", b"[PALF]", b"try_recycle_blocks", b"palf_env_impl.cpp:637", None,
     b"clog disk space is almost full(total_size(MB)=165888, used_percent(%)=80, warn_size(MB)=132710)"),
    (b"ERROR", b"", b"issue_dba_error", b"ob_log.cpp:1868", -4388,
     b"Unexpected internal error happen, please checkout the internal errcode(errcode=-4147, file=\"ob_server.cpp\", line_no=1886, info=\"reload memory config failed\")"),
    (b"EDIAG", b"[SHARE.CONFIG]", b"reload_config", b"ob_server_config.cpp:365", -4147,
     b"update observer memory config failed(memory_limit=32212254720) BACKTRACE:0x113b8115 0x3a6f0c1"),
    (b"ERROR", b"[STORAGE]", b"alloc_memtable", b"ob_tablet_memtable_mgr.cpp:220", -4013,
     b"failed to create memtable(ret=-4013, tablet_id={id:200001})"),
    (b"ERROR", b"[RS]", b"check_server_alive", b"ob_server_manager.cpp:1207", -4012,
     b"server is not alive(ret=-4012, server=\"127.0.0.1:2882\")"),
    (b"ERROR", b"[COMMON]", b"check_disk_full", b"ob_io_manager.cpp:410", -4184,
     b"Server out of disk space(ret=-4184, msg=\"data disk is almost full\")"),
)
MODULES = (b"[SQL.EXE]", b"[STORAGE]", b"[SERVER]", b"[SHARE]", b"[CLOG]", b"[RS]", b"[COMMON]")
THREADS = (b"T1002_TeRec", b"observer", b"T1004_L0_G0", b"DDLQueueTh0", b"T1_Occam", b"IO_HEALTH0")


def header(t: float, level: bytes, mod: bytes, func: bytes, fileline: bytes, tid: int,
           thread: bytes, tenant: int, trace: bytes, lt: int, errcode: int | None) -> bytes:
    """One header exactly as ``ObLogger::log_head`` prints it (local time)."""
    usec = int((t - int(t)) * 1e6)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)).encode()
    parts = [b"[%s.%06d] %-5s " % (stamp, usec, level)]
    if mod:
        parts.append(mod + b" ")
    parts.append(b"%s (%s) [%d][%s][T%d][%s] [lt=%d]" % (func, fileline, tid, thread, tenant, trace, lt))
    if errcode is not None and level.strip() in (b"ERROR", b"WARN", b"EDIAG", b"WDIAG"):
        parts.append(b"[errcode=%d]" % errcode)
    return b"".join(parts) + b" "


def trace_id(rng: random.Random) -> bytes:
    return b"Y%X-%016X-0-0" % (rng.getrandbits(48), rng.getrandbits(52))


class LineMaker:
    """Deterministic realistic lines: ``info_share`` of them INFO; of the rest,
    ``noise_share`` everyday WDIAG/WARN and the others lines a default rule fires on."""

    def __init__(self, seed: int = 1, start: float | None = None, info_share: float = 0.95,
                 noise_share: float = 0.95):
        self.rng = random.Random(seed)
        self.t = time.time() - 3600 if start is None else start
        self.info_share = info_share
        self.noise_share = noise_share   # of the non-INFO lines, those no rule fires on

    def line(self) -> bytes:
        rng = self.rng
        self.t += rng.random() * 0.0005
        tid = rng.randrange(1000, 200000)
        trace = trace_id(rng) if rng.random() < 0.7 else b"Y0-0000000000000000-0-0"
        tenant = rng.choice((0, 1, 1001, 1002))
        x = rng.random()
        if x < self.info_share * 0.002:   # a multi-line [MEMORY] dump
            head = header(self.t, b"INFO", b"[COMMON]", b"print_tenant_usage", b"ob_malloc_allocator.cpp:566",
                          tid, b"MemDumpTimer", 0, b"Y0-0000000000000000-0-0", rng.randrange(0, 99), None)
            body = b"[MEMORY] tenant_id=1002 limit=8589934592 hold=2147483648\n" + \
                b"[MEMORY] ctx_id=DEFAULT_CTX_ID hold_bytes=1258291200 limit=9223372036854775807\n" + \
                b"[MEMORY] idx=0 hold=8388608 used=7340032 count=1024 avg_used=7168 mod=SqlExecutor"
        elif x < self.info_share:
            body = rng.choice(INFO_BODIES)
            head = header(self.t, b"INFO", rng.choice(MODULES), b"run_task", b"ob_task.cpp:%d" % rng.randrange(1, 3000),
                          tid, rng.choice(THREADS), tenant, trace, rng.randrange(0, 99), None)
        elif x < self.info_share + (1 - self.info_share) * self.noise_share:
            level, mod, func, fl, code, body = rng.choice(WARN_BODIES)
            head = header(self.t, level, mod, func, fl, tid, rng.choice(THREADS), tenant, trace, rng.randrange(0, 99), code)
        else:
            level, mod, func, fl, code, body = rng.choice(ALERT_BODIES)
            head = header(self.t, level, mod, func, fl, tid, rng.choice(THREADS), tenant, trace, rng.randrange(0, 99), code)
        return head + body + b"\n"

    def chunk(self, nbytes: int) -> bytes:
        """At least ``nbytes`` of whole lines."""
        out, size = [], 0
        while size < nbytes:
            ln = self.line()
            out.append(ln)
            size += len(ln)
        return b"".join(out)


def file_info_line(t: float, version: bytes = b"OceanBase_CE 4.2.1.1") -> bytes:
    """The first line OBServer writes into a new log file."""
    return header(t, b"INFO", b"", b"log_new_file_info", b"ob_log.cpp:1470", 1, b"observer", 0,
                  b"Y0-0000000000000000-0-0", 0, None) + \
        b'New syslog file info: [address: "127.0.0.1:2882", observer version: %s, revision: 101000022023081600-0, sysname: Linux]\n' % version
