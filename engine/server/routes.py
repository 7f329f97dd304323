"""What each URL does: the console's pages and the ``/api/v1/`` calls, one small handler each.

A handler is ``(request, body, *url groups) -> (status, content type, body[, headers])``.
The console and the API share the data calls (:mod:`.fleetdata`, :mod:`.agents`);
the API answers JSON, the console renders :mod:`.pages` templates.
"""
from __future__ import annotations

import re
import urllib.parse

from engine.server import pages
from engine.server.web import COOKIE, HttpError, _int, filters, parse_since
from engine.topsql.query import SORTABLE

HOST_KEYS = ("name", "address", "cluster", "zone", "svr_ip", "svr_port", "secret_file")
CLUSTER_KEYS = ("name", "ob_cluster_id", "ob_host", "ob_port", "ob_user", "ob_password_file",
                "ob_password_env", "ob_database", "zones")


# ---------------------------------------------------------------- public
def health(req, body):
    return req.json({"status": "ok"})


def login_page(req, body):
    return 200, "text/html; charset=utf-8", pages.render("login.html", user=None, error="",
                                                          next=req.query.get("next", "/hosts"))


def local_target(target: str) -> str:
    """``target`` if it is a path on this server, else ``/hosts``: never an open redirect
    (``//host`` and ``/\\host``, which browsers read as ``//host``) nor a header split
    (a control character in the Location header)."""
    if not target.startswith("/") or target[1:2] in ("/", "\\") \
            or any(c < " " or c == "\x7f" for c in target):
        return "/hosts"
    return target


def login(req, body):
    form = req.form(body)
    got = req.app.auth.login(str(form.get("user", "")), str(form.get("password", "")))
    target = local_target(str(form.get("next") or ""))
    if got is None:
        return 401, "text/html; charset=utf-8", pages.render("login.html", user=None, next=target,
                                                              error="wrong user or password")
    sid, _ = got
    cookie = f"{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/"
    return req.redirect(target, {"Set-Cookie": cookie})


def logout(req, body):
    req.app.auth.logout(req._cookie() or "")
    return req.redirect("/login", {"Set-Cookie": f"{COOKIE}=; Max-Age=0; Path=/"})


# ---------------------------------------------------------------- hosts
def _hosts(req) -> list[dict]:
    return req.app.inventory.hosts(req.query.get("cluster") or None)


def _host(req, name: str) -> dict:
    host = req.app.inventory.host(urllib.parse.unquote(name))
    if host is None:
        raise HttpError(404, f"no host {name!r}")
    return host


def api_hosts(req, body):
    return req.json({"hosts": [_public(h) for h in _hosts(req)]})


def api_host(req, body, name):
    return req.json(_public(_host(req, name)))


def api_add_host(req, body):
    form = req.form(body)
    unknown = set(form) - set(HOST_KEYS) - {"csrf"}
    if unknown:
        raise HttpError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    args = {k: form[k] for k in HOST_KEYS if k in form}
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in args.values()):
        raise HttpError(400, "host fields are strings (svr_port a number)")
    args["svr_port"] = int(args.get("svr_port") or 0)
    _check_secret_file(req, args.get("secret_file", ""))
    host = req.app.inventory.put_host(**args)
    req.app.poller.wake()
    return req.json(_public(host), 201)


def _check_secret_file(req, path: str) -> None:
    """A host's own secret file given over HTTP must live under ``<data_dir>/secrets/``:
    the API must not make the server read (and sign with) any 0600 file it can open."""
    if not path:
        return
    import os
    root = os.path.realpath(req.app.cfg.data_dir / "secrets")
    if os.path.commonpath([root, os.path.realpath(path)]) != root:
        raise HttpError(400, f"secret_file: a file under {root} (the config file may name others)")


def api_clusters(req, body):
    return req.json({"clusters": req.app.inventory.clusters()})


def api_add_cluster(req, body):
    form = req.form(body)
    unknown = set(form) - set(CLUSTER_KEYS) - {"csrf"}
    if unknown:
        raise HttpError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    name = form.pop("name", "")
    zones = form.pop("zones", [])
    req.app.inventory.put_cluster(name, zones=zones, **form)
    return req.json(req.app.inventory.cluster(name), 201)


def api_push(req, body, name):
    return _answer(req, req.app.agents.push_monitor_config(_host(req, name)["name"]))


