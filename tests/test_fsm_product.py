"""fsm/fsm_product.py's answers about pattern automata are interegular's (its `&`, `-`, `|`, emptiness on its
own automata of the same patterns), and its intersections accept what `re.fullmatch` of both patterns does,
on patterns of the kinds schema terminals have: length-bounded strings, formats, literals, classes."""

from __future__ import annotations

import itertools
import random
import re

import pytest

interegular = pytest.importorskip("interegular")

from grammask.fsm import python_regex  # noqa: E402
from grammask.fsm.fsm_product import covered, disjoint, intersect, intersection, is_subset, pattern_dfa  # noqa: E402
from grammask.fsm.multiples import multiple_fsm  # noqa: E402
from grammask.grammar.json_schema.string_lengths import length_content  # noqa: E402

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


def _merged(rows):
    """Rows with adjacent moves to the same target joined."""
    out = []
    for row in rows:
        joined = []
        for lo, hi, t in row:
            if joined and joined[-1][2] == t and joined[-1][1] + 1 == lo:
                joined[-1] = (joined[-1][0], hi, t)
            else:
                joined.append((lo, hi, t))
        out.append(joined)
    return out


def test_the_lexers_intersect_is_python_regex_intersect():
    """fsm_product.intersect (native; the lexer's `also` intersections) makes python_regex.intersect's
    automaton: the same states in the same order, the same moves (adjacent ones to the same target joined),
    and the same refusals."""
    automata = [pattern_dfa(p) for p in PATTERNS]
    automata += [pattern_dfa(f'"{length_content(lo, hi)}"') for lo, hi in [(0, 3), (2, 9), (4, 40), (1, None)]]
    automata += [pattern_dfa(p) for p in (r'"[a-z0-9._\-]*"', r'"(?:[ -!#-\[\]-~])*[0-9]{2}(?:[ -!#-~])*"')]
    automata += [python_regex.from_interegular(multiple_fsm(m, e)) for m, e in [(3, 0), (25, 1)]]  # unmerged moves
    for a, b in itertools.product(automata, repeat=2):
        expected, got = python_regex.intersect(a, b), intersect(a, b)
        assert (got.edges, got.accept, got.cond) == (_merged(expected.edges), expected.accept, expected.cond)
    big = pattern_dfa(f'"{length_content(0, 60)}"')
    for build in (python_regex.intersect, intersect):
        with pytest.raises(python_regex.RegexUnsupported, match="the intersection has more than 50 states"):
            build(big, big, 50)
        with pytest.raises(python_regex.RegexUnsupported, match="lookahead"):
            build(python_regex.regex_dfa(r"a(?!b)"), big)


# ---- the native product (csrc/gm_product.c) on its own: bounds, limits, allocation failures ---------------

def test_intersection_numbering_and_moves():
    """States breadth first by code point, a move per maximal range over which no automaton changes."""
    both = intersection(pattern_dfa(r"[a-f]x|[d-k]y"), pattern_dfa(r"[c-e][xy]"))
    # "c" leaves only the x branch of the first, "d" and "e" both: two states, found in code-point order
    assert both.edges[0] == [(ord("c"), ord("c"), 1), (ord("d"), ord("e"), 2)]
    assert [lo for lo, _, _ in both.edges[1]] == [ord("x")] and [lo for lo, _, _ in both.edges[2]] == [ord("x")]
    assert both.edges[2][0][:2] == (ord("x"), ord("y"))
    assert both.matches("dx") and both.matches("ey") and not both.matches("cy") and not both.matches("fx")


def test_a_state_keeps_its_moves_where_the_one_before_ends_next_to_them():
    # state 0's last move ("a" -> 1) ends just before state 1's first ("b" -> 1): two moves of two states
    # (they were once joined into state 0's, and the product accepted "b" and refused "ab")
    both = intersection(pattern_dfa("ab*"), pattern_dfa("[ab]*"))
    assert both.edges == [[(ord("a"), ord("a"), 1)], [(ord("b"), ord("b"), 1)]]
    assert [both.matches(s) for s in ("a", "ab", "abb", "b", "")] == [True, True, True, False, False]


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


# A read past the end of an array faults in any build (not only under AddressSanitizer) when the array ends
# where an unreadable page begins; the call runs in a child process, so that a fault fails this test only.
_GUARDED_PRODUCT = r'''
import ctypes, mmap, sys
import numpy as np
from grammask import _core

page = mmap.PAGESIZE
buf = mmap.mmap(-1, 2 * page)
address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
if libc.mprotect(address + page, page, 0) != 0:
    print("no mprotect")
    sys.exit(0)
lo = np.frombuffer(buf, dtype=np.int32, count=2, offset=page - 8)  # its last element ends the page
lo[:] = [97, 100]
try:
    _core.char_product([([0, 3, 2], lo, [99, 102], [1, 1], [0, 1])] * 2, _core.PRODUCT_ALL, False, 1000, -1.0)
    print("accepted")
except ValueError:
    print("ValueError")
'''


def test_offsets_past_the_edges_are_refused_before_any_edge_is_read():
    """edge_begin [0, 3, 2] ends at the 2 edges there are, but state 0's offsets run to 3: checking state 0's
    edges before the offsets' order read a third edge past the arrays' end (gm_product.c valid_dfa)."""
    import subprocess
    import sys
    from pathlib import Path

    if not sys.platform.startswith("linux"):
        pytest.skip("the guard page needs mprotect")
    res = subprocess.run([sys.executable, "-c", _GUARDED_PRODUCT], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode == 0, f"the product crashed (exit {res.returncode}): {res.stderr[-2000:]}"
    assert res.stdout.split()[-1:] in (["ValueError"], ["mprotect"]), res.stdout + res.stderr


def test_arrays_without_elements_for_their_length_are_refused():
    """len() of an array of shape (n, 0) is n, but it holds no element: the count the C code reads by must
    come from the elements there are (the wrapper gave C a one-element placeholder and read n from it)."""
    import numpy as np

    from grammask import _core

    good = ([0, 1], [97], [99], [0], [1])
    assert _core.char_product([good], _core.PRODUCT_ALL, False, 100, -1.0)[0] == 0
    for at in range(4):
        broken = list(good)
        broken[at] = np.zeros((len(good[at]), 0), dtype=np.int32)
        with pytest.raises(ValueError):
            _core.char_product([tuple(broken)], _core.PRODUCT_ALL, False, 100, -1.0)


def test_a_sequence_whose_length_lies_is_read_as_what_it_holds():
    """char_product fills one C entry per automaton iterated, and sized that block by len(): a sequence whose
    len() says more left entries unset for C to follow (fewer: entries written past the block)."""
    from grammask import _core

    one = ([0, 1, 1], [97], [99], [1], [0, 1])

    class Lying(list):
        def __len__(self):
            return 2

    assert _core.char_product(Lying([one]), _core.PRODUCT_ALL, False, 100, -1.0)[:3] == \
        _core.char_product([one], _core.PRODUCT_ALL, False, 100, -1.0)[:3]
