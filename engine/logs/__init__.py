"""OBServer log handling for ob_logtailer: following files, parsing, rules, alerts, sinks.

- :mod:`follow`: follows the log files (offsets, rotation, truncation, inode
  reuse) and checkpoints offsets atomically;
- :mod:`ledger`: a file known by its first bytes, the files of one name seen so far;
- :mod:`parse`: the facade over the native scanner (header parsing, lines, rules);
- :mod:`rules`: loads and validates ``conf/alert_rules.toml``;
- :mod:`alertlog`: alert.log (OB 4.2.3+), one event per line, matched by event id;
- :mod:`rulefile`: the rules file as the worker uses it (the last good copy, the fallback);
- :mod:`alerts`: alert records, grouping and throttling;
- :mod:`sinks`, :mod:`alertmanager`, :mod:`store`: where alerts go and how they are read back;
- :mod:`checkpoint`: offsets and open alert groups, written atomically;
- :mod:`metrics`: the counters snapshot for the ``alerts`` ring;
- :mod:`tailer`: the loop that ties them together for the worker;
- :mod:`synth`: realistic synthetic OBServer lines (bench, tests, demo).
"""
