"""The embedded demo's simulated OBServer: a MySQL-protocol server over SQLite
(:mod:`~engine.demo.mysqld`), synthetic observer logs with rotation
(:mod:`~engine.demo.oblog`), and :mod:`~engine.demo.simulator` tying them to
the workload generator of :mod:`engine.testbed`; :mod:`~engine.demo.child`
runs it in a process of its own (``engine demo``, the fleet demo, tests)."""
