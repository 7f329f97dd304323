"""The TopSQL row layouts: the contract between the audit SQL, the aggregator
(native ``engine._native.topsql`` and its twin ``engine._ref.topsql``), the
store and the central MonitorDB.

- :data:`COLUMNS`: the audit columns ``engine.ob.views.AUDIT_FETCH`` selects,
  in that order (the aggregator reads them by position: :data:`TEXT` are
  text, the others integers; ``C_*`` name the positions it needs by name);
- :data:`METRICS`: a group's counters, in the aggregator's slot order, then
  :data:`EXTRA`; :data:`GROUP_FIELDS` is a stored group's full row;
- :data:`SAMPLE_FIELDS`: one SlowSQL sample;
- the rules both aggregators share: :func:`sample_text`, :func:`sql_type`,
  :func:`fail_info`, the int64 bounds every sum saturates at, and
  :class:`ProtocolError` (an error packet or a malformed stream).

Production imports these from here, never from the twin (which exists for
tests and benches only).
"""
from __future__ import annotations

import re

COLUMNS = (
    "svr_ip", "svr_port", "tenant_id", "request_id", "db_id", "sql_id", "request_time",
    "elapsed_time", "execute_time", "queue_time", "get_plan_time", "total_wait_time_micro",
    "application_wait_time", "concurrency_wait_time", "user_io_wait_time", "schedule_time",
    "return_rows", "affected_rows", "retry_cnt", "ret_code", "plan_type", "is_hit_plan",
    "is_inner_sql", "is_executor_rpc", "memstore_read_row_count", "ssstore_read_row_count",
    "disk_reads", "rpc_count", "net_time", "decode_time", "table_scan", "consistency_level",
    "event", "wait_time_micro", "db_name", "query_sql",
    # OCP's ob_hist_sql_audit_stat row (the user, the client behind each maximum, cache hits)
    # and the SlowSQL sample (trace id, plan id, client)
    "user_id", "user_name", "user_client_ip", "partition_cnt", "row_cache_hit",
    "bloom_filter_cache_hit", "block_cache_hit", "index_block_cache_hit", "total_waits",
    "trace_id", "plan_id", "client_ip",
)
NCOLS = len(COLUMNS)
TEXT = {0, 5, 32, 34, 35, 37, 38, 45, 47}   # columns kept as text; the others are integers
C_USER, C_USER_NAME, C_UCLIENT_IP, C_PARTITION = 36, 37, 38, 39

METRICS = (
    "executions", "elapsed_sum", "elapsed_max", "execute_sum", "execute_max", "queue_sum",
    "queue_max", "get_plan_sum", "get_plan_max", "cpu_sum", "cpu_max", "wait_sum", "wait_max",
    "app_wait_sum", "app_wait_max", "conc_wait_sum", "io_wait_sum", "io_wait_max", "sched_sum",
    "return_rows_sum", "return_rows_max", "affected_rows_sum", "affected_rows_max", "retry_sum",
    "fail_count", "err_4012", "err_4013", "err_5001", "err_5024", "err_5167", "err_5217",
    "err_6002", "plan_local", "plan_remote", "plan_distributed", "miss_plan", "inner_sql",
    "executor_rpc", "memstore_rows", "ssstore_rows", "disk_reads_sum", "disk_reads_max",
    "rpc_count", "net_sum", "decode_sum", "table_scan", "strong_reads", "weak_reads",
    "ev_internal_wait", "ev_client_wait", "ev_sync_rpc", "ev_data_read", "slow_count",
    "first_request_time", "last_end_time",
    "partition_cnt_sum", "partition_cnt_max", "row_cache_hit", "bloom_filter_cache_hit",
    "block_cache_hit", "block_index_cache_hit", "last_fail_info", "max_request_time", "total_waits",
)
# After the metrics, a group carries: its user, OCP's sql_type (from the sample text) and the
# user_client_ip behind each maximum (affected rows, return rows, partitions).
EXTRA = ("user_id", "user_name", "sql_type", "ip_max_affected_rows", "ip_max_return_rows",
         "ip_max_partition_cnt")
EXTRA_DEFAULTS = (0, "", -1, "", "", "")     # a group built by hand (tests): no user, no ips
GROUP_FIELDS = ("bucket", "tenant_id", "db_id", "sql_id", "db_name", "sample") + METRICS + EXTRA
# One slow execution (elapsed >= slow_us), as kept in the SlowSQL samples.
SAMPLE_FIELDS = (
    "bucket", "tenant_id", "request_id", "request_time", "elapsed_time", "execute_time",
    "queue_time", "get_plan_time", "wait_time", "ret_code", "affected_rows", "return_rows",
    "db_id", "user_id", "sql_id", "trace_id", "plan_id", "db_name", "user_name",
    "user_client_ip", "client_ip", "query_sql",
)
NMETRICS = len(METRICS)
ERR_CODES = (-4012, -4013, -5001, -5024, -5167, -5217, -6002)
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
FAIL_TIME_MAX = (1 << 45) - 1        # ms; 46 bits with the sign bit kept clear
SQL_TYPES = {"SELECT": 1, "INSERT": 3, "UPDATE": 4, "DELETE": 5, "REPLACE": 6}
_LEAD = re.compile(r"(?:\s+|/\*.*?\*/|--[^\n]*\n|\()*", re.S)
_WORD = re.compile(r"[A-Za-z]+")
_FOR_UPDATE = re.compile(r"\bFOR\s+UPDATE\b", re.I)


class ProtocolError(Exception):
    """An error packet (``code``, message) or a malformed stream from the server."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message


def sample_text(raw: bytes, limit: int) -> str:
    """``raw`` cut to ``limit`` bytes without splitting a UTF-8 character, decoded.

    A character is at most 4 bytes, so the cut backs off at most 3: text that
    is not UTF-8 is cut near the limit, never emptied.
    """
    if len(raw) > limit:
        n = limit
        while n > max(0, limit - 3) and (raw[n] & 0xC0) == 0x80:
            n -= 1
        raw = raw[:n]
    return raw.decode("utf-8", "replace")


def sql_type(sample: str) -> int:
    """OCP's sql_type from a statement's text: 1 select, 2 select for update, 3 insert,
    4 update, 5 delete, 6 replace, -1 anything else (leading blanks, comments and
    parentheses skipped)."""
    text = sample[_LEAD.match(sample).end():]
    word = _WORD.match(text)
    kind = SQL_TYPES.get(word.group(0).upper(), -1) if word else -1
    if kind == 1 and _FOR_UPDATE.search(text):
        return 2
    return kind


def fail_info(request_time: int, ret_code: int) -> int:
    """OCP's last_fail_info: error time (ms) in the top 46 bits, error code in the low 18."""
    ms = min(max(request_time // 1000, 0), FAIL_TIME_MAX)
    return (ms << 18) | ((-ret_code) & 0x3FFFF)
