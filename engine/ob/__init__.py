"""OBServer access: connections (:mod:`.connection`), the views' SQL
(:mod:`.views`, :mod:`.metrics`; all of it listed in :mod:`.inventory`), the
view catalogue every stand-in is built from (:mod:`.catalogue`: views and
columns per OceanBase version, with their docs pages), the OB-shaped schema
(:mod:`.schema`), the MariaDB stand-in (:mod:`.mariadb`) and its workload
generator (:mod:`.workload`)."""