def api_push_cluster(req, body, cluster):
    cluster = urllib.parse.unquote(cluster)
    if req.app.inventory.cluster(cluster) is None:
        raise HttpError(404, f"no cluster {cluster!r}")
    req.app.poller.wake()
    return req.json({"results": req.app.agents.push_cluster(cluster)})


def cluster_push_page(req, body, cluster):
    out = api_push_cluster(req, body, cluster)
    results = __import__("orjson").loads(out[2])["results"]
    return req.html("pushed.html", cluster=urllib.parse.unquote(cluster), results=results)


def api_restart(req, body, name):
    names = req.form(body).get("names")
    if isinstance(names, str):
        names = [n for n in re.split(r"[\s,]+", names) if n]
    if not names or not isinstance(names, list):
        raise HttpError(400, "names: the workers or groups to restart")
    return _answer(req, req.app.agents.restart(_host(req, name)["name"], names))


def api_command(req, body):
    form = req.form(body)
    command = str(form.get("command") or "")
    allowed = req.app.cfg.server.commands
    if not command or (allowed and command not in allowed):
        raise HttpError(403 if command else 400, f"command {command!r} is not one the server may run")
    hosts = _targets(req, form)
    params = form.get("params") or {}
    if not isinstance(params, dict):
        raise HttpError(400, "params: an object")
    return req.json({"results": req.app.agents.run_command(hosts, command, params)})


def _targets(req, form) -> list[dict]:
    names = form.get("hosts")
    if isinstance(names, str):
        names = [n for n in re.split(r"[\s,]+", names) if n]
    hosts = req.app.inventory.hosts(form.get("cluster") or None)
    if names:
        hosts = [h for h in hosts if h["name"] in set(names)]
    if not hosts:
        raise HttpError(400, "no host matches (hosts, cluster)")
    return hosts


def _answer(req, env: dict):
    status = 200 if env.get("successful") else 502 if not env.get("http_status") else env["http_status"]
    return req.json(env, status)


def _public(host: dict) -> dict:
    return {k: v for k, v in host.items() if k != "secret_file"}


# ---------------------------------------------------------------- monitoring data
def _topsql_args(req) -> dict:
    q = req.query
    sort = q.get("sort") or "elapsed_sum"
    if sort not in SORTABLE:
        raise HttpError(400, f"sort: one of {', '.join(SORTABLE)}")
    group = q.get("group") or "host"
    if group not in ("host", "fleet"):
        raise HttpError(400, "group: host or fleet")
    return {**filters(q), "tenant_id": _int(q, "tenant", None, 0, 2**63 - 1), "db": q.get("db") or None,
            "sql_id": q.get("sql_id") or None, "sort": sort, "limit": _int(q, "limit", 50, 1, 1000),
            "group": group}


def api_topsql(req, body):
    return req.json(req.app.data.topsql(**_topsql_args(req)))


def api_slowsql(req, body):
    q = req.query
    return req.json(req.app.data.slowsql(**filters(q), sql_id=q.get("sql_id") or None,
                                         min_ms=float(_int(q, "min_ms", 100, 0, 10**9)),
                                         limit=_int(q, "limit", 100, 1, 5000)))


def api_alerts(req, body):
    f = filters(req.query)
    f["since"] = parse_since(req.query.get("since"), 86400)
    out = req.app.data.alerts(**f, limit=_int(req.query, "limit", 200, 1, 5000))
    out["server"] = req.app.alerts.active()
    return req.json(out)


def api_history(req, body, sql_id):
    return req.json(req.app.data.history(urllib.parse.unquote(sql_id),
                                         parse_since(req.query.get("since"), 86400)))


def api_trace(req, body):
    trace = req.query.get("trace_id") or ""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", trace):
        raise HttpError(400, "trace_id: 1-64 of A-Z a-z 0-9 _ . : -")
    hosts = req.app.inventory.hosts(req.query.get("cluster") or None)
    return req.json(req.app.agents.search_trace(hosts, trace, limit=_int(req.query, "limit", 1000, 1, 5000)))


# ---------------------------------------------------------------- console pages
def index(req, body):
    return req.redirect("/hosts")


def hosts_page(req, body):
    return req.html("hosts.html", hosts=_hosts(req), clusters=req.app.inventory.clusters(),
                    alerts=req.app.alerts.active())


