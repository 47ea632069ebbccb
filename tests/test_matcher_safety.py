"""A matcher is all or nothing: accept_tokens takes every token or none whatever max_rollback_tokens is; an
allocation that fails anywhere leaves the matcher as it was, raises MemoryError and leaks nothing (the
core's allocator made to fail at the n-th allocation); the fill cache its matchers share gives the
tables' answer on several threads at once; a matcher's memory stays bounded."""

from __future__ import annotations

import ast
import gc
import re
import threading

import numpy as np
import pytest

import grammask as gm
from conftest import compiled_for, load_tokenizer, tokenizer_info
from grammask._core import FILL_CACHE_ENTRIES, CoreMatcher, _fail_allocation_after, _live_blocks

JSON_TEXT = '{"a": [1, "two", {"b": null, "c": -2.5e3}], "d": [true, false, {"e": [[], {}]}]}'
PY_TEXT = ('import os\n\n\nclass A(B):\n    """Doc."""\n\n    def f(self, x, *args, k=1, **kw):\n'
           '        if x and not args:\n            return [y ** 2 for y in range(x) if y % 2]\n'
           '        while True:\n            try:\n                z = {k: v for k, v in kw.items()}\n'
           '            except (KeyError, ValueError) as e:\n                raise RuntimeError(f"{e!r}") from e\n'
           '        return lambda q: q @ x\n')


@pytest.fixture(scope="module")
def json_setup():
    tok, info = load_tokenizer("smollm2"), tokenizer_info("smollm2")
    return tok, gm.compile("json", info, cache_dir=False, tables="eager"), tok.encode(JSON_TEXT)


def state(m) -> tuple:
    """What a caller can observe of a matcher."""
    return (m.num_accepted_tokens, m.is_accepting(), m.is_terminated(), m.can_continue(),
            m.allowed_token_ids().tobytes())


def rejected_token(m) -> int:
    allowed = set(m.allowed_token_ids().tolist())
    return next(t for t in range(m.vocab_size) if t not in allowed)


# -- all or nothing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("max_rollback", [None, 1, 3, 64])
def test_accept_tokens_takes_all_or_nothing_whatever_the_history_kept(json_setup, max_rollback):
    """With max_rollback_tokens=3, 20 tokens and a bad one: the old accept_tokens could not undo the 20
    (their history was dropped) and returned False with the matcher advanced."""
    _, compiled, ids = json_setup
    m = compiled.matcher(max_rollback_tokens=max_rollback)
    assert m.accept_tokens(ids[:2])
    before = state(m)
    probe = compiled.matcher()
    assert probe.accept_tokens(ids[:22])
    assert not m.accept_tokens(ids[2:22] + [rejected_token(probe)])
    assert state(m) == before
    # a stop token and then more text: refused whole as well
    done = compiled.matcher(max_rollback_tokens=max_rollback)
    stop = compiled.tokenizer_info.stop_token_ids[0]
    assert not done.accept_tokens(ids + [stop, ids[0]])
    assert state(done) == state(compiled.matcher())
    assert done.accept_tokens(ids + [stop]) and done.is_terminated()


# -- allocation failures ---------------------------------------------------------------------------------

def fail_at(n: int, action):
    """Run action with the core's n-th allocation from now failing: True if it raised MemoryError."""
    _fail_allocation_after(n)
    try:
        action()
        return False
    except MemoryError:
        return True
    finally:
        _fail_allocation_after(0)


def each_failure(make, act, check_unchanged, snapshot=state, limit: int = 400) -> int:
    """For n = 1, 2, ...: a fresh matcher from make(), its n-th allocation inside act(m) failing; after a
    MemoryError the matcher must be as before. Stops when act needs fewer than n allocations. Returns the
    number of failures seen."""
    failures = 0
    for n in range(1, limit):
        m = make()
        before = snapshot(m)
        if not fail_at(n, lambda: act(m)):
            return failures
        failures += 1
        assert snapshot(m) == before, f"allocation {n}"
        check_unchanged(m)
    raise AssertionError(f"still allocating after {limit} allocations")


