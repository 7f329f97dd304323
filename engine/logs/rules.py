"""Alert rules: load ``conf/alert_rules.toml``, validate each rule, compile it.

A rule that does not load (invalid regex, unknown key or template field, bad
severity...) is reported as ``(id, reason)`` and left out; the other rules keep
working. Rules keep their file order: a line raises at most one alert, the
first rule that matches.

For speed every rule also gets its *required literals*: byte strings of which
at least one occurs in every line the regex matches (worked out from the
regex's parse tree). The scanner finds those with one multi-literal pass over
the read buffer and runs the rule's regex only on the lines that contain one.
A rule with a regex but no usable literal runs its regex on every line of its
levels (or on every line: slow, reported in ``warnings``).
"""
from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import re2

LEVELS = ("ERROR", "WARN", "INFO", "EDIAG", "WDIAG", "TRACE", "DEBUG")
LEVEL_BITS = {name: 1 << i for i, name in enumerate(LEVELS)}
SEVERITIES = ("critical", "warning", "info")
LOG_TYPES = ("observer", "rootservice", "election", "alert")
HEADER_FIELDS = ("time", "ts", "level", "module", "func", "file", "line_no", "tid", "thread",
                 "tenant", "trace_id", "errcode", "ret", "message", "event")
CONTEXT_FIELDS = ("log_type", "host", "path", "rule", "severity")
KEYS = {"id", "severity", "summary", "description", "regex", "levels", "modules", "log_types",
        "errcodes", "events", "group_by", "throttle"}
DEFAULT_GROUP_BY = ("rule", "log_type", "errcode", "tenant")
DEFAULT_THROTTLE = 300.0
MIN_LITERAL = 3
MAX_RULES = 256
ID_RE = re.compile(r"[a-z0-9_]{1,64}")
LABEL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_rules_path() -> Path:
    """The shipped default rules: package data, so a plain `pip install .` has them too.

    conf/alert_rules.toml in the source tree is a link to this file.
    """
    return Path(__file__).resolve().parent / "alert_rules.toml"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    summary: str
    description: str
    pattern: str                      # "" when the rule is gated by level only
    regex: object                     # compiled re2 pattern over bytes, or None
    groups: tuple[str, ...]           # named captures
    literals: tuple[bytes, ...]       # one of them is in every matching line; () = none known
    levels: int                       # bit mask of LEVEL_BITS; 0 = any level
    modules: tuple[str, ...]          # prefixes of the header's module
    log_types: tuple[str, ...]
    errcodes: frozenset
    events: frozenset                 # alert.log event ids; () = any (see engine/logs/alertlog.py)
    group_by: tuple[str, ...]
    throttle: float

    def spec(self) -> tuple:
        """What the scanner needs (native and twin take the same tuple). The last item
        is the pattern as bytes when it is one plain literal (``EASY SLOW``,
        ``\\[err query\\]``): the scanner then tests ``plain in line``, not the regex."""
        return (self.levels, self.literals, self.regex, bool(self.groups), self.modules,
                self.errcodes or None, plain_literal(self.pattern))


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)     # (id, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def of_type(self, log_type: str) -> list[Rule]:
        """The rules that apply to ``log_type``, in order (what its scanner gets)."""
        return [self.rules[i] for i in self.for_log_type(log_type)]

    def for_log_type(self, log_type: str) -> list[int]:
        """Indexes of the rules that apply to ``log_type``, in order. alert.log has its
        own syntax: only rules that name it (``log_types`` or ``events``) apply to it."""
        if log_type == "alert":
            return [i for i, r in enumerate(self.rules) if "alert" in r.log_types]
        return [i for i, r in enumerate(self.rules) if not r.log_types or log_type in r.log_types]


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read and compile a rules file; a file that cannot be read at all raises ValueError."""
    return read_rules(path)[0]


def read_rules(path: str | Path | None = None) -> tuple[RuleSet, bytes]:
    """``(rules, the file's bytes)``; ValueError ``"<path>:<line>:<col>: <reason>"``
    (``"<path>: <reason>"`` when there is no position) if the file cannot be read,
    is not UTF-8 or is not TOML. The bytes are what :mod:`engine.logs.rulefile`
    keeps as the last good copy."""
    path = Path(path) if path else default_rules_path()
    data = rules_bytes(path)
    return parse_rules(path, data), data


def rules_bytes(path: Path) -> bytes:
    """The file's bytes; ValueError ``"<path>: <reason>"`` when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None


def parse_rules(path: Path, data: bytes) -> RuleSet:
    """Compile the bytes read from ``path`` (named in the errors, as :func:`read_rules` says)."""
    try:
        raw = tomllib.loads(data.decode())
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}:{_line_col(data, exc.start)}: not UTF-8 "
                         f"(byte {data[exc.start]:#04x})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(_toml_error(path, exc)) from None
    return _compile_file(raw)


