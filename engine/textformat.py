"""Metric families and their rendering: Prometheus text 0.0.4 and OpenMetrics 1.0.0 in one pass.

The collectors build :class:`Family` objects (a name, a type, a help text,
label names and rows of (label values, value)); :func:`render` turns a list of
them into both bodies at once. A sample line is the same in both formats
(``name{a="x"} 1.0``), so each is formatted once and only the two headers
differ: that keeps a collection's rendering at about a microsecond per series,
where ``prometheus_client``'s generic renderers take tens.

Families made by ``prometheus_client`` (``GaugeMetricFamily`` ...) are accepted
too and rendered by ``prometheus_client`` itself, one family at a time, so the
two kinds can be mixed in one exposition.

Values are written by ``prometheus_client``'s own ``floatToGoString``, so an
exposition reads the same whichever renderer produced it (tests/test_textformat.py
compares the bytes on generated families).
"""
from __future__ import annotations

from collections import namedtuple

from prometheus_client import exposition as _pc_text
from prometheus_client.openmetrics import exposition as _pc_om
from prometheus_client.utils import floatToGoString

Sample = namedtuple("Sample", "name labels value")
_OM_TYPES = {"gauge": "gauge", "counter": "counter", "untyped": "unknown", "info": "info"}


class Family:
    """One metric family: ``name`` is the sample name (counters end in ``_total``)."""

    __slots__ = ("name", "type", "documentation", "labels", "rows")

    def __init__(self, name: str, documentation: str, labels=(), value=None, type: str = "gauge"):
        self.name = name
        self.type = type
        self.documentation = documentation
        self.labels = tuple(labels)
        self.rows: list[tuple[tuple, float]] = []
        if value is not None:
            self.rows.append(((), value))

    def add_metric(self, labelvalues, value) -> None:
        self.rows.append((tuple(labelvalues), value))

    @property
    def samples(self) -> list[Sample]:
        """The rows as (name, {label: value}, value) samples (tests and the golden comparison)."""
        return [Sample(self.name, dict(zip(self.labels, values)), float(v)) for values, v in self.rows]


def Gauge(name, documentation, labels=(), value=None) -> Family:  # noqa: N802 (a family constructor)
    return Family(name, documentation, labels, value, "gauge")


def Counter(name, documentation, labels=(), value=None) -> Family:  # noqa: N802
    return Family(name, documentation, labels, value, "counter")


def Untyped(name, documentation, labels=(), value=None) -> Family:  # noqa: N802
    return Family(name, documentation, labels, value, "untyped")


_INF = float("inf")


def format_value(v) -> str:
    """As prometheus_client's ``floatToGoString`` writes a sample value, without its generic steps.

    Small ints and finite floats (nearly every value) are formatted here:
    ``repr``, and prometheus_client's exponent form for a float whose integer
    part has more than 6 digits. NaN, the infinities and other types go to
    ``floatToGoString`` itself. tests/test_textformat.py compares the two.
    """
    c = v.__class__
    if c is int and -10**6 < v < 10**6:   # counts: what floatToGoString gives
        return f"{v}.0"
    if c is float and -_INF < v < _INF:
        s = repr(v)
        if v >= 1e6:
            dot = s.find(".")
            if dot > 6:
                mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
                return f"{mantissa}e+{dot - 1:02d}"
        return s
    return floatToGoString(v)


def _escape_label(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _escape_help(text: str, quote: bool) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if quote else text


_PREFIX: dict[tuple, str] = {}       # (name, label names, label values) -> 'name{a="x"}'
_HEADERS: dict[tuple, tuple[str, str]] = {}
_CACHE_MAX = 200_000                 # series; beyond, the caches start over (label churn cannot grow them)


def _prefix(name: str, labels: tuple, values: tuple) -> str:
    key = (name, labels, values)
    got = _PREFIX.get(key)
    if got is None:
        if len(_PREFIX) > _CACHE_MAX:
            _PREFIX.clear()
        pairs = ",".join(f'{k}="{_escape_label(str(x))}"' for k, x in sorted(zip(labels, values)))
        got = _PREFIX[key] = f"{name}{{{pairs}}}"
    return got


def _lines(fam: Family) -> str:
    """The family's sample lines (identical in both formats); label parts are formatted once per series."""
    name, labels, rows = fam.name, fam.labels, fam.rows
    if not labels:
        if len(rows) == 1:                      # most families: one unlabelled value
            return f"{name} {format_value(rows[0][1])}\n"
        return "".join(f"{name} {format_value(v)}\n" for _, v in rows)
    prefixes, fmt = _PREFIX, format_value
    out = []
    for values, v in rows:
        pre = prefixes.get((name, labels, values))
        if pre is None:
            pre = _prefix(name, labels, values)
        out.append(f"{pre} {fmt(v)}\n")
    return "".join(out)


def _headers(fam: Family) -> tuple[str, str]:
    """(text 0.0.4 header, OpenMetrics header) of a family, formatted once per (name, type, help)."""
    key = (fam.name, fam.type, fam.documentation)
    got = _HEADERS.get(key)
    if got is None:
        if len(_HEADERS) > _CACHE_MAX:
            _HEADERS.clear()
        got = _HEADERS[key] = _make_headers(*key)
    return got


def _make_headers(name: str, kind: str, documentation: str) -> tuple[str, str]:
    text = (f"# HELP {name} {_escape_help(documentation, False)}\n"
            f"# TYPE {name} {kind}\n")
    om_name, om_kind = name, _OM_TYPES.get(kind, "unknown")
    if kind == "counter":
        if name.endswith("_total"):
            om_name = name[:-len("_total")]
        else:                       # OpenMetrics counters must end in _total: say unknown instead
            om_kind = "unknown"
    om = f"# HELP {om_name} {_escape_help(documentation, True)}\n# TYPE {om_name} {om_kind}\n"
    return text, om


class _One:
    def __init__(self, fam):
        self.fam = fam

    def collect(self):
        return iter([self.fam])


def render_family(fam) -> tuple[bytes, bytes]:
    """(text 0.0.4, OpenMetrics without ``# EOF``) of one family of either kind."""
    if isinstance(fam, Family):
        if not fam.rows:
            return b"", b""
        lines = _lines(fam)
        text, om = _headers(fam)
        return (text + lines).encode(), (om + lines).encode()
    text = _pc_text.generate_latest(_One(fam))
    om = _pc_om.generate_latest(_One(fam))
    return text, om[:-len(b"# EOF\n")] if om.endswith(b"# EOF\n") else om


def render(families) -> tuple[bytes, bytes]:
    """(text 0.0.4, OpenMetrics without ``# EOF``) of ``families``, in their order.

    A family without samples is left out (as ``prometheus_client`` leaves out
    nothing but Prometheus ignores: empty families carry no information).
    The pieces are joined as text and encoded once per body (what
    :func:`render_family` gives, joined, without a join and two encodes per family).
    """
    texts, oms = [], []
    headers = _HEADERS
    for fam in families:
        if fam.__class__ is not Family:
            t, o = render_family(fam)          # prometheus_client's, or a Family subclass: rare
            texts.append(t.decode())
            oms.append(o.decode())
            continue
        if not fam.rows:
            continue
        head = headers.get((fam.name, fam.type, fam.documentation))
        if head is None:
            head = _headers(fam)
        lines = _lines(fam)
        texts += (head[0], lines)
        oms += (head[1], lines)
    return "".join(texts).encode(), "".join(oms).encode()
