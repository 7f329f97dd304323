"""The configuration's schema: every section a frozen dataclass, with its defaults and bounds.

Field types drive validation; a field's ``metadata`` (set with :func:`_f`) may
add ``min``/``max`` bounds, ``choices``, ``path`` (must exist), ``item`` (the
section type of a list's entries), ``secret`` (never printed), ``internal``
(not read from the file) or ``doc``. Reading a file against this schema, and
the checks that need the whole config, are :mod:`engine.config`, which
re-exports every name here: callers import sections from ``engine.config``.

A new key goes in its worker's section here, with a default that works.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ConfigError

DEFAULT_HOME = "~/.ocp_agent"


def _f(default, **meta):
    """A field with a default and validation metadata."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


PORT = {"min": 1, "max": 65535}
POSITIVE = {"min": 0.001}


@dataclass(frozen=True)
class AgentSection:
    """Where the agent keeps its files and how it logs."""
    home: str = _f(DEFAULT_HOME)
    instance: str = _f("", doc="names shared-memory segments (letters, digits, -); derived from home when empty")
    log_level: str = _f("info", choices=("debug", "info", "warning", "error"))
    log_max_bytes: int = _f(50 * 1024 * 1024, min=1024)
    log_backups: int = _f(5, min=0, max=1000)


@dataclass(frozen=True)
class SupervisorSection:
    """Restart policy of ocp_agentd (capped exponential backoff, FATAL, retry)."""
    tick: float = _f(0.2, min=0.01, max=5)
    heartbeat_timeout: float = _f(45.0, min=1.0, doc="workers publish at least every second; keep it above [ob] read_timeout + connect_timeout, so that one blocked OBServer read is not a hang (check-config warns)")
    start_timeout: float = _f(20.0, min=0.1)
    stop_grace: float = _f(5.0, min=0.0)
    backoff_initial: float = _f(0.1, min=0.0)
    backoff_max: float = _f(30.0, min=0.0)
    min_uptime: float = _f(3.0, min=0.0, doc="a run shorter than this is a quick exit")
    fatal_after: int = _f(6, min=1, doc="quick exits in a row before FATAL")
    fatal_retry: float = _f(300.0, min=0.1, doc="a FATAL worker is tried again after this")


