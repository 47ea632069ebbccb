"""fsm/fsm_product.py's answers about pattern automata are interegular's (its `&`, `-`, `|`, emptiness on its
own automata of the same patterns), and its intersections accept what `re.fullmatch` of both patterns does,
on patterns of the kinds schema terminals have: length-bounded strings, formats, literals, classes."""

from __future__ import annotations

import itertools
import random
import re

import pytest

interegular = pytest.importorskip("interegular")

from grammask.fsm.fsm_product import covered, disjoint, intersection, is_subset, pattern_dfa  # noqa: E402

PATTERNS = [r"[a-z]{2,5}", r"[a-c]+", r"abc", r"(ab)*", r"[^\"\\]{0,8}", r"[0-9]{4}-[0-9]{2}", r"\w+@\w+\.com",
            r"(yes|no)", r"y_.*", r".*", r"[A-Z][a-z]*", r"a?b?c?", r"[ -~]{3,6}", r"x|xy|xyz", r"", r"é+"]


def _fsm(pattern):
    return interegular.parse_pattern(pattern).to_fsm()


@pytest.mark.parametrize("a, b", list(itertools.product(PATTERNS, repeat=2)))
def test_the_product_answers_as_interegular(a, b):
    fa, fb = _fsm(a), _fsm(b)
    da, db = pattern_dfa(a), pattern_dfa(b)
    assert disjoint(da, db) == (fa & fb).empty()
    assert is_subset(da, db) == (fa - fb).empty()
    both = intersection(da, db)
    rng = random.Random(hash((a, b)) & 0xFFFF)
    for text in ["", "abc", "ab", "yes", "y_", "2024-01", "x@y.com", "Abc", "xyz", "éé", "b", "y_\n"] + [
            "".join(rng.choice("abcxyz0-@._éY ") for _ in range(rng.randint(0, 7))) for _ in range(30)]:
        expected = re.fullmatch(a, text) is not None and re.fullmatch(b, text) is not None
        assert both.matches(text) == expected, text


def test_covered_is_inclusion_in_the_union():
    parts = [pattern_dfa(p) for p in (r"[a-m]+", r"[n-z]+")]
    assert covered(pattern_dfa(r"[a-c]{1,3}"), parts)
    assert not covered(pattern_dfa(r"[a-z]{1,3}"), parts)  # "an" is in neither
    union = _fsm(r"[a-m]+") | _fsm(r"[n-z]+")
    for p in PATTERNS:
        assert covered(pattern_dfa(p), parts) == (_fsm(p) - union).empty(), p


def test_a_pattern_whose_end_depends_on_what_follows_is_refused():
    with pytest.raises(Exception, match="lookahead"):
        pattern_dfa(r"ab(?=c)")


# ---- the native product (csrc/gm_product.c) on its own: bounds, limits, allocation failures ---------------

def test_intersection_numbering_and_moves():
    """States breadth first by code point, a move per maximal range over which no automaton changes."""
    both = intersection(pattern_dfa(r"[a-f]x|[d-k]y"), pattern_dfa(r"[c-e][xy]"))
    # "c" leaves only the x branch of the first, "d" and "e" both: two states, found in code-point order
    assert both.edges[0] == [(ord("c"), ord("c"), 1), (ord("d"), ord("e"), 2)]
    assert [lo for lo, _, _ in both.edges[1]] == [ord("x")] and [lo for lo, _, _ in both.edges[2]] == [ord("x")]
    assert both.edges[2][0][:2] == (ord("x"), ord("y"))
    assert both.matches("dx") and both.matches("ey") and not both.matches("cy") and not both.matches("fx")


@pytest.mark.parametrize("broken", ["target out of range", "overlapping", "unsorted", "past U+10FFFF",
                                    "offsets", "no states"])
def test_bad_automata_refused(broken):
    from grammask import _core

    begin, lo, hi, dst, accept = [0, 2, 2], [97, 100], [99, 102], [1, 1], [0, 1]
    if broken == "target out of range":
        dst = [1, 2]
    elif broken == "overlapping":
        lo, hi = [97, 99], [99, 102]
    elif broken == "unsorted":
        lo, hi = [100, 97], [102, 99]
    elif broken == "past U+10FFFF":
        hi = [99, 0x110000]
    elif broken == "offsets":
        begin = [0, 3, 2]
    else:
        begin, accept = [0], []
    with pytest.raises(ValueError):
        _core.char_product([(begin, lo, hi, dst, accept)] * 2, _core.PRODUCT_ALL, False, 1000, -1.0)


def test_deadline_and_state_limit(monkeypatch):
    import time

    from grammask.fsm import fsm_product
    from grammask.fsm.limits import LexerTooLarge

    a, b = pattern_dfa(r"[a-z]{0,40}"), pattern_dfa(r"[a-m]{0,39}[n-z]?")
    with fsm_product.time_limit(time.monotonic() - 1), pytest.raises(LexerTooLarge, match="build_timeout"):
        intersection(a, b)
    assert not disjoint(a, b)  # the limit ended with its scope
    monkeypatch.setattr(fsm_product, "MAX_PRODUCT_STATES", 10)
    with pytest.raises(LexerTooLarge, match="more than 10 product states"):
        intersection(a, b)


def test_allocation_failures():
    from grammask import _core

    a, b = pattern_dfa(r"[a-z]{0,30}@[a-z]+"), pattern_dfa(r"[a-m]{0,29}[@n-z]*")
    expected = intersection(a, b)
    before = _core._live_blocks()
    failures = 0
    for n in range(1, 200):
        _core._fail_allocation_after(n)
        try:
            got = intersection(a, b)
        except MemoryError:
            failures += 1
            continue
        finally:
            _core._fail_allocation_after(0)
        assert (got.edges, got.accept) == (expected.edges, expected.accept)
        break
    assert failures > 5
    assert _core._live_blocks() == before
