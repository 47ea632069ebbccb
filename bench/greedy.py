"""Greedy decoding of many rows at once on the CPU, for the evaluations: continuous batching.

`model.generate()` runs a batch until its longest row ends, and a row that ended still costs a row of
every step; with outputs from 2 to 500 tokens most of the work would be padding. `greedy_rows` keeps up
to `max_rows` rows in flight instead: a row leaves the batch as soon as it ends (stop token, its stop
rule, its budget), and the rows of the next prompt join it in its place. Each prompt is prefilled once,
alone (no padding), and its cache shared by all its rows (the modes of one task: unconstrained,
constrained, ...); the batch is left-padded to its longest row, with the attention mask and per-row
position ids, so every row sees exactly its prompt and its own tokens.

Each row has its own logits processor (or None) called as generate() would call it: with that row's
ids so far, shape (1, prompt + generated), and its scores, shape (1, vocab). Greedy: the highest score
after the processor, ties to the lowest id (torch.argmax), as in generate().
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F


@dataclass
class Row:
    prompt: int                                   # index into the prompts passed to greedy_rows
    budget: int                                   # max_new_tokens
    processor: Optional[Callable] = None          # a LogitsProcessor, or None: unconstrained
    stop: Optional[Callable[[list], bool]] = None  # ids generated so far (the new one included) -> ended?
    tokens: list = field(default_factory=list)    # generated ids (a stop token, if one came, included)
    reason: str = ""                              # "eos" | "stop" | "budget"
    seconds: float = 0.0                          # from the row's first token to its last (in a shared batch)
    processor_seconds: float = 0.0                # time spent in its processor


def _cache_kwarg(model) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _layers(cache) -> list:
    """[(keys, values)] per layer, each (batch, heads, length, dim)."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # transformers < 4.56


ROOM = 64  # tokens of room a cache layer gets each time it grows


