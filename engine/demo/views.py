"""The demo OBServer's tables in SQLite: :mod:`engine.ob.schema`'s views, plus
what the agent also reads and the schema does not model.

Adapted here, not in engine.ob (the schema is shared with the MariaDB
stand-in):

- SQLite refuses a type name such as ``bigint(20) unsigned``: ``unsigned`` is
  dropped from the generated DDL (SQLite does not enforce types anyway);
- the local-node views ``V$...`` are SQLite views over their ``GV$`` tables
  (the demo has one observer, so no filter is needed);
- ``GV$OB_TENANT_MEMORY_INFO``, ``GV$OB_MEMORY``, ``GV$OB_KVCACHE`` and
  ``GV$OB_PROCESSLIST`` (ocp_exporter reads them) get small tables with rows
  per tenant, rewritten by :func:`refresh_extras`.
"""
from __future__ import annotations

import re

from engine.ob import schema

GIB = 1 << 30
LOCAL_VIEWS = {"V$SYSSTAT": "GV$SYSSTAT", "V$OB_PLAN_CACHE_STAT": "GV$OB_PLAN_CACHE_STAT",
               "V$OB_SQL_AUDIT": "GV$OB_SQL_AUDIT", "V$OB_PLAN_CACHE_PLAN_STAT": "GV$OB_PLAN_CACHE_PLAN_STAT",
               "V$OB_SERVERS": "GV$OB_SERVERS", "V$OB_UNITS": "GV$OB_UNITS", "V$OB_MEMSTORE": "GV$OB_MEMSTORE"}
EXTRA = {
    "GV$OB_TENANT_MEMORY_INFO": ("TENANT_ID", "SVR_IP", "SVR_PORT", "HOLD", "FREE"),
    "GV$OB_MEMORY": ("TENANT_ID", "SVR_IP", "SVR_PORT", "CTX_NAME", "MOD_NAME", "COUNT", "HOLD", "USED"),
    "GV$OB_KVCACHE": ("TENANT_ID", "SVR_IP", "SVR_PORT", "CACHE_NAME", "CACHE_SIZE", "PRIORITY",
                      "CACHE_STORE_SIZE", "CACHE_MAP_SIZE", "KV_CNT", "HIT_RATIO", "TOTAL_PUT_CNT",
                      "TOTAL_HIT_CNT", "TOTAL_MISS_CNT"),
    "GV$OB_PROCESSLIST": ("SVR_IP", "SVR_PORT", "SQL_PORT", "ID", "USER", "HOST", "DB", "TENANT",
                          "COMMAND", "TIME", "STATE", "INFO"),
}
_UNSIGNED = re.compile(r"\s+unsigned\b", re.I)


def create_all(conn) -> None:
    """Every table and view, in the ``oceanbase`` database of ``conn``."""
    for stmt in schema.create_statements("sqlite"):
        conn.execute(_UNSIGNED.sub("", stmt).replace('CREATE TABLE "', 'CREATE TABLE oceanbase."', 1))
    for view, cols in EXTRA.items():
        conn.execute(f'CREATE TABLE oceanbase."{view}" ({", ".join(f"{c!r}" for c in cols)})'.replace("'", '"'))
    for local, glob in LOCAL_VIEWS.items():
        conn.execute(f'CREATE VIEW oceanbase."{local}" AS SELECT * FROM "{glob}"')


def refresh_extras(conn, servers, tenants, sessions: int = 8) -> None:
    """Rewrite the extra tables' rows for ``servers`` x ``tenants``."""
    rows: dict[str, list] = {v: [] for v in EXTRA}
    pid = 0
    for ip, port in servers:
        rows["GV$OB_MEMORY"].append((500, ip, port, "DEFAULT_CTX_ID", "OmtTenant", 120, GIB // 2, GIB // 3))
        rows["GV$OB_MEMORY"].append((500, ip, port, "DEFAULT_CTX_ID", "KvstorCacheMb", 10, GIB, GIB))
        for tid, name in tenants:
            rows["GV$OB_TENANT_MEMORY_INFO"].append((tid, ip, port, 6 * GIB, 2 * GIB))
            for cache, size in (("user_row_cache", 256 << 20), ("user_block_cache", GIB), ("index_block_cache", 128 << 20)):
                rows["GV$OB_KVCACHE"].append((tid, ip, port, cache, size, 1, size, size // 8, 10000, 0.97,
                                              100000, 97000, 3000))
            for k in range(sessions if tid != 1 else 2):
                pid += 1
                rows["GV$OB_PROCESSLIST"].append((ip, port, port - 1, 3221487600 + pid, "app", "10.1.0.9:40000",
                                                  "db0", name, "Query" if k % 3 == 0 else "Sleep", k, "", None))
    for view, cols in EXTRA.items():
        conn.execute(f'DELETE FROM oceanbase."{view}"')
        marks = ", ".join("?" * len(cols))
        conn.executemany(f'INSERT INTO oceanbase."{view}" VALUES ({marks})', rows[view])
