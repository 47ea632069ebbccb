"""Mask application on the CPU: the C loop against the tensor-operations path it replaces."""

from __future__ import annotations

import pytest
import torch

import grammask as gm
from grammask.decoding import bitmask as bitmask_module


def packed(bits: torch.Tensor) -> torch.Tensor:
    rows, n = bits.shape
    words = (bits.view(rows, n // 32, 32).to(torch.int64) << torch.arange(32)).sum(-1)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("rows,vocab,words", [(1, 50257, 1571), (3, 129280, 4040), (2, 100, 3), (2, 100, 4),
                                              (1, 64, 2), (4, 65, 2), (2, 32064, 1000)])
def test_native_loop_equals_tensor_ops(dtype, rows, vocab, words):
    gen = torch.Generator().manual_seed(vocab + rows)
    for density in (0.0, 0.02, 0.5, 0.98, 1.0):
        bm = packed(torch.rand(rows, words * 32, generator=gen) < density)
        logits = torch.randn(rows, vocab, generator=gen).to(dtype)
        by_loop, by_ops = logits.clone(), logits.clone()
        assert bitmask_module._native_apply(by_loop, bm)
        bitmask_module._torch_apply(by_ops, bm)
        assert torch.equal(by_loop, by_ops), (dtype, rows, vocab, density)
        # ids past the mask's width (a padded head) are banned
        if words * 32 < vocab:
            assert torch.isneginf(by_loop[:, words * 32:]).all()


def test_one_dimensional_strided_and_other_dtypes():
    gen = torch.Generator().manual_seed(5)
    bm = packed(torch.rand(2, 1571 * 32, generator=gen) < 0.1)
    wide = torch.randn(2, 2 * 50257, generator=gen)
    view = wide[:, ::2]                                   # column stride 2: the loop follows strides
    expected = view.clone()
    bitmask_module._torch_apply(expected, bm)
    gm.apply_token_bitmask_inplace(view, bm)
    assert torch.equal(wide[:, ::2], expected) and not torch.isneginf(wide[:, 1::2]).any()
    one = torch.randn(50257, generator=gen)
    expected = one.clone().unsqueeze(0)
    bitmask_module._torch_apply(expected, bm[:1])
    gm.apply_token_bitmask_inplace(one, bm[0])
    assert torch.equal(one, expected[0])
    doubles = torch.randn(2, 50257, dtype=torch.float64, generator=gen)  # no native path: tensor ops
    assert not bitmask_module._native_apply(doubles.clone(), bm)
    gm.apply_token_bitmask_inplace(doubles, bm)
    assert torch.equal(torch.isneginf(doubles), ~gm.decoding.unpack_bitmask(bm, 50257))


def test_misuse_is_one_clear_error():
    with pytest.raises(TypeError, match="int32"):
        gm.apply_token_bitmask_inplace(torch.zeros(2, 64), torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="rows"):
        gm.apply_token_bitmask_inplace(torch.zeros(2, 64), torch.zeros(3, 2, dtype=torch.int32))


def test_bench_apply_checks_every_engine_against_the_mask_bits(tmp_path, monkeypatch):
    """bench.bench_apply checks each engine's output against the mask's own bits before timing it: the
    real engines pass, one that masks nothing is caught (the check once compared grammask with itself)."""
    from bench import bench_apply

    assert bench_apply.main(["--reps", "1", "--out", str(tmp_path)]) == 0
    monkeypatch.setattr(gm, "apply_token_bitmask_inplace", lambda logits, bitmask: None)
    with pytest.raises(AssertionError, match="grammask masks differently"):
        bench_apply.main(["--reps", "1", "--out", str(tmp_path)])
