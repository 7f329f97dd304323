"""The demo's synthetic OBServer logs: format, .wf companions, rotation, alerts."""
import os
import re

from engine._ref.logscan import parse_header
from engine.demo import oblog


class Clock:
    def __init__(self, t=1_732_470_000.0, step=0.01):
        self.t, self.step = t, step

    def __call__(self):
        self.t += self.step
        return self.t


def lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_every_line_has_a_4x_header_and_wf_holds_only_error_and_warn(tmp_path):
    w = oblog.LogWriter(tmp_path, max_bytes=1 << 30, alert_every=0.5, clock=Clock())
    for _ in range(30):
        w.write(40)
    for name in oblog.FILES:
        main = lines(tmp_path / name)
        assert b"New syslog file info" in main[0]
        for ln in main:
            h = parse_header(ln)
            assert h is not None, ln
            if h["level"] in ("INFO", "WDIAG"):       # errcode only on the warning/error levels
                assert (h["errcode"] is None) == (h["level"] == "INFO")
        wf = lines(tmp_path / f"{name}.wf")
        assert all(parse_header(ln)["level"] in ("ERROR", "WARN") for ln in wf[1:])
        assert [ln for ln in main if parse_header(ln)["level"] in ("ERROR", "WARN")] == wf[1:]
    assert w.lines == sum(len(lines(tmp_path / n)) - 1 for n in oblog.FILES)


def test_mostly_info_some_wdiag_and_every_alert_kind(tmp_path):
    w = oblog.LogWriter(tmp_path, max_bytes=1 << 30, alert_every=0.2, clock=Clock(step=0.01))
    for _ in range(60):
        w.write(50)
    levels = {}
    text = b""
    for name in oblog.FILES:
        for ln in lines(tmp_path / name)[1:]:
            lv = parse_header(ln)["level"]
            levels[lv] = levels.get(lv, 0) + 1
            text += ln
    total = sum(levels.values())
    assert levels["INFO"] / total > 0.85 and levels.get("WDIAG", 0) > 0
    for *_, body in oblog.ALERTS:
        assert body in text
    assert w.alerts >= len(oblog.ALERTS)


def test_rotation_renames_main_and_wf_with_the_same_stamp(tmp_path):
    w = oblog.LogWriter(tmp_path, max_bytes=8_000, alert_every=0.1, clock=Clock())
    for _ in range(40):
        w.write(20)
    names = os.listdir(tmp_path)
    rotated = sorted(n for n in names if re.fullmatch(r"observer\.log\.\d{17}", n))
    assert len(rotated) >= 2 and w.rotations >= 2
    for n in rotated:
        assert f"observer.log.wf.{n.rsplit('.', 1)[1]}" in names
        assert b"New syslog file info" in lines(tmp_path / n)[0]
        assert os.path.getsize(tmp_path / n) >= 8_000
    assert os.path.getsize(tmp_path / "observer.log") < 8_000 + 4096
    assert rotated == sorted(rotated, key=lambda n: os.path.getmtime(tmp_path / n))


def test_rotated_names_match_the_cleaners_default_rules(tmp_path):
    from engine.cleaner import policy
    w = oblog.LogWriter(tmp_path, max_bytes=4_000, clock=Clock())
    for _ in range(30):
        w.write(20)
    target = policy.default_targets(str(tmp_path), "/x")[0]
    for n in os.listdir(tmp_path):
        rule = target.rule_for(n)
        if n.endswith((".log", ".log.wf")):
            assert rule is None
        else:
            assert rule is not None and rule.name == ("wf" if ".wf." in n else "log")


def test_max_files_recycles_the_oldest(tmp_path):
    w = oblog.LogWriter(tmp_path, max_bytes=2_000, max_files=3, clock=Clock())
    for _ in range(60):
        w.write(20)
    rotated = [n for n in os.listdir(tmp_path) if re.fullmatch(r"observer\.log\.\d{17}", n)]
    wf = [n for n in os.listdir(tmp_path) if re.fullmatch(r"observer\.log\.wf\.\d{17}", n)]
    assert w.rotations > 6 and len(rotated) == 3 and len(wf) == 3


def test_thread_writes_and_stops(tmp_path):
    w = oblog.LogWriter(tmp_path, lines_per_second=2000).start(period=0.01)
    import time
    deadline = time.monotonic() + 20
    while w.lines < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    w.stop()
    n = w.lines
    assert n >= 50
    assert w.lines == n


def test_the_thread_survives_a_failing_write(tmp_path):
    import shutil
    import time
    folder = tmp_path / "log"
    w = oblog.LogWriter(folder, lines_per_second=2000, max_bytes=2_000).start(period=0.01)
    try:
        shutil.rmtree(folder)                     # every append and rotation now fails
        deadline = time.monotonic() + 20
        while w.errors == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.errors > 0
        folder.mkdir()
        n = w.lines
        while w.lines == n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.lines > n and w._thread.is_alive()
    finally:
        w.stop()
