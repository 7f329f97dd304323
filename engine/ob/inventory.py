"""Every SQL text the agent sends to an OBServer, per version, with example arguments.

One list so that nothing escapes the fidelity checks (``tests/test_ob_fidelity.py``
parses each statement against :mod:`engine.ob.catalogue` and runs it on the
stand-in at 3.x and at 4.x) nor the privilege table of ``docs/ob.md``:

- the connection's version detection and ``svr_port`` check
  (:mod:`engine.ob.connection`);
- obstat2's audit, slice, restart and plan-cache statements
  (:mod:`engine.ob.views`, used by :mod:`engine.topsql`);
- ocp_exporter's queries (:mod:`engine.ob.queries`), with and without the
  local-server filter.

:func:`statements` returns ``(name, sql, args)``; ``args`` are plausible
values of the right kind for every ``%s`` (a server, a tenant, a cursor).
"""
from __future__ import annotations

from engine.ob import queries, views
from engine.ob.connection import VERSION_QUERIES

SERVER = ("10.0.0.1", 2882)             # the workload's first observer
TENANT = 1002
SAMPLE = 4096

# views statement name -> its example arguments
_VIEW_ARGS = {
    "audit_fetch": (*SERVER, TENANT, views.NO_CURSOR, 100),
    "audit_max_id": (*SERVER, TENANT),
    "server_ports": (SERVER[0],),
}


def statements(version: tuple) -> list[tuple[str, str, tuple]]:
    """Every (name, sql, args) the agent may send to a server of ``version``."""
    major = version[0]
    out = [(f"connection.version:{sql}", sql, ()) for sql in VERSION_QUERIES]
    for name in views.names():
        if name == "audit_fetch":
            sql = views.audit_fetch(major, SAMPLE)
        elif name == "plan_stat":
            continue
        else:
            sql = views.sql(name, major)
        out.append((f"views.{name}", sql, _VIEW_ARGS.get(name, ())))
    for suffix, server in (("", None), (":local", SERVER)):
        sql, args = views.plan_stat(major, SAMPLE, *(server or ()))
        out.append((f"views.plan_stat{suffix}", sql, args))
    tenants = queries.TENANTS_4X if version >= queries.V4 else queries.TENANTS_3X
    zones = [queries.ZONES] if version >= queries.V4 else []
    for query in [tenants] + zones + queries.queries_for(version):
        for suffix, server in (("", None), (":local", SERVER)):
            sql, args = query.statement(server)
            out.append((f"metrics.{query.name}{suffix}", sql, args))
    return out
