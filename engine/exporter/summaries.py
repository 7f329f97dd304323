"""The monitor workers' summaries (alerts, TopSQL, cleaner, rpc) as ocp_exporter families.

Producers put one full-snapshot message per collection on their ring; its
fields, version and size bound are :mod:`engine.messages`. We keep the latest
message per ``kind``; a series the producer no longer sends is gone at the
next collection, and a kind whose producer went silent for ``ttl`` seconds is
dropped whole (no stale series: obagent bug #59).

Every message and every metric in it is checked at this boundary
(:func:`engine.messages.decode`, :func:`engine.messages.metric_problem`,
plus the names the exporters keep for themselves): a bad one is counted by
reason (``ocp_exporter_bad_input_total``) and skipped, the rest of the
message is kept. Series per kind are capped (``max_series``) so that a
producer cannot blow up the exposition's cardinality.
"""
from __future__ import annotations

import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily

from engine import messages

KINDS = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
         "untyped": UnknownMetricFamily, "unknown": UnknownMetricFamily}
RESERVED_PREFIXES = ("node_", "ocp_exporter_", "ocp_agent_", "ob_process_")   # the exporters' own and host names


class Summaries:
    """The latest full snapshot per producer kind."""

    def __init__(self, bad, *, ttl: float = 900.0, max_series: int = 5000, reserved: frozenset = frozenset()):
        self.bad = bad
        self.ttl = ttl
        self.max_series = max_series
        self.reserved = reserved           # names our own families use
        self.latest: dict[str, tuple[float, list[dict]]] = {}   # kind -> (received, metrics)
        self.received: dict[str, int] = {}                        # edge -> messages

    def drain(self, edge: str, ring, max_items: int = 1024) -> int:
        """Read every waiting message of ``ring``; how many were read."""
        count = 0
        while True:
            batch = ring.get_many(max_items, 0.0)
            for record in batch:
                self.accept(record, edge=edge)
            count += len(batch)
            if not batch:              # a short batch is not the end: get_many is byte-bounded
                break
        self.received[edge] = self.received.get(edge, 0) + count
        return count

    def accept(self, record: bytes, now: float | None = None, edge: str | None = None) -> bool:
        """Keep ``record`` as its kind's latest snapshot if it is a well-formed message
        (of ``edge``'s kind and size, when read from a ring)."""
        try:
            msg = messages.decode(record, edge)
        except messages.BadMessage as exc:
            self.bad(exc.reason)
            return False
        if msg.get("cut"):
            self.bad("message_cut")           # the producer's tail did not fit the edge's bound
        metrics = [m for m in msg["metrics"][:self.max_series + 1] if self._valid(m)]
        if len(msg["metrics"]) > self.max_series:
            self.bad("too_many_series")
            metrics = metrics[:self.max_series]
        self.latest[msg["kind"]] = (time.monotonic() if now is None else now, metrics)
        return True

    def _valid(self, m) -> bool:
        problem = messages.metric_problem(m)
        if problem is None and (m["name"].startswith(RESERVED_PREFIXES) or m["name"] in self.reserved):
            problem = "metric_name_taken"
        if problem is not None:
            self.bad(problem)
            return False
        return True

    def expire(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for kind in [k for k, (at, _) in self.latest.items() if now - at > self.ttl]:
            del self.latest[kind]

    def families(self) -> list:
        """All kept series, one family per name (the first type and help seen win)."""
        grouped: dict[str, list] = {}
        for kind in sorted(self.latest):
            for m in self.latest[kind][1]:
                grouped.setdefault(m["name"], []).append(m)
        out, taken = [], set(self.reserved)
        for name, items in grouped.items():
            kind = items[0].get("type", "untyped")
            same = [m for m in items if m.get("type", "untyped") == kind]
            if len(same) != len(items):
                self.bad("metric_type_conflict")
            label_names = sorted({k for m in same for k in m.get("labels", {})})
            fam = KINDS[kind](name, str(items[0].get("help") or name), labels=label_names)
            seen = set()
            for m in same:
                values = tuple(m.get("labels", {}).get(k, "") for k in label_names)
                if values in seen:
                    self.bad("metric_duplicate")
                    continue
                seen.add(values)
                fam.add_metric(list(values), float(m["value"]))
            exposed = {fam.name, f"{fam.name}_total"} | {x.name for x in fam.samples}
            if exposed & taken:              # e.g. a gauge "x_total" beside a counter "x"
                self.bad("metric_name_taken")
                continue
            taken |= exposed
            out.append(fam)
        return out

    def health_families(self, now: float | None = None) -> list:
        now = time.monotonic() if now is None else now
        age = GaugeMetricFamily("ocp_exporter_message_age_seconds",
                                "Age of the latest summary of each producer kind", labels=["kind"])
        for kind, (at, _) in sorted(self.latest.items()):
            age.add_metric([kind], max(0.0, now - at))
        received = CounterMetricFamily("ocp_exporter_messages_total", "Summaries read from each ring",
                                       labels=["edge"])
        for edge, n in sorted(self.received.items()):
            received.add_metric([edge], n)
        return [age, received]
