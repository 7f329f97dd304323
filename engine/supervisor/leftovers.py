"""What a supervisor killed with SIGKILL leaves on its home, and how the next one finds and clears it.

Pid files (``<run>/<name>.pid`` hold a pid and its start time, so a recycled
pid is never taken for ours), the control socket and the shared-memory
segments. ``engine stop`` on a home whose supervisor is dead clears them
(:func:`clean_dead_home`); a starting supervisor kills proven orphans first.
"""
from __future__ import annotations

from pathlib import Path

from engine import ipc, osapi, runinfo

PIDFILE = "ocp_agentd.pid"


def kill_orphans(run_dir: Path) -> list[str]:
    """Remove a dead supervisor's worker pid files, killing each worker a file proves is its own."""
    done = []
    for pidfile in Path(run_dir).glob("*.pid"):
        if pidfile.name != PIDFILE:
            pid = osapi.kill_orphan(pidfile)
            done.append(f"killed orphan {pidfile.stem} (pid {pid})" if pid else f"removed {pidfile.name}")
    return done


def clean_dead_home(config) -> list[str]:
    """What a supervisor killed with -9 left on this home; [] if one is running.

    Its pid file, its workers' pid files (killing any proven orphan), its
    control socket and its shared-memory segments (the instance from the run
    record, so a config that changed or broke since still finds them).
    """
    home = config.home
    run_dir = home / "run"
    if pid_of_running(home):
        return []
    done = kill_orphans(run_dir)
    for name in (PIDFILE, "ocp_agentd.sock"):
        try:
            (run_dir / name).unlink()
            done.append(f"removed {name}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            done.append(f"cannot remove {name}: {exc.strerror}")
    record = runinfo.read(home) or {}
    instances = {ipc.instance_id(config), record.get("instance") or ipc.instance_id(config)}
    segs = [n for inst in instances if isinstance(inst, str) for n in ipc.stale_segments(inst)]
    for name in segs:
        ipc.unlink_segment(name)
    if segs:
        done.append(f"removed {len(segs)} shared-memory segments")
    return done


def pid_of_running(home: Path) -> int | None:
    owner = osapi.read_pidfile(Path(home) / "run" / PIDFILE)
    return owner[0] if owner and osapi.is_same_process(*owner) else None