@dataclass(frozen=True)
class ObSection:
    """The OBServer's SQL side. An empty host means: not configured yet."""
    host: str = _f("")
    port: int = _f(2881, **PORT)
    user: str = _f("root@sys")
    password_file: str = _f("", secret=True)
    password_env: str = _f("OCP_AGENT_OB_PASSWORD")
    database: str = _f("oceanbase")
    connect_timeout: float = _f(5.0, **POSITIVE)
    read_timeout: float = _f(30.0, **POSITIVE)
    version: str = _f("auto", doc="'auto', or a version such as '4.2.1' to skip detection")
    svr_ip: str = _f("", doc="the observer this host runs; empty = every server the view lists")
    svr_port: int = _f(0, min=0, max=65535,
                       doc="that observer's RPC port (2882 by default, SVR_PORT in the views), not the SQL port")
    cluster_name: str = _f("", doc="ob_cluster_name label on every OB series (obagent's monagent.ob.cluster.name)")
    cluster_id: str = _f("", doc="ob_cluster_id label (obagent's monagent.ob.cluster.id)")
    zone: str = _f("", doc="obzone label; empty: each server's zone from DBA_OB_SERVERS")

    @property
    def configured(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class ObproxySection:
    """OBProxy's admin SQL port (ocp_exporter's OBProxy collector). An empty host means: no OBProxy here."""
    host: str = _f("", doc="e.g. 127.0.0.1 on an OBProxy host; empty = no OBProxy collector")
    port: int = _f(2883, **PORT)
    user: str = _f("root@proxysys", doc="OBProxy's admin user (internal commands need proxysys)")
    password_file: str = _f("", secret=True)
    password_env: str = _f("OCP_AGENT_OBPROXY_PASSWORD")
    connect_timeout: float = _f(3.0, **POSITIVE)
    read_timeout: float = _f(5.0, **POSITIVE, doc="bounds each command: a stuck OBProxy costs one collection this long")

    @property
    def configured(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class PosProxySection:
    enabled: bool = _f(True)
    bind: str = _f("0.0.0.0", doc="all interfaces, as OCP's agent; \"127.0.0.1\" = this host only")
    port: int = _f(62888, **PORT)
    secret_file: str = _f("", secret=True)
    secret_env: str = _f("OCP_AGENT_SECRET")
    tls_cert: str = _f("")
    tls_key: str = _f("")
    basic_auth: bool = _f(False, doc="OCP-style Basic auth; only honoured over TLS")
    basic_user: str = _f("ocp_agent")
    clock_skew: float = _f(60.0, min=1.0, doc="signature timestamps older/newer than this are refused")
    max_body_bytes: int = _f(1024 * 1024, min=1024)
    max_concurrent: int = _f(64, min=1)
    call_timeout: float = _f(60.0, **POSITIVE)
    max_output_bytes: int = _f(1024 * 1024, min=1024)
    file_roots: list = _f([], doc="directories whose files may be read remotely")
    commands: dict = _f({}, doc="allow-listed command templates, see conf/agent.toml")
    request_timeout: float = _f(10.0, **POSITIVE, doc="a request not fully received by then is dropped (slow-loris)")
    idle_timeout: float = _f(30.0, **POSITIVE, doc="an idle keep-alive connection is closed after this")
    max_connections: int = _f(4096, min=1, doc="open connections beyond this are refused with 503")
    max_nonces: int = _f(200000, min=100, doc="nonces remembered in the replay window; beyond: 503")
    audit_log: str = _f("pos_proxy_audit.log", doc="file name under <home>/log")


@dataclass(frozen=True)
class NodeExporterSection:
    enabled: bool = _f(True)
    bind: str = _f("0.0.0.0", doc="all interfaces, as node_exporter; \"127.0.0.1\" = this host only")
    port: int = _f(63000, **PORT)
    interval: float = _f(15.0, min=0.1)
    rootfs: str = _f("/", doc="root of /proc and /sys, injectable for tests")
    watch_processes: list = _f([], doc="process names to report (observer, obproxy)")
    collectors: list = _f([], doc="collectors to run (empty: all, as node_exporter's defaults)")
    disabled_collectors: list = _f([], doc="collectors not to run")
    textfile_directory: str = _f("/var/lib/prometheus/node-exporter",
                                 doc="directory of *.prom files for the textfile collector (Debian's default)")
    basic_auth_user: str = _f("")
    basic_auth_password_file: str = _f("", secret=True)
    tls_cert: str = _f("")
    tls_key: str = _f("")
    web_config_file: str = _f("", doc="exporter-toolkit web-config.yml (node_exporter's --web.config.file): "
                              "TLS, client certificates, bcrypt basic auth; replaces the basic_auth/tls keys")


@dataclass(frozen=True)
class OcpExporterSection:
    enabled: bool = _f(True)
    bind: str = _f("0.0.0.0", doc="all interfaces, as obagent; \"127.0.0.1\" = this host only")
    port: int = _f(62889, **PORT)
    interval: float = _f(15.0, min=0.1)
    message_ttl: float = _f(900.0, min=1.0, doc="a monitor's summary not renewed for this long is dropped")
    host_in_metrics: bool = _f(False, doc="also merge node_exporter's host series into /metrics (duplicates!)")
    max_message_series: int = _f(5000, min=1, doc="series kept per summary kind (bounded cardinality)")
    query_timeout: float = _f(0.0, min=0.0, doc="server-side limit per view query, seconds; 0: the read wait less 1 s")
    basic_auth_user: str = _f("")
    basic_auth_password_file: str = _f("", secret=True)
    tls_cert: str = _f("")
    tls_key: str = _f("")
    web_config_file: str = _f("", doc="exporter-toolkit web-config.yml, as for node_exporter")


@dataclass(frozen=True)
class Obstat2Section:
    enabled: bool = _f(True)
    interval: float = _f(10.0, min=0.1)
    batch_rows: int = _f(10000, min=1)
    bucket_seconds: int = _f(60, min=1)
    retention_hours: float = _f(72.0, min=0.01)
    slow_threshold_ms: float = _f(100.0, min=0.0)
    sample_sql_bytes: int = _f(4096, min=16)
    topn: int = _f(20, min=1, max=1000)
    plan_interval: float = _f(60.0, min=0.1, doc="seconds between two plan-cache snapshots")
    summary_window: float = _f(300.0, min=1.0, doc="the top-N sent to the exporter covers this many seconds")
    max_samples_per_interval: int = _f(1000, min=0, doc="SlowSQL samples kept per bucket; more are counted as dropped")

    @property
    def sample_bytes(self) -> int:
        return self.sample_sql_bytes


@dataclass(frozen=True)
class ObLogtailerSection:
    enabled: bool = _f(True)
    log_dir: str = _f("/home/admin/oceanbase/log")
    files: list = _f(["observer.log", "rootservice.log", "election.log"],
                     doc="names or globs in log_dir; a .wf is skipped while its main file is followed")
    alert_log: str = _f("alert/alert.log", doc="OceanBase 4.2.3+ alert.log, relative to log_dir; empty = not followed")
    rules: str = _f("", doc="alert rules TOML; empty = the shipped conf/alert_rules.toml")
    start_at: str = _f("end", choices=("end", "beginning"))
    poll_interval: float = _f(0.5, min=0.01)
    checkpoint_interval: float = _f(2.0, min=0.01)
    max_line_bytes: int = _f(64 * 1024, min=256)
    alertmanager_url: str = _f("")
    alertmanager_batch: int = _f(100, min=1)
    alertmanager_timeout: float = _f(5.0, min=0.1, doc="seconds per POST to Alertmanager")
    alertmanager_resolve_after: float = _f(300.0, min=1.0, doc="an alert's endsAt, after it was sent")
    host: str = _f("", doc="the host label of alerts; empty = this machine's hostname")
    instance: str = _f("", doc="the instance label of alerts, as Prometheus names the ocp_exporter target; "
                               "empty = <[ob] svr_ip or hostname>:<ocp_exporter port>")


@dataclass(frozen=True)
class ObCleanerSection:
    enabled: bool = _f(True)
    interval: float = _f(300.0, min=0.1)
    targets: list = _f([], doc="[[workers.ob_cleaner.targets]] tables; empty = obagent's defaults")
    dry_run: bool = _f(False, doc="plan and log, delete nothing")
    publish_interval: float = _f(15.0, min=0.1, doc="metrics snapshot re-sent this often between passes")

    def __post_init__(self):
        """The target/rule tables are checked here, so check-config refuses them."""
        from engine.cleaner.policy import PolicyError, parse_targets
        try:
            parse_targets(self.targets)
        except PolicyError as exc:
            raise ConfigError("workers.ob_cleaner", exc.key, exc.reason) from None


@dataclass(frozen=True)
class MonitorDbSection:
    """The central store (OCP's MonitorDB, docs/fleet.md). An empty url means: none."""
    url: str = _f("", doc="mysql://user@host:port/database (OceanBase, MariaDB, MySQL); empty = none")
    password_file: str = _f("", secret=True)
    password_env: str = _f("OCP_AGENT_MONITORDB_PASSWORD")
    cluster_name: str = _f("", doc="OCP's cluster_name of the rows; empty = the [ob] host")
    cluster_id: int = _f(0, min=0)
    host: str = _f("", doc="this agent's host name in the rows; empty = the hostname")
    connect_timeout: float = _f(5.0, **POSITIVE)
    read_timeout: float = _f(30.0, **POSITIVE)
    batch_records: int = _f(200, min=1, doc="spooled batches per central transaction")
    spool_max_bytes: int = _f(256 << 20, min=4096, doc="local spool bound; batches beyond are dropped and counted")
    retry_max: float = _f(30.0, min=0.1, doc="longest wait between two tries while the store is down")
    partitioned: bool = _f(True, doc="PARTITION BY RANGE (begin_interval_time) where the server supports it")
    partition_hours: float = _f(24.0, min=0.01)
    partitions_ahead: int = _f(2, min=1)
    retention_days: float = _f(8.0, min=0.001, doc="OCP keeps SQL history 8 days")
    retention_interval: float = _f(600.0, min=1.0)
    lease_seconds: float = _f(120.0, min=1.0, doc="retention runs on the lease holder only")

    @property
    def configured(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class WorkersSection:
    pos_proxy: PosProxySection = field(default_factory=PosProxySection)
    node_exporter: NodeExporterSection = field(default_factory=NodeExporterSection)
    ocp_exporter: OcpExporterSection = field(default_factory=OcpExporterSection)
    obstat2: Obstat2Section = field(default_factory=Obstat2Section)
    ob_logtailer: ObLogtailerSection = field(default_factory=ObLogtailerSection)
    ob_cleaner: ObCleanerSection = field(default_factory=ObCleanerSection)


@dataclass(frozen=True)
class ProgramSection:
    """An external program the supervisor guards (like obproxyd guards obproxy)."""
    name: str = _f("")
    command: list = _f([])
    cwd: str = _f("")
    env: dict = _f({})
    enabled: bool = _f(True)
    ready_port: int = _f(0, min=0, max=65535, doc="ready once this TCP port accepts; 0 = once started")


@dataclass(frozen=True)
class AgentConfig:
    agent: AgentSection = field(default_factory=AgentSection)
    supervisor: SupervisorSection = field(default_factory=SupervisorSection)
    ob: ObSection = field(default_factory=ObSection)
    obproxy: ObproxySection = field(default_factory=ObproxySection)
    workers: WorkersSection = field(default_factory=WorkersSection)
    monitordb: MonitorDbSection = field(default_factory=MonitorDbSection)
    programs: list = _f([], item=ProgramSection)
    source: str = _f("<defaults>", internal=True)

    @property
    def home(self) -> Path:
        return Path(os.path.expanduser(self.agent.home)).resolve()

    def worker(self, name: str):
        """The section of the worker called ``name`` (None for a worker without one)."""
        return getattr(self.workers, name, None)
