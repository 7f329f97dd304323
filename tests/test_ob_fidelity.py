"""Every SQL text the agent sends, checked against the view catalogue and run on the stand-in at 3.x and 4.x.

Static part (no database): each statement of :func:`engine.ob.inventory.statements`
is parsed (sqlglot, MySQL dialect) and every view and column it names must be
in :mod:`engine.ob.catalogue` for that version. A source scan makes sure no
view is read outside the inventory.

Integration part: the MariaDB stand-in plays 4.2.1 and 3.1.5 (tables from the
catalogue, ``version()`` as those servers answer it), the workload fills it,
and every statement must run and return rows; then the semantics the issue
fixed (local sessions, 3.x plan cache, SQL plans only, 3.x slices from units).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot.optimizer.qualify import qualify

from engine import config
from engine.config import ObSection
from engine.ob import catalogue, inventory, metrics, views
from engine.ob.connection import ObConnection, ObError
from engine.testbed.workload import Workload, Writer

ROOT = Path(__file__).resolve().parents[1]
DIALECT = "mysql, normalization_strategy = lowercase"
VERSIONS = [(3, 1, 5), (3, 2, 3, 1), (4, 0, 0, 0), (4, 2, 1, 0), (4, 3, 3, 0)]
STAND_INS = ("catalogue.py", "schema.py", "mariadb.py", "workload.py", "sysstat_catalog.py", "inventory.py")


def problems(sql: str, version: tuple) -> list[str]:
    """What in ``sql`` the catalogue lacks at ``version`` (views, then columns)."""
    expr = sqlglot.parse_one(sql.replace("%s", "0"), read=DIALECT)
    out = []
    for table in expr.find_all(sqlglot.exp.Table):
        if table.db and table.db.lower() != catalogue.DATABASE:
            out.append(f"{table.db}.{table.name}: not in database oceanbase")
        elif catalogue.lookup(table.name, version) is None:
            out.append(f"view {table.name} does not exist at {version}")
    if out:
        return out
    schema = {catalogue.DATABASE: {name.lower(): {c.lower(): "text" for c, _ in v.columns_at(version)}
                                   for name, v in catalogue.views_at(version).items()}}
    try:
        qualify(expr, schema=schema, dialect=DIALECT, db=catalogue.DATABASE, validate_qualify_columns=True)
    except sqlglot.errors.OptimizeError as exc:
        out.append(f"{exc}")
    return out


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: ".".join(map(str, v)))
def test_every_statement_names_only_catalogued_views_and_columns(version):
    stmts = inventory.statements(version)
    assert len(stmts) >= 15
    bad = {name: p for name, sql, _ in stmts if (p := problems(sql, version))}
    assert bad == {}


def test_the_check_catches_what_the_issue_found():
    """The checker is not a rubber stamp: the statements before the fixes fail it."""
    assert problems("SELECT tenant_id, ip AS svr_ip, port AS svr_port FROM oceanbase.gv$plan_cache_stat",
                    (3, 2, 3)) == ["Column 'ip' could not be resolved. Line: 1, Col: 20"]
    assert problems("SELECT hold FROM oceanbase.GV$OB_TENANT_MEMORY_INFO", (4, 2, 1)) == \
        ["view GV$OB_TENANT_MEMORY_INFO does not exist at (4, 2, 1)"]
    assert problems("SELECT request_id FROM oceanbase.GV$OB_SQL_AUDIT", (3, 1, 5))       # a 4.x name at 3.x
    assert problems("SELECT sql_exec_id FROM oceanbase.gv$sql_audit", (3, 1, 5))          # a 4.x-only column
    assert problems("SELECT object_type FROM oceanbase.gv$plan_cache_plan_stat", (3, 2, 3)) != []


def test_no_view_is_read_outside_the_inventory():
    """Every ``oceanbase.<view>`` in engine/ob and engine/topsql appears in an inventoried statement."""
    sent = " ".join(sql.lower() for v in VERSIONS for _, sql, _ in inventory.statements(v))
    named = set()
    for folder in ("engine/ob", "engine/topsql"):
        for path in (ROOT / folder).glob("*.py"):
            if path.name in STAND_INS:
                continue
            named |= {(path.name, m.lower()) for m in re.findall(r"oceanbase\.([A-Za-z_$#0-9]+)", path.read_text())}
    missing = {(f, v) for f, v in named if f"oceanbase.{v}" not in sent}
    assert named and missing == set()


# ---------------------------------------------------------------- on the stand-in

def fill(server, **kw):
    conn = server.connect()
    wl = Workload(Writer(conn, version=server.version), n_sql=100, **kw)
    wl.step(600)
    wl.refresh_views()
    return wl


def connection(server) -> ObConnection:
    return ObConnection(ObSection(host=server.host, port=server.port, user=server.user), server.password)


def run_everything(server, major: int) -> dict:
    conn = connection(server)
    conn.query("SELECT 1")
    assert conn.major == major                       # detected from the server, not assumed
    failed, empty = {}, []
    for name, sql, args in inventory.statements(conn.version):
        try:
            rows = conn.query(sql, args or None)
        except ObError as exc:
            failed[name] = exc.reason
            continue
        if not rows or all(v is None for v in rows[0]):
            empty.append(name)
    conn.close()
    return {"failed": failed, "empty": empty}


@pytest.mark.integration
def test_every_statement_runs_and_finds_rows_on_the_4x_stand_in(ob_tables):
    fill(ob_tables)
    got = run_everything(ob_tables, 4)
    assert got == {"failed": {}, "empty": []}


@pytest.mark.integration
def test_every_statement_runs_and_finds_rows_on_the_3x_stand_in(ob3_tables):
    fill(ob3_tables)
    got = run_everything(ob3_tables, 3)
    # 3.1 has no ob_version(): the first detection query fails there, by design, and the next answers
    assert got == {"failed": {"connection.version:SELECT ob_version()": "query"}, "empty": []}


def collected(server, version, local=None):
    conn = connection(server)
    conn.query("SELECT 1")
    got = metrics.collect(conn, conn.version, lambda reason: None, local)
    conn.close()
    assert conn.version[0] == version
    return got, {f.name: f for f in got.families}


@pytest.mark.integration
def test_exporter_at_3x_reads_the_plan_cache_by_svr_ip_and_port(ob3_tables):
    fill(ob3_tables)
    got, fams = collected(ob3_tables, 3, ("10.0.0.1", 2882))
    assert all(r.ok for r in got.results), got.results
    samples = fams["ob_plan_cache_memory_bytes"].samples
    assert samples and {s.labels["svr_ip"] for s in samples} == {"10.0.0.1"}
    assert {s.labels["tenant_name"] for s in fams["ob_sysstat"].samples} == {"sys", "mysql_a", "mysql_b"}


@pytest.mark.integration
def test_sessions_are_this_servers_with_zero_for_none_and_active_by_state(ob_tables):
    wl = fill(ob_tables, sessions=6)
    with ob_tables.connect() as c, c.cursor() as cur:            # one tenant without any session here
        cur.execute("DELETE FROM GV$OB_PROCESSLIST WHERE TENANT = 'mysql_b' AND SVR_IP = '10.0.0.1'")
        cur.execute("UPDATE GV$OB_PROCESSLIST SET COMMAND = 'Query' WHERE STATE = 'SLEEP' AND TENANT = 'mysql_a'"
                    " AND SVR_IP = '10.0.0.1' LIMIT 1")                # a command that is no running statement
    assert len(wl.servers) == 2
    _, fams = collected(ob_tables, 4, ("10.0.0.1", 2882))
    total = {s.labels["tenant_name"]: s.value for s in fams["ob_all_session_num"].samples}
    active = {s.labels["tenant_name"]: s.value for s in fams["ob_active_session_num"].samples}
    assert total == {"sys": 2, "mysql_a": 6, "mysql_b": 0}       # not both servers' sessions
    assert active == {"sys": 1, "mysql_a": 2, "mysql_b": 0}      # STATE 'ACTIVE', not COMMAND <> 'Sleep'


@pytest.mark.integration
def test_plan_snapshot_keeps_sql_plans_only(ob_tables, tmp_path, monkeypatch):
    from engine.topsql.collector import Collector
    wl = fill(ob_tables, servers=(("10.0.0.1", 2882),))
    with ob_tables.connect() as c, c.cursor() as cur:
        cur.execute("INSERT INTO GV$OB_PLAN_CACHE_PLAN_STAT (TENANT_ID, SVR_IP, SVR_PORT, PLAN_ID, SQL_ID, "
                    "FIRST_LOAD_TIME, EXECUTIONS, OBJECT_TYPE) VALUES "
                    "(1002, '10.0.0.1', 2882, 99, 'PROC1', now(), 5, 'PROCEDURE')")
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob_tables.password)
    cfg = config.from_dict({"ob": ob_tables.ob_config()}, home=str(tmp_path))
    col = Collector(cfg, tmp_path / "d")
    report = col.snapshot_plans(col.connection())
    assert report["plans"] == len(wl.plans) > 0                   # the procedure is not a plan
    col.close()


@pytest.mark.integration
def test_3x_slices_come_from_the_units_not_the_audit(ob3_tables, tmp_path, monkeypatch):
    from engine.topsql.collector import Collector
    wl = fill(ob3_tables, servers=(("10.0.0.1", 2882),), tenants=((1, "sys"), (1002, "a"), (1004, "b")))
    with ob3_tables.connect() as c, c.cursor() as cur:            # tenant 1004 has run nothing yet
        cur.execute("DELETE FROM gv$sql_audit WHERE tenant_id = 1004")
    assert "sql_audit" not in views.sql("audit_slices", 3)
    monkeypatch.setenv("OCP_AGENT_OB_PASSWORD", ob3_tables.password)
    cfg = config.from_dict({"ob": ob3_tables.ob_config(), "workers": {"obstat2": {"plan_interval": 3600.0}}},
                           home=str(tmp_path))
    col = Collector(cfg, tmp_path / "d")
    report = col.cycle()
    assert col.connection().major == 3
    with ob3_tables.connect() as c, c.cursor() as cur:
        cur.execute("SELECT count(*) FROM gv$sql_audit")
        (rows,) = cur.fetchone()
    assert report["slices"] == 3                                  # 1004 listed from its unit
    assert report["rows"] == rows > 0 and report["lost"] == 0
    assert len(wl.servers) == 1
    col.close()


def test_idle_newest_id_is_one_row_from_the_end_not_an_aggregate():
    for major in (3, 4):
        text = views.sql("audit_max_id", major)
        assert "max(" not in text.lower() and text.endswith("ORDER BY request_id DESC LIMIT 1")


@pytest.mark.integration
def test_the_newest_id_query_agrees_with_max(ob_tables):
    fill(ob_tables)
    conn = connection(ob_tables)
    for key in (("10.0.0.1", 2882, 1002), ("10.0.0.2", 2882, 1)):
        (newest,), = conn.query(views.sql("audit_max_id", 4), key)
        (want,), = conn.query("SELECT max(request_id) FROM oceanbase.GV$OB_SQL_AUDIT WHERE svr_ip = %s "
                              "AND svr_port = %s AND tenant_id = %s", key)
        assert newest == want
    assert conn.query(views.sql("audit_max_id", 4), ("10.9.9.9", 1, 1)) == []
    conn.close()


# ---------------------------------------------------------------- docs/ob.md's table

def reads(version: tuple) -> dict[str, set[str]]:
    """view -> the columns the agent's statements read of it at ``version``."""
    schema = {catalogue.DATABASE: {name.lower(): {c.lower(): "text" for c, _ in v.columns_at(version)}
                                   for name, v in catalogue.views_at(version).items()}}
    out: dict[str, set[str]] = {}
    for _, sql, _ in inventory.statements(version):
        expr = qualify(sqlglot.parse_one(sql.replace("%s", "0"), read=DIALECT), schema=schema,
                       dialect=DIALECT, db=catalogue.DATABASE)
        tables = {t.alias_or_name: catalogue.lookup(t.name, version).name for t in expr.find_all(sqlglot.exp.Table)}
        for t in tables.values():
            out.setdefault(t, set())
        for col in expr.find_all(sqlglot.exp.Column):
            if col.table in tables:
                out[tables[col.table]].add(col.name.upper())
    return out