def _buffered_layer_class():
    """A DynamicLayer whose keys and values are views of buffers with room to grow: appending a token
    writes it in place, where DynamicLayer concatenates (copies) the whole cache at every step. None
    with a transformers without DynamicLayer (< 4.56): plain DynamicCache there."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None

    class BufferedLayer(DynamicLayer):
        def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
            """keys, values: buffers (batch, heads, capacity, dim), the first `length` positions filled."""
            super().__init__()
            self.device = keys.device
            self.is_initialized = True
            self._k, self._v = keys, values
            self.keys, self.values = keys[:, :, :length], values[:, :, :length]

        def update(self, key_states, value_states, *args, **kwargs):
            n = self.keys.shape[-2]
            m = n + key_states.shape[-2]
            if m > self._k.shape[-2]:  # out of room: a buffer with room again (the filled part copied)
                k, v = self._k, self._v
                self._k = k.new_empty(k.shape[0], k.shape[1], m + ROOM, k.shape[3])
                self._v = v.new_empty(v.shape[0], v.shape[1], m + ROOM, v.shape[3])
                self._k[:, :, :n], self._v[:, :, :n] = self.keys, self.values
            self._k[:, :, n:m] = key_states
            self._v[:, :, n:m] = value_states
            self.keys, self.values = self._k[:, :, :m], self._v[:, :, :m]
            return self.keys, self.values

    return BufferedLayer


_BufferedLayer = _buffered_layer_class()


def _stack(parts: list, width: int) -> torch.Tensor:
    """Tensors (rows, heads, length <= width, dim) stacked by rows into one zeroed buffer (rows, heads,
    width + ROOM, dim), each right-aligned at `width` (left padding, as the attention mask has it)."""
    rows = sum(t.shape[0] for t in parts)
    _, heads, _, dim = parts[0].shape
    buf = parts[0].new_zeros(rows, heads, width + ROOM, dim)
    at = 0
    for t in parts:
        buf[at:at + t.shape[0], :, width - t.shape[2]:width] = t
        at += t.shape[0]
    return buf


def _make_cache(buffers: list, length: int, config):
    """A DynamicCache over `buffers` ([(keys, values)] per layer, from _stack), `length` positions filled."""
    from transformers import DynamicCache

    if _BufferedLayer is not None:
        cache = DynamicCache(config=config)
        if len(cache.layers) == len(buffers) and all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers):
            cache.layers = [_BufferedLayer(k, v, length) for k, v in buffers]
            return cache
    layers = [(k[:, :, :length], v[:, :, :length]) for k, v in buffers]
    try:
        return DynamicCache(layers, config=config)
    except TypeError:  # transformers < 4.56
        return DynamicCache.from_legacy_cache(tuple(layers))


def _out_cache(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def greedy_rows(model, prompts: Sequence[Sequence[int]], rows: list[Row], stop_ids: Sequence[int], *,
                max_rows: int = 48, on_prompt_done: Optional[Callable[[int], None]] = None) -> dict:
    """Decode every row greedily (in place: row.tokens, row.reason, row.seconds). Rows of one prompt join
    the batch together, in the order of their first row. on_prompt_done(p) is called once all rows of
    prompt p ended. Returns counts: steps (forward passes of the batch), tokens, prefill_tokens, seconds."""
    stop_ids = set(int(t) for t in stop_ids)
    kw = _cache_kwarg(model)
    by_prompt: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        if r.budget < 1:
            raise ValueError(f"row {i}: budget must be positive, not {r.budget}")
        by_prompt.setdefault(r.prompt, []).append(i)
    waiting = deque(by_prompt)
    left = {p: len(ix) for p, ix in by_prompt.items()}
    active: list[int] = []          # row indices, in batch order
    cache = None                    # the active rows' cache, left-padded to the longest (None: no rows)
    mask = torch.zeros(0, 0, dtype=torch.long)
    pos = torch.zeros(0, dtype=torch.long)
    logits = None                   # (len(active), vocab): the scores each active row picks from next
    seqs: dict[int, list[int]] = {}
    started: dict[int, float] = {}
    stats = {"steps": 0, "tokens": 0, "prefill_tokens": 0}
    t_start = time.perf_counter()
    with torch.no_grad():
        while active or waiting:
            # Admit the next prompts' rows while there is room (always at least one prompt's).
            while waiting and (not active or len(active) + len(by_prompt[waiting[0]]) <= max_rows):
                p = waiting.popleft()
                ids = torch.tensor([list(prompts[p])], dtype=torch.long)
                if ids.shape[1] == 0:
                    raise ValueError(f"prompt {p} is empty")
                out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
                stats["prefill_tokens"] += ids.shape[1]
                new = by_prompt[p]
                k, n, T = len(new), ids.shape[1], mask.shape[1]
                width = max(T, n)
                old = _layers(cache) if active else []
                buffers = []
                for li, (nk, nv) in enumerate(_layers(_out_cache(out))):
                    ks = ([old[li][0]] if old else []) + [nk.expand(k, -1, -1, -1)]
                    vs = ([old[li][1]] if old else []) + [nv.expand(k, -1, -1, -1)]
                    buffers.append((_stack(ks, width), _stack(vs, width)))
                del old
                cache = _make_cache(buffers, width, model.config)
                del buffers
                new_mask = torch.zeros(k, width, dtype=torch.long)
                new_mask[:, width - n:] = 1
                mask = torch.cat([F.pad(mask, (width - T, 0)), new_mask]) if active else new_mask
                pos = torch.cat([pos, torch.full((k,), n, dtype=torch.long)]) if active else torch.full((k,), n)
                first = out.logits[:, -1].float().expand(k, -1)
                logits = torch.cat([logits, first]) if active else first.clone()
                del out
                for i in new:
                    seqs[i] = list(prompts[p])
                    started[i] = time.perf_counter()
                active += new

            # Pick each row's next token; rows that ended leave the batch.
            picked, keep = [], []
            for j, i in enumerate(active):
                r = rows[i]
                scores = logits[j:j + 1]
                if r.processor is not None:
                    t0 = time.perf_counter()
                    scores = r.processor(torch.tensor([seqs[i]], dtype=torch.long), scores.clone())
                    r.processor_seconds += time.perf_counter() - t0
                t = int(torch.argmax(scores[0]))
                r.tokens.append(t)
                seqs[i].append(t)
                stats["tokens"] += 1
                if t in stop_ids:
                    r.reason = "eos"
                elif r.stop is not None and r.stop(r.tokens):
                    r.reason = "stop"
                elif len(r.tokens) >= r.budget:
                    r.reason = "budget"
                else:
                    keep.append(j)
                    picked.append(t)
                    continue
                r.seconds = time.perf_counter() - started[i]
                left[r.prompt] -= 1
                if left[r.prompt] == 0 and on_prompt_done is not None:
                    on_prompt_done(r.prompt)
            if not keep:
                cache, logits = None, None
                mask = torch.zeros(0, 0, dtype=torch.long)
                pos = torch.zeros(0, dtype=torch.long)
                active = []
                continue
            if len(keep) < len(active):
                ix = torch.tensor(keep, dtype=torch.long)
                mask, pos = mask[ix], pos[ix]
                lead = int(mask.any(0).long().argmax())  # columns that are padding in every row left
                mask = mask[:, lead:]
                width = mask.shape[1]
                buffers = [(_stack([k_[ix, :, lead:]], width), _stack([v_[ix, :, lead:]], width))
                           for k_, v_ in _layers(cache)]
                cache = _make_cache(buffers, width, model.config)
                del buffers
                active = [active[j] for j in keep]

            # One step of the batch.
            mask = torch.cat([mask, torch.ones(len(active), 1, dtype=torch.long)], 1)
            out = model(input_ids=torch.tensor(picked, dtype=torch.long)[:, None], attention_mask=mask,
                        position_ids=pos[:, None], use_cache=True, **{kw: cache})
            cache = _out_cache(out)
            pos = pos + 1
            logits = out.logits[:, -1].float()
            del out
            stats["steps"] += 1
    stats["seconds"] = time.perf_counter() - t_start
    return stats
