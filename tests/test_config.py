"""Config loading: the shipped defaults, and one clear line for every kind of bad file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import config
from engine.errors import ConfigError

ROOT = Path(__file__).parent.parent


def test_shipped_config_is_valid_and_matches_the_defaults():
    shipped = config.load(ROOT / "conf" / "agent.toml")
    defaults = config.load(None)
    assert shipped.workers.pos_proxy.port == 62888
    assert shipped.workers.node_exporter.port == 63000
    assert shipped.workers.ocp_exporter.port == 62889
    assert shipped.supervisor == defaults.supervisor
    assert not shipped.ob.configured


@pytest.mark.parametrize("text, key, reason", [
    ("[agent\nhome = 1", "", "TOML syntax"),
    ("[agent]\nhomee = '/x'", "agent.homee", "unknown key"),
    ("[workers.pos_proxy]\nport = 70000", "workers.pos_proxy.port", "above the maximum 65535"),
    ("[workers.node_exporter]\nport = 0", "workers.node_exporter.port", "below the minimum 1"),
    ("[workers.ob_cleaner]\ninterval = 'often'", "workers.ob_cleaner.interval", "expected a number"),
    ("[workers.pos_proxy]\nenabled = 1", "workers.pos_proxy.enabled", "expected true or false"),
    ("[agent]\nlog_level = 'loud'", "agent.log_level", "not one of"),
    ("[ob]\nport = 2881.5", "ob.port", "expected an integer"),
    ("[workers]\nnot_a_worker = {}", "workers.not_a_worker", "unknown key"),
    ("[[programs]]\nname = 'obproxy'\ncommand = []", "programs[0].command", "non-empty list"),
    ("[[programs]]\nname = 'pos_proxy'\ncommand = ['x']", "programs[0].name", "already taken"),
    ("[[programs]]\nname = 'monitor'\ncommand = ['x']", "programs[0].name", "already taken"),
    ("[[programs]]\nname = 'all'\ncommand = ['x']", "programs[0].name", "already taken"),
    ("[[programs]]\nname = 'x'\ncommand = ['x']\nbogus = 1", "programs[0].bogus", "unknown key"),
    ("[supervisor]\nheartbeat_timeout = nan", "supervisor.heartbeat_timeout", "finite"),
    ("[supervisor]\nstop_grace = inf", "supervisor.stop_grace", "finite"),
    ("[[programs]]\nname = 'x'\ncommand = ['x']\nenv = {A = 1}", "programs[0].env", "strings"),
    ("[agent]\ninstance = '../x'", "agent.instance", "letters, digits"),
    ("[agent]\ninstance = 'a_b'", "agent.instance", "letters, digits"),
])
def test_bad_config_names_file_key_and_reason(tmp_path, text, key, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert err.value.key == key
    assert reason in err.value.reason
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_check_config_command_exit_codes(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("[workers.obstat2]\ninterval = 5\n")
    bad.write_text("[workers.obstat2]\ninterval = -5\n")
    run = lambda p: subprocess.run([sys.executable, "-m", "engine", "check-config", str(p)],
                                   capture_output=True, text=True)
    ok, ko = run(good), run(bad)
    assert ok.returncode == 0 and "ok" in ok.stdout
    assert ko.returncode == 2
    assert ko.stderr.strip() == f"{bad}: workers.obstat2.interval: -5.0 is below the minimum 0.1"


def test_check_config_warns_when_heartbeat_timeout_is_not_above_the_ob_wait(tmp_path):
    """A heartbeat timeout <= one OB connect + read gets a stalled worker SIGKILLed: warned, not refused."""
    conf = tmp_path / "a.toml"
    run = lambda: subprocess.run([sys.executable, "-m", "engine", "check-config", str(conf)],
                                 capture_output=True, text=True)
    conf.write_text('[supervisor]\nheartbeat_timeout = 30\n[ob]\nhost = "127.0.0.1"\n'
                    'read_timeout = 30\nconnect_timeout = 5\n')
    done = run()
    assert done.returncode == 0 and "ok" in done.stdout
    assert f"{conf}: warning: supervisor.heartbeat_timeout = 30 is not above ob.read_timeout + " \
           "ob.connect_timeout = 30 + 5 = 35" in done.stderr
    conf.write_text('[supervisor]\nheartbeat_timeout = 36\n[ob]\nhost = "127.0.0.1"\n'
                    'read_timeout = 30\nconnect_timeout = 5\n')
    done = run()
    assert done.returncode == 0 and "warning" not in done.stderr


def test_secret_from_0600_file_or_environment(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 0600"):
        config.read_secret(str(secret), "", what="ob.password")
    secret.chmod(0o600)
    assert config.read_secret(str(secret), "", what="ob.password") == "s3cr3t"
    monkeypatch.setenv("ENGINE_TEST_SECRET", "from-env")
    assert config.read_secret("", "ENGINE_TEST_SECRET", what="x") == "from-env"
    assert config.read_secret("", "ENGINE_TEST_UNSET_SECRET", what="x") is None
    with pytest.raises(ConfigError, match="cannot read secret file"):
        config.read_secret(str(tmp_path / "missing"), "", what="x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError, match="regular file"):       # would block the read for good
        config.read_secret(str(fifo), "", what="x")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    binary.chmod(0o600)
    with pytest.raises(ConfigError, match="cannot read secret file"):
        config.read_secret(str(binary), "", what="x")


def test_home_override_and_instance_naming(tmp_path):
    cfg = config.load(None, home=str(tmp_path))
    assert cfg.home == tmp_path.resolve()
    from engine import ipc
    assert ipc.instance_id(cfg) == ipc.instance_id(config.load(None, home=str(tmp_path)))
    assert ipc.instance_id(cfg) != ipc.instance_id(config.load(None, home=str(tmp_path / "other")))
    assert os.path.isabs(str(cfg.home))
