"""ob_cleaner's logic: keep the log disk clean without deleting what must stay.

- :mod:`~engine.cleaner.policy`: targets and rules (anchored patterns, ages,
  disk threshold, keep percentage), obagent's defaults, config parsing;
- :mod:`~engine.cleaner.paths`, :mod:`~engine.cleaner.names`: which directories
  may be a target at all, which names are never deleted;
- :mod:`~engine.cleaner.listing`: read a directory (one level, no symlink
  followed) and the disk usage; the only reads of the filesystem;
- :mod:`~engine.cleaner.plan`: a pure function from a listing and a usage
  reading to the deletions, each with its reason;
- :mod:`~engine.cleaner.apply`: re-check each planned file, then unlink it by
  directory fd + name; one failing file never stops the run;
- :mod:`~engine.cleaner.openfiles`: whether a file is open in some process;
- :mod:`~engine.cleaner.run`: one pass over every target, for the worker;
- :mod:`~engine.cleaner.report`: counters per rule and the metrics message.
"""
