"""The ob_cleaner worker, its metrics message and `engine clean`."""
import os
import threading
import time

import orjson
import pytest

from engine import config, ipc
from engine.cli import main as cli
from engine.cleaner import policy
from engine.cleaner.listing import DiskUsage
from engine.cleaner.report import Totals
from engine.cleaner.run import clean_once
from engine.commands import clean
from engine.runtime import WorkerContext
from engine.workers import ob_cleaner

DAY = 86400


def old_file(folder, name, size=10, days=100):
    path = folder / name
    path.write_bytes(b"x" * size)
    t = time.time() - days * DAY
    os.utime(path, (t, t))
    return path


def young(folder, name="observer.log.20991231000000000"):
    """A just-rotated empty log: older files age from it (plan.py's reference time)
    and, freeing nothing, the threshold step never takes it."""
    return old_file(folder, name, size=0, days=0)


def toml_for(logdir, threshold=0):
    return f"""
[workers.ob_cleaner]
interval = 3600.0
publish_interval = 0.1
[[workers.ob_cleaner.targets]]
name = "ob_log"
path = "{logdir}"
disk_threshold = {threshold}
[[workers.ob_cleaner.targets.rules]]
name = "log"
pattern = '(?:[a-z]+\\.)?[a-z]+\\.log\\.[0-9]+(?:\\.zst)?'
retention_days = 8
keep_percentage = 60
"""


