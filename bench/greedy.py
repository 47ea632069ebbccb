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
        def __init__(self, keys: torch.Tensor, values: torch.Tensor):
            super().__init__()
            self.device = keys.device
            self.is_initialized = True
            self._k = self._v = None
            self._place(keys, values, keys.shape[-2])

        def _place(self, keys, values, length):
            b, h, _, d = keys.shape
            self._k = keys.new_empty(b, h, length + ROOM, d)
            self._v = values.new_empty(b, h, length + ROOM, values.shape[-1])
            self._k[:, :, :length] = keys
            self._v[:, :, :length] = values
            self.keys, self.values = self._k[:, :, :length], self._v[:, :, :length]

        def update(self, key_states, value_states, *args, **kwargs):
            n = self.keys.shape[-2]
            m = n + key_states.shape[-2]
            if m > self._k.shape[-2]:
                self._place(self.keys, self.values, n)
            self._k[:, :, n:m] = key_states
            self._v[:, :, n:m] = value_states
            self.keys, self.values = self._k[:, :, :m], self._v[:, :, :m]
            return self.keys, self.values

    return BufferedLayer


_BufferedLayer = _buffered_layer_class()


def _make_cache(layers: list, config):
    """A DynamicCache holding `layers` ([(keys, values)] per layer)."""
    from transformers import DynamicCache

    if _BufferedLayer is not None:
        cache = DynamicCache(config=config)
        if len(cache.layers) == len(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers):
            cache.layers = [_BufferedLayer(k, v) for k, v in layers]
            return cache
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
    layers: list = []               # [(keys, values)] of the active rows, left-padded
    mask = torch.zeros(0, 0, dtype=torch.long)
    pos = torch.zeros(0, dtype=torch.long)
    logits = None                   # (len(active), vocab): the scores each active row picks from next
    cache = None                    # the batch's cache, once built from `layers` (None: layers is current)
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
                k = len(new)
                n = ids.shape[1]
                T = mask.shape[1]
                width = max(T, n)
                merged = []
                current = layers if cache is None else _layers(cache)
                for li, (nk, nv) in enumerate(_layers(_out_cache(out))):
                    nk = F.pad(nk, (0, 0, width - n, 0)).expand(k, -1, -1, -1)
                    nv = F.pad(nv, (0, 0, width - n, 0)).expand(k, -1, -1, -1)
                    if active:
                        ok, ov = current[li]
                        ok, ov = F.pad(ok, (0, 0, width - T, 0)), F.pad(ov, (0, 0, width - T, 0))
                        nk, nv = torch.cat([ok, nk]), torch.cat([ov, nv])
                    merged.append((nk.contiguous(), nv.contiguous()))
                layers = merged
                cache = None
                new_mask = torch.zeros(k, width, dtype=torch.long)
                new_mask[:, width - n:] = 1
                mask = torch.cat([F.pad(mask, (width - T, 0)), new_mask])
                pos = torch.cat([pos, torch.full((k,), n, dtype=torch.long)])
                first = out.logits[:, -1].float().expand(k, -1)
                logits = first.clone() if logits is None or not active else torch.cat([logits, first])
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
            if len(keep) < len(active):
                ix = torch.tensor(keep, dtype=torch.long)
                layers = [(k_[ix], v_[ix]) for k_, v_ in (layers if cache is None else _layers(cache))]
                cache = None
                mask, pos = mask[ix], pos[ix]
                active = [active[j] for j in keep]
                if active:  # drop the columns that are padding in every row left
                    lead = int(mask.any(0).long().argmax())
                    if lead:
                        layers = [(k_[:, :, lead:], v_[:, :, lead:]) for k_, v_ in layers]
                        mask = mask[:, lead:]
                        cache = None
            if not active:
                layers, logits, cache = [], None, None
                mask = torch.zeros(0, 0, dtype=torch.long)
                pos = torch.zeros(0, dtype=torch.long)
                continue

            # One step of the batch.
            mask = torch.cat([mask, torch.ones(len(active), 1, dtype=torch.long)], 1)
            if cache is None:
                cache = _make_cache(layers, model.config)
            out = model(input_ids=torch.tensor(picked, dtype=torch.long)[:, None], attention_mask=mask,
                        position_ids=pos[:, None], use_cache=True, **{kw: cache})
            cache = _out_cache(out)
            pos = pos + 1
            logits = out.logits[:, -1].float()
            stats["steps"] += 1
    stats["seconds"] = time.perf_counter() - t_start
    return stats
