"""Budget-aware closing: short completions of a matcher state, found and verified with the matcher.

`Closer.find(matcher, limit)` returns a list of at most `limit` token ids after which the text is a
complete string of the grammar, or None when its search finds none. Every completion it returns was
accepted token by token by the matcher and ended with `is_accepting()` true, and the matcher is left in
the state it was given (every accepted token is rolled back). The search is incomplete (it may miss a
completion that exists) but never wrong: "found" means "exists".

The search is an iterative-deepening depth-first search (depth limits 1, 2, 4, ... up to `limit`, one
node budget for all rounds) over a small set of closing candidates of the vocabulary (a few hundred
tokens, chosen once per tokenizer from their bytes), in this order of preference:

    0  bracket closers only: `)`, `]}`, `))` ... (more closers first)
    1  atoms that complete a value or a statement (`0`, ` None`, `pass`, `null`, ` {}`, `()`, ` int`, an
       empty string), then tokens that close a string and then brackets (a quote, `"}`, `')`, three quotes)
    2  structure: `:`, `;`, and newlines (alone or followed by indentation)
    3  keywords a construct may still need (` in`, ` else`, `except`, ` import`, `def`, ` =`, `package`, ...)
    4  runs of spaces or tabs (Python indentation)
    5  any single printable ASCII character (finishes keywords, escapes, numbers: `nul` -> `l`), and the
       UTF-8 continuation bytes (finish a character that a token ended inside)

At each node it fills the grammar's mask once, keeps the candidates the mask allows, first tries those
of classes 0-2 for an immediate finish (accept, `is_accepting()`, roll back), then descends into the
allowed candidates in the order above: at most `width` children per node, no more than two whitespace
tokens in a row, no newline right after a newline, and siblings that lead to the same lexer state with
the same acceptable terminals as the node itself or as an earlier sibling are skipped (e.g. every token
that only extends the current string; whitespace children are told apart by the candidates they allow,
since indentation widths look alike to the lexer).

Cost: a node is one mask fill (a few µs to tens of µs, see README) plus a vectorized test of the
candidate bits and a few accept/rollback pairs (~1 µs each). On states cut at random tokens from real
JSON documents, CPython modules and Go files (SmolLM2 vocabulary) a search takes 0.2-0.3 ms at the
median and finds a completion in all JSON and Go states and 97% of the Python ones (misses: deep `try`
blocks that still need an `except`); the p99, 10-70 ms, is a search that runs out of its node budget
(`max_nodes`, which caps the worst case).
"""

from __future__ import annotations

import time
import weakref
from typing import Optional

import numpy as np

import torch

from .bitmask import apply_token_bitmask_inplace, bitmask_words

_CLOSER_BYTES = frozenset(b"\"')]}`")
_BRACKET_CLOSERS = frozenset(b")]}")
_QUOTES = frozenset(b"\"'`")
_ATOMS = [b"0", b"1", b"None", b"pass", b"null", b"true", b"x", b"{}", b"[]", b"()", b'""', b"''", b"int",
          b"...", b"_"]
_STRUCTURE = [b":", b";", b" :", b":\n"]
_KEYWORDS = [b"in", b"else", b"except", b"finally", b"import", b"def", b"class", b"if", b"for", b"=", b":=",
             b"as", b"int", b"string", b"func", b"struct{}", b"return", b"x", b"package", b"*/"]


class ClosingCandidates:
    """The closing candidates of one vocabulary, in order of preference (see the module docstring)."""

    def __init__(self, token_bytes, vocab_size: int):
        classes: list[list[tuple[int, int]]] = [[] for _ in range(6)]  # (sort key, id)
        atoms = {a: i for i, a in enumerate(_ATOMS)}
        structure = {a: i for i, a in enumerate(_STRUCTURE)}
        keywords = {a: i for i, a in enumerate(_KEYWORDS)}
        for tid, b in enumerate(token_bytes):
            if b is None or not b or len(b) > 12 or tid >= vocab_size:
                continue
            core = b.lstrip(b" ")
            lead = len(b) - len(core)
            if len(b) <= 6 and all(c in _BRACKET_CLOSERS for c in b):
                classes[0].append((-len(b), tid))
            elif lead <= 1 and core in atoms:
                classes[1].append((atoms[core] * 2 + lead, tid))
            elif (len(b) <= 6 and b[0] in _QUOTES and all(c in _CLOSER_BYTES for c in b)
                  and b.count(b[0]) in (1, 3) and all(c == b[0] or c in _BRACKET_CLOSERS for c in b)):
                classes[1].append((1000 - len(b), tid))  # close a string (then brackets)
            elif b in structure:
                classes[2].append((structure[b], tid))
            elif b in (b"\n", b"\r\n") or (b[:1] == b"\n" and b[1:].strip(b" \t") == b"" and b.count(b"\n") == 1):
                classes[2].append((len(b) - 100, tid))
            elif lead <= 1 and core in keywords:
                classes[3].append((keywords[core] * 2 + (1 - lead), tid))
            elif b.strip(b" \t") == b"" and b"\n" not in b:
                classes[4].append((-len(b), tid))
            elif len(b) == 1 and (0x20 < b[0] < 0x7F or 0x80 <= b[0] <= 0xBF):
                classes[5].append((b[0], tid))  # continuation bytes finish a character a token cut
        order, kind = [], []
        for k, members in enumerate(classes):
            members.sort()
            order += [t for _, t in members]
            kind += [k] * len(members)
        self.ids = np.array(order, dtype=np.int64)
        self.kind = np.array(kind, dtype=np.int8)
        self.words = (self.ids >> 5).astype(np.int64)
        self.bits = (self.ids & 31).astype(np.uint32)
        self.n_words = bitmask_words(vocab_size)
        newline = np.array([token_bytes[t][:1] in (b"\n", b"\r") for t in order], dtype=bool)
        self.newline = newline
        self.whitespace = newline | (self.kind == 4)
        self.quick = self.kind <= 2


