"""``engine alerts``: the alerts ob_logtailer raised, from its local store.

Reads ``<home>/data/ob_logtailer/alerts.jsonl`` (no running agent needed);
``--json`` prints one JSON object per alert per line. ``--store URL`` reads
every host's alerts from the central store instead (docs/fleet.md).
"""
from __future__ import annotations

import sys

import orjson

from engine.commands import load_config
from engine.commands._time import FORMS, format_time, parse_time
from engine.logs import store
from engine.commands._text import printable

SEVERITIES = ("critical", "warning", "info")


def register(sub) -> None:
    p = sub.add_parser("alerts", help="list the alerts raised from the OBServer logs")
    p.add_argument("--since", help=f"start of the range: {FORMS}")
    p.add_argument("--until", help="end of the range, same forms")
    p.add_argument("--rule", help="only this rule id")
    p.add_argument("--severity", choices=SEVERITIES)
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--store", help="read the fleet's central store mysql://user@host:port/db (default: local)")
    p.add_argument("--cluster", help="central store: one cluster_name")
    p.add_argument("--host", help="central store: one agent host name")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = load_config(args)
    since, until = parse_time(args.since), parse_time(args.until)      # a TimeError: exit 2, one line
    data_dir = args.store or (cfg.home / "data" / "ob_logtailer")
    kw = dict(since=since, until=until, rule=args.rule, severity=args.severity, limit=args.limit)
    if args.store:
        from engine.commands.topsql import central_conn
        from engine.monitordb import query
        conn = central_conn(cfg, args.store)
        try:
            found = query.query_alerts(conn, cluster=args.cluster, host=args.host, **kw)
        finally:
            conn.close()
    elif args.cluster is not None or args.host is not None:
        print("engine alerts: --cluster and --host filter the central store: add --store URL", file=sys.stderr)
        return 2
    else:
        found = store.query_alerts(data_dir, **kw)
    if args.json:
        for rec in found:
            sys.stdout.write(orjson.dumps(rec).decode() + "\n")
        return 0
    print(render(found) if found else f"no alerts in {data_dir}")
    return 0


def render(alerts: list[dict]) -> str:
    if not alerts:
        return "no alerts"
    rows = [("LAST SEEN (UTC)", "SEVERITY", "RULE", "COUNT", "SUMMARY")]
    for a in alerts:
        rows.append((format_time(a.get("last_seen", 0)), printable(str(a.get("severity", ""))),
                     printable(str(a.get("rule", ""))), str(a.get("count", "")),
                     printable(str(a.get("summary", ""))[:100])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)
