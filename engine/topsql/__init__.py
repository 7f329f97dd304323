"""obstat2's concern: TopSQL and plan-cache monitoring.

- :mod:`.collector`: one cycle (cursors per audit slice, gap and reset
  detection, plan snapshots), writing to
- :mod:`.store`: the sqlite store with retention (exactly-once per slice);
- :mod:`.fetch`: audit rows from pymysql's socket into the native
  aggregator (``engine._native.topsql``, twin ``engine._ref.topsql``);
- :mod:`.fields`: the row layouts (audit columns, group metrics, SlowSQL
  samples) and the rules both aggregators share;
- :mod:`.plans`: plan-cache snapshot diffing;
- :mod:`.query`: the read side, :func:`~.query.query_topsql`,
  :func:`~.query.query_plans` and :func:`~.query.query_samples` (stable
  interface for ``engine topsql`` and pos_proxy);
- :mod:`.summary`: the message for the exporter.

The package imports none of its modules: each is imported by its own name
(``engine.topsql.query``), so that no module's import depends on which of
them was imported first (the package once re-exported :mod:`.query`, whose
store imported the package back).
"""