def doc_table() -> str:
    """The markdown table of docs/ob.md: view, versions, columns read, privilege, docs page."""
    rows = ["| view | read at | columns the agent reads | privilege | checked against |",
            "|---|---|---|---|---|"]
    by_view: dict[str, dict] = {}
    for version, label in (((3, 1, 5), "3.x"), ((4, 3, 3, 0), "4.x")):
        for view, cols in reads(version).items():
            entry = by_view.setdefault(view, {"labels": [], "cols": set()})
            entry["labels"].append(label)
            entry["cols"] |= cols
    for view in sorted(by_view, key=lambda v: (v.startswith("__"), v.lower())):
        spec = next(v for v in catalogue.CATALOGUE if v.name == view)
        cols = ", ".join(sorted(c.lower() for c in by_view[view]["cols"])) or "(none: a count)"
        rows.append(f"| `{view}` | {' and '.join(by_view[view]['labels'])} | {cols} | {spec.privilege} | "
                    f"{spec.doc} |")
    return "\n".join(rows) + "\n"


def test_docs_ob_md_lists_every_view_and_column_the_agent_reads():
    text = (ROOT / "docs" / "ob.md").read_text()
    assert doc_table() in text, "regenerate: python -c 'import test_ob_fidelity as t; print(t.doc_table())'"


