"""OBServer access: connections (:mod:`.connection`), the views' SQL
(:mod:`.views`, :mod:`.queries`; all of it listed in :mod:`.inventory`),
ocp_exporter's collection of those queries (:mod:`.metrics`) and
the view catalogue per OceanBase version (:mod:`.catalogue`: views and
columns, with their docs pages), the tenant id -> name map ocp_exporter
publishes for ob_logtailer (:mod:`.tenantmap`) and OBProxy's admin port
metrics (:mod:`.obproxy`). The stand-ins built from the catalogue (the
OB-shaped schema, the workload generator, the MariaDB launcher) live in
:mod:`engine.testbed`."""
