"""Planning is pure: listings and usage readings in, deletions with reasons out."""
import stat

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cleaner import policy
from engine.cleaner.listing import DiskUsage, Entry
from engine.cleaner.plan import AGE, THRESHOLD, plan_target

DAY = 86400.0
NOW = 1_750_000_000.0
REG = stat.S_IFREG | 0o644


def ob_log(threshold=80.0):
    rules = policy.default_targets("/ob/log", "/agent/log")[0].rules
    return policy.Target("ob_log", "/ob/log", threshold, rules)


def entry(name, size=100, days=0.0, mode=REG, inode=None):
    return Entry(name, size, NOW - days * DAY, inode or abs(hash(name)) % 10**9, 1, mode)


def names(plan, reason=None):
    return [d.name for d in plan.deletions if reason is None or d.reason == reason]


def test_below_threshold_deletes_nothing_however_old():
    files = [entry(f"observer.log.{20240101000000000 + i}", days=100) for i in range(5)]
    plan = plan_target(ob_log(), files, DiskUsage(1000, 800), NOW)
    assert plan.deletions == [] and "nothing to do" in plan.note


def test_above_threshold_age_first_and_enough():
    files = [entry("observer.log.20240101000000001", 100, days=9), entry("observer.log.20240101000000002", 100, days=7),
             entry("observer.log.wf.20240101000000001", 100, days=9), entry("observer.log.wf.20240101000000002", 100, days=31),
             entry("observer.log.20240101000000003", 0), entry("observer.log.wf.20240101000000003", 0)]   # just rotated
    plan = plan_target(ob_log(), files, DiskUsage(1000, 850), NOW)
    # log: 8 days, wf: 30 days; 200 bytes freed brings 85% to 65%: no second pass
    assert sorted(names(plan, AGE)) == ["observer.log.20240101000000001", "observer.log.wf.20240101000000002"]
    assert names(plan, THRESHOLD) == []
    assert plan.predicted.percent == 65.0


def test_still_above_deletes_oldest_first_until_keep_percentage():
    logs = [entry(f"observer.log.{20240101000000000 + i}", 100, days=7 - i * 0.5) for i in range(10)]   # all younger than 8 d
    wfs = [entry(f"observer.log.wf.{20240101000000000 + i}", 100, days=7 - i * 0.5) for i in range(10)]
    plan = plan_target(ob_log(), logs + wfs, DiskUsage(10_000, 9_900), NOW)
    assert names(plan, AGE) == []
    # log keeps 60 %: 400 of its 1000 bytes go, oldest first; wf keeps 80 %: 200 bytes go
    assert [d.name for d in plan.deletions if d.rule == "log"] == [f"observer.log.{20240101000000000 + i}" for i in range(4)]
    assert [d.name for d in plan.deletions if d.rule == "wf"] == ["observer.log.wf.20240101000000000", "observer.log.wf.20240101000000001"]
    assert all(d.reason == THRESHOLD for d in plan.deletions)


def test_second_pass_counts_only_what_the_age_pass_left():
    files = [entry("observer.log.20240101000000000", 1000, days=20)] + \
            [entry(f"observer.log.{20240101000000000 + i}", 100, days=5 - i * 0.1) for i in range(1, 11)]
    plan = plan_target(ob_log(), files, DiskUsage(10_000, 9_900), NOW)
    assert names(plan, AGE) == ["observer.log.20240101000000000"]
    assert names(plan, THRESHOLD) == [f"observer.log.{20240101000000000 + i}" for i in range(1, 5)]


def test_never_symlinks_directories_or_active_logs():
    old = 100
    files = [entry("observer.log.20240101000000001", days=old, mode=stat.S_IFLNK | 0o777),
             entry("observer.log.20240101000000002", days=old, mode=stat.S_IFDIR | 0o755),
             entry("observer.log.20240101000000003", days=old, mode=stat.S_IFIFO | 0o644),
             entry("observer.log", days=old), entry("observer.log.wf", days=old),
             entry("observer.log.20240101000000004", days=old)]
    greedy = policy.Target("t", "/x", 0.0, (policy.Rule("all", r"observer\.log.*", 1, 0),))
    plan = plan_target(greedy, files, DiskUsage(100, 99), NOW)
    assert names(plan) == ["observer.log.20240101000000004"]
    assert plan.ignored == {"symlink": 1, "not_regular_file": 2, "active_log": 2}


def test_any_active_log_or_pid_name_is_refused_whatever_its_characters():
    files = [entry(n, days=100) for n in ("my app.log", "obs+1.log.wf", "obproxyd.pid", "my app.log.1")]
    greedy = policy.Target("t", "/x", 0.0, (policy.Rule("all", r"(?s:.*)", 1, 0),))
    plan = plan_target(greedy, files, DiskUsage(100, 99), NOW)
    assert names(plan) == ["my app.log.1"] and plan.ignored == {"active_log": 3}


def test_a_file_belongs_to_its_first_matching_rule_only():
    t = policy.Target("t", "/x", 0.0, (policy.Rule("a", r"x\.[0-9]+", 1, 0), policy.Rule("b", r"x\..*", 1, 0)))
    plan = plan_target(t, [entry("x.1", days=5), entry("x.old", days=5)], DiskUsage(100, 99), NOW)
    assert {(d.name, d.rule) for d in plan.deletions} == {("x.1", "a"), ("x.old", "b")}


