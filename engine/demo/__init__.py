"""The embedded demo's simulated OBServer: a MySQL-protocol server over SQLite
(:mod:`~engine.demo.mysqld`; the agent's OB SQL rewritten for SQLite by
:mod:`~engine.demo.sqlmap`, the OB-shaped tables of :mod:`~engine.demo.views`),
an OBProxy admin port stand-in (:mod:`~engine.demo.obproxy`), synthetic
observer logs with rotation (:mod:`~engine.demo.oblog`), and
:mod:`~engine.demo.simulator` tying them to the workload generator of
:mod:`engine.testbed`; :mod:`~engine.demo.child` runs it in a process of its
own (``engine demo``, the fleet demo, tests)."""
