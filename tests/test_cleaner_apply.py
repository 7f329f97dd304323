"""Applying plans on real temporary directories, with a simulated disk-usage source.

Permission denied: the tests run as root, for whom a directory without write
permission does not stop an unlink, and mounting a read-only filesystem needs
privileges a container may not grant; so that case injects a failing unlink
through ``apply_plan``'s ``unlink`` seam (the same code path an EACCES/EROFS
from the kernel takes).
"""
import errno
import os
import subprocess
import sys
import time

import pytest

from engine.cleaner import policy
from engine.cleaner.apply import OpenFiles, apply_plan
from engine.cleaner.listing import DiskUsage, open_dir, read_listing
from engine.cleaner.plan import plan_target
from engine.cleaner.run import clean_once

DAY = 86400


def full(fd):          # a disk 95 % full, whatever the real one says
    return DiskUsage(1000, 950)


def roomy(fd):
    return DiskUsage(1000, 100)


def make(folder, name, size=10, days=0.0, data=None):
    path = folder / name
    path.write_bytes(data if data is not None else b"x" * size)
    t = time.time() - days * DAY
    os.utime(path, (t, t))
    return path


def young(folder, name="observer.log.20991231000000000"):
    """A just-rotated, empty log: the writer is alive, so the older files age from it
    (ages count back from a rule's newest file, see plan.py); empty, it frees nothing
    and the threshold step never takes it."""
    return make(folder, name, data=b"")


def ob_target(folder, threshold=80.0):
    rules = policy.default_targets(str(folder), "/nonexistent")[0].rules
    return policy.Target("ob_log", str(folder), threshold, rules)


@pytest.fixture
def logdir(tmp_path):
    d = tmp_path / "log"
    d.mkdir()
    return d


def plan_for(target):
    fd = open_dir(target.path)
    try:
        entries, _ = read_listing(fd)
        return plan_target(target, entries, full(fd), time.time())
    finally:
        os.close(fd)


def apply_for(plan, **kw):
    fd = open_dir(plan.target.path)
    try:
        return apply_plan(plan, fd, **kw)
    finally:
        os.close(fd)


def test_age_rule_with_a_full_disk(logdir):
    old = make(logdir, "observer.log.20240101000000001", days=9)
    on_disk = old.lstat().st_blocks * 512
    make(logdir, "observer.log.wf.20240101000000001", days=9)     # wf keeps 30 days
    make(logdir, "observer.log.20240301000000001", days=1)
    # just above 80 %: the blocks freed by the age pass bring it under 80 %, no second pass
    done = clean_once([ob_target(logdir)], usage=lambda fd: DiskUsage(100 * on_disk, 80 * on_disk + 1))
    assert sorted(os.listdir(logdir)) == ["observer.log.20240301000000001", "observer.log.wf.20240101000000001"]
    st = done.runs[0].result.rules["log"]
    assert (st.deleted_files, st.deleted_bytes, st.errors) == (1, on_disk, {})


def test_nothing_below_the_threshold(logdir):
    make(logdir, "observer.log.20240101000000001", days=100)
    done = clean_once([ob_target(logdir)], usage=roomy)
    assert os.listdir(logdir) == ["observer.log.20240101000000001"] and done.runs[0].result is None


def test_threshold_rule_oldest_first(logdir):
    for i in range(10):
        make(logdir, f"observer.log.{20240101000000000 + i}", size=100, days=5 - i * 0.1)
    clean_once([ob_target(logdir)], usage=full)
    assert sorted(os.listdir(logdir)) == [f"observer.log.{20240101000000000 + i}" for i in range(4, 10)]


def test_dry_run_deletes_nothing(logdir):
    make(logdir, "observer.log.20240101000000001", days=100)
    done = clean_once([ob_target(logdir)], usage=full, dry_run=True)
    assert os.listdir(logdir) == ["observer.log.20240101000000001"]
    assert [d.name for d in done.runs[0].plan.deletions] == ["observer.log.20240101000000001"]


def test_a_dry_run_logs_what_it_would_delete(logdir, caplog):
    make(logdir, "observer.log.20240101000000001", days=100)
    with caplog.at_level("INFO", logger="engine.ob_cleaner"):
        done = clean_once([ob_target(logdir)], dry_run=True, usage=full)
    assert done.runs[0].result is None and (logdir / "observer.log.20240101000000001").exists()
    assert any("would delete" in m and "observer.log.20240101000000001" in m for m in caplog.messages)


