"""fsm/fsm_product.py's answers about interegular FSMs are interegular's own (its `&`, `-`, `|`, emptiness),
on patterns of the kinds schema terminals have: length-bounded strings, formats, literals, classes."""

from __future__ import annotations

import itertools
import random

import pytest

interegular = pytest.importorskip("interegular")

from grammask.fsm.fsm_product import covered, disjoint, intersection, is_subset  # noqa: E402

PATTERNS = [r"[a-z]{2,5}", r"[a-c]+", r"abc", r"(ab)*", r"[^\"\\]{0,8}", r"[0-9]{4}-[0-9]{2}", r"\w+@\w+\.com",
            r"(yes|no)", r"y_.*", r".*", r"[A-Z][a-z]*", r"a?b?c?", r"[ -~]{3,6}", r"x|xy|xyz", r"", r"é+"]


def _fsm(pattern):
    return interegular.parse_pattern(pattern).to_fsm()


@pytest.mark.parametrize("a, b", list(itertools.product(PATTERNS, repeat=2)))
def test_the_product_answers_as_interegular(a, b):
    fa, fb = _fsm(a), _fsm(b)
    assert disjoint(fa, fb) == (fa & fb).empty()
    assert is_subset(fa, fb) == (fa - fb).empty()
    both = intersection(fa, fb)
    rng = random.Random(hash((a, b)) & 0xFFFF)
    for text in ["", "abc", "ab", "yes", "y_", "2024-01", "x@y.com", "Abc", "xyz", "éé", "b"] + [
            "".join(rng.choice("abcxyz0-@._éY ") for _ in range(rng.randint(0, 7))) for _ in range(30)]:
        assert both.accepts(text) == (fa.accepts(text) and fb.accepts(text)), text


def test_covered_is_inclusion_in_the_union():
    parts = [_fsm(p) for p in (r"[a-m]+", r"[n-z]+")]
    assert covered(_fsm(r"[a-c]{1,3}"), parts)
    assert not covered(_fsm(r"[a-z]{1,3}"), parts)  # "an" is in neither
    union = parts[0] | parts[1]
    for p in PATTERNS:
        assert covered(_fsm(p), parts) == (_fsm(p) - union).empty(), p
