"""obstat2's concern: TopSQL and plan-cache monitoring.

- :mod:`.collector`: one cycle (cursors per audit slice, gap and reset
  detection, plan snapshots), writing to
- :mod:`.store`: the sqlite store with retention (exactly-once per slice);
- :mod:`.fetch`: audit rows from pymysql's socket buffer into the native
  aggregator (``engine._native.topsql``, twin ``engine._ref.topsql``);
- :mod:`.plans`: plan-cache snapshot diffing;
- :mod:`.query`: the read side, :func:`query_topsql` and :func:`query_plans`
  (stable interface for ``engine topsql`` and pos_proxy);
- :mod:`.summary`: the message for the exporter.
"""
from engine.topsql.query import PLAN_SORTABLE, SORTABLE, query_plans, query_samples, query_topsql

__all__ = ["query_topsql", "query_plans", "query_samples", "SORTABLE", "PLAN_SORTABLE"]
