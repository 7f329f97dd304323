"""ob_cleaner's policy: anchored patterns, obagent's defaults, config validation."""
import re
from pathlib import Path

import pytest

from engine import config
from engine.cleaner import policy
from engine.errors import ConfigError

# obagent's own (unanchored, searched) patterns, for comparison.
OBAGENT_LOG = r"([a-z]+.)?[a-z]+.log.[0-9]+"
OBAGENT_CORE = r"core.[0-9]+"


def defaults():
    return {t.name: t for t in policy.default_targets("/home/admin/oceanbase/log", "/home/admin/ocp_agent/log")}


@pytest.mark.parametrize("name,rule", [
    ("observer.log.20241219182047574", "log"),
    ("observer.log.20241219182047574.zst", "log"),
    ("rootservice.log.20241219182047", "log"),
    ("election.log.20241219182047574", "log"),
    ("trace.log.20241219182047", "log"),
    ("observer.log.wf.20241219182047574", "wf"),
    ("rootservice.log.wf.20241219182047574.zst", "wf"),
])
def test_rotated_ob_logs_match_their_rule(name, rule):
    found = defaults()["ob_log"].rule_for(name)
    assert found is not None and found.name == rule


@pytest.mark.parametrize("name", [
    "observer.log", "observer.log.wf", "rootservice.log", "election.log.wf", "trace.log",
    "observer.log.20241219182047574.bak", "observer.log.1.tmp", "xobserver.log.1x",
    "observer_log_1", "observer.log.", "OBSERVER.LOG.1", "sub/observer.log.1", "observer.log.wf",
    # OBServer writes 17 digits (14 in older versions): any other count is someone else's file
    "observer.log.1", "observer.log.2024", "observer.log.wf.1", "observer.log.202412191820475", "election.log.1.zst",
    "observer.log.202412191820475740", "observer.log.2024121918204", "observer.log.wf.202412191820475",
])
def test_ob_log_rules_leave_everything_else(name):
    assert defaults()["ob_log"].rule_for(name) is None


@pytest.mark.parametrize("name", ["core.123", "core.1"])
def test_core_rule_matches_cores(name):
    assert defaults()["core_log"].rule_for(name).name == "core"


@pytest.mark.parametrize("name", ["core", "core12.db", "score.1.txt", "libcore.so.1", "core.1.gz",
                                  "hardcore.2", "core-1", "observer.core.1"])
def test_core_rule_is_anchored(name):
    assert defaults()["core_log"].rule_for(name) is None


@pytest.mark.parametrize("name,obagent", [
    ("core12.db", OBAGENT_CORE), ("score.1.txt", OBAGENT_CORE), ("hardcore.2", OBAGENT_CORE),
    ("observer.log.1.bak", OBAGENT_LOG), ("mycatalog_2.tar", OBAGENT_LOG),
    ("backup-observer.log.20240101.keep", OBAGENT_LOG),
])
def test_unanchored_obagent_patterns_would_have_matched_too_much(name, obagent):
    assert re.search(obagent, name), "the comparison case is no longer an obagent over-match"
    assert not any(t.rule_for(name) for t in defaults().values())


def test_active_names():
    for name in ("observer.log", "observer.log.wf", "ob_cleaner.log", "a-b.log", "my app.log",
                 "obs+1.log.wf", "\u00e9.log", "obproxy.pid", ".log"):
        assert policy.is_active_name(name)
    for name in ("observer.log.1", "observer.log.wf.1", "core.1"):
        assert not policy.is_active_name(name)


def test_defaults_are_obagents_and_follow_the_configured_dirs():
    cfg = config.from_dict({"workers": {"ob_logtailer": {"log_dir": "/data/ob/log"}}}, home="/srv/agent")
    targets = {t.name: t for t in policy.targets_from_config(cfg)}
    assert targets["ob_log"].path == "/data/ob/log"
    assert targets["core_log"].path == "/data/ob"
    assert targets["agent_log"].path == "/srv/agent/log"
    assert targets["ob_log"].disk_threshold == 80
    log, wf = targets["ob_log"].rules
    assert (log.retention_days, log.keep_percentage) == (8, 60)
    assert (wf.retention_days, wf.keep_percentage) == (30, 80)
    assert targets["agent_log"].rule_for("ob_cleaner.log.3") is not None
    assert cfg.workers.ob_cleaner.enabled


def rule(**kw):
    return {"name": "r", "pattern": r"app\.log\.[0-9]+", "retention_days": 3, "keep_percentage": 50, **kw}


HERE = str(Path(__file__).parent)       # an existing, non-system directory


def target(**kw):
    return {"name": "t", "path": HERE, "disk_threshold": 70, "rules": [rule()], **kw}


def test_parse_a_valid_table():
    [t] = policy.parse_targets([target()])
    assert t.disk_threshold == 70 and t.rules[0].retention_seconds == 3 * 86400
    assert t.rule_for("app.log.7") is not None and t.rule_for("app.log.7.old") is None


@pytest.mark.parametrize("raw,key", [
    ([target(extra=1)], "targets[0].extra"),
    ([target(path="relative/dir")], "targets[0].path"),
    ([target(path="/nonexistent/log")], "targets[0].path"),
    ([target(disk_threshold=120)], "targets[0].disk_threshold"),
    ([target(rules=[])], "targets[0].rules"),
    ([target(rules=[rule(pattern="(")])], "targets[0].rules[0].pattern"),
    ([target(rules=[rule(pattern=r".*\.log")])], "targets[0].rules[0].pattern"),
    ([target(rules=[rule(pattern=".*")])], "targets[0].rules[0].pattern"),
    ([target(rules=[rule(keep_percentage=-1)])], "targets[0].rules[0].keep_percentage"),
    ([target(rules=[rule(retention_days="8d")])], "targets[0].rules[0].retention_days"),
    ([target(), target()], "targets[1].name"),
    (["not a table"], "targets[0]"),
])
def test_bad_tables_name_the_key(raw, key):
    with pytest.raises(policy.PolicyError) as info:
        policy.parse_targets(raw)
    assert info.value.key == key


def test_config_load_refuses_a_pattern_matching_active_logs():
    text = f"""
[[workers.ob_cleaner.targets]]
name = "ob_log"
path = "{HERE}"
[[workers.ob_cleaner.targets.rules]]
name = "all"
pattern = '[a-z]+\\.log.*'
retention_days = 8
keep_percentage = 60
"""
    with pytest.raises(ConfigError) as info:
        config.loads(text)
    assert "targets[0].rules[0].pattern" in str(info.value) and "would match the protected name 'a.log'" in str(info.value)


def test_shipped_config_loads():
    from pathlib import Path
    cfg = config.load(Path(__file__).parents[1] / "conf" / "agent.toml")
    assert [t.name for t in policy.targets_from_config(cfg)] == ["ob_log", "core_log", "agent_log"]