_CANDIDATES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def closing_candidates(tokenizer_info, vocab_size: int) -> ClosingCandidates:
    """The candidates of a TokenizerInfo, built once per TokenizerInfo object (about 50 ms at 50k tokens)."""
    per_info = _CANDIDATES.setdefault(tokenizer_info, {})
    if vocab_size not in per_info:
        per_info[vocab_size] = ClosingCandidates(tokenizer_info.token_bytes, vocab_size)
    return per_info[vocab_size]


class Closer:
    """Finds short completions of a matcher's state (see the module docstring)."""

    def __init__(self, candidates: ClosingCandidates, *, width: int = 6, max_nodes: int = 300):
        if width < 1 or max_nodes < 1:
            raise ValueError("width and max_nodes must be positive")
        self.c = candidates
        self.width = width
        self.max_nodes = max_nodes
        self._buf = np.zeros(candidates.n_words, dtype=np.int32)
        self.nodes = 0  # nodes expanded by the last find()

    def _allowed(self, m) -> np.ndarray:
        m.fill_next_token_bitmask(self._buf)
        words = self._buf.view(np.uint32)[self.c.words]
        return np.flatnonzero((words >> self.c.bits) & 1)

    def find(self, m, limit: int, max_nodes: Optional[int] = None) -> Optional[list[int]]:
        """A verified completion of at most `limit` tokens of m's state, or None if none was found."""
        if m.is_terminated():
            return []
        if m.is_accepting():
            return []
        if limit <= 0:
            return None
        self.nodes = 0
        self._left = self.max_nodes if max_nodes is None else max_nodes
        # Iterative deepening: short completions first, the node budget shared by all rounds.
        depth = 1
        while True:
            found = self._search(m, min(depth, limit), [], 0, False)
            if found is not None or depth >= limit or self._left <= 0:
                return found
            depth *= 2

    def _accept(self, m, t: int) -> None:
        if not m.accept_token(int(t)):
            raise RuntimeError(f"grammask closing: token {t} is in the mask but the matcher rejected it "
                               "(internal inconsistency between fill and accept)")

    def _search(self, m, limit: int, path: list, ws_run: int, after_newline: bool) -> Optional[list[int]]:
        if self._left <= 0:
            return None
        self._left -= 1
        self.nodes += 1
        idx = self._allowed(m)
        if idx.size == 0:
            return None
        ids = self.c.ids[idx]
        # An immediate finish among the closers, atoms and structure tokens.
        for j in idx[self.c.quick[idx]]:
            t = int(self.c.ids[j])
            self._accept(m, t)
            done = m.is_accepting()
            m.rollback(1)
            if done:
                return path + [t]
        if limit <= 1:
            return None
        tried = 0
        seen = set()
        core = m._core
        parent = (core.lex_state, core.acceptable_terminals().tobytes())
        for j, t in zip(idx, ids):
            if self.c.whitespace[j]:
                if ws_run >= 2 or (after_newline and self.c.newline[j]):
                    continue
            t = int(t)
            self._accept(m, t)
            # Siblings that lead to the same lexer state with the same acceptable terminals are taken as
            # one (e.g. every string-content token inside a string): only the first is explored.
            sig = (core.lex_state, core.acceptable_terminals().tobytes())
            if self.c.whitespace[j]:
                # Indentation widths look alike to the lexer; the tokens they allow next tell them apart.
                sig += (self._allowed(m).tobytes(),)
            if sig in seen or sig == parent:
                m.rollback(1)
                continue
            seen.add(sig)
            path.append(t)
            ws = bool(self.c.whitespace[j])
            found = self._search(m, limit - 1, path, ws_run + 1 if ws else 0, bool(self.c.newline[j]))
            path.pop()
            m.rollback(1)
            if found is not None:
                return found
            tried += 1
            if tried >= self.width or self._left <= 0:
                break
        return None


