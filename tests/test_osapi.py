"""Pid files and process identity: what proves that a pid is still the process a file names."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from engine import osapi


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_pid_file_stays_provable_when_the_wall_clock_is_set(tmp_path, sleeper, monkeypatch):
    """An NTP step after boot moves every wall-clock start time; ours must not move."""
    path = tmp_path / "x.pid"
    osapi.write_pidfile(path, sleeper.pid)
    owner = osapi.read_pidfile(path)
    assert owner[0] == sleeper.pid and osapi.is_same_process(*owner)
    stepped = psutil.boot_time() + 3600.0
    monkeypatch.setattr(psutil, "boot_time", lambda: stepped)
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: stepped)  # noqa: SLF001
    assert osapi.is_same_process(*osapi.read_pidfile(path))
    with pytest.raises(osapi.PidFileBusy):
        osapi.write_pidfile(path)                     # still busy: not taken for stale


def test_a_zombie_or_another_process_under_the_same_pid_is_not_the_owner(tmp_path, sleeper):
    start = osapi.process_create_time(sleeper.pid)
    assert not osapi.is_same_process(sleeper.pid, start + 1.0)     # pid reused by a later process
    sleeper.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(sleeper.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not osapi.is_same_process(sleeper.pid, start)            # dead, not yet reaped
    (tmp_path / "x.pid").write_text(f"{sleeper.pid} {start}\n")
    osapi.write_pidfile(tmp_path / "x.pid")                          # stale: replaced
    assert osapi.read_pidfile(tmp_path / "x.pid")[0] == os.getpid()


def test_remove_pidfile_only_if_it_still_names_us(tmp_path):
    path = tmp_path / "x.pid"
    path.write_text("1 5.0\n")
    osapi.remove_pidfile(path)
    assert path.exists()
    osapi.remove_pidfile(path, pid=1)
    assert not path.exists()


def test_a_server_started_with_dies_with_us_does_not_outlive_its_starter(tmp_path):
    """What tests and benches start (MariaDB, Prometheus...) dies with an interrupted run."""
    import signal
    import subprocess
    import sys
    import time

    import psutil
    pidfile = tmp_path / "server.pid"
    starter = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from engine.osapi import dies_with_us\n"
        "p = subprocess.Popen(['sleep', '600'], preexec_fn=dies_with_us())\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(600)\n")])
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server = int(pidfile.read_text())
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        while psutil.pid_exists(server) and psutil.Process(server).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the server outlived its starter"
            time.sleep(0.02)
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()


def test_stop_process_terms_then_kills_and_reaps():
    """osapi.stop_process, the one stop of a subprocess child (tests, bench, the fleet demo)."""
    import signal
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert osapi.stop_process(polite, 30) == -signal.SIGTERM
    deaf = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; "
                             "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE)
    deaf.stdout.readline()                      # its handler is set
    assert osapi.stop_process(deaf, 0.2) == -signal.SIGKILL
    deaf.stdout.close()
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    done.wait()
    assert osapi.stop_process(done, 30) == 3     # already exited: its status, no signal