def test_out_of_memory_anywhere_leaves_the_matcher_as_it_was(json_setup, cache_dir):
    tok, compiled, ids = json_setup
    prefix = tok.decode(ids[:5])
    assert JSON_TEXT.startswith(prefix)
    reference = compiled.matcher()
    assert reference.accept_tokens(ids[:5])
    ref_mask = reference.allowed_token_ids()

    def after_five():
        m = compiled.matcher(max_rollback_tokens=4)
        assert m.accept_tokens(ids[:5])
        return m

    def still_works(m):  # the same masks and answers as a matcher that never failed
        assert np.array_equal(m.allowed_token_ids(), ref_mask)
        assert m.accept_tokens(ids[5:]) and m.is_accepting()

    def complete_from_text():  # no history buffer yet: the stop token's record allocates it
        m = compiled.matcher()
        assert m.accept_string("[1]") and m.is_accepting()
        return m

    python = compiled_for("python", "smollm2", cache_dir)
    text = b"def f(x):\n    return "
    plain = CoreMatcher(python.core_grammar, python.core_vocab, 0, False)
    assert plain.accept_bytes(text)
    plain_mask = np.zeros(python.core_vocab.n_words, np.uint32)
    plain.fill(plain_mask.ctypes.data)
    stop = compiled.tokenizer_info.stop_token_ids[0]
    seen = {
        "accept_tokens": each_failure(after_five, lambda m: m.accept_tokens(ids[5:]), still_works),
        "accept_token": each_failure(compiled.matcher, lambda m: m.accept_token(ids[0]), lambda m: None),
        "accept_string": each_failure(after_five, lambda m: m.accept_string(JSON_TEXT[len(prefix):]),
                                      lambda m: None),
        "stop token": each_failure(complete_from_text, lambda m: m.accept_token(stop), lambda m: None),
        # a costly Python state: the fill stores its mask in the (own) fill cache
        "fill": each_failure(lambda: CoreMatcherWrapper(python, text), lambda m: m.fill(),
                             lambda m: m.fill() or np.testing.assert_array_equal(m.words, plain_mask),
                             snapshot=CoreMatcherWrapper.position),
    }
    assert all(n > 0 for n in seen.values()), seen  # every path met at least one failing allocation


class CoreMatcherWrapper:
    """A matcher with a fill cache of its own (its allocations are its own), seen through state()."""

    def __init__(self, compiled, text: bytes):
        self.compiled = compiled
        self.m = CoreMatcher(compiled.core_grammar, compiled.core_vocab, 0, "private")
        assert self.m.accept_bytes(text)
        self.words = np.zeros(compiled.core_vocab.n_words, np.uint32)

    def fill(self):
        self.m.fill(self.words.ctypes.data)

    def position(self):  # (reads fields only: allocates nothing)
        return self.m.lex_state, self.m.history_length, self.m.terminated

    def accept_token(self, t):
        return self.m.accept_token(t)

    @property
    def num_accepted_tokens(self):
        return self.m.history_length

    def is_accepting(self):
        return self.m.terminated or self.m.is_complete()

    def is_terminated(self):
        return self.m.terminated

    def can_continue(self):
        return not self.m.terminated and self.m.can_continue()

    def allowed_token_ids(self):
        out = np.zeros(self.compiled.core_vocab.n_words, np.uint32)
        self.m.fill(out.ctypes.data)
        return np.flatnonzero(np.unpackbits(out.view(np.uint8), bitorder="little"))