def add_host_page(req, body):
    """The hosts page's form: add (or replace) a host, then back to the list."""
    form = req.form(body)
    args = {k: str(form.get(k, "")).strip() for k in HOST_KEYS if k != "secret_file"}
    args["svr_port"] = int(args["svr_port"]) if args.get("svr_port", "").isdigit() else 0
    req.app.inventory.put_host(**args)
    req.app.poller.wake()
    return req.redirect("/hosts")


def host_page(req, body, name):
    return req.html("host.html", host=_host(req, name), result=None)


def host_action(req, body, name, action):
    host = _host(req, name)
    form = req.form(body)
    if action == "push":
        env = req.app.agents.push_monitor_config(host["name"])
    else:
        names = [n for n in re.split(r"[\s,]+", str(form.get("names", ""))) if n]
        if not names:
            raise HttpError(400, "names: the workers or groups to restart")
        env = req.app.agents.restart(host["name"], names)
    req.app.poller.wake()
    return req.html("host.html", host=host, result={"action": action, **env})


def topsql_page(req, body):
    args = _topsql_args(req)
    data = req.app.data.topsql(**args)
    return req.html("topsql.html", data=data, args=args, hosts=req.app.inventory.hosts(),
                    clusters=req.app.inventory.clusters(), columns=pages.TOPSQL_COLUMNS)


def slowsql_page(req, body):
    q = req.query
    data = req.app.data.slowsql(**filters(q), min_ms=float(_int(q, "min_ms", 100, 0, 10**9)),
                                limit=_int(q, "limit", 100, 1, 5000))
    return req.html("slowsql.html", data=data, hosts=req.app.inventory.hosts(),
                    clusters=req.app.inventory.clusters())


def sql_page(req, body, sql_id):
    sql_id = urllib.parse.unquote(sql_id)
    since = parse_since(req.query.get("since"), 86400)
    hist = req.app.data.history(sql_id, since)
    return req.html("sql.html", sql_id=sql_id, hist=hist, chart=pages.chart(hist["points"]),
                    rows=req.app.data.topsql(since=since, sql_id=sql_id, limit=1000)["rows"])


def alerts_page(req, body):
    f = filters(req.query)
    f["since"] = parse_since(req.query.get("since"), 86400)
    return req.html("alerts.html", data=req.app.data.alerts(**f), server=req.app.alerts.active())


def trace_page(req, body):
    trace = req.query.get("trace_id") or ""
    found = None
    if trace:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", trace):
            raise HttpError(400, "trace_id: 1-64 of A-Z a-z 0-9 _ . : -")
        found = req.app.agents.search_trace(req.app.inventory.hosts(req.query.get("cluster") or None), trace)
    return req.html("trace.html", found=found, clusters=req.app.inventory.clusters())


def table():
    r = re.compile
    return [
        (("GET", r("/api/v1/health")), health),
        (("GET", r("/login")), login_page), (("POST", r("/login")), login), (("POST", r("/logout")), logout),
        (("GET", r("/api/v1/hosts")), api_hosts), (("POST", r("/api/v1/hosts")), api_add_host),
        (("GET", r("/api/v1/hosts/([^/]+)")), api_host),
        (("POST", r("/api/v1/hosts/([^/]+)/push")), api_push),
        (("POST", r("/api/v1/hosts/([^/]+)/restart")), api_restart),
        (("POST", r("/api/v1/clusters/([^/]+)/push")), api_push_cluster),
        (("POST", r("/clusters/([^/]+)/push")), cluster_push_page),
        (("GET", r("/api/v1/clusters")), api_clusters), (("POST", r("/api/v1/clusters")), api_add_cluster),
        (("POST", r("/api/v1/commands")), api_command),
        (("GET", r("/api/v1/topsql")), api_topsql), (("GET", r("/api/v1/slowsql")), api_slowsql),
        (("GET", r("/api/v1/alerts")), api_alerts), (("GET", r("/api/v1/sql/([^/]+)/history")), api_history),
        (("GET", r("/api/v1/trace")), api_trace),
        (("GET", r("/")), index), (("GET", r("/hosts")), hosts_page), (("POST", r("/hosts")), add_host_page),
        (("GET", r("/hosts/([^/]+)")), host_page),
        (("POST", r("/hosts/([^/]+)/(push|restart)")), host_action),
        (("GET", r("/topsql")), topsql_page), (("GET", r("/slowsql")), slowsql_page),
        (("GET", r("/sql/([^/]+)")), sql_page), (("GET", r("/alerts")), alerts_page),
        (("GET", r("/trace")), trace_page),
    ]
