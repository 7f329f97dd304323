"""Stand-ins for an OBServer, shared by the tests, the benchmarks and
``engine demo``: the OB-shaped tables (:mod:`.schema`, DDL generated from
:mod:`engine.ob.catalogue`), a workload generator that fills them the way
OceanBase does (:mod:`.workload`, with the sysstat counters and small views
of :mod:`.sysstat_catalog`) and a private MariaDB server to hold them
(:mod:`.mariadb`); :func:`.ports.free_port` for any server they start.

Why a room of its own: :mod:`engine.ob` is how the agent reads a real
OBServer (connections, the views' SQL, versions) and nothing in it fakes
one; :mod:`engine.demo` is the embedded simulator (SQLite behind a
MySQL-protocol server, synthetic logs) and needs no system packages, while the
MariaDB launcher here is for tests and bench. Both the demo and the tests
fill their tables with the same :class:`~.workload.Workload`, so it lives
where both can import it without one depending on the other. No production
worker imports this package.
"""
