"""Retention in the central store: one lease holder at a time; partitions dropped, not rows."""
import threading
import time

import pytest

from engine import config, monitordb
from engine.monitordb import rows, schema
from engine.monitordb.retention import Retention
from engine.topsql.fields import EXTRA_DEFAULTS, METRICS

pytestmark = pytest.mark.integration


def central(url, **kw):
    return monitordb.central_for(config.from_dict({"monitordb": {"url": url, **kw}}).monitordb)


class Recording(Retention):
    """Records when it held the lease (acquire .. release), on one shared timeline."""

    def __init__(self, *a, log, **kw):
        super().__init__(*a, **kw)
        self.log = log

    def acquire(self):
        ok = super().acquire()
        if ok:
            self.log.append((self.holder, "in", time.monotonic()))
            time.sleep(0.02)            # a window another holder would fall into
        return ok

    def release(self):
        self.log.append((self.holder, "out", time.monotonic()))
        super().release()


def test_two_agents_racing_for_the_lease_never_both_prune(central_db):
    _, url = central_db
    central(url).connect()
    log, steps = [], []
    runners = [Recording(central(url, partition_hours=1), f"agent-{i}", retention_seconds=86400,
                         lease_seconds=30, log=log, on_step=lambda what, i=i: (steps.append(i), time.sleep(0.02)))
               for i in range(2)]
    ran = [0, 0]

    def race(i):
        for _ in range(15):
            ran[i] += runners[i].run()["ran"]

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    holder = None
    for who, what, _ in sorted(log, key=lambda e: e[2]):
        if what == "in":
            assert holder is None, f"{who} took the lease while {holder} held it"
            holder = who
        else:
            assert holder == who
            holder = None
    assert sum(ran) >= 2 and steps            # both tried, somebody pruned


def test_an_expired_lease_passes_on_and_the_old_holder_stops(central_db):
    _, url = central_db
    central(url).connect()
    a = Retention(central(url), "a", retention_seconds=86400, lease_seconds=1)
    b = Retention(central(url), "b", retention_seconds=86400, lease_seconds=1)
    assert a.acquire() and not b.acquire()
    time.sleep(1.5)
    assert b.acquire()
    assert not a.renew()                     # a's next step would stop its run
    assert b.renew()


def test_retention_drops_whole_partitions(central_db):
    _, url = central_db
    now = time.time()
    c = central(url, partition_hours=1)
    who = rows.Ident(0, "c1", "h")

    def group(t, sql_id):
        m = dict.fromkeys(METRICS, 0)
        m["executions"] = 1
        return (int(t) // 60 * 60, 1002, 1, sql_id, "db", "q", *m.values(), *EXTRA_DEFAULTS)

    batch = rows.stat_rows(who, ("10.0.0.1", 2882, 1002),
                           [group(now - 3 * 86400, "OLD"), group(now, "NOW"), group(now + 2.5 * 86400, "LATER")], 60)
    c.apply("s", "h", [(1, "stat", batch)])
    ret = Retention(central(url, partition_hours=1), "a", retention_seconds=86400, ahead=2,
                    clock=lambda: now + 3 * 86400)
    out = ret.run()
    assert out["ran"] and out["added"] >= 72 and out["dropped"] >= 1
    conn = c.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT sql_id FROM ob_hist_sql_audit_stat")
        assert {r[0] for r in cur.fetchall()} == {"LATER"}
        parts = schema.partitions(cur, "ob_hist_sql_audit_stat")
    conn.commit()
    assert parts[-1] == ("pmax", None)
    assert all(b > (now + 2 * 86400) * 1e6 for _, b in parts[:-1])



def test_a_holder_whose_clock_jumped_forward_drops_nothing_recent(central_db):
    """Retention reads the database's clock: an agent 10 years ahead (libfaketime on its process
    only) prunes as if it were on time, and this host's current partition survives."""
    import os
    import shutil
    import subprocess
    import sys
    if not shutil.which("faketime"):
        if os.environ.get("CI"):
            pytest.fail("faketime is not installed (scripts/install-system-deps.sh)")
        pytest.skip("faketime is not installed")
    _, url = central_db
    now = time.time()
    c = central(url, partition_hours=1)
    who = rows.Ident(0, "c1", "h")
    m = dict.fromkeys(METRICS, 0)
    m["executions"] = 1
    batch = rows.stat_rows(who, ("10.0.0.1", 2882, 1002),
                           [(int(now) // 60 * 60, 1002, 1, "NOW", "db", "q", *m.values(), *EXTRA_DEFAULTS)], 60)
    c.apply("s", "h", [(1, "stat", batch)])
    script = ("import sys, time; from engine import config, monitordb; "
              "from engine.monitordb.retention import Retention; "
              "assert time.time() > 2e9, 'faketime did not apply'; "
              "sec = config.from_dict({'monitordb': {'url': sys.argv[1], 'partition_hours': 1}}).monitordb; "
              "print(Retention(monitordb.central_for(sec), 'a', retention_seconds=86400).run())")
    done = subprocess.run(["faketime", "-f", "+3650d", sys.executable, "-c", script, url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "'ran': True" in done.stdout and "'dropped': 0" in done.stdout, done.stdout
    conn = c.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT sql_id FROM ob_hist_sql_audit_stat")
        assert {r[0] for r in cur.fetchall()} == {"NOW"}
    conn.commit()
