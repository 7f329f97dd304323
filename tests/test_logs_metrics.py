"""The tailer's snapshot keeps its health when the message is cut to fit its ring."""
from engine import messages
from engine.logs import metrics
from logtail_kit import make_tailer


def test_a_cut_message_loses_per_rule_series_never_health(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    t = make_tailer(log, tmp_path / "data")
    t.poll_once()
    for i in range(40000):                          # far more series than a quarter ring holds
        t.fired[(f"rule_{i:05d}", "warning")] = i
        t.matches[(f"rule_{i:05d}", "warning")] = i
    msg = messages.decode(messages.encode("alerts", metrics.snapshot(t)), "alerts")
    names = {m["name"] for m in msg["metrics"]}
    assert msg["cut"] > 0
    assert {"ob_logtailer_lines_total", "ob_logtailer_rules", "ob_logtailer_read_bytes_total"} <= names
