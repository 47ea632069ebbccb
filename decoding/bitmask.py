"""Packed token bitmasks: bit (t % 32) of word (t // 32) is set when token t is allowed.

The layout is the one XGrammar, llguidance and outlines-core use, so their kernels (and the serving
engines that host them) can take these masks unchanged.
"""

from __future__ import annotations

import torch

_SHIFTS: dict[torch.device, torch.Tensor] = {}


def bitmask_words(vocab_size: int) -> int:
    return (vocab_size + 31) // 32


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> torch.Tensor:
    """An int32 tensor of shape (batch_size, ceil(vocab_size / 32)), all tokens allowed."""
    if batch_size < 1 or vocab_size < 1:
        raise ValueError(f"batch_size and vocab_size must be positive (got {batch_size}, {vocab_size})")
    return torch.full((batch_size, bitmask_words(vocab_size)), -1, dtype=torch.int32)


def _shifts(device: torch.device) -> torch.Tensor:
    s = _SHIFTS.get(device)
    if s is None:
        s = _SHIFTS[device] = torch.arange(32, dtype=torch.int32, device=device)
    return s


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Bool tensor (..., vocab_size): True where allowed. Ids past the mask's width are disallowed."""
    bits = (bitmask.unsqueeze(-1) >> _shifts(bitmask.device)) & 1
    allowed = bits.reshape(*bitmask.shape[:-1], bitmask.shape[-1] * 32).bool()
    width = allowed.shape[-1]
    if width >= vocab_size:
        return allowed[..., :vocab_size]
    pad = torch.zeros(*allowed.shape[:-1], vocab_size - width, dtype=torch.bool, device=allowed.device)
    return torch.cat([allowed, pad], dim=-1)


def apply_token_bitmask_inplace(logits: torch.Tensor, bitmask: torch.Tensor) -> torch.Tensor:
    """Set logits of disallowed tokens to -inf, in place, on the logits' device (CPU or CUDA).

    logits: (batch, V) or (V,); bitmask: (batch, W) or (W,), int32. Logit columns beyond the mask's
    32*W ids (a model head padded past the vocabulary) are disallowed.
    """
    if bitmask.dtype != torch.int32:
        raise TypeError(f"bitmask must be torch.int32, not {bitmask.dtype}")
    if bitmask.device != logits.device:
        bitmask = bitmask.to(logits.device, non_blocking=True)
    if logits.dim() == 1:
        logits = logits.unsqueeze(0)
        bitmask = bitmask.reshape(1, -1)
    if bitmask.dim() == 1:
        bitmask = bitmask.unsqueeze(0)
    if bitmask.shape[0] != logits.shape[0]:
        raise ValueError(f"bitmask has {bitmask.shape[0]} rows but logits have {logits.shape[0]}")
    allowed = unpack_bitmask(bitmask, logits.shape[-1])
    logits.masked_fill_(~allowed, float("-inf"))
    return logits