def test_active_files_untouched_even_by_a_greedy_rule(logdir):
    for name in ("observer.log", "observer.log.wf", "rootservice.log", "election.log.wf"):
        make(logdir, name, days=100)
    make(logdir, "observer.log.20240101000000001", days=100)
    greedy = policy.Target("t", str(logdir), 0.0, (policy.Rule("all", r".*", 0, 0),))
    done = clean_once([greedy], usage=full)
    assert sorted(os.listdir(logdir)) == ["election.log.wf", "observer.log", "observer.log.wf", "rootservice.log"]
    assert done.runs[0].plan.ignored == {"active_log": 4}


def test_a_file_held_open_by_a_process_is_kept(logdir):
    held = make(logdir, "observer.log.20240101000000001", days=100)
    make(logdir, "observer.log.20240101000000002", days=100)
    fresh = young(logdir)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; f = open(sys.argv[1]); print('open', flush=True); sys.stdin.read()",
         str(held)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "open"
        done = clean_once([ob_target(logdir)], usage=full)
    finally:
        child.kill()
        child.wait()
    assert sorted(os.listdir(logdir)) == [held.name, fresh.name]
    st = done.runs[0].result.rules["log"]
    assert st.skipped == {"open": 1} and st.deleted_files == 1


def test_without_proc_nothing_is_deleted_and_the_reason_says_so(logdir):
    make(logdir, "observer.log.20240101000000001", days=100)
    result = apply_for(plan_for(ob_target(logdir, 0.0)), open_files=OpenFiles(proc=str(logdir / "no-proc")))
    assert (logdir / "observer.log.20240101000000001").exists()
    assert result.rules["log"].skipped == {"open_unknown": 1} and result.rules["log"].errors == {}


def test_open_files_scan_sees_our_own_fd(logdir):
    path = make(logdir, "observer.log.20240101000000001")
    with open(path) as fh:
        st = os.fstat(fh.fileno())
        assert OpenFiles().holds(st.st_dev, st.st_ino)
    assert not OpenFiles().holds(st.st_dev, st.st_ino)


def test_symlink_to_a_password_file_is_not_followed(tmp_path, logdir):
    secret = make(tmp_path, "passwd", data=b"root:x:0:0::/root:/bin/bash\n", days=100)
    link = logdir / "observer.log.20240101000000001"
    link.symlink_to(secret)
    os.utime(link, (0, 0), follow_symlinks=False)
    core = logdir / "core.1"
    core.symlink_to(secret)
    done = clean_once([ob_target(logdir, 0.0)], usage=full)
    assert secret.read_bytes().startswith(b"root:x:0:0")
    assert link.is_symlink() and core.is_symlink()
    assert done.runs[0].plan.ignored == {"symlink": 1}


def test_no_recursion_into_directories_real_or_symlinked(tmp_path, logdir):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = make(outside, "observer.log.20240101000000001", days=100)
    (logdir / "linked").symlink_to(outside, target_is_directory=True)
    sub = logdir / "sub"
    sub.mkdir()
    nested = make(sub, "observer.log.20240101000000001", days=100)
    (logdir / "observer.log.20240101000000009").symlink_to(outside, target_is_directory=True)
    clean_once([ob_target(logdir, 0.0)], usage=full)
    assert victim.exists() and nested.exists() and (logdir / "observer.log.20240101000000009").is_symlink()


def test_replaced_by_a_symlink_between_plan_and_apply(tmp_path, logdir):
    secret = make(tmp_path, "passwd", data=b"secret\n")
    name = "observer.log.20240101000000001"
    make(logdir, name, days=100)
    plan = plan_for(ob_target(logdir, 0.0))
    os.unlink(logdir / name)
    (logdir / name).symlink_to(secret)
    result = apply_for(plan)
    assert (logdir / name).is_symlink() and secret.read_bytes() == b"secret\n"
    assert result.rules["log"].skipped == {"not_regular_file": 1}


