"""Jump-forward decoding: where the grammar allows one continuation only, write it without the model.

After each sampled token the matcher is asked for its forced bytes (`GrammarMatcher.forced_bytes`). The
sampled token's bytes plus the forced bytes are tokenized again, as the model's tokenizer writes that
text, and replace the sampled token: the model never sees a split of the text its tokenizer would not
make at that boundary, and the forced tokens cost one forward pass together instead of one each. Each
token goes through the grammar's processor, so the output is exactly as constrained as without jumps.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Optional

import torch

from .processor import GrammarLogitsProcessor


@dataclass
class JumpStats:
    tokens: int = 0          # tokens generated, forced ones included
    forced_tokens: int = 0   # tokens written by jumps, not chosen by the model
    model_calls: int = 0     # forward passes (the prompt's included)


def retokenize(tokenizer, info, last: int, forced: bytes) -> Optional[list[int]]:
    """The tokens the tokenizer makes of `last`'s text + `forced`, or of `forced` alone after `last`
    (returned with `last` first); None when neither gives back exactly those bytes."""
    whole = info.token_bytes[last] + forced
    for text, head in ((whole, []), (forced, [last])):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            continue  # forced bytes ending inside a character: no tokenization of it to trust
        ids = tokenizer.encode(decoded, add_special_tokens=False)
        if b"".join(info.token_bytes[i] or b"" for i in ids) == text and ids:
            return head + ids
    return None


def generate_with_jumps(model, tokenizer, input_ids: torch.Tensor, processors: list, constraint: GrammarLogitsProcessor,
                        max_new_tokens: int, stop_ids: list[int], warpers: list) -> tuple[list[int], JumpStats]:
    """Decode one sequence (batch of one) with jumps; returns the generated ids and the counts."""
    from transformers import DynamicCache

    info = constraint.compiled.tokenizer_info
    stats = JumpStats()
    sequence = input_ids[0].tolist()
    start = len(sequence)
    pending = list(sequence)
    cache = DynamicCache()  # filled in place by each forward pass
    # transformers 5 names the argument `cache`; earlier versions `past_key_values`
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    while len(sequence) - start < max_new_tokens:
        out = model(input_ids=torch.tensor([pending]), use_cache=True, **{cache_arg: cache})
        stats.model_calls += 1
        scores = out.logits[:, -1, :].float()
        ids = torch.tensor([sequence])
        for p in processors:
            scores = p(ids, scores)
        for w in warpers:
            scores = w(ids, scores)
        if warpers:
            token = int(torch.multinomial(torch.softmax(scores, dim=-1), 1))
        else:
            token = int(scores.argmax())
        sequence.append(token)
        pending = [token]
        if token in stop_ids:
            break
        constraint.follow(torch.tensor([sequence]))
        matcher = constraint.matchers[0]
        left = max_new_tokens - (len(sequence) - start)
        forced = matcher.forced_bytes() if left > 0 else b""
        tail = retokenize(tokenizer, info, token, forced) if forced else None
        if tail is None or tail == [token]:
            continue
        tail = tail[: left + 1]
        matcher.rollback(1)
        usable = matcher.validate_tokens(tail)
        if not matcher.accept_token(token):
            raise RuntimeError("grammask: jump-forward could not restore the matcher")
        if usable < len(tail):
            continue  # the tokenizer's split is refused somewhere (a token the grammar cannot take)
        sequence[-1:] = tail
        pending = list(tail)
        for n in range(len(sequence) - len(tail) + 1, len(sequence) + 1):
            constraint.follow(torch.tensor([sequence[:n]]))
        stats.forced_tokens += len(tail) - 1
    stats.tokens = len(sequence) - start
    return sequence[start:], stats
