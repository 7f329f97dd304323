"""Names the cleaner never deletes, and the load-time check of rule patterns against them.

The **active names** are a regular language: any name ending in ``.log``,
``.log.wf`` or ``.pid`` (an unsuffixed log being written to, or a pid file),
plus a few exact names (``observer.conf.bin``, ``etc``, ``store``...). The plan
refuses them whatever a pattern says (:func:`is_active_name`); and a pattern
that could match one is refused when the config is loaded
(:func:`active_witness`).

The check is on the pattern's language, not on samples: the pattern is parsed
into a Thompson NFA over the only characters the suffix rules look at (``.``,
``l o g w f p i d``) plus "any other character", and the product with the
suffix automaton is searched for a word that both accept. So:

- a pattern whose language holds a name ending in ``.log``, ``.log.wf`` or
  ``.pid`` is always refused, with such a name when one can be spelled;
- a pattern may also be refused when it matches none: anchors and word
  boundaries are read as matching anywhere, repeat counts above
  :data:`MAX_COUNT` as unbounded, and a negated class as holding "any other
  character": each only makes the language checked larger, never smaller.

Patterns are matched by RE2 and parsed here by Python's parser; where the two
read a syntax differently (POSIX classes ``[[:alpha:]]``, ``\\p{..}``,
``\\Q..\\E``, ``\\C``) the pattern is refused rather than guessed at.
"""
from __future__ import annotations

import re
from collections import deque

try:
    _parser = re._parser            # Python >= 3.11
except AttributeError:              # pragma: no cover
    import sre_parse as _parser
_C = _parser                        # the opcode constants live beside the parser

ACTIVE_SUFFIXES = (".log", ".log.wf", ".pid")
PROTECTED_NAMES = ("observer.conf.bin", "core", "etc", "log", "store", "bin")

MAX_COUNT = 16          # x{m,n}: counts above this are checked as {16,} (a larger language)
MAX_STATES = 20_000     # NFA size past which a pattern is refused as too complex to check

OTHER = ""              # the symbol "any character not in SPECIFIC"
SPECIFIC = tuple(sorted(set("".join(ACTIVE_SUFFIXES))))
SYMBOLS = (*SPECIFIC, OTHER)
_REPS = "axz0_-A Z~+é"  # concrete stand-ins tried for OTHER when spelling a witness
# RE2 folds case with Unicode simple folding; these are the extra members of
# the specific letters' orbits a careful reader might fear (over-approximated).
_FOLDS = {c: {c, c.upper()} for c in SPECIFIC}
_FOLDS["i"] |= {"\u0130", "\u0131"}


def is_active_name(name: str) -> bool:
    """An unsuffixed log file (``observer.log``, ``election.log.wf``), being
    written to, or a pid file: whatever its other characters."""
    return name.endswith(ACTIVE_SUFFIXES)


class Uncheckable(ValueError):
    """A pattern whose language this module cannot bound: refused."""


def active_witness(pattern: str, fullmatch) -> str | None:
    """A protected name ``pattern`` would match, or None if it matches none.

    ``fullmatch`` is the compiled pattern's whole-name matcher (RE2), used for
    the exact names and to confirm a spelled witness. When the language holds
    an active name that cannot be spelled exactly (over-approximation), the
    returned text describes it instead. Raises :class:`Uncheckable`.
    """
    for name in PROTECTED_NAMES:
        if fullmatch(name):
            return name
    if "[:" in pattern or re.search(r"\\[pPQEC]", pattern):
        raise Uncheckable("POSIX classes, \\p, \\Q..\\E and \\C are read differently by RE2 and "
                          "cannot be checked; write the characters out")
    try:
        tree = _parser.parse(pattern)
    except re.error as exc:
        raise Uncheckable(f"cannot be checked: {exc}") from None
    nfa = _Nfa()
    start, end = nfa.build(tree, bool(tree.state.flags & re.IGNORECASE))
    word = _search(nfa, start, end)
    if word is None:
        return None
    if fullmatch(word):
        return word
    return "a name ending in " + "/".join(ACTIVE_SUFFIXES)


# ---------------------------------------------------------------- the suffix automaton

_PREFIXES = sorted({s[:i] for s in ACTIVE_SUFFIXES for i in range(len(s) + 1)}, key=len)


def _step(state: str, sym: str) -> str:
    """Aho-Corasick: the longest suffix of ``state + sym`` that starts a suffix rule."""
    text = state + (sym if sym else "\0")
    for i in range(len(text) + 1):
        if text[i:] in _PREFIXES:
            return text[i:]
    return ""


def _accepting(state: str) -> bool:
    return state.endswith(ACTIVE_SUFFIXES)


# ---------------------------------------------------------------- the pattern's NFA