class BudgetClosing:
    """Budget-aware closing for GrammarLogitsProcessor: keeps a complete text reachable within the budget.

    Per row it keeps a verified completion K of the current text (from `Closer`, or carried over from
    the previous step). With R tokens left (this one included), the grammar's allowed tokens are checked
    in logit order (at most `checks` of them, until `keep` pass), and only those that pass stay: a token
    t passes if a completion of text+t in at most R-1 tokens is found and verified by the matcher. The
    first token of K always passes (its completion is the rest of K), and stop tokens pass when the text
    is complete. So every token the model can draw, greedy or sampled, leaves a verified completion
    within the tokens left, and at the last steps only K remains: an output cut by the budget is complete.
    With greedy decoding the output differs from the unbudgeted one only where the model's first choice
    could not be closed within the budget; sampling draws from the `keep` best verified tokens.

    Cost: per step, one completion search per checked token (typically 0.1-0.5 ms each, most of them
    short: the text differs from one with a known completion by one token); `keep` passes end the checks.
    """

    def __init__(self, compiled, budget: int, *, checks: int = 32, keep: int = 8, max_nodes: int = 300,
                 verify_nodes: int = 150):
        info = compiled.tokenizer_info
        self.budget = budget
        self.checks = checks
        self.keep = keep
        self.max_nodes = max_nodes
        self.verify_nodes = verify_nodes
        self.closer = Closer(closing_candidates(info, compiled.vocab_size))
        self.stop_ids = set(info.stop_token_ids)
        self.n_words = bitmask_words(compiled.vocab_size)
        self.stats = {"searches": 0, "search_seconds": 0.0, "masked_steps": 0}
        self._known: list = []
        self._pending: list = []

    def start(self, rows: int) -> None:
        self._known = [None] * rows
        self._pending = [{} for _ in range(rows)]

    def follow(self, row: int, new: list, continuing: bool) -> None:
        """The row's next tokens (before the matcher accepts them): carry the verified completion over."""
        known, pending = self._known[row], self._pending[row]
        self._pending[row] = {}
        if not continuing or len(new) != 1:
            self._known[row] = None
            return
        t = new[0]
        if known and known[0] == t:
            self._known[row] = known[1:]
        else:
            self._known[row] = pending.get(t)

    def _find(self, m, limit: int, max_nodes: int):
        t0 = time.perf_counter()
        found = self.closer.find(m, limit, max_nodes=max_nodes)
        self.stats["searches"] += 1
        self.stats["search_seconds"] += time.perf_counter() - t0
        return found

    def restrict(self, row: int, m, generated: int, scores, mask_row, stop_only) -> None:
        """Narrow row `row` of the grammar mask (already filled) to the tokens that keep it closable."""
        left = self.budget - generated
        if left <= 0:
            if not m.is_accepting():
                raise RuntimeError(f"grammask budget-aware closing: row {row} used its {self.budget} tokens "
                                   "without a complete text (internal error)")
            mask_row.copy_(stop_only)
            return
        known = self._known[row]
        if known is None:
            known = self._find(m, left, self.max_nodes)
            if known is None:
                known = self._find(m, left, self.max_nodes * 10)
            if known is None and generated == 0:
                raise ValueError(f"token_budget={self.budget}: no completion of the prefix in at most "
                                 f"{left} tokens was found; give a larger budget")
            self._known[row] = known
        accepting = m.is_accepting()
        pending: dict = {}
        if known:
            pending[known[0]] = known[1:]
        masked = scores.detach().float().clone().unsqueeze(0)
        apply_token_bitmask_inplace(masked, mask_row.unsqueeze(0))
        masked = masked[0]
        values, order = torch.topk(masked, min(self.checks, masked.shape[0]))
        verified = 0
        for value, t in zip(values.tolist(), order.tolist()):
            if value == float("-inf") or verified >= self.keep:
                break
            if t in pending or t in self.stop_ids:
                verified += 1  # a stop token in the mask means the text is complete
                continue
            self.closer._accept(m, t)
            try:
                comp = [] if m.is_accepting() else self._find(m, left - 1, self.verify_nodes)
            finally:
                m.rollback(1)
            if comp is not None:
                pending[t] = comp
                verified += 1
        self._pending[row] = pending
        if not pending and not accepting:
            raise RuntimeError(f"grammask budget-aware closing: after {generated} tokens no completion of row {row} "
                               f"within the {left} tokens left was found (internal error: every token allowed "
                               "before was verified)")
        words = np.zeros(self.n_words, dtype=np.uint32)
        for t in list(pending) + (sorted(self.stop_ids) if accepting else []):
            words[t >> 5] |= np.uint32(1 << (t & 31))
        new_row = torch.from_numpy(words.view(np.int32))
        if not torch.equal(new_row & mask_row, new_row):
            raise RuntimeError("grammask closing: a verified token is outside the grammar mask (internal error)")
        if not torch.equal(new_row, mask_row):
            self.stats["masked_steps"] += 1
        mask_row.copy_(new_row)
