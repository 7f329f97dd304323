"""The central writer against real lock conflicts on MariaDB: a deadlock (1213) and a lock
wait timeout (1205) make the transaction run again at once, whole, and count once."""
import threading

import pytest

from conftest import wait_for
from engine import config
from engine import monitordb
from engine.monitordb import rows
from engine.monitordb.central import WRITES
from test_monitordb_central import WHO, group, stat

pytestmark = pytest.mark.integration
KEY = ("10.0.0.1", 2882, 1002)


def central(url):
    return monitordb.central_for(config.from_dict({"monitordb": {"url": url}}).monitordb)


def waiting_trx(server) -> int:
    """Transactions of the server waiting on a row lock now.

    Polled every 0.2 s, not at wait_for's 50 Hz: a new root connection every 20 ms kept the
    racers from ever being seen waiting (the test failed every time on a quiet machine)."""
    with server.connect(database=None, root=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'")
        return cur.fetchone()[0]


def interloper(server, url, batch, heavy_rows: int):
    """Another writer holding the lock of the stat row the agent will upsert (uncommitted),
    having changed ``heavy_rows`` other rows first (so InnoDB makes the agent its victim)."""
    other = central(url)
    conn = other.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS filler (id INT PRIMARY KEY)")
        conn.commit()
        cur.executemany("INSERT INTO filler VALUES (%s)", [(i,) for i in range(heavy_rows)])
        cur.executemany(WRITES["stat"], [tuple(r) for r in batch])
    return other


def apply_in_thread(c, batches, out):
    def run():
        try:
            out["result"] = c.apply("agent", "hostA", batches)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_deadlock_reruns_the_transaction_once_and_counts_once(central_db):
    server, url = central_db
    c = central(url)
    c.connect()
    batch = rows.stat_rows(WHO, KEY, [group(1_700_000_040, "D", executions=3, elapsed_sum=30)], 60)
    other = interloper(server, url, batch, heavy_rows=2000)
    out = {}
    t = apply_in_thread(c, [(1, "stat", batch)], out)   # holds the stream row, waits for the stat row
    wait_for(lambda: waiting_trx(server) >= 1, 20, "the agent waiting on the stat row lock", interval=0.2)
    with other.conn.cursor() as cur:            # the interloper now wants the stream row: a cycle
        cur.execute("SELECT last_seq FROM monitordb_stream WHERE stream = 'agent' FOR UPDATE")
    other.conn.rollback()                       # it won the deadlock; it gives its rows up
    other.close()
    t.join(30)
    assert "error" not in out, out
    assert out["result"]["applied"] == 1
    assert c.lock_retries == 1                  # InnoDB chose the agent: one immediate re-run
    assert stat(c.connect(), "D")[0][:2] == (3, 30)
    assert c.apply("agent", "hostA", [(1, "stat", batch)])["applied"] == 0
    c.close()


def test_a_lock_wait_timeout_rolls_the_whole_transaction_back_and_reruns_it(central_db):
    server, url = central_db
    c = central(url)
    with c.connect().cursor() as cur:
        cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
    first = rows.stat_rows(WHO, KEY, [group(1_700_000_040, "W", executions=1)], 60)
    c.apply("agent", "hostA", [(1, "stat", first)])
    w = rows.stat_rows(WHO, KEY, [group(1_700_000_040, "W", executions=2)], 60)
    w2 = rows.stat_rows(WHO, KEY, [group(1_700_000_100, "W2", executions=5)], 60)
    other = interloper(server, url, w2, heavy_rows=1)   # holds W2's row only
    out = {}
    t = apply_in_thread(c, [(2, "stat", w), (3, "stat", w2)], out)   # W upserted, W2 times out
    wait_for(lambda: c.lock_retries >= 1, 20, "a lock wait timeout")
    other.conn.rollback()
    other.close()
    t.join(30)
    assert "error" not in out, out
    # MariaDB undoes only the timed-out statement; W's first upsert must not stay behind twice
    assert stat(c.connect(), "W")[0][0] == 3
    assert stat(c.connect(), "W2")[0][0] == 5
    c.close()


def test_lock_errors_are_retried_a_bounded_number_of_times(central_db):
    server, url = central_db
    c = central(url)
    with c.connect().cursor() as cur:
        cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
    batch = rows.stat_rows(WHO, KEY, [group(1_700_000_040, "B", executions=1)], 60)
    other = interloper(server, url, batch, heavy_rows=1)
    try:
        with pytest.raises(Exception) as info:
            c.apply("agent", "hostA", [(1, "stat", batch)])
        assert info.value.args[0] == 1205
        assert c.lock_retries == monitordb.central.RETRIES
    finally:
        other.conn.rollback()
        other.close()
    assert c.apply("agent", "hostA", [(1, "stat", batch)])["applied"] == 1
    c.close()


def test_agents_racing_for_a_new_retention_lease_deadlock_and_one_takes_it(central_db):
    """Two agents' INSERT IGNORE of the lease row wait on a third's; when it commits, both hold a
    shared lock and want it exclusive: InnoDB kills one, whose take must simply run again."""
    from engine.monitordb.retention import Retention
    server, url = central_db
    first = central(url)
    first.connect()
    with first.conn.cursor() as cur:
        cur.execute("INSERT IGNORE INTO monitordb_lease (name) VALUES ('retention')")   # uncommitted
    racers = [Retention(central(url), f"agent-{i}", retention_seconds=86400) for i in range(2)]
    out: dict = {}

    def take(i):
        try:
            out[i] = racers[i].acquire()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out[i] = exc
    threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: waiting_trx(server) >= 2, 20, "both racers waiting on the new lease row", interval=0.2)
    first.conn.commit()
    for t in threads:
        t.join(30)
    assert sorted(out.values(), key=str) == [False, True], out
    assert sum(r.central.lock_retries for r in racers) == 1
    for r in racers:
        r.central.close()
    first.close()