def unusable(rs: RuleSet) -> str:
    """Why a file that parsed gives no alerting at all ('' if it gives some): every
    rule rejected (a ``[[rules]]`` typo, say). An empty file is usable: no rules."""
    if rs.rules or not rs.errors:
        return ""
    rid, why = rs.errors[0]
    return f"no rule loads ({len(rs.errors)} rejected; {rid}: {why})"


def _line_col(data: bytes, offset: int) -> str:
    """``line:col`` (both from 1, col in bytes) of a byte offset."""
    line = data.count(b"\n", 0, offset) + 1
    col = offset - data.rfind(b"\n", 0, offset)
    return f"{line}:{col}"


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_error(path: Path, exc: Exception) -> str:
    """``<path>:<line>:<col>: <reason>`` from tomllib's "(at line L, column C)" suffix."""
    text = str(exc)
    m = _TOML_AT.search(text)
    if m:
        return f"{path}:{m.group(1)}:{m.group(2)}: {text[:m.start()]}"
    return f"{path}: {text}"


def _compile_file(raw: dict) -> RuleSet:
    items = raw.get("rule", [])
    out = compile_rules(items)
    if not isinstance(items, list):
        out.errors.append(("rule", "must be [[rule]] tables, not one [rule] table"))
    for key in sorted(set(raw) - {"rule"}):       # [[rules]], a stray key: not silently nothing
        out.errors.append((key, "unknown top-level key (rules are [[rule]] tables)"))
    return out


def compile_rules(items: list) -> RuleSet:
    out = RuleSet()
    seen: set[str] = set()
    for i, item in enumerate(items if isinstance(items, list) else []):
        rid = item.get("id") if isinstance(item, dict) else None
        rid = rid if isinstance(rid, str) and rid else f"rule[{i}]"
        try:
            if rid in seen:
                raise ValueError("duplicate id")
            if len(out.rules) >= MAX_RULES:
                raise ValueError(f"more than {MAX_RULES} rules")
            rule = compile_rule(item)
        except ValueError as exc:
            out.errors.append((rid, str(exc)))
            continue
        seen.add(rid)
        out.rules.append(rule)
        if rule.regex is not None and not rule.literals:
            out.warnings.append((rid, "no literal found in the regex: it runs on every "
                                 + ("line of its levels" if rule.levels else "line (slow)")))
    return out


def compile_rule(item) -> Rule:
    """One validated rule, or ValueError with the reason."""
    if not isinstance(item, dict):
        raise ValueError("not a table")
    unknown = set(item) - KEYS
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
    rid = _str(item, "id", "")
    if not ID_RE.fullmatch(rid):
        raise ValueError("id must be 1-64 of a-z, 0-9, _")
    severity = _str(item, "severity", "warning")
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    pattern = _str(item, "regex", "")
    levels = _levels(item.get("levels", []))
    events = frozenset(_strs(item, "events", []))
    if not pattern and not levels and not events:
        raise ValueError("needs a regex or levels (or events, for alert.log)")
    regex, groups, literals = _compile_regex(pattern) if pattern else (None, (), ())
    fields = set(HEADER_FIELDS) | set(CONTEXT_FIELDS) | set(groups)
    summary = _str(item, "summary", "{rule} on {host}")
    description = _str(item, "description", "{message}")
    for name, text in (("summary", summary), ("description", description)):
        _check_template(name, text, fields)
    group_by = tuple(_strs(item, "group_by", list(DEFAULT_GROUP_BY)))
    bad = [g for g in group_by if g not in fields]
    if bad:
        raise ValueError(f"group_by: unknown field {bad[0]!r}")
    log_types = tuple(_strs(item, "log_types", []))
    if any(t not in LOG_TYPES for t in log_types):
        raise ValueError(f"log_types must be among {', '.join(LOG_TYPES)}")
    if events and log_types and log_types != ("alert",):
        raise ValueError("events are alert.log event ids: log_types must be [\"alert\"] or absent")
    if events:
        log_types = ("alert",)
    errcodes = item.get("errcodes", [])
    if not isinstance(errcodes, list) or not all(isinstance(e, int) and not isinstance(e, bool) for e in errcodes):
        raise ValueError("errcodes must be a list of integers")
    if regex is None and errcodes:
        literals = errcode_literals(errcodes)
    throttle = item.get("throttle", DEFAULT_THROTTLE)
    if isinstance(throttle, bool) or not isinstance(throttle, (int, float)) or throttle < 0:
        raise ValueError("throttle must be a number of seconds >= 0")
    return Rule(rid, severity, summary, description, pattern, regex, groups, literals, levels,
                tuple(_strs(item, "modules", [])), log_types,
                frozenset(errcodes), events, group_by, float(throttle))


