"""Which directories may be cleaned: checked at load (explicit and derived targets) and at each pass."""
import os
import subprocess
import sys
import time

import pytest

from engine import config
from engine.cleaner import paths, policy
from engine.cleaner.listing import DiskUsage
from engine.cleaner.run import clean_once
from engine.errors import ConfigError

DAY = 86400


def target_table(path):
    return {"workers": {"ob_cleaner": {"targets": [{
        "name": "t", "path": path, "rules": [
            {"name": "r", "pattern": r"app\.log\.[0-9]+", "retention_days": 1, "keep_percentage": 50}]}]}}}


@pytest.mark.parametrize("log_dir", ["", "log", ".", "./log", "/", "/etc", "/etc/../etc", "//", "/usr/lib/x",
                                     "/var/log/..", "/proc/1", "/lib64"])
def test_a_bad_log_dir_is_refused_at_load_naming_the_key(log_dir, tmp_path):
    with pytest.raises(ConfigError) as info:
        config.from_dict({"workers": {"ob_logtailer": {"log_dir": log_dir}}}, home=str(tmp_path))
    assert info.value.key == "workers.ob_logtailer.log_dir"


def test_a_log_dir_symlinked_to_etc_is_refused(tmp_path):
    (tmp_path / "log").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(ConfigError, match="resolves to /etc"):
        config.from_dict({"workers": {"ob_logtailer": {"log_dir": str(tmp_path / "log")}}}, home=str(tmp_path))


def test_a_log_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "log").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        config.from_dict({"workers": {"ob_logtailer": {"log_dir": str(tmp_path / "log")}}}, home=str(tmp_path))


def test_a_home_in_a_system_tree_is_refused_as_agent_log_target():
    with pytest.raises(ConfigError) as info:
        config.from_dict({}, home="/etc/agent")         # agent_log would be /etc/agent/log
    assert info.value.key == "agent.home"


@pytest.mark.parametrize("path", ["/", "/etc", "/usr", "/var", "/bin", "/boot", "/dev", "/lib", "/proc",
                                  "/sbin", "/sys", "/home", "/etc/ssh", "//etc", "/var/log/../.."])
def test_explicit_system_targets_are_refused(path):
    with pytest.raises(ConfigError) as info:
        config.from_dict(target_table(path))
    assert info.value.key == "targets[0].path" and "system" in info.value.reason


def test_explicit_targets_must_be_existing_directories(tmp_path):
    (tmp_path / "file").write_text("x")
    for path, reason in ((str(tmp_path / "missing"), "does not exist"), (str(tmp_path / "file"), "not a directory"),
                         ("", "non-empty"), ("log", "absolute")):
        with pytest.raises(ConfigError, match=reason):
            config.from_dict(target_table(path))
    config.from_dict(target_table(str(tmp_path)))


def test_check_config_refuses_an_empty_log_dir(tmp_path):
    conf = tmp_path / "agent.toml"
    conf.write_text('[workers.ob_logtailer]\nlog_dir = ""\n')
    done = subprocess.run([sys.executable, "-m", "engine", "check-config", str(conf)], capture_output=True, text=True)
    assert done.returncode == 2 and "workers.ob_logtailer.log_dir" in done.stderr


def test_an_empty_log_dir_never_cleans_the_working_dir_nor_root(tmp_path, monkeypatch):
    """The reported case, below the config: the derived targets of log_dir = '' are refused by the pass."""
    victim = tmp_path / "observer.log.20240101000000001"
    victim.write_text("x")
    os.utime(victim, (time.time() - 100 * DAY,) * 2)
    monkeypatch.chdir(tmp_path)
    targets = policy.default_targets("", str(tmp_path / "agent"))
    done = clean_once(targets[:2], usage=lambda fd: DiskUsage(100, 99))
    assert victim.exists()
    assert [r.error for r in done.runs] == ["target_refused", "target_refused"]


def test_a_pass_refuses_a_target_that_is_now_a_system_dir(tmp_path):
    link = tmp_path / "log"
    os.symlink(tmp_path, link)
    t = policy.Target("t", str(link), 0.0, (policy.Rule("r", r"x\.[0-9]+", 0, 0),))
    os.unlink(link)
    os.symlink("/etc", link)                   # swapped after the load
    done = clean_once([t], usage=lambda fd: DiskUsage(100, 99), dry_run=True)
    assert done.runs[0].error == "target_refused" and "/etc" in done.runs[0].detail


@pytest.mark.parametrize("path,refused", [
    ("/", True), ("/etc", True), ("/etc/x", True), ("/usr", True), ("/usr/local", True), ("/usr/local/ob/log", False),
    ("/usr/lib/x", True), ("/var", True), ("/var/log", False), ("/var/log/app", False), ("/lib", True),
    ("/lib64/x", True), ("/library/log", True), ("/home", True), ("/home/admin/oceanbase/log", False),
    ("/tmp", True), ("/tmp/x", False), ("/data/log", False),
])
def test_system_reason(path, refused):
    assert bool(paths.system_reason(path)) == refused


def test_system_dir_of_fd_walks_up(tmp_path):
    for path, expected in (("/etc", "/etc"), ("/", "/"), ("/usr/lib", "/usr/lib"), (str(tmp_path), "")):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert paths.system_dir_of_fd(fd) == expected
        finally:
            os.close(fd)
    sub = next((p for p in ("/etc/ssh", "/usr/lib/python3", "/etc/apt") if os.path.isdir(p)), None)
    if sub:
        fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert paths.system_dir_of_fd(fd)
        finally:
            os.close(fd)
