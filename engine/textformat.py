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

try:
    from engine._native import render as _native
except ImportError as exc:  # pragma: no cover - only on an unbuilt checkout
    raise ImportError("engine._native.render is not built: run `pip install -e .` "
                      "(or `python setup.py build_ext --inplace`)") from exc

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


def _escape_label(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _escape_help(text: str, quote: bool) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if quote else text


_PREFIX: dict[tuple, str] = {}       # (name, label names, label values, each a str) -> 'name{a="x"}'
_HEADERS: dict[tuple, tuple[str, str]] = {}
_CACHE_MAX = 200_000                 # series; beyond, the caches start over (label churn cannot grow them)


def plain(values) -> bool:
    """Every label value is exactly a ``str``: only such keys are in (or looked up in) :data:`_PREFIX`.

    1, 1.0 and True are one key in a dict (equal, same hash), as a ``(str, Enum)``
    member is its value's key, yet they render "1", "1.0", "True" and "E.A": keyed by
    the values themselves, whichever came first rendered the others.
    """
    return type(values) is tuple and all(type(x) is str for x in values)


def _prefix(name: str, labels: tuple, values: tuple) -> str:
    """'name{a="x"}' of one series, cached by the text of its label values (see :func:`plain`)."""
    if not plain(values):
        values = tuple(str(x) for x in values)      # what is rendered: "1", "1.0", "True"
    key = (name, labels, values)
    got = _PREFIX.get(key)
    if got is None:
        if len(_PREFIX) > _CACHE_MAX:
            _PREFIX.clear()
        pairs = ",".join(f'{k}="{_escape_label(str(x))}"' for k, x in sorted(zip(labels, values)))
        got = _PREFIX[key] = f"{name}{{{pairs}}}"
    return got


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


def _render_other(fam) -> tuple[bytes, bytes]:
    """(text 0.0.4, OpenMetrics without ``# EOF``) of a prometheus_client family, by prometheus_client."""
    text = _pc_text.generate_latest(_One(fam))
    om = _pc_om.generate_latest(_One(fam))
    return text, om[:-len(b"# EOF\n")] if om.endswith(b"# EOF\n") else om


def render_family(fam) -> tuple[bytes, bytes]:
    """(text 0.0.4, OpenMetrics without ``# EOF``) of one family of either kind."""
    return render([fam])


def render(families) -> tuple[bytes, bytes]:
    """(text 0.0.4, OpenMetrics without ``# EOF``) of ``families``, in their order.

    A family without samples is left out (as ``prometheus_client`` leaves out
    nothing but Prometheus ignores: empty families carry no information).
    The work is engine._native.render's (its twin: engine._ref.render): one
    text per body, encoded once; label parts and headers from the caches above.
    """
    return _native.render(families)


format_value = _native.format_value          # a sample value, as prometheus_client's floatToGoString writes it
_native.bind(Family, _HEADERS, _headers, _PREFIX, _prefix, _render_other, floatToGoString)
