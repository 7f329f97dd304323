"""ocp_exporter's own logic, beside its thin worker module
(:mod:`engine.workers.ocp_exporter`): :mod:`.collect` is one collection
(OB part, summaries, host part rendered into the snapshots of every path);
:mod:`.summaries` keeps the latest full-snapshot message of each monitor
worker (read from the rings; the messages are :mod:`engine.messages`) and
renders it as families.

Elsewhere: the OB queries are :mod:`engine.ob.queries` (run by
:mod:`engine.ob.metrics`), the host series come
from node_exporter's board (:mod:`engine.collectors`), and rendering and
serving the exposition is :mod:`engine.exposition`.
"""
