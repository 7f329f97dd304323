"""engine.textformat renders what prometheus_client renders for the same families (both formats)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily

from engine import textformat

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
VALUES = st.one_of(st.integers(-2**63, 2**63), st.floats(allow_nan=True, allow_infinity=True))
LABEL_VALUES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@st.composite
def families(draw):
    kind = draw(st.sampled_from(["gauge", "counter", "untyped"]))
    base = draw(NAMES)
    labels = draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True), max_size=3, unique=True))
    rows = draw(st.lists(st.tuples(st.tuples(*[LABEL_VALUES for _ in labels]), VALUES), min_size=1, max_size=4,
                         unique_by=lambda r: r[0]))
    doc = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
    return kind, base, labels, rows, doc


def both(kind, base, labels, rows, doc):
    name = base + "_total" if kind == "counter" else base
    ours = textformat.Family(name, doc, labels, type=kind)
    cls = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily, "untyped": UnknownMetricFamily}[kind]
    theirs = cls(name, doc, labels=labels)
    for values, v in rows:
        ours.add_metric(values, v)
        theirs.add_metric(list(values), v)
    return ours, theirs


@settings(max_examples=40, deadline=None)
@given(st.lists(families(), min_size=1, max_size=4, unique_by=lambda f: f[1]))
def test_same_bytes_as_prometheus_client(fams):
    pairs = [both(*f) for f in fams]
    ours = textformat.render([o for o, _ in pairs])
    theirs = textformat.render([t for _, t in pairs])        # prometheus_client's own renderers, per family
    assert ours == theirs


def test_a_counter_without_total_is_unknown_in_openmetrics_and_empty_families_are_left_out():
    fam = textformat.Counter("odd_counter", "x", value=1)
    text, om = textformat.render([fam, textformat.Gauge("empty", "nothing", labels=["a"])])
    assert b"# TYPE odd_counter counter" in text and b"# TYPE odd_counter unknown" in om and b"empty" not in text



EDGES = [0.0, -0.0, 1e6, 999999.0, 1e6 - 1e-9, 1e16, 9999999999999998.0, 2.0**53, 2.0**53 - 1, -(2.0**53), 2**53,
         2**53 - 1, -(2**53) + 1, 2**63, -(2**63), 10**6, -(10**6), 1e-300, 5e-324]
VALUE = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                  st.floats(1e5, 1e20), st.integers(-2**54, 2**54), st.integers(-2**54, 2**54).map(float),
                  st.integers(10**5, 10**18).map(float), st.booleans(), st.sampled_from(EDGES))


@settings(max_examples=500, deadline=None)
@given(VALUE)
def test_format_value_native_and_twin_are_floatToGoString(v):
    """Both write every value as prometheus_client does (big counters take its exponent form)."""
    from prometheus_client.utils import floatToGoString
    from engine._ref import render as twin
    assert textformat.format_value(v) == twin.format_value(v) == floatToGoString(v)


@settings(max_examples=60, deadline=None)
@given(st.lists(families(), max_size=5, unique_by=lambda f: f[1]), st.lists(st.booleans(), min_size=5, max_size=5))
def test_native_render_is_the_twin(fams, theirs):
    """engine._native.render and engine._ref.render give the same bytes, our families and prometheus_client's
    mixed (``theirs`` picks which), empty families included."""
    from engine._ref import render as twin
    mixed = [pair[1] if pick else pair[0] for pair, pick in zip((both(*f) for f in fams), theirs)]
    mixed.append(textformat.Gauge("empty_family", "no rows", labels=["a"]))
    assert textformat.render(mixed) == twin.render(mixed)


@pytest.mark.parametrize("impl", ["native", "twin"])
def test_label_values_equal_as_dict_keys_each_render_as_themselves(impl):
    """1, 1.0 and True are one dict key (equal, one hash): the label-prefix cache, keyed by
    the values, rendered the series labelled 1.0 and True as the one labelled 1 before them
    in the same scrape (``{v="1"}`` three times), whichever came first."""
    from engine._ref import render as twin
    render = textformat.render if impl == "native" else twin.render
    name = f"equal_keys_{impl}"
    for order in ([1, 1.0, True, "1"], [True, "1", 1.0, 1]):
        fam = textformat.Gauge(name, "label values that are one dict key", labels=["v"])
        for x in order:
            fam.add_metric([x], 2)
        for _ in range(2):                                      # the cache filled, then read
            text, om = render([fam])
            lines = [ln for ln in text.decode().splitlines() if not ln.startswith("#")]
            assert lines == [f'{name}{{v="{x}"}} 2.0' for x in order]
            assert om.decode().endswith("\n".join(lines) + "\n")
