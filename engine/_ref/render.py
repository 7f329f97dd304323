"""Pure-Python twin of engine._native.render (ext/render.pyx): metric families to both exposition bodies.

Same contract as the native module, on engine.textformat's caches and
fallbacks; tests/test_textformat.py renders the same families with both (and
with prometheus_client) and compares the bytes.
"""
from __future__ import annotations

from prometheus_client.utils import floatToGoString

from engine import textformat as tf

_INF = float("inf")


def format_value(v) -> str:
    """As prometheus_client's ``floatToGoString`` writes a sample value, without its generic steps.

    Small ints and finite floats (nearly every value) are formatted here:
    ``repr``, and prometheus_client's exponent form for a float whose integer
    part has more than 6 digits. NaN, the infinities and other types go to
    ``floatToGoString`` itself.
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


def _lines(fam: tf.Family) -> str:
    """The family's sample lines (identical in both formats); label parts are formatted once per series."""
    name, labels, rows = fam.name, fam.labels, fam.rows
    if not labels:
        if len(rows) == 1:                      # most families: one unlabelled value
            return f"{name} {format_value(rows[0][1])}\n"
        return "".join(f"{name} {format_value(v)}\n" for _, v in rows)
    prefixes, fmt, plain = tf._PREFIX, format_value, tf.plain
    out = []
    for values, v in rows:
        pre = prefixes.get((name, labels, values)) if plain(values) else None   # 1 == 1.0 == True
        if pre is None:
            pre = tf._prefix(name, labels, values)
        out.append(f"{pre} {fmt(v)}\n")
    return "".join(out)


def render(families) -> tuple[bytes, bytes]:
    """(text 0.0.4, OpenMetrics without ``# EOF``) of ``families``, in their order; empty families left out."""
    texts, oms = [], []
    headers = tf._HEADERS
    for fam in families:
        if not isinstance(fam, tf.Family):
            t, o = tf._render_other(fam)
            texts.append(t.decode())
            oms.append(o.decode())
            continue
        if not fam.rows:
            continue
        head = headers.get((fam.name, fam.type, fam.documentation))
        if head is None:
            head = tf._headers(fam)
        lines = _lines(fam)
        texts += (head[0], lines)
        oms += (head[1], lines)
    return "".join(texts).encode(), "".join(oms).encode()
