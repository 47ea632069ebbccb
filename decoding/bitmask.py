"""Packed token bitmasks: bit (t % 32) of word (t // 32) is set when token t is allowed.

The layout is the one XGrammar, llguidance and outlines-core use, so their kernels (and the serving
engines that host them) can take these masks unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core import apply_bitmask

_SHIFTS: dict[torch.device, torch.Tensor] = {}


def bitmask_words(vocab_size: int) -> int:
    return (vocab_size + 31) // 32


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> torch.Tensor:
    """An int32 tensor of shape (batch_size, ceil(vocab_size / 32)), all tokens allowed."""
    if batch_size < 1 or vocab_size < 1:
        raise ValueError(f"batch_size and vocab_size must be positive (got {batch_size}, {vocab_size})")
    return torch.full((batch_size, bitmask_words(vocab_size)), -1, dtype=torch.int32)


def stop_token_bitmask(vocab_size: int, stop_token_ids) -> torch.Tensor:
    """One bitmask row that allows the stop tokens only (a finished or failed sequence)."""
    words = np.zeros(bitmask_words(vocab_size), dtype=np.uint32)
    for t in stop_token_ids:
        words[t >> 5] |= np.uint32(1 << (t & 31))
    return torch.from_numpy(words.view(np.int32))


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
    32*W ids (a model head padded past the vocabulary) are disallowed. On the CPU a C loop does the work;
    on CUDA, with Triton available (it ships with CUDA builds of PyTorch), one kernel; for other dtypes
    and devices, tensor operations.
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
    if logits.is_cuda:
        done = _triton_apply(logits, bitmask)
    else:
        done = _native_apply(logits, bitmask)
    if not done:
        _torch_apply(logits, bitmask)
    return logits


# The bit pattern of -inf per dtype the native and Triton paths write.
_NEG_INF_BITS = {torch.float32: (4, 0xFF800000), torch.float16: (2, 0xFC00), torch.bfloat16: (2, 0xFF80)}


def _native_apply(logits: torch.Tensor, bitmask: torch.Tensor) -> bool:
    """The C loop for CPU tensors: writes only the banned ids, no temporaries (the tensor-ops path
    expands the mask 32-fold and, on a busy machine, waits on intra-op threads)."""
    kind = _NEG_INF_BITS.get(logits.dtype)
    if kind is None or logits.device.type != "cpu" or 0 in logits.stride():
        return False
    bitmask = bitmask.contiguous()
    elem_size, neg_inf = kind
    rows, vocab = logits.shape
    apply_bitmask(logits.data_ptr(), elem_size, rows, vocab, logits.stride(0), logits.stride(1), neg_inf,
                  bitmask.data_ptr(), bitmask.shape[-1], bitmask.stride(0))
    return True


def _torch_apply(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    logits.masked_fill_(~unpack_bitmask(bitmask, logits.shape[-1]), float("-inf"))


_TRITON_KERNEL = None  # built on first CUDA use; False where Triton is missing


def _triton_apply(logits: torch.Tensor, bitmask: torch.Tensor) -> bool:
    """The one-kernel CUDA path; False (nothing done) where it does not apply."""
    global _TRITON_KERNEL
    if _TRITON_KERNEL is None:
        _TRITON_KERNEL = _build_triton_kernel()
    if not _TRITON_KERNEL or logits.stride(-1) != 1 or bitmask.stride(-1) != 1 \
            or logits.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return False
    rows, vocab = logits.shape
    block = 4096
    _TRITON_KERNEL[(rows, (vocab + block - 1) // block)](
        logits, bitmask, vocab, bitmask.shape[-1], logits.stride(0), bitmask.stride(0), BLOCK=block)
    return True


def _build_triton_kernel():
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return False

    @triton.jit
    def apply_kernel(logits_ptr, mask_ptr, vocab, words, logits_row_stride, mask_row_stride,
                     BLOCK: tl.constexpr):
        row = tl.program_id(0)
        ids = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        word = ids >> 5
        bits = tl.load(mask_ptr + row * mask_row_stride + word, mask=(ids < vocab) & (word < words), other=0)
        banned = (ids < vocab) & (((bits >> (ids & 31)) & 1) == 0)
        ninf = tl.full([BLOCK], float("-inf"), tl.float32).to(logits_ptr.dtype.element_ty)
        tl.store(logits_ptr + row * logits_row_stride + ids, ninf, mask=banned)

    return apply_kernel
