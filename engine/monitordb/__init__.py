"""The central store (OCP's MonitorDB) for a fleet: TopSQL, SlowSQL, plan deltas, alerts.

Every agent ships what its workers record locally to one MySQL-compatible
database (OceanBase in production, MariaDB in tests), in OCP's
``ob_hist_sql_audit_stat`` shape, so that one query answers across hosts.

- :mod:`.schema`: the tables (OCP's names), versioned creation, partitions;
- :mod:`.rows`: local records as central rows;
- :mod:`.spool`: the local outbox, bounded, written in the same transaction
  as the local store;
- :mod:`.central`: the pymysql connection and the exactly-once write path;
- :mod:`.shipper`: the thread that drains a spool in order;
- :mod:`.retention`: partition drops on the one host holding the lease;
- :mod:`.query`: cross-host TopSQL, SlowSQL and alerts (``engine topsql
  --store``, ``engine slowsql``, ``engine alerts --store``; ocp-server).

Wiring (this module): :func:`attach_obstat2` and :func:`alert_sink` give a
worker its spool and shipper when ``[monitordb] url`` is set; nothing changes
for a worker without one.
"""
from __future__ import annotations

import socket
from pathlib import Path

from engine.config import read_secret
from engine.monitordb import rows as rows_mod
from engine.monitordb import spool as spool_mod
from engine.monitordb.central import Central, Target, alert_row, parse_url
from engine.monitordb.retention import Retention
from engine.monitordb.shipper import Shipper

__all__ = ["Central", "Target", "parse_url", "target", "central_for", "ident", "attach_obstat2",
           "alert_sink", "Shipper", "Retention"]


def target(sec, url: str | None = None) -> Target:
    """The connection target of ``[monitordb]`` (or ``url``), password from its 0600 file or env."""
    password = read_secret(sec.password_file, sec.password_env, what="monitordb.password_file")
    return parse_url(url or sec.url, password)


def central_for(sec, url: str | None = None, *, create: bool = True) -> Central:
    """A :class:`Central` for ``[monitordb]`` (or ``url``); ``create=False`` for readers."""
    return Central(target(sec, url), connect_timeout=sec.connect_timeout, read_timeout=sec.read_timeout,
                   partitioned=sec.partitioned, partition_seconds=int(sec.partition_hours * 3600),
                   create=create)


def ident(cfg) -> rows_mod.Ident:
    sec = cfg.monitordb
    return rows_mod.Ident(sec.cluster_id, sec.cluster_name or cfg.ob.host or "default",
                          sec.host or socket.gethostname())


def _shipper(cfg, spool, who: rows_mod.Ident, retention: bool) -> Shipper:
    sec = cfg.monitordb
    central = central_for(sec)
    ret = None
    if retention:
        ret = Retention(central_for(sec), f"{who.host}/{spool.stream}",
                        retention_seconds=sec.retention_days * 86400, lease_seconds=sec.lease_seconds,
                        interval=sec.retention_interval, ahead=sec.partitions_ahead)
    return Shipper(spool, central, who.host, batch_records=sec.batch_records, retry_max=sec.retry_max,
                   retention=ret)


def attach_obstat2(collector, cfg, data_dir) -> Shipper | None:
    """Spool obstat2's batches in its store's transactions and ship them; None if no store is set.

    The spool's tables live in ``topsql.db`` itself, so a slice's aggregates,
    its samples, its cursor and the batches for the central store commit
    together (or not at all).
    """
    sec = cfg.monitordb
    if not sec.configured:
        return None
    who = ident(cfg)
    spool = spool_mod.Spool(collector.store.path, who.host, sec.spool_max_bytes)
    bucket = cfg.workers.obstat2.bucket_seconds

    def ship(db, slice_key, groups, kept):
        spool_mod.append_tx(db, "stat", rows_mod.stat_rows(who, slice_key, groups, bucket), sec.spool_max_bytes)
        spool_mod.append_tx(db, "sample", rows_mod.sample_rows(who, kept), sec.spool_max_bytes)

    def ship_plans(db, now, deltas):
        spool_mod.append_tx(db, "plan", rows_mod.plan_rows(who, now, deltas, bucket), sec.spool_max_bytes)

    collector.ship, collector.ship_plans = ship, ship_plans
    return _shipper(cfg, spool, who, retention=True).start()


class AlertSink:
    """ob_logtailer's third sink (beside the alert log and Alertmanager's spool)."""

    def __init__(self, cfg, data_dir):
        self.who = ident(cfg)
        self.spool = spool_mod.Spool(Path(data_dir) / "monitordb_spool.db", self.who.host,
                                     cfg.monitordb.spool_max_bytes)
        self.shipper = _shipper(cfg, self.spool, self.who, retention=False).start()

    def append(self, events: list[dict]) -> None:
        if events:
            self.spool.append("alert", [alert_row(self.who.cluster_name, self.who.host, e) for e in events])
            self.shipper.wake()

    def sync(self) -> None:
        """Each append is its own sqlite commit already."""

    def close(self) -> None:
        self.shipper.stop()
        self.spool.close()


def alert_sink(cfg, data_dir) -> AlertSink | None:
    return AlertSink(cfg, data_dir) if cfg.monitordb.configured else None
