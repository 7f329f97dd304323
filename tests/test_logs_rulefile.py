"""A rules file that cannot be used: the last good copy keeps alerting, ``degraded`` says why.

The defect: a corrupted rules file, then a restart of ob_logtailer (a kill,
``restart ob_logtailer``, a crash) took the worker down on every start: BACKOFF,
FATAL, and no alert at all until someone noticed. Now the last rules that
loaded cleanly are kept in the data dir and run instead, the worker stays up
and says why (file:line:col), and a fixed file is picked up again.

Then (issue 11, "never a crash loop"): with no copy the worker still exited;
now it waits, reading nothing, until the file loads. ``engine start`` and
``reload`` refused a broken rules file, so a host rebooted with one ran no
agent at all; now they warn and ``check-config`` alone refuses. And an edit
of the rules file needed a restart; now the worker applies it by itself.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import orjson

import pytest

from engine import config, ipc, states
from engine.errors import ConfigError
from engine.logs import checkpoint, metrics, rulefile, store
from engine.logs.tailer import Tailer
from engine.runtime import WorkerContext, read_status
from engine.workers import ob_logtailer
from conftest import wait_for
from logtail_kit import MARK_RULES_TOML as RULES, ObWriter, marks, poll_until, section

BROKEN = b'[[rule]]\nid = "mark"\nregex = \xff\n'       # not UTF-8 at line 3, column 9
COPY = "rules.lastgood.toml"
OTHER = """
[[rule]]
id = "other"
severity = "warning"
regex = 'OTHER (?P<seq>\\d+)'
summary = "other {seq}"
throttle = 0
group_by = ["rule", "seq"]
"""


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


def counters(worker):
    return worker.status().get("counters", {})


def test_with_no_copy_the_worker_stays_up_reads_nothing_and_resumes_once_fixed(tmp_path):
    """Issue 11: no last good copy was an exit on every start (BACKOFF, FATAL, lines never read)."""
    (tmp_path / "oblog").mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cfg = worker_config(tmp_path, rules, "w")
    data = tmp_path / "home" / "data" / "ob_logtailer"
    w = ObWriter(tmp_path / "oblog")
    write_marks(w, 1, 10)
    worker = Worker(cfg)
    try:
        wait_for(lambda: len(marks(data)) == 10 and (data / COPY).exists(), what="the first alerts")
    finally:
        worker.stop()
    (data / COPY).unlink()                          # no copy (a new data dir, say), then a broken file
    rules.write_bytes(BROKEN)
    saved = (data / "checkpoint.json").read_bytes()
    write_marks(w, 11, 30)
    worker = Worker(cfg)
    try:
        st = wait_for(lambda: (s := worker.status()).get("state") == states.DEGRADED and s,
                      what="degraded, waiting for the rules file")
        assert f"{rules}:3:9" in st["detail"] and "no last good rules" in st["detail"], st
        wait_for(lambda: "rules_ok" in counters(worker), what="the counters")
        assert counters(worker)["rules_ok"] == 0 and counters(worker)["rules_fallback"] == 0
        assert counters(worker)["lines"] == 0 and len(marks(data)) == 10
        assert (data / "checkpoint.json").read_bytes() == saved         # where it was: nothing skipped
        assert worker.error is None and worker.thread.is_alive()

        rules.write_text(RULES)                      # fixed: read from the checkpoint on
        wait_for(lambda: len(marks(data)) == 30, what="the lines written while it waited")
        wait_for(lambda: worker.status().get("state") == states.OK, what="ok once the file loads")
        assert counters(worker)["rules_ok"] == 1
    finally:
        worker.stop()
    assert worker.error is None
    assert sorted(marks(data)) == list(range(1, 31))          # none lost, none twice


def test_a_rules_edit_keeps_the_files_open_a_deleted_one_is_read_to_its_end(tmp_path):
    """A rules edit closed every log file and opened them again from the checkpoint: a file
    deleted while OBServer still wrote to it (or a rotated one removed before it was read to
    its end) was gone, its lines never alerted (not even counted lost). Here the edits are a
    broken file with no copy (the worker waits, reading nothing, so the lines written
    meanwhile are surely unread at the second edit) and the fix."""
    (tmp_path / "oblog").mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cfg = worker_config(tmp_path, rules, "d")
    data = tmp_path / "home" / "data" / "ob_logtailer"
    w = ObWriter(tmp_path / "oblog")
    write_marks(w, 1, 5)
    worker = Worker(cfg)
    try:
        wait_for(lambda: len(marks(data)) == 5 and (data / COPY).exists(), what="the first alerts")
        (data / COPY).unlink()
        rules.write_bytes(BROKEN)
        wait_for(lambda: "no last good rules" in worker.status().get("detail", ""), what="waiting")
        os.unlink(w.path)                    # deleted; OBServer writes on through its descriptor
        write_marks(w, 6, 10)
        rules.write_text(RULES)
        wait_for(lambda: worker.status().get("state") == states.OK, what="ok on the fixed file")
        w.reopen()                           # OBServer makes a new file
        write_marks(w, 11, 15)
        wait_for(lambda: 15 in marks(data), what="the new file's marks")
    finally:
        worker.stop()
    assert worker.error is None
    assert sorted(marks(data)) == list(range(1, 16))          # none lost, none twice


def test_a_first_start_waiting_for_its_rules_reads_what_was_written_meanwhile(tmp_path):
    """No checkpoint yet (a new agent) and a broken rules file with no copy: the worker waits,
    saying "then from the checkpoint: nothing is lost", but there was no checkpoint, so the
    tailer made once the file loaded was a first start and, ``start_at = "end"`` (the
    default), skipped every line written while it waited."""
    (tmp_path / "oblog").mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_bytes(BROKEN)
    cfg = config.from_dict({"agent": {"instance": f"rf{os.getpid()}f"}, "workers": {"ob_logtailer": {
        "log_dir": str(tmp_path / "oblog"), "files": ["observer.log"], "rules": str(rules),
        "start_at": "end", "poll_interval": 0.05, "checkpoint_interval": 0.1}}}, home=str(tmp_path / "home"))
    data = tmp_path / "home" / "data" / "ob_logtailer"
    w = ObWriter(tmp_path / "oblog")
    write_marks(w, 1, 3)                      # before the first start: not read (start_at = "end")
    worker = Worker(cfg)
    try:
        wait_for(lambda: "no last good rules" in worker.status().get("detail", ""), what="waiting")
        write_marks(w, 4, 10)                 # while it waits
        rules.write_text(RULES)
        wait_for(lambda: worker.status().get("state") == states.OK, what="ok on the fixed file")
        write_marks(w, 11, 12)
        wait_for(lambda: 12 in marks(data), what="the marks written after the fix")
    finally:
        worker.stop()
    assert worker.error is None
    assert sorted(marks(data)) == list(range(4, 13))          # none of the wait lost, none twice


def test_an_edited_rules_file_is_applied_without_a_restart(tmp_path):
    """``engine reload`` compares agent.toml only: a rules edit needed a restart of the worker."""
    (tmp_path / "oblog").mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cfg = worker_config(tmp_path, rules, "e")
    data = tmp_path / "home" / "data" / "ob_logtailer"
    w = ObWriter(tmp_path / "oblog")
    worker = Worker(cfg)
    try:
        wait_for(lambda: counters(worker).get("rules") == 1, what="the worker on the first rules")
        for first in range(1, 61, 10):              # marks keep coming through every change below
            write_marks(w, first, first + 4)
            if first == 11:                          # a second rule
                rules.write_text(RULES + OTHER)
                wait_for(lambda: counters(worker).get("rules") == 2, what="the new rule loaded")
                w.write(w.header(b"WARN") + b"OTHER 7\n")
            elif first == 31:                        # a broken edit: the last good rules (the copy)
                rules.write_bytes(BROKEN)
                st = wait_for(lambda: (s := worker.status()).get("state") == states.DEGRADED
                              and "last good rules" in s.get("detail", "") and s, what="degraded on the edit")
                assert f"{rules}:3:9" in st["detail"]
            elif first == 41:                        # fixed: ok again
                rules.write_text(RULES)
                wait_for(lambda: worker.status().get("state") == states.OK
                         and counters(worker).get("rules") == 1, what="ok on the fixed file")
            write_marks(w, first + 5, first + 9)
        wait_for(lambda: len(marks(data)) == 60, what="every mark")
        wait_for(lambda: counters(worker).get("lines", 0) >= 61, what="counters that went on")
    finally:
        worker.stop()
    assert worker.error is None
    assert sorted(marks(data)) == list(range(1, 61))           # none lost, none twice
    other = [r for r in store.read_records(data) if r["rule"] == "other" and r["event"] == "fire"]
    assert [r["fields"]["seq"] for r in other] == ["7"]


def test_with_no_copy_the_tailer_reads_nothing_and_says_how_to_fix_it(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b'[[rule]\nid = "x"\n')
    (tmp_path / "observer.log").write_bytes(b"MARK 1\n")
    tailer = Tailer(section(tmp_path, rules=str(rules)), str(tmp_path))
    text = tailer.rules_waiting
    assert f"{rules}:1:7:" in text and "fix the file" in text and "check-config" in text
    assert "no last good rules" in text and "nothing is lost" in text and not (tmp_path / COPY).exists()
    tailer.start()
    assert tailer.poll_once() is False and tailer.stats.lines == 0
    tailer.close()
    saved = checkpoint.load(tmp_path)["streams"]["observer.log"]     # nothing read: the baseline only
    assert [f["offset"] for f in saved["files"]] == [0]              # (start_at = "beginning": from 0)
    assert gauges(tailer) == {"ob_logtailer_rules_ok": 0, "ob_logtailer_rules_fallback": 0}


def gauges(tailer):
    return {m["name"]: m["value"] for m in metrics.snapshot(tailer)["metrics"]
            if m["name"] in ("ob_logtailer_rules_ok", "ob_logtailer_rules_fallback")}


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

    assert gauges(tailer) == {"ob_logtailer_rules_ok": 1, "ob_logtailer_rules_fallback": 0}
    rules.write_text('[[rules]]\nid = "mark"\nregex = "MARK"\n')   # parses, but not one rule loads
    tailer = Tailer(section(tmp_path, rules=str(rules)), str(tmp_path))
    assert "no rule loads" in tailer.rules_fallback and [r.id for r in tailer.rules.rules] == ["mark"]
    assert gauges(tailer) == {"ob_logtailer_rules_ok": 0, "ob_logtailer_rules_fallback": 1}


def test_check_config_names_the_rules_file_and_line_and_check_files_lets_it_pass(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_bytes(BROKEN)
    cfg = config.from_dict({"workers": {"ob_logtailer": {"rules": str(rules)}}}, home=str(tmp_path))
    config.check_files(cfg)                    # start and reload: the worker falls back or waits
    with pytest.raises(ConfigError) as err:
        rulefile.check_config(cfg)
    assert f"{rules}:3:9" in str(err.value) and "workers.ob_logtailer.rules" in str(err.value)
    assert f"{rules}:3:9" in rulefile.start_warning(cfg) and "no last good rules" in rulefile.start_warning(cfg)
    rules.write_text(RULES)
    rulefile.check_config(cfg)
    assert rulefile.start_warning(cfg) == ""
    off = config.from_dict({"workers": {"ob_logtailer": {"rules": str(tmp_path / "gone.toml"),
                                                          "enabled": False}}}, home=str(tmp_path))
    rulefile.check_config(off)                 # a disabled worker's rules are not its business
    assert rulefile.start_warning(off) == ""


def test_a_touch_or_the_same_bytes_is_no_change_an_edit_is(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    source = rulefile.load(rules, tmp_path).source
    os.utime(rules)                                          # touch
    changed, source = rulefile.changed(rules, source)
    assert not changed
    rules.write_text(RULES)                                  # the same bytes again
    changed, source = rulefile.changed(rules, source)
    assert not changed and rulefile.changed(rules, source) == (False, source)
    st = os.stat(rules)
    rules.write_text(RULES.replace("mark {seq}", "MARK {seq}"))    # same size, mtime put back
    os.utime(rules, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert settled(rules, source)
    rules.unlink()
    assert settled(rules, source)


def settled(rules, source, looks=3):
    """Whether ``changed`` reports a change within ``looks`` looks at a file that holds still."""
    for _ in range(looks):
        changed, source = rulefile.changed(rules, source)
        if changed:
            return True
    return False


def test_an_edit_caught_mid_write_is_applied_once_the_file_holds_still(tmp_path):
    """An editor writing the file in two writes, the worker looking in between: the first
    part (the mark rule whole, the other rule not yet there) parses cleanly, so the worker
    ran it (lines read meanwhile never alerted by the missing rule) and kept it as the last
    good copy. A change is now applied only when the next look finds the file as it was."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    source = rulefile.load(rules, tmp_path).source
    whole = (RULES + OTHER + RULES.replace('id = "mark"', 'id = "mark2"')).encode()
    part = whole[:len(RULES) + len(OTHER)]
    (tmp_path / "part.toml").write_bytes(part)
    assert rulefile.load(tmp_path / "part.toml", tmp_path).keep == part      # clean: it would be kept
    with open(rules, "wb") as fh:
        fh.write(part)
        fh.flush()
        changed, source = rulefile.changed(rules, source)        # the look between the writes
        assert not changed, "a file caught mid-write was taken as the edit"
        fh.write(whole[len(part):])
    changed, source = rulefile.changed(rules, source)            # it moved again since that look
    assert not changed
    changed, source = rulefile.changed(rules, source)            # it holds still: the edit
    assert changed
    loaded = rulefile.load(rules, tmp_path)
    assert [r.id for r in loaded.rules.rules] == ["mark", "other", "mark2"] and loaded.keep == whole
    assert rulefile.changed(rules, loaded.source) == (False, loaded.source)