def test_future_mtime_is_not_old():
    plan = plan_target(ob_log(0.0), [entry("observer.log.20240101000000001", days=-3)], DiskUsage(100, 99), NOW)
    assert names(plan, AGE) == []


def clock_test_files():
    """Rotated logs and wf logs, by age in days (8 and 30 days of retention, keep 100 %:
    the threshold step takes nothing, so what goes is the age step's doing)."""
    logs = {f"observer.log.{20240101000000000 + i}": d for i, d in enumerate((0.1, 1, 5, 7.5, 9, 100))}
    wfs = {f"observer.log.wf.{20240101000000000 + i}": d for i, d in enumerate((2, 29, 40))}
    rules = (policy.Rule("log", policy.ROTATED_LOG, 8, 100), policy.Rule("wf", policy.ROTATED_WF, 30, 100))
    files = [entry(n, days=d) for n, d in {**logs, **wfs}.items()] + [entry("observer.log", days=0)]
    return policy.Target("ob_log", "/ob/log", 0.0, rules), files


def test_a_clock_stepped_forward_ten_years_deletes_only_what_is_old_against_the_newest_file():
    """Ages count back from min(now, the rule's newest file): a step past the retention
    does not make every rotated log old, and files old against the newest still go."""
    target, files = clock_test_files()
    for now in (NOW, NOW + 3650 * DAY):
        plan = plan_target(target, files, DiskUsage(100, 99), now)
        assert sorted(names(plan)) == ["observer.log.20240101000000004", "observer.log.20240101000000005",
                                       "observer.log.wf.20240101000000002"], now
        assert all(d.reason == AGE for d in plan.deletions)
    late = plan_target(target, files, DiskUsage(100, 99), NOW + 3650 * DAY)
    assert "rule log: the clock is 3650.1 days past its newest file" in late.note
    assert "rule wf: the clock is 3652.0 days past its newest file" in late.note
    assert "past its newest file" not in plan_target(target, files, DiskUsage(100, 99), NOW).note


def test_a_clock_stepped_back_deletes_less_until_it_catches_up():
    target, files = clock_test_files()
    plan = plan_target(target, files, DiskUsage(100, 99), NOW - 50 * DAY)      # now wins the min
    assert names(plan) == ["observer.log.20240101000000005"]      # 100 d old, 50 d by the stepped clock


def test_a_rule_whose_newest_file_is_old_keeps_its_last_retention_from_the_age_step():
    target, _ = clock_test_files()
    files = [entry(f"observer.log.{20240101000000000 + i}", days=d) for i, d in enumerate((100, 105, 109))]
    plan = plan_target(target, files, DiskUsage(100, 99), NOW)
    assert names(plan) == ["observer.log.20240101000000002"]      # 9 days older than the newest


# ------------------------------------------------------------ properties

NAMES = st.sampled_from(["observer.log", "observer.log.wf", "election.log", "core.1", "observer.log.bak",
                         "x.log.1.tmp"]) | st.builds(
    lambda base, wf, n, z: f"{base}.log.{'wf.' if wf else ''}{n}{'.zst' if z else ''}",
    st.sampled_from(["observer", "rootservice", "election", "trace"]), st.booleans(),
    st.integers(0, 10**17), st.booleans())
MODES = st.sampled_from([REG, REG, REG, stat.S_IFLNK | 0o777, stat.S_IFDIR | 0o755])
ENTRIES = st.lists(st.tuples(NAMES, st.integers(0, 10**6), st.floats(-2, 60), MODES), max_size=40,
                   unique_by=lambda t: t[0])


@settings(max_examples=200, deadline=None)
@given(ENTRIES, st.integers(1, 10**7), st.floats(0, 1), st.floats(0, 100))
def test_plan_properties(raw, total, used_share, threshold):
    files = [Entry(n, s, NOW - d * DAY, i, 1, m) for i, (n, s, d, m) in enumerate(raw)]
    target = ob_log(threshold)
    usage = DiskUsage(total, int(total * used_share))
    plan = plan_target(target, files, usage, NOW)
    assert plan_target(target, files, usage, NOW).deletions == plan.deletions     # deterministic
    deleted = [d.name for d in plan.deletions]
    assert len(deleted) == len(set(deleted))
    if usage.percent <= threshold:
        assert deleted == []
    for d in plan.deletions:
        rule = next(r for r in target.rules if r.name == d.rule)
        assert d.entry.is_regular and not policy.is_active_name(d.name)
        assert target.rule_for(d.name) is rule
        if d.reason == AGE:       # old both by the clock and against the rule's newest candidate
            newest = max(e.mtime for e in files if target.rule_for(e.name) is rule and e.is_regular
                         and not policy.is_active_name(e.name))
            assert d.age > rule.retention_seconds and d.age == min(NOW, newest) - d.entry.mtime
    for rule in target.rules:     # the threshold pass stops once the rule's share is planned
        mine = [d.entry.size for d in plan.deletions if d.rule == rule.name and d.reason == THRESHOLD]
        left = sum(e.size for e in files if target.rule_for(e.name) is rule and e.is_regular
                   and not policy.is_active_name(e.name)) - \
            sum(d.entry.size for d in plan.deletions if d.rule == rule.name and d.reason == AGE)
        if mine:
            assert sum(mine[:-1]) < left * (100 - rule.keep_percentage) / 100