def test_renamed_or_grown_between_plan_and_apply(logdir):
    make(logdir, "observer.log.20240101000000001", days=100)
    grown = make(logdir, "observer.log.20240101000000002", days=100)
    make(logdir, "observer.log.20240101000000003", days=100)
    fresh = young(logdir)
    plan = plan_for(ob_target(logdir, 0.0))
    os.rename(logdir / "observer.log.20240101000000001", logdir / "kept.observer")      # renamed away ...
    make(logdir, "observer.log.20240101000000001", days=100)                             # ... a new file took the name
    with open(grown, "ab") as fh:
        fh.write(b"more")
    os.utime(grown, (time.time() - 100 * DAY,) * 2)
    result = apply_for(plan)
    assert sorted(os.listdir(logdir)) == ["kept.observer", "observer.log.20240101000000001",
                                          "observer.log.20240101000000002", fresh.name]
    assert result.rules["log"].skipped == {"changed": 2} and result.rules["log"].deleted_files == 1


def test_a_rotation_during_the_open_files_scan_is_caught(logdir):
    """RotatingFileHandler shifts names (.1 -> .2, .log -> .1): a rollover while
    /proc is being scanned puts the just-closed log under the planned name."""
    make(logdir, "ob_cleaner.log.1", days=100)
    make(logdir, "ob_cleaner.log", data=b"the newest lines\n")
    target = policy.default_targets("/nonexistent", str(logdir))[2]
    plan = plan_for(policy.Target("agent_log", str(logdir), 0.0, target.rules))
    assert [d.name for d in plan.deletions] == ["ob_cleaner.log.1"]

    class RotatingWhileScanned(OpenFiles):
        def holds(self, dev, inode):
            if (logdir / "ob_cleaner.log").exists():
                os.rename(logdir / "ob_cleaner.log.1", logdir / "ob_cleaner.log.2")
                os.rename(logdir / "ob_cleaner.log", logdir / "ob_cleaner.log.1")
            return False

    result = apply_for(plan, open_files=RotatingWhileScanned())
    assert (logdir / "ob_cleaner.log.1").read_bytes() == b"the newest lines\n"
    assert result.rules["log"].skipped == {"changed": 1} and result.rules["log"].deleted_files == 0


def test_vanished_and_permission_denied_are_counted_and_the_run_goes_on(logdir):
    for i in range(4):
        make(logdir, f"observer.log.{20240101000000000 + i}", days=100)
    fresh = young(logdir)
    plan = plan_for(ob_target(logdir, 0.0))
    os.unlink(logdir / "observer.log.20240101000000000")

    def unlink(name, *, dir_fd):
        if name == "observer.log.20240101000000002":
            raise PermissionError(errno.EACCES, "Permission denied", name)
        os.unlink(name, dir_fd=dir_fd)

    result = apply_for(plan, unlink=unlink)
    assert sorted(os.listdir(logdir)) == ["observer.log.20240101000000002", fresh.name]
    st = result.rules["log"]
    assert st.errors == {"vanished": 1, "EACCES": 1} and st.deleted_files == 2


def test_a_missing_target_is_reported_and_the_others_are_cleaned(tmp_path, logdir):
    make(logdir, "observer.log.20240101000000001", days=100)
    missing = ob_target(tmp_path / "nope")
    done = clean_once([missing, ob_target(logdir)], usage=full)
    assert done.runs[0].error == "target_missing"
    assert os.listdir(logdir) == []


def test_nothing_outside_the_target_dir_is_touched(tmp_path, logdir):
    beside = make(tmp_path, "observer.log.20240101000000001", days=100)
    make(logdir, "observer.log.20240101000000001", days=100)
    clean_once([ob_target(logdir, 0.0)], usage=full)
    assert beside.exists() and os.listdir(logdir) == []


def test_stopping_interrupts_between_files(logdir):
    for i in range(5):
        make(logdir, f"observer.log.{20240101000000000 + i}", days=100)
    young(logdir)
    calls = []
    done = clean_once([ob_target(logdir, 0.0)], usage=full, tick=lambda: calls.append(1) or len(calls) > 2)
    assert done.runs[0].result.interrupted and len(os.listdir(logdir)) == 4