def coarse_signature(path):
    """A stat that cannot see writes between two looks: device, inode and size, no times
    (FAT's 2 s mtime, an NFS client's cached attributes, a writer within one tick)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size)


def test_a_file_filled_in_place_is_not_taken_while_stat_cannot_see_the_writes(tmp_path, monkeypatch):
    """A writer that sets the size first (preallocates) and then fills the file, on a
    filesystem whose stat does not move between two looks: the signature was the same on
    both, and the file was taken with its tail still zeros. The two looks must also have
    read the same bytes; then the bytes they read are the ones loaded."""
    monkeypatch.setattr(rulefile, "signature", coarse_signature)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    source = rulefile.load(rules, tmp_path).source
    whole = (RULES + OTHER).encode()
    with open(rules, "wb") as fh:
        fh.truncate(len(whole))                                 # the final size, zeros
        for end in (len(whole) // 3, 2 * len(whole) // 3, len(whole)):
            fh.seek(0)
            fh.write(whole[:end])
            fh.flush()
            changed, source = rulefile.changed(rules, source)
            assert not changed, f"taken with {len(whole) - end} bytes still to come"
    changed, source = rulefile.changed(rules, source)           # it holds still: the edit
    assert changed
    loaded = rulefile.load(rules, tmp_path, source)
    assert [r.id for r in loaded.rules.rules] == ["mark", "other"] and loaded.keep == whole


def test_the_edit_loaded_is_what_the_looks_read_not_a_write_begun_since(tmp_path):
    """Two looks found an edit holding still, then the tailer made for it read the file
    again: a write begun in between (the next save) was loaded half-done, and a prefix
    that parses cleanly ran with rules missing and was kept as the last good copy."""
    (tmp_path / "oblog").mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    ctx = WorkerContext.standalone("ob_logtailer", worker_config(tmp_path, rules, "b"))
    tailers = []
    try:
        tailers.append(ob_logtailer._open(ctx))
        edit = RULES + OTHER
        rules.write_text(edit)
        assert not ob_logtailer._rules_changed(ctx, tailers[-1])       # it moved: looked at again
        assert ob_logtailer._rules_changed(ctx, tailers[-1])           # it holds still: the edit
        tailers[-1].hand_over()
        after = (edit + RULES.replace('id = "mark"', 'id = "mark2"')).encode()
        with open(rules, "wb") as fh:                                   # the next save begins
            fh.write(after[:len(RULES)])                                # the mark rule alone: clean
            fh.flush()
            tailers.append(ob_logtailer._open(ctx, tailers[-1]))
            assert [r.id for r in tailers[-1].rules.rules] == ["mark", "other"]
            assert tailers[-1]._keep_rules == edit.encode()
            assert not ob_logtailer._rules_changed(ctx, tailers[-1])   # the save under way: moving
            fh.write(after[len(RULES):])
        assert not ob_logtailer._rules_changed(ctx, tailers[-1])
        assert ob_logtailer._rules_changed(ctx, tailers[-1])
        tailers[-1].hand_over()
        tailers.append(ob_logtailer._open(ctx, tailers[-1]))
        assert [r.id for r in tailers[-1].rules.rules] == ["mark", "other", "mark2"]
    finally:
        for tailer in tailers:
            ob_logtailer._abandon(tailer)
        instance = ctx.segments.instance
        ctx.close()
        for name in ipc.stale_segments(instance):
            ipc.unlink_segment(name)


@pytest.mark.integration
def test_start_and_reload_go_on_with_a_broken_rules_file_check_config_refuses_it(tmp_path):
    """A host rebooted with a broken rules file: ``engine start`` refused, so no agent ran at all."""
    (tmp_path / "oblog").mkdir()
    rules, home = tmp_path / "rules.toml", tmp_path / "home"
    (home / "data" / "ob_logtailer").mkdir(parents=True)
    (home / "data" / "ob_logtailer" / COPY).write_text(RULES)      # kept by an earlier run
    rules.write_bytes(BROKEN)
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[agent]\nhome = "{home}"\ninstance = "rs{os.getpid()}"\n[supervisor]\ntick = 0.1\n'
                    + "".join(f"[workers.{n}]\nenabled = false\n" for n in
                              ("pos_proxy", "node_exporter", "ocp_exporter", "obstat2", "ob_cleaner"))
                    + f'[workers.ob_logtailer]\nlog_dir = "{tmp_path / "oblog"}"\nrules = "{rules}"\n')

    def engine(*args):
        return subprocess.run([sys.executable, "-m", "engine", "--config", str(conf), *args],
                              capture_output=True, text=True, timeout=120)

    check = engine("check-config")
    assert check.returncode == 2 and f"{rules}:3:9" in check.stderr, check
    try:
        start = engine("start")
        assert start.returncode == 0, start
        assert f"{rules}:3:9" in start.stderr and "last good rules" in start.stderr, start
        st = wait_for(lambda: (w := _worker(engine)).get("sub_state") == states.DEGRADED and w,
                      what="ob_logtailer degraded on its last good rules")
        assert st["state"] == "RUNNING" and f"{rules}:3:9" in st["detail"], st
        reload = engine("reload")
        assert reload.returncode == 0 and f"{rules}:3:9" in reload.stderr, reload
    finally:
        stop = engine("stop")
    assert stop.returncode == 0, stop
    assert not ipc.stale_segments(f"rs{os.getpid()}")


def _worker(engine):
    out = engine("status", "--json")
    if not out.stdout.strip():
        return {}
    return next((w for w in orjson.loads(out.stdout)["workers"] if w["name"] == "ob_logtailer"), {})