@pytest.mark.integration
def test_obagent_event_table_index_and_unit_config_metrics(ob_tables):
    """ob_waitevent_*, ob_system_event_* (IDLE left out, obagent's groups), ob_table_num and
    ob_index_error_num (rootservice's agent only), ob_unit_config_* on the 4.x stand-in."""
    from engine.testbed.sysstat_catalog import _events
    wl = fill(ob_tables)
    with ob_tables.connect() as c, c.cursor() as cur:
        cur.execute("UPDATE CDB_INDEXES SET STATUS = 'UNUSABLE' WHERE CON_ID = 1004 AND INDEX_NAME = 'idx_t_3'")
    got, fams = collected(ob_tables, 4, ("10.0.0.1", 2882))
    assert all(r.ok for r in got.results), got.results
    rows = [r for r in _events(wl) if r[1] == "10.0.0.1" and r[0] == 1002]
    waits = {s.labels["tenant_name"]: s.value for s in fams["ob_waitevent_wait"].samples}
    assert waits["mysql_a"] == sum(r[8] for r in rows if r[7] != "IDLE") > 0
    seconds = {s.labels["tenant_name"]: s.value for s in fams["ob_waitevent_wait_seconds"].samples}
    assert seconds["mysql_a"] == pytest.approx(sum(r[12] for r in rows if r[7] != "IDLE") / 1e6)
    groups = {s.labels["event_group"]: s.value for s in fams["ob_system_event_total_waits"].samples
              if s.labels["tenant_name"] == "mysql_a"}
    assert groups == {"INTERNAL": rows[0][8], "IO": rows[1][8], "SYNC_RPC": rows[2][8], "ROW_LOCK_WAIT": rows[3][8],
                      "LATCH": rows[4][8]}
    assert {s.labels["svr_ip"] for s in fams["ob_system_event_time_waited"].samples} == {"10.0.0.1"}
    assert {s.labels["tenant_name"]: s.value for s in fams["ob_table_num"].samples} == \
        {"sys": 5, "mysql_a": 20, "mysql_b": 20}
    assert [s.value for s in fams["ob_index_error_num"].samples] == [1]
    config = {(s.labels["tenant_name"], s.labels["unit_config_name"]): s.value
              for s in fams["ob_unit_config_max_memory_bytes"].samples}
    assert config == {("sys", "unit_sys"): 8 << 30, ("mysql_a", "unit_mysql_a"): 8 << 30,
                      ("mysql_b", "unit_mysql_b"): 8 << 30}
    assert {s.labels["svr_ip"] for s in fams["ob_unit_config_min_iops"].samples} == {"10.0.0.1"}
    _, other = collected(ob_tables, 4, ("10.0.0.2", 2882))      # no rootservice there: no cluster-wide counts
    assert "ob_table_num" not in other and "ob_index_error_num" not in other
    assert other["ob_waitevent_wait"].samples
