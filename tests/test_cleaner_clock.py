"""`engine clean` with the host clock stepped ten years ahead (libfaketime on its process only).

The files keep the mtimes the real clock gave them, as after a real step (NTP fixing a
wrong RTC, an operator typo). Before ages counted from the rule's newest file, every
rotated log was past its retention and the pass deleted them all.
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

DAY = 86400
LOGS = {"observer.log.20240101000000000": 0.1, "observer.log.20240101000000001": 1,
        "observer.log.20240101000000002": 5, "observer.log.20240101000000003": 7.5,
        "observer.log.20240101000000004": 9, "observer.log.20240101000000005": 100}
WFS = {"observer.log.wf.20240101000000000": 2, "observer.log.wf.20240101000000001": 29,
       "observer.log.wf.20240101000000002": 40}
# old against their rule's newest file (log 8 days from 0.1 d, wf 30 days from 2 d)
OLD = {"observer.log.20240101000000004", "observer.log.20240101000000005", "observer.log.wf.20240101000000002"}
ACTIVE = ("observer.log", "observer.log.wf")

CONFIG = """
[agent]
home = "{home}"
[[workers.ob_cleaner.targets]]
name = "ob_log"
path = "{logdir}"
disk_threshold = 0
[[workers.ob_cleaner.targets.rules]]
name = "log"
pattern = '(?:[a-z]+\\.)?[a-z]+\\.log\\.(?:[0-9]{{17}}|[0-9]{{14}})(?:\\.zst)?'
retention_days = 8
keep_percentage = 100
[[workers.ob_cleaner.targets.rules]]
name = "wf"
pattern = '(?:[a-z]+\\.)?[a-z]+\\.log\\.wf\\.(?:[0-9]{{17}}|[0-9]{{14}})(?:\\.zst)?'
retention_days = 30
keep_percentage = 100
"""


def test_engine_clean_ten_years_ahead_deletes_only_what_is_old_against_the_newest_file(tmp_path):
    """keep_percentage 100 makes the threshold step a no-op: what goes is the age step's."""
    if not shutil.which("faketime"):
        if os.environ.get("CI"):
            pytest.fail("faketime is not installed (scripts/install-system-deps.sh)")
        pytest.skip("faketime is not installed")
    logdir = tmp_path / "log"
    logdir.mkdir()
    now = time.time()
    for name, days in {**LOGS, **WFS, **dict.fromkeys(ACTIVE, 0)}.items():
        (logdir / name).write_bytes(b"x" * 100)
        os.utime(logdir / name, (now - days * DAY,) * 2)
    conf = tmp_path / "agent.toml"
    conf.write_text(CONFIG.format(home=tmp_path / "home", logdir=logdir))
    env = {**os.environ, "NO_FAKE_STAT": "1"}          # mtimes stay real, as after a real step
    done = subprocess.run(["faketime", "-f", "+3650d", sys.executable, "-m", "engine", "-c", str(conf), "clean"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(os.listdir(logdir)) == sorted((set(LOGS) | set(WFS) | set(ACTIVE)) - OLD), done.stdout
    assert "the clock is 3650.1 days past its newest file" in done.stdout, done.stdout   # faketime applied
    assert "rule log: deleted 2 files" in done.stdout and "rule wf: deleted 1 files" in done.stdout
