"""ob_logtailer's counters as the full-snapshot message on the ``alerts`` ring.

Format: :mod:`engine.messages`; ocp_exporter keeps the latest message per
``kind`` and renders it.
"""
from __future__ import annotations

from engine.messages import metric as _m, snapshot as _snapshot

EDGE = "alerts"


def snapshot(tailer) -> dict:
    """Every series of the tailer, now: health first, then the per-rule tail.

    :func:`engine.messages.encode` cuts a message too large for its ring from
    the end; with thousands of rules, the per-rule counters go, never the
    health of the tailer (lines read, lag, Alertmanager errors).
    """
    st = tailer.stats
    out = []
    out += [
        _m("ob_logtailer_lines_total", "counter", "Log lines read", st.lines),
        _m("ob_logtailer_read_bytes_total", "counter", "Log bytes read", st.bytes),
        _m("ob_logtailer_rotations_total", "counter", "Log file rotations followed", st.rotations),
        _m("ob_logtailer_truncations_total", "counter", "Log file truncations seen", st.truncations),
        _m("ob_logtailer_file_opens_total", "counter", "Log files opened", st.opens),
        _m("ob_logtailer_replayed_total", "counter",
           "Alerts recognised as already written (lines read again after a restart)", tailer.replayed),
        _m("ob_logtailer_rules", "gauge", "Alert rules loaded", len(tailer.rules.rules)),
        _m("ob_logtailer_rules_rejected", "gauge", "Alert rules rejected at load", len(tailer.rules.errors)),
        _m("ob_logtailer_rules_fallback", "gauge",
           "1 while the rules file cannot be used and its last good copy runs instead",
           int(bool(tailer.rules_fallback))),
        _m("ob_logtailer_rules_ok", "gauge",
           "1 when the rules file loads; 0 while it cannot be used (then the last good copy runs, "
           "ob_logtailer_rules_fallback 1, or with no copy no log is read)", tailer.rules_ok),
    ]
    for reason, n in sorted(st.bad.items()):
        out.append(_m("ob_logtailer_bad_input_total", "counter", "Bad input, by reason", n, reason=reason))
    for reason, n in sorted(st.lost.items()):
        out.append(_m("ob_logtailer_lost_bytes_total", "counter",
                      "Log bytes seen but gone before they could be read (copytruncate window, "
                      "a file deleted or truncated while behind), by reason", n, reason=reason))
    for log_type, n in sorted(tailer.lag_bytes().items()):
        out.append(_m("ob_logtailer_lag_bytes", "gauge",
                      "Bytes written to the log files (live and rotated) but not yet read", n, log_type=log_type))
    for log_type, s in sorted(tailer.lag_seconds.items()):
        out.append(_m("ob_logtailer_lag_seconds", "gauge",
                      "Age (now minus its log time) of the newest line read, when it was read",
                      round(s, 3), log_type=log_type))
    if tailer.client is not None:
        c = tailer.client
        out += [
            _m("ob_logtailer_alertmanager_sent_total", "counter", "Alerts delivered to Alertmanager", c.sent),
            _m("ob_logtailer_alertmanager_errors_total", "counter", "Failed Alertmanager deliveries", c.errors),
            _m("ob_logtailer_alertmanager_rejected_total", "counter", "Alerts Alertmanager refused (4xx)", c.rejected),
        ]
    for (rule, sev), n in sorted(tailer.fired.items()):
        out.append(_m("ob_logtailer_alerts_total", "counter", "Alerts emitted, by rule and severity",
                      n, rule=rule, severity=sev))
    for (rule, sev), n in sorted(tailer.matches.items()):
        out.append(_m("ob_logtailer_matched_lines_total", "counter",
                      "Log lines that matched a rule (repeats folded into an alert included)",
                      n, rule=rule, severity=sev))
    return _snapshot(EDGE, out)