def errcode_literals(codes) -> tuple[bytes, ...]:
    """The pre-filter of a rule keyed on error codes only: a line whose parsed code
    (``[errcode=N]``, else the last ``ret=-N``) is N contains the text of N
    (``-4013`` is in both ``[errcode=-4013]`` and ``ret=-4013``). Only for
    regex-less rules, which fire on entry lines, where the code is parsed from
    the line itself. () when a code is too short to be a useful literal."""
    lits = tuple(dict.fromkeys(str(c).encode() for c in sorted(codes)))
    return lits if all(len(x) >= MIN_LITERAL for x in lits) else ()


def _str(item: dict, key: str, default: str) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _strs(item: dict, key: str, default: list) -> list:
    value = item.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return value


def _levels(names) -> int:
    if not isinstance(names, list):
        raise ValueError("levels must be a list")
    mask = 0
    for name in names:
        if name not in LEVEL_BITS:
            raise ValueError(f"unknown level {name!r}")
        mask |= LEVEL_BITS[name]
    return mask


def _check_template(name: str, text: str, fields: set) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    for _, fname, _, _ in parsed:
        if fname is not None and fname not in fields:
            raise ValueError(f"{name}: unknown field {{{fname}}}")


def _compile_regex(pattern: str):
    if "\n" in pattern or "\\n" in pattern:
        raise ValueError("regex must not match a newline (rules apply to one line)")
    try:
        compiled = re2.compile(pattern.encode())
    except Exception as exc:  # re2 raises several types
        raise ValueError(f"invalid regex: {exc}") from None
    if isinstance(compiled, re2.FallbackPattern):
        raise ValueError("regex needs features RE2 lacks (backreferences, lookaround)")
    literals = required_literals(pattern)
    groups = tuple(sorted(compiled.groupindex, key=compiled.groupindex.get))
    bad = [g for g in groups if g in HEADER_FIELDS or g in CONTEXT_FIELDS]
    if bad:
        raise ValueError(f"named capture {bad[0]!r} hides a header field")
    bad = [g for g in groups if not LABEL_RE.fullmatch(g)]
    if bad:      # RE2 takes (?P<1x>...); a template or an Alertmanager label cannot
        raise ValueError(f"named capture {bad[0]!r} is not a valid field name ([A-Za-z_][A-Za-z0-9_]*)")
    return compiled, groups, literals


def required_literals(pattern: str) -> tuple[bytes, ...]:
    r"""Byte strings, one of which occurs in every match of ``pattern`` *as RE2 reads
    it*; () if unknown (the rule then runs without a pre-filter).

    Sound, not complete. The pattern is read with RE2's own syntax by a small
    tokenizer (:func:`_tokens`) that knows only what it must: plain characters
    and escaped punctuation are literal; a character class (``[...]``, with
    POSIX ``[:digit:]`` classes, a leading ``]``, escapes), ``.``, ``^``, ``$``, an
    escape like ``\d`` or ``\pN`` and any group are "something else"; a
    quantifier makes the atom before it optional. The best literal is the
    longest run of literal characters in the top-level sequence, or one per
    branch of a top-level alternation. Anything it does not understand (flags
    such as ``(?i)``, ``\Q...\E``, ``\C``, bytes >= 0x80 in a class...) gives ().
    """
    try:
        branches = _top_branches(pattern)
    except _Unknown:
        return ()
    found = []
    for branch in branches:
        best = _longest_run(branch)
        if len(best) < MIN_LITERAL:
            return ()
        found.append(best)
    return tuple(dict.fromkeys(found))


def plain_literal(pattern: str) -> bytes | None:
    """``pattern`` as the bytes it matches when it is nothing but literal characters
    (escaped punctuation included), else None. Matching it is a substring test."""
    if not pattern:
        return None
    try:
        tokens = list(_tokens(pattern))
    except _Unknown:
        return None
    if not all(isinstance(t, str) for t in tokens):
        return None
    try:
        return "".join(tokens).encode("ascii")
    except UnicodeEncodeError:
        return None


