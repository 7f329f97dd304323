"""Real agents for the ocp-server tests: ``engine start --foreground`` per home, on loopback.

:class:`Agent` writes a config (pos_proxy, node_exporter, obstat2 and
ob_logtailer; no ``[ob]``: the monitors wait for the server's push), starts
the real ``ocp_agentd`` by PID and can SIGKILL it (its workers die with it)
and start it again. Each has its own home, ports, log directory and secret.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from conftest import wait_for
from engine.osapi import stop_process
from engine.testbed.ports import free_port

OFF = ("ocp_exporter", "ob_cleaner")


class Agent:
    def __init__(self, base: Path, name: str, secret: str, env: dict):
        self.name, self.base, self.secret = name, base, secret
        base.mkdir(parents=True)
        self.log_dir = base / "oblog"
        self.log_dir.mkdir()
        (self.log_dir / "observer.log").write_text("")
        self.secret_file = base / "secret"
        self.secret_file.write_text(secret)
        self.secret_file.chmod(0o600)
        self.port, self.node_port = free_port(), free_port()
        self.config = base / "agent.toml"
        off = "".join(f"[workers.{w}]\nenabled = false\n" for w in OFF)
        self.config.write_text(
            f'[agent]\nhome = "{base / "home"}"\ninstance = "srv{os.getpid()}{name}"\n'
            f'[supervisor]\ntick = 0.1\nmin_uptime = 1.0\n'
            f'[workers.pos_proxy]\nbind = "127.0.0.1"\nport = {self.port}\n'
            f'secret_file = "{self.secret_file}"\nfile_roots = ["{self.log_dir}"]\n'
            f'[workers.pos_proxy.commands.hello]\nargv = ["/bin/echo", "hello", "{{who}}"]\n'
            f'params.who = {{type = "str", pattern = "[a-z0-9-]+"}}\n'
            f'[workers.node_exporter]\nbind = "127.0.0.1"\nport = {self.node_port}\ninterval = 5.0\n'
            f'[workers.obstat2]\ninterval = 1.0\n'
            f'[workers.ob_logtailer]\nlog_dir = "{self.log_dir}"\n{off}')
        self.env = {**os.environ, **env}
        self.proc = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Agent":
        self.proc = subprocess.Popen([sys.executable, "-m", "engine", "-c", str(self.config), "start",
                                      "--foreground"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._listening, 60, f"{self.name}'s pos_proxy")
        return self

    def _listening(self) -> bool:
        assert self.proc.poll() is None, f"{self.name}: ocp_agentd exited with {self.proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL ocp_agentd; its workers die with it (wait until pos_proxy is gone)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

        def closed():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return False
            except OSError:
                return True
        wait_for(closed, 30, f"{self.name}'s pos_proxy gone")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 30)
