"""The central store against a real (durable) MariaDB: schema, exactly-once batches, merges."""
import pytest

from engine import config
from engine import monitordb
from engine.topsql.fields import EXTRA_DEFAULTS, GROUP_FIELDS, METRICS
from engine.errors import ConfigError
from engine.monitordb import rows, schema
from engine.monitordb.central import parse_url

pytestmark = pytest.mark.integration
WHO = rows.Ident(7, "c1", "hostA")


def central(url, **kw):
    sec = config.from_dict({"monitordb": {"url": url, **kw}}).monitordb
    return monitordb.central_for(sec)


def group(bucket, sql_id, user=200001, **metrics):
    m = dict.fromkeys(METRICS, 0)
    m.update(metrics)
    extra = list(EXTRA_DEFAULTS)
    extra[0] = user
    for name in ("ip_max_affected_rows", "ip_max_return_rows", "ip_max_partition_cnt"):
        if name in metrics:
            extra[GROUP_FIELDS.index(name) - len(GROUP_FIELDS)] = metrics.pop(name)
            del m[name]
    return (bucket, 1002, 500001, sql_id, "db0", f"select {sql_id}", *m.values(), *extra)


def stat(conn, sql_id):
    with conn.cursor() as cur:
        cur.execute("SELECT executions, elapsed_time, max_elapsed_time, user_client_ip_of_max_return_rows, "
                    "max_return_rows, last_fail_info FROM ob_hist_sql_audit_stat WHERE sql_id = %s", (sql_id,))
        out = cur.fetchall()
    conn.commit()
    return out


def test_url_and_secret():
    t = parse_url("mysql://mon:pw@db.example:2881/monitordb")
    assert (t.user, t.password, t.host, t.port, t.database) == ("mon", "pw", "db.example", 2881, "monitordb")
    assert "pw" not in repr(t)
    assert parse_url("mysql://mon@h/x", "fromfile").password == "fromfile"
    for bad in ("http://h/x", "mysql://h", "mysql://h/x;drop", "mysql://h:99999/x"):
        with pytest.raises(ConfigError):
            parse_url(bad)


def test_schema_is_created_versioned_and_partitioned(central_db):
    _, url = central_db
    c = central(url)
    conn = c.connect()
    assert c.schema["version"] == schema.VERSION
    assert all(c.schema["partitioned"].values())
    with conn.cursor() as cur:
        assert schema.version(cur) == schema.VERSION
        parts = schema.partitions(cur, "ob_hist_sql_audit_stat")
    assert parts[-1] == ("pmax", None) and len(parts) == 2
    c.close()
    again = central(url)                      # a second agent: same schema, no error
    again.connect()
    assert again.schema["version"] == schema.VERSION
    again.close()


def test_a_batch_is_applied_once_whatever_the_retries(central_db):
    """A batch re-sent after a lost acknowledgement (or a restart) must not count twice."""
    _, url = central_db
    c = central(url)
    b = 1_700_000_040
    batch = rows.stat_rows(WHO, ("10.0.0.1", 2882, 1002), [group(b, "A", executions=3, elapsed_sum=30,
                                                                 elapsed_max=20)], 60)
    assert c.apply("s1", "hostA", [(1, "stat", batch)])["applied"] == 1
    assert c.apply("s1", "hostA", [(1, "stat", batch)]) == {"applied": 0, "skipped": 1, "rows": 0}
    assert c.apply("s1", "hostA", [(1, "stat", batch), (2, "stat", batch)])["applied"] == 1
    assert stat(c.connect(), "A") == ((6, 60, 20, "", 0, 0),)
    # another stream (another agent) is counted on its own
    assert c.apply("s2", "hostB", [(1, "stat", batch)])["applied"] == 1
    assert stat(c.connect(), "A")[0][0] == 9
    c.close()


def test_merge_keeps_the_client_behind_the_maximum_and_the_latest_failure(central_db):
    _, url = central_db
    c = central(url)
    b = 1_700_000_040
    key = ("10.0.0.1", 2882, 1002)
    first = group(b, "M", executions=1, return_rows_max=5, ip_max_return_rows="10.9.0.1",
                  last_fail_info=(10 << 18) | 4012)
    second = group(b, "M", executions=1, return_rows_max=9, ip_max_return_rows="10.9.0.2",
                   last_fail_info=(9 << 18) | 5024)
    third = group(b, "M", executions=1, return_rows_max=7, ip_max_return_rows="10.9.0.3")
    for seq, g in enumerate((first, second, third), 1):
        c.apply("s", "h", [(seq, "stat", rows.stat_rows(WHO, key, [g], 60))])
    assert stat(c.connect(), "M") == ((3, 0, 0, "10.9.0.2", 9, (10 << 18) | 4012),)
    # another user is another row, as in OCP's key
    c.apply("s", "h", [(4, "stat", rows.stat_rows(WHO, key, [group(b, "M", user=9, executions=1)], 60))])
    assert len(stat(c.connect(), "M")) == 2
    c.close()