class _Nfa:
    """Thompson construction: ``eps[q]`` epsilon targets, ``moves[q]`` (symbols, reps, target)."""

    def __init__(self):
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple]] = []

    def state(self) -> int:
        if len(self.eps) >= MAX_STATES:
            raise Uncheckable("is too large to check (nested repeats); simplify it")
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def build(self, seq, icase: bool) -> tuple[int, int]:
        start = cur = self.state()
        for op, av in seq:
            a, b = self._node(op, av, icase)
            self.eps[cur].append(a)
            cur = b
        return start, cur

    def _char(self, syms: frozenset, rep: str) -> tuple[int, int]:
        a, b = self.state(), self.state()
        self.moves[a].append((syms, rep, b))
        return a, b

    def _node(self, op, av, icase):
        if op in (_C.LITERAL, _C.NOT_LITERAL, _C.ANY, _C.IN):
            syms, rep = _symbols(op, av, icase)
            return self._char(syms, rep)
        if op is _C.SUBPATTERN:
            _group, add, delete, sub = av
            icase = bool(add & re.IGNORECASE) or (icase and not delete & re.IGNORECASE)
            return self.build(sub, icase)
        if op is _C.BRANCH:
            a, b = self.state(), self.state()
            for sub in av[1]:
                s, e = self.build(sub, icase)
                self.eps[a].append(s)
                self.eps[e].append(b)
            return a, b
        if op in (_C.MAX_REPEAT, _C.MIN_REPEAT, getattr(_C, "POSSESSIVE_REPEAT", None)):
            return self._repeat(*av, icase)
        if op is _C.AT:                       # anchors, \b, \B: read as "anywhere" (larger)
            a = self.state()
            return a, a
        raise Uncheckable(f"uses {op} (not a regular construct RE2 matches)")

    def _repeat(self, lo, hi, sub, icase):
        unbounded = hi is _C.MAXREPEAT or hi > MAX_COUNT
        lo = min(lo, MAX_COUNT)
        a = cur = self.state()
        for _ in range(lo):
            s, e = self.build(sub, icase)
            self.eps[cur].append(s)
            cur = e
        if unbounded:
            s, e = self.build(sub, icase)
            self.eps[cur].append(s)
            self.eps[e].append(cur)
            return a, cur
        end = self.state()
        self.eps[cur].append(end)
        for _ in range(hi - lo):
            s, e = self.build(sub, icase)
            self.eps[cur].append(s)
            self.eps[e].append(end)
            cur = e
        return a, end


def _symbols(op, av, icase) -> tuple[frozenset, str]:
    """The symbols one character matcher accepts, and a concrete char for OTHER."""
    if op is _C.ANY:
        return frozenset(SYMBOLS), "a"
    if op is _C.LITERAL:
        items, negate = [(_C.LITERAL, av)], False
    elif op is _C.NOT_LITERAL:
        items, negate = [(_C.LITERAL, av)], True
    else:
        negate = bool(av) and av[0][0] is _C.NEGATE
        items = av[1:] if negate else av
    inside = lambda ch: _in_items(items, ch, icase)
    syms = {s for s in SPECIFIC if inside(s) != negate}
    candidates = [] if negate else [chr(v) for o, v in items if o is _C.LITERAL] + \
        [chr(v[0] + k) for o, v in items if o is _C.RANGE for k in range(min(12, v[1] - v[0] + 1))]
    rep = next((c for c in (*candidates, *_REPS) if c not in SPECIFIC and inside(c) != negate), "")
    if negate or rep or _may_hold_other(items):
        syms.add(OTHER)             # a negated class: assumed to hold some other character
    return frozenset(syms), rep or "?"


def _in_items(items, ch: str, icase: bool) -> bool:
    variants = _FOLDS.get(ch.lower(), {ch, ch.lower(), ch.upper()}) if icase else {ch}
    return any(_in_item(op, av, v) for v in variants for op, av in items)


def _in_item(op, av, ch: str) -> bool:
    if op is _C.LITERAL:
        return ord(ch) == av
    if op is _C.RANGE:
        return av[0] <= ord(ch) <= av[1]
    if op is _C.CATEGORY:
        return re.fullmatch(_CATEGORIES[av], ch) is not None
    raise Uncheckable(f"uses {op} in a class")


_CATEGORIES = {
    _C.CATEGORY_DIGIT: r"\d", _C.CATEGORY_NOT_DIGIT: r"\D", _C.CATEGORY_SPACE: r"\s",
    _C.CATEGORY_NOT_SPACE: r"\S", _C.CATEGORY_WORD: r"\w", _C.CATEGORY_NOT_WORD: r"\W",
}


def _may_hold_other(items) -> bool:
    """Whether a (non-negated) class may hold a character outside SPECIFIC."""
    for op, av in items:
        if op is _C.LITERAL and chr(av) not in SPECIFIC:
            return True
        if op is _C.RANGE and av[1] - av[0] + 1 > sum(av[0] <= ord(s) <= av[1] for s in SPECIFIC):
            return True
        if op is _C.CATEGORY:
            return True
    return False


# ---------------------------------------------------------------- the product search

def _search(nfa: _Nfa, start: int, end: int) -> str | None:
    """A word both the NFA and the suffix automaton accept (breadth first), or None."""
    first = (start, "")
    parent = {first: None}
    todo = deque([first])
    while todo:
        node = todo.popleft()
        q, s = node
        if q == end and _accepting(s):
            return _spell(parent, node)
        for t in nfa.eps[q]:
            nxt = (t, s)
            if nxt not in parent:
                parent[nxt] = (node, "")
                todo.append(nxt)
        for syms, rep, t in nfa.moves[q]:
            for sym in sorted(syms):
                nxt = (t, _step(s, sym))
                if nxt not in parent:
                    parent[nxt] = (node, sym or rep)
                    todo.append(nxt)
    return None


def _spell(parent: dict, node) -> str:
    out = []
    while parent[node] is not None:
        node, ch = parent[node]
        out.append(ch)
    return "".join(reversed(out))
