"""Open files: a blind /proc makes the pass age-only, and a lease checks each file right before its unlink."""
import os
import subprocess
import sys
import time

import pytest
from conftest import wait_for

from engine.cleaner import policy
from engine.cleaner.apply import OpenFiles
from engine.cleaner.listing import DiskUsage
from engine.cleaner.openfiles import blind_reason
from engine.cleaner.report import Totals
from engine.cleaner.run import clean_once
from engine.workers import ob_cleaner

DAY = 86400
TS = 20240101000000000


def full(fd):                          # 95 % used, and far more than the test files could free
    return DiskUsage(1 << 40, 95 * (1 << 40) // 100)


def make(folder, name, size=10, days=0.0):
    path = folder / name
    path.write_bytes(b"x" * size)
    t = time.time() - days * DAY
    os.utime(path, (t, t))
    return path


def young(folder, name=f"observer.log.{TS + 99}"):
    """A just-rotated empty log: older files age from it (plan.py's reference time)
    and, freeing nothing, the threshold step never takes it."""
    path = folder / name
    path.write_bytes(b"")
    return path


def ob_target(folder, threshold=80.0):
    return policy.Target("ob_log", str(folder), threshold, policy.default_targets(str(folder), "/x")[0].rules)


@pytest.fixture
def logdir(tmp_path):
    d = tmp_path / "log"
    d.mkdir()
    return d


class Holder:
    """A child process holding files open until closed."""

    def __init__(self):
        self.child = subprocess.Popen(
            [sys.executable, "-c", "import sys\nkeep = []\nfor line in sys.stdin:\n"
             "    keep.append(open(line.strip()))\n    print('open', flush=True)\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def open(self, path):
        self.child.stdin.write(f"{path}\n")
        self.child.stdin.flush()
        assert self.child.stdout.readline().strip() == "open"

    def close(self):
        self.child.kill()
        self.child.wait()


@pytest.fixture
def holder():
    h = Holder()
    yield h
    h.close()


def fake_proc(root, self_pid=None):
    proc = root / "proc"
    proc.mkdir()
    if self_pid is not None:
        (proc / "self").symlink_to(str(self_pid))
        (proc / str(self_pid) / "fd").mkdir(parents=True)
    return proc


# ------------------------------------------------------------ blind: delete only what age alone requires

def test_an_empty_proc_makes_the_pass_age_only(tmp_path, logdir, holder):
    """A tmpfs over /proc: a young rotated file held open was deleted by the threshold step."""
    old = make(logdir, f"observer.log.{TS + 1}", days=100)
    young = make(logdir, f"observer.log.{TS + 2}", days=1)
    holder.open(young)
    done = clean_once([ob_target(logdir)], usage=full, open_files=OpenFiles(proc=str(fake_proc(tmp_path))))
    plan = done.runs[0].plan
    assert "shows no processes" in plan.blind and "no threshold step" in plan.note
    assert [d.name for d in plan.deletions] == [old.name]
    assert os.listdir(logdir) == [young.name]
    totals = Totals([ob_target(logdir)])
    totals.add(done)
    gauge = [m["value"] for m in totals.message(0)["metrics"] if m["name"] == "ob_cleaner_open_files_visible"]
    assert gauge == [0]


def test_blind_age_deletions_wait_an_hour_even_with_retention_zero(tmp_path, logdir):
    make(logdir, f"observer.log.{TS + 1}", days=0.01)         # 15 minutes old
    make(logdir, f"observer.log.{TS + 2}", days=0.1)
    rules = tuple(policy.Rule(r.name, r.pattern, 0, 0) for r in ob_target(logdir).rules)
    target = policy.Target("ob_log", str(logdir), 0.0, rules)
    done = clean_once([target], usage=full, open_files=OpenFiles(proc=str(fake_proc(tmp_path))))
    assert [d.name for d in done.runs[0].plan.deletions] == [f"observer.log.{TS + 2}"]


def test_a_proc_of_another_pid_namespace_is_blind(tmp_path, logdir):
    proc = fake_proc(tmp_path, self_pid=1)
    assert "another PID namespace" in blind_reason(OpenFiles(proc=str(proc)))


def test_no_proc_at_all_is_blind(tmp_path):
    assert "shows no processes" in blind_reason(OpenFiles(proc=str(tmp_path / "absent")))


def test_the_real_proc_sees_us():
    assert blind_reason(OpenFiles()) == ""


def test_an_observer_pid_that_proc_does_not_show_is_blind(tmp_path):
    pid_file = tmp_path / "observer.pid"
    pid_file.write_text("4194999\n")                  # above any pid_max: not a process here
    assert "4194999" in blind_reason(OpenFiles(), pid_files=[str(pid_file)])
    pid_file.write_text(f"{os.getpid()}\n")          # a process, but not an observer
    assert "not a process" in blind_reason(OpenFiles(), pid_files=[str(pid_file)])
    pid_file.write_text("garbage")                   # no pid: nothing to look for
    assert blind_reason(OpenFiles(), pid_files=[str(pid_file)]) == ""


def test_a_visible_observer_is_not_blind(tmp_path):
    child = subprocess.Popen(            # a process whose comm is "observer", as OBServer's is
        [sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(None).prctl(15, b'observer', 0, 0, 0); "
         "print('ready', flush=True); sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        pid_file = tmp_path / "observer.pid"
        pid_file.write_text(str(child.pid))
        assert blind_reason(OpenFiles(), pid_files=[str(pid_file)]) == ""
    finally:
        child.kill()
        child.wait()


def test_a_hidden_process_of_the_active_logs_owner_is_blind(tmp_path, logdir):
    proc = fake_proc(tmp_path, self_pid=os.getpid())
    (proc / "777").mkdir()
    (proc / "777" / "fd").write_text("")             # listing it fails, as for another user's process
    make(logdir, "observer.log")
    fd = os.open(logdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert "process 777" in blind_reason(OpenFiles(proc=str(proc)), fd, ["observer.log"])
        assert blind_reason(OpenFiles(proc=str(proc)), fd, []) == ""
    finally:
        os.close(fd)


def test_status_says_the_pass_is_blind(tmp_path, logdir):
    make(logdir, f"observer.log.{TS + 1}", days=100)
    done = clean_once([ob_target(logdir)], usage=full, open_files=OpenFiles(proc=str(fake_proc(tmp_path))))

    class Ctx:
        class section:
            dry_run = False
        states = []

        def set_state(self, state, reason):
            self.states.append((state, reason))

    ctx = Ctx()
    ob_cleaner._report_state(ctx, done)
    state, reason = ctx.states[-1]
    assert state == "degraded" and "open files cannot be seen" in reason and "past their retention" in reason


# ------------------------------------------------------------ the lease: a re-check on the file itself

def frozen_snapshot():
    """A snapshot taken now and never refreshed: the pass acts on a picture from before the opens."""
    of = OpenFiles(clock=lambda: 0.0)
    of.snapshot()
    return of


def test_files_opened_just_after_the_pass_started_are_kept(logdir, holder):
    files = [make(logdir, f"observer.log.{TS + i}", days=100) for i in range(18)]
    fresh = young(logdir)
    opened = []

    def tick():
        if not opened:                    # the pass has planned and is about to delete
            for f in files:
                holder.open(f)
            opened.append(1)
        return False

    done = clean_once([ob_target(logdir, 0.0)], usage=full, open_files=frozen_snapshot(), tick=tick)
    assert sorted(os.listdir(logdir)) == sorted([f.name for f in files] + [fresh.name])
    st = done.runs[0].result.rules["log"]
    assert st.skipped == {"open": 18} and st.deleted_files == 0 and done.runs[0].result.unleased == 0


def test_a_file_closed_again_goes(logdir, holder):
    make(logdir, f"observer.log.{TS + 1}", days=100)
    done = clean_once([ob_target(logdir, 0.0)], usage=full, open_files=frozen_snapshot())
    assert os.listdir(logdir) == [] and done.runs[0].result.rules["log"].deleted_files == 1


def test_without_leases_the_snapshot_still_counts(logdir, holder):
    held = make(logdir, f"observer.log.{TS + 1}", days=100)
    make(logdir, f"observer.log.{TS + 2}", days=100)
    fresh = young(logdir)
    holder.open(held)
    done = clean_once([ob_target(logdir, 0.0)], usage=full, leases=False)
    assert sorted(os.listdir(logdir)) == [held.name, fresh.name]
    result = done.runs[0].result
    assert result.rules["log"].skipped == {"open": 1} and result.unleased == 1


def test_an_open_that_waits_on_the_lease_finds_the_file_gone(logdir):
    """While the lease is held, another process's open waits; the unlink comes first."""
    from engine.cleaner.openfiles import HELD, Lease
    path = make(logdir, f"observer.log.{TS + 1}", days=100)
    st = path.lstat()
    fd = os.open(logdir, os.O_RDONLY | os.O_DIRECTORY)
    lease = Lease()
    try:
        assert lease.take(fd, path.name, st.st_dev, st.st_ino) == HELD
        child = subprocess.Popen([sys.executable, "-c", "import os, sys; f = open(sys.argv[1]); "
                                  "print(os.fstat(f.fileno()).st_nlink)", str(path)],
                                 stdout=subprocess.PIPE, text=True)
        # the child's open is now waiting on our lease: the kernel shows it as breaking
        wait_for(lambda: "BREAKING" in open("/proc/locks").read() or child.poll() is not None,
                 what="the child's open to wait on the lease")
        assert child.poll() is None, "the open did not wait on the lease"
        os.unlink(path.name, dir_fd=fd)
    finally:
        lease.release()
        os.close(fd)
    assert child.communicate(timeout=60)[0].strip() == "0"     # it opened the already-unlinked inode
