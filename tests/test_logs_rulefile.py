"""A rules file that cannot be used: the last good copy keeps alerting, ``degraded`` says why.

The defect: a corrupted rules file, then a restart of ob_logtailer (a kill,
``restart ob_logtailer``, a crash) took the worker down on every start: BACKOFF,
FATAL, and no alert at all until someone noticed. Now the last rules that
loaded cleanly are kept in the data dir and run instead, the worker stays up
and says why (file:line:col), and a fixed file is picked up again.
"""
from __future__ import annotations

import os
import threading

import pytest

from engine import config, ipc, states
from engine.errors import ConfigError
from engine.logs import metrics
from engine.logs.tailer import Tailer
from engine.runtime import WorkerContext, read_status
from engine.workers import ob_logtailer
from conftest import wait_for
from logtail_kit import MARK_RULES_TOML as RULES, ObWriter, marks, poll_until, section

BROKEN = b'[[rule]]\nid = "mark"\nregex = \xff\n'       # not UTF-8 at line 3, column 9
COPY = "rules.lastgood.toml"


def worker_config(tmp_path, rules, tag):
    return config.from_dict({"agent": {"instance": f"rf{os.getpid()}{tag}"}, "workers": {"ob_logtailer": {
        "log_dir": str(tmp_path / "oblog"), "files": ["observer.log"], "rules": str(rules),
        "start_at": "beginning", "poll_interval": 0.05, "checkpoint_interval": 0.1}}},
        home=str(tmp_path / "home"))


class Worker:
    """ob_logtailer's main() in a thread, with its own segments (as in test_workers_full_disk)."""

    def __init__(self, cfg):
        self.ctx = WorkerContext.standalone("ob_logtailer", cfg)
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            ob_logtailer.main(self.ctx)
        except Exception as exc:  # noqa: BLE001 - what the supervisor would see
            self.error = exc

    def status(self):
        return read_status(self.ctx.segments, "ob_logtailer") or {}

    def stop(self):
        self.ctx.request_stop()
        self.thread.join(30)
        instance = self.ctx.segments.instance
        self.ctx.close()
        for name in ipc.stale_segments(instance):
            ipc.unlink_segment(name)
        assert not self.thread.is_alive()


def write_marks(w, first, last):
    for i in range(first, last + 1):
        w.write(w.header(b"WARN") + f"MARK {i}\n".encode())


def test_a_broken_rules_file_runs_the_last_good_copy_until_it_is_fixed(tmp_path):
    (tmp_path / "oblog").mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cfg = worker_config(tmp_path, rules, "a")
    data = tmp_path / "home" / "data" / "ob_logtailer"
    w = ObWriter(tmp_path / "oblog")
    write_marks(w, 1, 20)
    worker = Worker(cfg)
    try:
        wait_for(lambda: len(marks(data)) == 20, what="the first alerts")
        wait_for(lambda: (data / COPY).exists(), what="the last good copy")
    finally:
        worker.stop()
    assert (data / COPY).read_bytes() == rules.read_bytes()

    rules.write_bytes(BROKEN)                      # corrupted, then the worker restarts
    write_marks(w, 21, 40)
    worker = Worker(cfg)
    try:
        st = wait_for(lambda: (s := worker.status()).get("state") == states.DEGRADED and s,
                      what="degraded on the broken rules file")
        assert f"{rules}:3:9" in st["detail"] and f"last good rules from {data / COPY}" in st["detail"]
        wait_for(lambda: len(marks(data)) == 40, what="alerts from the last good rules")
        wait_for(lambda: worker.status().get("counters", {}).get("rules_fallback") == 1, what="the gauge")
        assert worker.error is None and worker.thread.is_alive()

        rules.write_text(RULES + "\n# fixed\n")    # fixed: picked up without a restart
        wait_for(lambda: worker.status().get("state") == states.OK, what="ok once the file is fixed")
        wait_for(lambda: worker.status().get("counters", {}).get("rules_fallback") == 0, what="gauge 0")
        write_marks(w, 41, 50)
        wait_for(lambda: len(marks(data)) == 50, what="alerts from the fixed file")
    finally:
        worker.stop()
    assert worker.error is None
    assert sorted(marks(data)) == list(range(1, 51))          # none lost, none twice
    assert (data / COPY).read_bytes() == rules.read_bytes()   # the fixed file is the new last good


def test_with_no_copy_the_error_names_the_file_the_position_and_the_fix(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b'[[rule]\nid = "x"\n')
    with pytest.raises(ValueError) as err:
        Tailer(section(tmp_path, rules=str(rules)), str(tmp_path))
    text = str(err.value)
    assert f"{rules}:1:7:" in text and "fix the file" in text and "check-config" in text
    assert "no last good rules" in text and not (tmp_path / COPY).exists()


def test_the_fallback_is_in_the_metrics_and_only_clean_files_are_kept(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES + '[[rule]]\nid = "bad"\nregex = "("\n')      # one rule rejected: used, not kept
    tailer = Tailer(section(tmp_path, rules=str(rules)), str(tmp_path))
    tailer.start()
    poll_until(tailer, lambda: True)
    assert len(tailer.rules.errors) == 1 and not (tmp_path / COPY).exists()
    tailer.close()

    rules.write_text(RULES)
    tailer = Tailer(section(tmp_path, rules=str(rules)), str(tmp_path))
    tailer.start()
    poll_until(tailer, lambda: True)
    tailer.close()
    assert (tmp_path / COPY).read_text() == RULES and not (tmp_path / (COPY + ".tmp")).exists()

    def fallback_gauge(t):
        return [m["value"] for m in metrics.snapshot(t)["metrics"] if m["name"] == "ob_logtailer_rules_fallback"]

    assert fallback_gauge(tailer) == [0]
    rules.write_text('[[rules]]\nid = "mark"\nregex = "MARK"\n')   # parses, but not one rule loads
    tailer = Tailer(section(tmp_path, rules=str(rules)), str(tmp_path))
    assert "no rule loads" in tailer.rules_fallback and [r.id for r in tailer.rules.rules] == ["mark"]
    assert fallback_gauge(tailer) == [1]


def test_check_config_names_the_rules_file_and_line(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_bytes(BROKEN)
    cfg = config.from_dict({"workers": {"ob_logtailer": {"rules": str(rules)}}}, home=str(tmp_path))
    with pytest.raises(ConfigError) as err:
        config.check_files(cfg)
    assert f"{rules}:3:9" in str(err.value) and "workers.ob_logtailer.rules" in str(err.value)
    rules.write_text(RULES)
    config.check_files(cfg)
    off = config.from_dict({"workers": {"ob_logtailer": {"rules": str(tmp_path / "gone.toml"),
                                                          "enabled": False}}}, home=str(tmp_path))
    config.check_files(off)                    # a disabled worker's rules are not its business
