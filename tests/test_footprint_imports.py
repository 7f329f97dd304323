"""What each worker imports is memory it pays on its own (docs/bench: footprint).

Workers are forked from ocp_agentd, so a module the supervisor already holds is
shared, but one a worker imports after the fork is private to it. A worker
must not load a heavy library it does not use: the logtailer with no
[monitordb] has no business with pymysql (and cryptography, ssl, decimal
behind it: about 10 MB of PSS).
"""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module, absent", [
    # urllib.request (http.client, email, ssl) only once an Alertmanager is posted to
    ("engine.workers.ob_logtailer", ("pymysql", "cryptography", "urllib.request", "http.client", "ssl")),
    ("engine.workers.ob_cleaner", ("pymysql", "cryptography", "prometheus_client")),
    ("engine.monitordb", ("pymysql",)),
    # pymysql without cryptography until an RSA password exchange (engine/ob/driver.py)
    ("engine.workers.obstat2", ("cryptography", "bcrypt")),
    ("engine.workers.ocp_exporter", ("cryptography", "bcrypt")),
    ("engine.memtrace", ("tracemalloc",)),
])
def test_worker_module_does_not_load_what_it_does_not_use(module, absent):
    code = f"import sys, {module}; print(' '.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} loads {out.stdout.strip()}"


def test_the_command_parser_does_not_load_the_rpc_client():
    """Every ``engine`` verb builds the whole parser, and ``engine start`` keeps what that
    imported for ocp_agentd's life (shared with every worker it forks): the pos_proxy client
    (http.client, ssl, email: about 2.3 MB) is imported by ``engine remote`` when it calls."""
    code = ("import sys, engine.cli; engine.cli.build_parser(); "
            "print(' '.join(m for m in ('engine.rpc.client', 'http.client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the parser loads {out.stdout.strip()}"
