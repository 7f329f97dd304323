"""OBServer access: connections (:mod:`.connection`), the views' SQL
(:mod:`.views`), the OB-shaped schema (:mod:`.schema`), the MariaDB stand-in
(:mod:`.mariadb`) and its workload generator (:mod:`.workload`)."""
