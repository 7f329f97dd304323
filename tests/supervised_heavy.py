"""A test worker whose module imports pymysql (cryptography and ssl behind it), as
ocp_exporter's and obstat2's modules do; it then runs as :func:`supervised.steady`."""
from __future__ import annotations

import pymysql  # noqa: F401  - the point: a heavy import at module level

from supervised import steady as main  # noqa: F401
