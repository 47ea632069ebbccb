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
