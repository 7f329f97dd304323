"""One reader of --since/--until for every command (engine/commands/_time.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cli
from engine.commands import alerts, topsql
from engine.commands._time import TimeError, format_time, parse_time

NEW_YEAR = 1767225600.0          # 2026-01-01 00:00:00 UTC


def test_every_command_reads_times_with_the_same_function():
    assert alerts.parse_time is topsql.parse_time is parse_time


@pytest.mark.parametrize("text, want", [
    ("2026-01-01", NEW_YEAR), ("2026-01-01 00:00", NEW_YEAR), ("2026-01-01T00:00:00", NEW_YEAR),
    (" 2026-01-01 00:00:30 ", NEW_YEAR + 30), ("2026-01-01 08:00+08:00", NEW_YEAR),
    ("2026-01-01T00:00:00Z", NEW_YEAR), ("1767225600", NEW_YEAR), ("1767225600.5", NEW_YEAR + 0.5),
    ("15m", NEW_YEAR - 900), ("-2h", NEW_YEAR - 7200), ("1d", NEW_YEAR - 86400), ("90s", NEW_YEAR - 90),
])
def test_accepted_forms(text, want):
    assert parse_time(text, now=NEW_YEAR) == want
    assert parse_time(None) is None


def test_a_date_time_without_offset_is_utc_whatever_the_local_zone():
    """engine alerts used to read it as local time and engine topsql as UTC."""
    code = "from engine.commands._time import parse_time; print(parse_time('2026-01-01 00:00'))"
    env = dict(os.environ, TZ="Asia/Shanghai", PYTHONPATH=str(Path(__file__).parent.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert float(out.stdout) == NEW_YEAR, out.stderr
    assert format_time(NEW_YEAR) == "2026-01-01 00:00:00"


def test_bad_time_is_one_message_for_every_command(tmp_path, capsys):
    with pytest.raises(TimeError) as exc:
        parse_time("yesterday-ish")
    assert "cannot read time 'yesterday-ish'" in str(exc.value)
    errors = []
    for verb in ("alerts", "topsql", "slowsql"):
        assert cli.main(["--home", str(tmp_path), verb, "--since", "yesterday-ish"]) == 2
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1] == errors[2] == f"engine: {exc.value}\n"


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e999", "1e20", "99999999999d",
                                  "9999-12-31T23:00-05:00"])
def test_a_time_no_store_can_hold_is_refused_not_a_traceback(text, tmp_path, capsys):
    """float() reads 'nan' and 'inf': topsql died in int(inf), alerts --since nan matched everything."""
    with pytest.raises(TimeError, match="cannot read time"):
        parse_time(text, now=NEW_YEAR)
    for verb in ("alerts", "topsql"):
        assert cli.main(["--home", str(tmp_path), verb, f"--since={text}"]) == 2
        assert capsys.readouterr().err.startswith("engine: cannot read time")
    assert parse_time("9999-12-31 23:59:59") == 253402300799.0