# ------------------------------------------------------------ property on real directories

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KINDS = st.sampled_from(["file", "file", "file", "link_out", "link_dir", "dir"])
NAMES = st.sampled_from(["observer.log", "observer.log.wf", "core.1", "observer.log.1.bak", "x.dat"]) | \
    st.builds(lambda n, wf: f"observer.log.{'wf.' if wf else ''}{20240101000000000 + n}", st.integers(0, 99), st.booleans())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(NAMES, KINDS, st.floats(0, 40), st.integers(0, 500)), max_size=25,
                unique_by=lambda t: t[0]),
       st.integers(0, 100), st.booleans())
def test_a_pass_only_ever_removes_planned_regular_files_of_the_dir(tmp_path_factory, layout, used, dry):
    root = tmp_path_factory.mktemp("prop")
    logdir, outside = root / "log", root / "outside"
    logdir.mkdir()
    outside.mkdir()
    bait = make(outside, "observer.log.20240101000000001", days=100)
    for name, kind, days, size in layout:
        if kind == "file":
            make(logdir, name, size=size, days=days)
        elif kind == "dir":
            (logdir / name).mkdir()
            make(logdir / name, "observer.log.20240101000000002", days=100)
        else:
            (logdir / name).symlink_to(bait if kind == "link_out" else outside)
            os.utime(logdir / name, (0, 0), follow_symlinks=False)
    before = set(os.listdir(logdir))
    done = clean_once([ob_target(logdir, 50.0)], usage=lambda fd: DiskUsage(100, used), dry_run=dry)
    gone = before - set(os.listdir(logdir))
    planned = {d.name for d in done.runs[0].plan.deletions}
    regular = {name for name, kind, _, _ in layout if kind == "file"}
    assert gone <= planned <= regular
    assert gone == (set() if dry else planned)
    assert not any(policy.is_active_name(n) for n in gone)
    assert bait.exists() and sorted(os.listdir(outside)) == ["observer.log.20240101000000001"]
    if used <= 50:
        assert planned == set()


# ------------------------------------------------------------ freed space is allocated blocks

MiB = 1 << 20


def sparse(folder, name, days, size=1 << 30):
    path = folder / name
    with open(path, "wb") as fh:
        fh.truncate(size)                     # a hole: no block allocated
    t = time.time() - days * DAY
    os.utime(path, (t, t))
    return path


def real(folder, count, days0):
    for i in range(count):
        make(folder, f"observer.log.{20240201000000000 + i}", data=os.urandom(MiB), days=days0 - i * 0.1)


def test_an_old_sparse_file_does_not_end_the_plan(logdir):
    """Deleting an old sparse 1 GiB file frees nothing: the threshold step must still run."""
    sparse(logdir, "observer.log.20240101000000001", days=100)
    real(logdir, 10, days0=5)
    done = clean_once([ob_target(logdir)], usage=lambda fd: DiskUsage(100 * MiB, 90 * MiB))
    plan = done.runs[0].plan
    assert [d.reason for d in plan.deletions].count("age") == 1
    assert [d.reason for d in plan.deletions].count("threshold") == 4      # 40 % of the 10 MiB, oldest first
    assert plan.predicted.percent > 80
    st = done.runs[0].result.rules["log"]
    assert st.deleted_files == 5 and 4 * MiB <= st.deleted_bytes < 5 * MiB


def test_a_young_sparse_file_does_not_inflate_the_keep_share(logdir):
    real(logdir, 10, days0=5)
    sparse(logdir, "observer.log.20240301000000001", days=0.01)          # the newest
    clean_once([ob_target(logdir)], usage=lambda fd: DiskUsage(100 * MiB, 90 * MiB))
    left = sorted(os.listdir(logdir))
    assert len(left) == 7 and "observer.log.20240301000000001" in left   # 4 of 10 real files went, not all 11


def test_a_hard_linked_file_frees_nothing(tmp_path, logdir):
    path = make(logdir, "observer.log.20240101000000001", data=os.urandom(MiB), days=100)
    os.link(path, tmp_path / "elsewhere")
    young(logdir)
    done = clean_once([ob_target(logdir, 0.0)], usage=full)
    assert done.runs[0].plan.bytes == 0 and done.runs[0].result.rules["log"].deleted_bytes == 0
    assert (tmp_path / "elsewhere").exists()
