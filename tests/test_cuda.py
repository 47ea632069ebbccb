"""Mask application on CUDA: the same -inf positions as on the CPU, through the processor and generate().

Skipped where no CUDA device is present (CI); run on a GPU machine with `pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import json

import pytest
import torch

import grammask as gm
from grammask.decoding import bitmask as bitmask_module
from conftest import BYTE_LEVEL, json_parses, load_tokenizer, tokenizer_info

if not torch.cuda.is_available():  # one skip line for the whole module
    pytest.skip("no CUDA device: tests/test_cuda.py runs on a GPU machine", allow_module_level=True)


def random_bitmask(rows: int, words: int, density: float, gen: torch.Generator) -> torch.Tensor:
    bits = torch.rand(rows, words * 32, generator=gen) < density
    weights = (1 << torch.arange(32, dtype=torch.int64))
    packed = (bits.view(rows, words, 32).to(torch.int64) * weights).sum(-1)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def cpu_reference(logits: torch.Tensor, bitmask: torch.Tensor) -> torch.Tensor:
    out = logits.detach().cpu().float().clone()
    gm.apply_token_bitmask_inplace(out, bitmask.cpu())
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("rows,vocab,words", [(1, 50257, 1571), (4, 49152, 1536), (3, 129280, 4040),
                                              (2, 32064, 1000), (5, 100, 3), (64, 151936, 4748)])
@pytest.mark.parametrize("mask_on_gpu", [False, True])
def test_apply_matches_the_cpu(dtype, rows, vocab, words, mask_on_gpu):
    gen = torch.Generator().manual_seed(rows * vocab)
    for density in (0.0, 0.003, 0.5, 1.0):
        bm = random_bitmask(rows, words, density, gen)
        logits = torch.randn(rows, vocab, generator=gen).to(dtype)
        expected = cpu_reference(logits, bm)
        on_gpu = logits.cuda()
        gm.apply_token_bitmask_inplace(on_gpu, bm.cuda() if mask_on_gpu else bm)
        got = on_gpu.float().cpu()
        assert torch.equal(torch.isneginf(got), torch.isneginf(expected)), (dtype, rows, vocab, density)
        kept = ~torch.isneginf(expected)
        assert torch.equal(got[kept], expected[kept])


def test_triton_kernel_is_used_and_agrees_with_tensor_ops():
    pytest.importorskip("triton")
    gen = torch.Generator().manual_seed(7)
    bm = random_bitmask(8, 4040, 0.2, gen).cuda()
    logits = torch.randn(8, 129280, generator=gen).cuda()
    by_kernel, by_ops = logits.clone(), logits.clone()
    assert bitmask_module._triton_apply(by_kernel, bm)
    bitmask_module._torch_apply(by_ops, bm)
    assert torch.equal(by_kernel, by_ops)


def test_one_dimensional_and_strided_logits():
    gen = torch.Generator().manual_seed(3)
    bm = random_bitmask(1, 1571, 0.1, gen)
    one = torch.randn(50257, generator=gen)
    expected = cpu_reference(one, bm[0])
    on_gpu = one.cuda()
    gm.apply_token_bitmask_inplace(on_gpu, bm[0])
    assert torch.equal(on_gpu.cpu(), expected)
    # Every second column of a wider tensor: not contiguous, so the tensor-ops path, in place on the view.
    wide = torch.randn(2, 2 * 50257, generator=gen).cuda()
    view = wide[:, ::2]
    bm2 = random_bitmask(2, 1571, 0.1, gen)
    expected = cpu_reference(view, bm2)
    gm.apply_token_bitmask_inplace(view, bm2)
    assert torch.equal(torch.isneginf(wide[:, ::2].cpu()), torch.isneginf(expected))
    assert not torch.isneginf(wide[:, 1::2]).any()


@pytest.fixture(scope="module")
def tiny_model():
    """A randomly initialized two-layer GPT-2 on the GPU with a real tokenizer (no model hub)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = load_tokenizer(BYTE_LEVEL)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=64, vocab_size=len(tok))).cuda().eval()
    return model, tok


def test_processor_masks_cuda_scores_like_cpu_scores(tiny_model, cache_dir):
    _, tok = tiny_model
    compiled = gm.compile(gm.Grammar.builtin("json"), tokenizer_info(BYTE_LEVEL), cache_dir=cache_dir)
    ids = torch.tensor([tok.encode('{"a": [1, ', add_special_tokens=False)] * 2)
    scores = torch.randn(2, len(tok))
    on_cpu = gm.GrammarLogitsProcessor(compiled, tok)(ids, scores.clone())
    on_gpu = gm.GrammarLogitsProcessor(compiled, tok)(ids.cuda(), scores.cuda())
    assert on_gpu.is_cuda
    assert torch.equal(on_gpu.cpu(), on_cpu)


@pytest.mark.parametrize("budget", [None, 24])
def test_generate_on_cuda_gives_json(tiny_model, cache_dir, budget):
    model, tok = tiny_model
    compiled = gm.compile(gm.Grammar.builtin("json"), tokenizer_info(BYTE_LEVEL), cache_dir=cache_dir)
    eos = tok.eos_token_id
    processor = gm.GrammarLogitsProcessor(compiled, tok, stop_token_ids=[eos], token_budget=budget)
    ids = torch.tensor([[eos]] * 6, device="cuda")
    torch.manual_seed(1)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=budget or 48,
                         logits_processor=[processor], pad_token_id=eos, eos_token_id=eos)
    assert out.is_cuda
    for row in out[:, 1:].tolist():
        text = tok.decode([t for t in row if t != eos])
        if budget is not None or eos in row:  # with closing, or stopped: a whole document
            assert json_parses(text), text
        else:  # cut by max_new_tokens without closing: a valid prefix
            assert compiled.grammar.validate(text).prefix_ok, text