def test_message_is_a_full_snapshot_per_rule(tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    on_disk = sum(old_file(logdir, f"observer.log.2024010100000000{i}", n).lstat().st_blocks * 512
                  for i, n in ((1, 7), (2, 5)))
    young(logdir)
    targets = [policy.Target("ob_log", str(logdir), 80.0, policy.default_targets(str(logdir), "/x")[0].rules),
               policy.Target("gone", str(tmp_path / "missing"), 80.0, (policy.Rule("r", r"a\.[0-9]", 1, 1),))]
    totals = Totals(targets)
    totals.add(clean_once(targets, usage=lambda fd: DiskUsage(100, 90)))
    msg = orjson.loads(orjson.dumps(totals.message(123.0)))
    assert msg["kind"] == "ob_cleaner" and msg["t"] == 123.0
    series = {(m["name"], tuple(sorted(m["labels"].items()))): m["value"] for m in msg["metrics"]}
    assert series[("ob_cleaner_deleted_files_total", (("rule", "log"), ("target", "ob_log")))] == 2
    assert series[("ob_cleaner_deleted_bytes_total", (("rule", "log"), ("target", "ob_log")))] == on_disk
    assert series[("ob_cleaner_deleted_files_total", (("rule", "wf"), ("target", "ob_log")))] == 0
    assert series[("ob_cleaner_target_up", (("target", "gone"),))] == 0
    assert series[("ob_cleaner_bad_input_total", (("reason", "target_missing"),))] == 1
    assert series[("ob_cleaner_disk_used_ratio", (("target", "ob_log"),))] == 0.9
    for m in msg["metrics"]:
        assert m["type"] in ("counter", "gauge") and m["help"]
        assert m["name"].endswith("_total") == (m["type"] == "counter")


@pytest.mark.integration
def test_worker_cleans_and_publishes_on_the_cleaner_ring(tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    old_file(logdir, "observer.log.20240101000000001")
    old_file(logdir, "observer.log")
    cfg = config.loads(f'[agent]\nhome = "{tmp_path / "home"}"\ninstance = "cltest{os.getpid()}"\n'
                       + toml_for(logdir))
    ctx = WorkerContext.standalone("ob_cleaner", cfg)
    worker = threading.Thread(target=ob_cleaner.main, args=(ctx,))
    try:
        worker.start()
        ring = ctx.consumer("cleaner")
        deadline = time.monotonic() + 30
        deleted = 0
        while deleted == 0 and time.monotonic() < deadline:
            raw = ring.get(timeout=1.0)
            if raw:
                msg = orjson.loads(raw)
                deleted = sum(m["value"] for m in msg["metrics"] if m["name"] == "ob_cleaner_deleted_files_total")
        assert deleted == 1
        assert os.listdir(logdir) == ["observer.log"]
    finally:
        ctx.request_stop()
        worker.join(10)
        instance = ctx.segments.instance
        ctx.close()
    assert not worker.is_alive()
    assert ipc.stale_segments(instance) == []


def test_engine_clean_dry_run_prints_the_plan_and_deletes_nothing(tmp_path, capsys):
    logdir = tmp_path / "log"
    logdir.mkdir()
    old_file(logdir, "observer.log.20240101000000001", 2048)
    fresh = young(logdir)
    conf = tmp_path / "agent.toml"
    conf.write_text(toml_for(logdir))
    assert cli(["-c", str(conf), "--home", str(tmp_path / "home"), "clean", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "observer.log.20240101000000001" in out and "age" in out and "100.0d" in out
    on_disk = os.lstat(logdir / "observer.log.20240101000000001").st_blocks * 512
    assert clean.human(on_disk) in out            # what deleting it frees, not its apparent size
    assert sorted(os.listdir(logdir)) == ["observer.log.20240101000000001", fresh.name]
    assert cli(["-c", str(conf), "--home", str(tmp_path / "home"), "clean"]) == 0
    assert "deleted 1 files" in capsys.readouterr().out
    assert os.listdir(logdir) == [fresh.name]


def test_engine_clean_prints_to_the_stdout_of_the_call(tmp_path, monkeypatch):
    import io


    logdir = tmp_path / "log"
    logdir.mkdir()
    conf = tmp_path / "agent.toml"
    conf.write_text(toml_for(logdir))
    for _ in range(2):                  # a stdout replaced (and closed) after the import
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        assert clean.print_run(clean_once(clean.targets_from_config(config.load(conf)), dry_run=True).runs[0],
                               True) == 0
        assert "== ob_log" in out.getvalue()
        out.close()


def test_engine_clean_unknown_target(tmp_path, capsys):
    conf = tmp_path / "agent.toml"
    conf.write_text(toml_for(tmp_path))
    assert cli(["-c", str(conf), "clean", "--dry-run", "--target", "nope"]) == 2
    assert "unknown target nope" in capsys.readouterr().err


def test_file_names_are_escaped_on_the_terminal_and_in_the_log(tmp_path, caplog):
    import io


    logdir = tmp_path / "log"
    logdir.mkdir()
    hostile = "x.\x1b[2J\x07\x7fone\ntwo"
    old_file(logdir, hostile)
    target = policy.Target("t", str(logdir), 0.0, (policy.Rule("r", r"x\.[^.]*", 0, 0),))
    for dry in (True, False):
        out = io.StringIO()
        with caplog.at_level("INFO", logger="engine.ob_cleaner"):
            clean.print_run(clean_once([target], dry_run=dry, usage=lambda fd: DiskUsage(100, 99)).runs[0], dry, out)
        text = out.getvalue() + "\n".join(caplog.messages)
        assert "\\x1b[2J\\x07\\x7fone\\x0atwo" in text
        assert not any(c in text for c in "\x1b\x07\x7f")
        assert not any(line.startswith("two") for line in text.splitlines())
    assert os.listdir(logdir) == []


def test_engine_clean_exits_non_zero_and_counts_files_that_could_not_go(tmp_path, capsys):
    """An immutable file (chattr +i: EPERM even for root) is a failure, not a quiet 0."""
    import subprocess
    logdir = tmp_path / "log"
    logdir.mkdir()
    stuck = old_file(logdir, "observer.log.20240101000000001")
    old_file(logdir, "observer.log.20240101000000002")
    fresh = young(logdir)
    conf = tmp_path / "agent.toml"
    conf.write_text(toml_for(logdir))
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem or user cannot set the immutable flag")
    try:
        assert cli(["-c", str(conf), "--home", str(tmp_path / "home"), "clean"]) == 1
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    out = capsys.readouterr().out
    assert "1 file(s) could not be deleted" in out and "EPERM: 1" in out and "deleted 1 files" in out
    assert sorted(os.listdir(logdir)) == [stuck.name, fresh.name]