def test_failed_allocations_leak_nothing(json_setup):
    """Matchers with caches of their own, created, driven and freed with the n-th allocation failing
    (in creation, accepts, fills, raw text): the core then holds exactly the blocks it held before."""
    _, compiled, ids = json_setup
    words = np.zeros(compiled.core_vocab.n_words, np.uint32)

    def life():
        m = CoreMatcher(compiled.core_grammar, compiled.core_vocab, 3, "private")
        for t in ids:
            m.fill(words.ctypes.data)
            m.accept_token(t)
        m.accept_tokens(ids[:7])
        m.reset()
        m.accept_bytes(JSON_TEXT[:30].encode())
        m.fill(words.ctypes.data)
        validator = CoreMatcher(compiled.core_grammar)
        validator.feed_bytes(JSON_TEXT.encode())

    gc.collect()
    baseline = _live_blocks()
    failures = 0
    for n in range(1, 1000):
        failed = fail_at(n, life)
        gc.collect()
        assert _live_blocks() == baseline, f"allocation {n}"
        if not failed:
            break
        failures += 1
    assert failures > 20


def test_a_matcher_that_cannot_be_created_holds_nothing(json_setup):
    _, compiled, _ = json_setup
    gc.collect()
    baseline = _live_blocks()
    for n in range(1, 12):
        fail_at(n, lambda: CoreMatcher(compiled.core_grammar, compiled.core_vocab, 0, "private"))
        gc.collect()
        assert _live_blocks() == baseline, f"allocation {n}"


# -- the shared fill cache -------------------------------------------------------------------------------

def test_matchers_on_threads_share_the_fill_cache_and_get_the_tables_answer(cache_dir):
    """Eight matchers on four threads fill at once (the fill releases the GIL) through the one cache of
    their compiled grammar: every mask equals the one computed from the tables without a cache."""
    tok = load_tokenizer("smollm2")
    compiled = compiled_for("python", "smollm2", cache_dir)
    texts = [re.sub(r"\bx\b", name, PY_TEXT) for name in ("x", "n", "value", "items", "a1", "_q", "self2", "xs")]
    for text in texts:
        ast.parse(text)
    walks = [tok.encode(t) for t in texts]
    plain = CoreMatcher(compiled.core_grammar, compiled.core_vocab, 0, False)
    words = np.zeros(compiled.core_vocab.n_words, np.uint32)
    expected = []
    for ids in walks:
        plain.reset()
        masks = []
        for t in ids:
            plain.fill(words.ctypes.data)
            masks.append(words.copy())
            assert plain.accept_token(t)
        expected.append(masks)
    hits_before = compiled.core_vocab.fill_cache_stats[0]
    errors = []

    def run(which):
        out = np.zeros(compiled.core_vocab.n_words, np.uint32)
        for _ in range(3):
            for w in which:
                m = CoreMatcher(compiled.core_grammar, compiled.core_vocab)
                for t, mask in zip(walks[w], expected[w]):
                    m.fill(out.ctypes.data)
                    if not np.array_equal(out, mask):
                        errors.append((w, t))
                    m.accept_token(t)

    threads = [threading.Thread(target=run, args=([i, i + 4],)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert compiled.core_vocab.fill_cache_stats[0] > hits_before  # they did share
    assert compiled.core_vocab.fill_cache_bytes <= FILL_CACHE_ENTRIES * (compiled.core_vocab.n_words * 4 + 4096)


# -- memory ----------------------------------------------------------------------------------------------

def test_matcher_memory_is_bounded_with_a_bounded_history(cache_dir):
    """A Python matcher holds about 34 KB when new (README: "Memory"); with max_rollback_tokens=64 it stays
    under 96 KB however long it runs; the fill cache is the compiled grammar's, not the matcher's."""
    tok = load_tokenizer("smollm2")
    compiled = compiled_for("python", "smollm2", cache_dir)
    m = compiled.matcher(max_rollback_tokens=64)
    assert m.memory_bytes < 40_000
    bitmask = gm.allocate_token_bitmask(1, compiled.vocab_size)
    ids = tok.encode(PY_TEXT)
    peak = 0
    for _ in range(40):
        m.reset()
        for t in ids:
            m.fill_next_token_bitmask(bitmask)
            assert m.accept_token(t)
            peak = max(peak, m.memory_bytes)
    assert peak < 96_000