class _Unknown(Exception):
    """Syntax the literal extractor does not model: no pre-filter."""


_OTHER = object()          # an atom that is not one known literal character
_QUANT = object()          # a quantifier: the atom before it may be absent or repeated
_OPEN, _CLOSE, _BAR = object(), object(), object()     # "(" ")" "|" as syntax, not as literal chars


def _top_branches(pattern: str) -> list[list]:
    """The top-level alternation's branches, each a list of atoms (str of one char, _OTHER, _QUANT)."""
    tokens = list(_tokens(pattern))
    while tokens and tokens[0] is _OPEN and _closing(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]             # the whole pattern in one group: look inside
    branches, cur, depth = [], [], 0
    for tok in tokens:
        if tok is _OPEN:
            depth += 1
            cur.append(_OTHER)
        elif tok is _CLOSE:
            depth -= 1
        elif depth:
            continue
        elif tok is _BAR:
            branches.append(cur)
            cur = []
        else:
            cur.append(tok)
    branches.append(cur)
    return branches


def _closing(tokens: list, i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] is _OPEN:
            depth += 1
        elif tokens[j] is _CLOSE:
            depth -= 1
            if depth == 0:
                return j
    raise _Unknown("unbalanced")


def _tokens(p: str):
    """RE2 syntax as atoms: one literal char (str), _OTHER, _QUANT, _OPEN, _CLOSE, _BAR."""
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if c == "\\":
            if i + 1 >= n:
                raise _Unknown("trailing backslash")
            d = p[i + 1]
            if d.isascii() and not d.isalnum():
                yield d                    # escaped punctuation: itself
                i += 2
                continue
            if d in "QEC" or d == "x" or d.isdigit():
                raise _Unknown(f"\\{d}")   # literal text, bytes, hex, octal: not modelled
            if d in "pP":
                i += 3 if i + 2 < n and p[i + 2] != "{" else (p.index("}", i) + 1 if "}" in p[i:] else n)
            else:
                i += 2                     # \d \w \s \b \A \z \n \t ... : not a literal char
            yield _OTHER
        elif c == "[":
            i = _class_end(p, i)
            yield _OTHER
        elif c == "(":
            if p.startswith("(?", i):
                if p.startswith("(?P<", i) or p.startswith("(?<", i):
                    close = p.find(">", i)
                    if close < 0:
                        raise _Unknown("group name")
                    i = close + 1
                elif p.startswith("(?:", i):
                    i += 3
                else:
                    raise _Unknown("flags")  # (?i) (?s) (?U) (?i:...): may change what matches
            else:
                i += 1
            yield _OPEN
        elif c in ")|":
            i += 1
            yield _CLOSE if c == ")" else _BAR
        elif c in "*+?":
            i += 1
            if i < n and p[i] == "?":
                i += 1
            yield _QUANT
        elif c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}\??", p[i:])
            if m:                           # a repetition (possibly {0}): as a quantifier
                i += m.end()
                yield _QUANT
            else:                           # RE2 takes a bad repetition as the literal "{"
                i += 1
                yield _OTHER
        elif c in ".^$":
            i += 1
            yield _OTHER
        else:
            i += 1
            yield c


def _class_end(p: str, i: int) -> int:
    """The index after the ``]`` that closes the class opened at ``p[i]``."""
    j = i + 1
    if j < len(p) and p[j] == "^":
        j += 1
    if j < len(p) and p[j] == "]":
        j += 1                              # a leading ] is a member
    while j < len(p):
        if p[j] == "\\":
            j += 2
        elif p.startswith("[:", j):
            close = p.find(":]", j + 2)
            if close < 0:
                raise _Unknown("class")
            j = close + 2
        elif p[j] == "]":
            return j + 1
        else:
            j += 1
    raise _Unknown("unclosed class")


def _longest_run(atoms: list) -> bytes:
    """The longest run of literal characters that every match of ``atoms`` contains."""
    best, run = b"", []
    for atom in atoms + [_OTHER]:
        if atom is _QUANT:                  # the char before may be absent: it ends the run
            if run:
                run.pop()
            atom = _OTHER
        if isinstance(atom, str):
            run.append(atom)
            continue
        text = "".join(run).encode()
        if len(text) > len(best):
            best = text
        run = []
    return best
