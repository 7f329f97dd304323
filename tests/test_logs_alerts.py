"""Grouping and throttling: repeats inside the window fold into the count."""
from engine.logs.alerts import Grouper
from engine.logs.rules import compile_rules

RULE = compile_rules([{"id": "disk", "regex": "full", "throttle": 60, "severity": "critical",
                       "summary": "{module} full on {host}"}]).rules[0]


def hit(g, ts, tenant=1, errcode=-4264):
    header = {"ts": ts, "time": "t", "level": "ERROR", "module": "CLOG", "tenant": tenant,
              "errcode": errcode, "message": b"full"}
    return g.observe(RULE, b"line full", "/l/observer.log", int(ts), "observer", header, None)


def test_repeats_fold_then_update():
    now = [1000.0]
    g = Grouper(host="h", clock=lambda: now[0], mono=lambda: now[0])
    fire = hit(g, 100.0)
    assert [e["event"] for e in fire] == ["fire"] and fire[0]["summary"] == "CLOG full on h"
    assert hit(g, 110.0) == [] and hit(g, 150.0) == []
    assert hit(g, 120.0, tenant=2)[0]["event"] == "fire"      # another group
    update_then_fire = hit(g, 170.0)                           # window over: update, then a new fire
    assert [e["event"] for e in update_then_fire] == ["update", "fire"]
    assert update_then_fire[0]["count"] == 3 and update_then_fire[0]["last_seen"] == 150.0
    assert update_then_fire[0]["id"] == fire[0]["id"]


def test_quiet_log_expires_by_wall_clock():
    now = [1000.0]
    g = Grouper(host="h", clock=lambda: now[0], mono=lambda: now[0])
    hit(g, 100.0)
    hit(g, 101.0)
    assert g.expire() == []
    now[0] += 61
    (upd,) = g.expire()
    assert upd["event"] == "update" and upd["count"] == 2 and g.groups == {}


def test_state_survives_a_restart():
    now = [1000.0]
    g = Grouper(host="h", clock=lambda: now[0], mono=lambda: now[0])
    hit(g, 100.0)
    hit(g, 101.0)
    g2 = Grouper(host="h", clock=lambda: now[0], mono=lambda: now[0])
    g2.restore(g.state() + [["junk"], 5])
    assert hit(g2, 102.0) == []
    now[0] += 61
    assert g2.expire()[0]["count"] == 3


def test_a_line_dated_in_the_future_does_not_end_throttling():
    now = [1000.0]
    g = Grouper(host="h", clock=lambda: now[0], mono=lambda: now[0])
    hit(g, 990.0)
    hit(g, 253402300799.0, tenant=9)                          # garbage dated 9999-12-31
    assert hit(g, 991.0) == []
    assert g.expire() == []                                    # the 990.0 group is still open
    assert hit(g, 992.0) == []
    now[0] += 61
    assert g.expire()[0]["count"] == 3


def test_key_is_the_group_by_fields_in_order():
    """The key (joined once per rule and file for its context parts) is the
    rule id and ``name=value`` of every group_by field, in order, valued as
    fields_of gives them: context over captures over header."""
    from engine.logs.alerts import _text, fields_of
    header = {"ts": 1.0, "level": "ERROR", "module": "CLOG", "tenant": 1002, "errcode": -4264,
              "message": b"m", "trace_id": None}
    captures = {"cause": b"disk"}
    orders = [["rule", "log_type", "errcode", "tenant"], ["errcode", "path", "host", "module"],
              ["module", "severity", "cause", "rule", "trace_id"], ["path", "host"], ["cause"]]
    g = Grouper(host="h1")
    for order in orders:
        rule = compile_rules([{"id": "r", "regex": "(?P<cause>x+)", "group_by": order}]).rules[0]
        for path in ("/a/observer.log", "/b/observer.log", "/a/observer.log"):
            ctx = {"log_type": "observer", "host": "h1", "path": path, "rule": "r", "severity": rule.severity}
            fields = fields_of(header, captures, ctx)
            want = "\x1f".join(["r"] + [k + "=" + ("" if fields.get(k) is None else _text(fields[k]))
                                        for k in order])
            assert g._key_of(rule, header, captures, "observer", path) == want
            assert g._key_of(rule, None, None, "observer", path).count("\x1f") == len(order)



def test_brief_headers_give_the_same_events():
    """The tailer's matcher gives brief headers (key fields only); the events
    (fires, updates, their fields, ids and counts) are those of whole headers."""
    from engine.logs import parse, synth
    from engine.logs.rules import load_rules
    rules = load_rules().of_type("observer")
    extra = compile_rules([{"id": "by_thread", "levels": ["WARN"], "group_by": ["rule", "thread", "func"],
                            "throttle": 5}]).rules
    rules = list(rules) + extra
    buf = synth.LineMaker(seed=9, info_share=0.2, noise_share=0.2).chunk(400_000)
    out = []
    for brief in (False, True):
        now = [2e9]
        g = Grouper(host="h", clock=lambda: now[0], mono=lambda: now[0])
        hits = parse.Matcher(rules, 65536, brief=brief).scan(buf, 0, len(buf), None)[2]
        events = []
        for i, (rule, s, e, header, captures) in enumerate(hits):
            now[0] += 0.01
            events += g.observe(rule, buf[s:e], "/l/observer.log", s, "observer", header, captures, "id")
            if i % 97 == 0:
                events += g.expire()
        out.append(events)
    assert len(out[0]) > 20 and out[0] == out[1]
    assert {e["event"] for e in out[0]} == {"fire", "update"}
