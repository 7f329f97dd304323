"""The demo OBServer's tables in SQLite, built from :mod:`engine.ob.catalogue`.

Every view an OceanBase 4.x server has in the catalogue (the agent's whole
read set: audit, plan cache, sysstat, servers, tenants, units, memstore,
tenant memory, memory, KV cache, process list) becomes a table, filled by the
workload (:func:`engine.testbed.sysstat_catalog.view_rows`). Adapted here, not in
engine.ob:

- SQLite refuses a type name such as ``bigint(20) unsigned``: ``unsigned`` is
  dropped from the generated DDL (SQLite does not enforce types anyway);
- the local-node views ``V$...`` are SQLite views over their ``GV$`` tables
  (the demo has one observer, so no filter is needed).
"""
from __future__ import annotations

import re

from engine.testbed import schema

LOCAL_VIEWS = {"V$SYSSTAT": "GV$SYSSTAT", "V$OB_PLAN_CACHE_STAT": "GV$OB_PLAN_CACHE_STAT",
               "V$OB_SQL_AUDIT": "GV$OB_SQL_AUDIT", "V$OB_PLAN_CACHE_PLAN_STAT": "GV$OB_PLAN_CACHE_PLAN_STAT",
               "V$OB_SERVERS": "GV$OB_SERVERS", "V$OB_UNITS": "GV$OB_UNITS", "V$OB_MEMSTORE": "GV$OB_MEMSTORE"}
_UNSIGNED = re.compile(r"\s+unsigned\b", re.I)


def create_all(conn) -> None:
    """Every table and view, in the ``oceanbase`` database of ``conn``."""
    for stmt in schema.create_statements("sqlite"):
        conn.execute(_UNSIGNED.sub("", stmt).replace('CREATE TABLE "', 'CREATE TABLE oceanbase."', 1))
    for local, glob in LOCAL_VIEWS.items():
        conn.execute(f'CREATE VIEW oceanbase."{local}" AS SELECT * FROM "{glob}"')
