"""Mask application: the time to set disallowed logits to -inf, per decoding step, CPU and CUDA.

For each vocabulary size and batch size: grammask's `apply_token_bitmask_inplace` with the mask on the
host (as the logits processor hands it over: the copy to the GPU is counted in) and already on the
device, XGrammar's `apply_token_bitmask_inplace` beside it where installed, and on CUDA grammask's two
paths apart (the Triton kernel, the tensor-operations fallback). Each figure: the median and p99 over
`--reps` calls, the device synchronized after every call, after a warm-up. Masks allow about 5% of the
tokens at random; the logits are float32.

    python -m bench.bench_apply                    # CPU only on a machine without a GPU
    python -m bench.bench_apply --devices cuda     # writes bench/results/apply_cuda.md
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path

import numpy as np
import torch

import grammask as gm
from grammask.decoding import bitmask as bitmask_module

VOCABS = (49152, 129280)
BATCHES = (1, 16, 64)


def timed(fn, device: str, reps: int, warmup: int = 20) -> tuple[float, float]:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    us = np.array(samples) * 1e6
    return float(np.percentile(us, 50)), float(np.percentile(us, 99))


def engines(device: str):
    """(name, mask on the host?, apply function) for what this device can run. On the CPU the mask is
    always on the host, so one row per engine."""
    gpu = device == "cuda"
    out = [("grammask", True, gm.apply_token_bitmask_inplace)] if gpu else []
    out.append(("grammask", False, gm.apply_token_bitmask_inplace))
    if gpu:
        def kernel(logits, bm):
            if not bitmask_module._triton_apply(logits, bm):
                raise RuntimeError("the Triton path did not run (Triton missing?)")

        try:
            import triton  # noqa: F401
            out.append(("grammask, Triton kernel", False, kernel))
        except ImportError:
            pass
        out.append(("grammask, tensor ops", False, bitmask_module._torch_apply))
    try:
        import xgrammar as xgr
    except ImportError:
        return out
    peer = f"XGrammar {importlib.metadata.version('xgrammar')}"
    if gpu:  # XGrammar takes the mask on the logits' device only: the copy is the caller's
        out.append((peer, True, lambda logits, bm: xgr.apply_token_bitmask_inplace(
            logits, bm.to(logits.device, non_blocking=True))))
    out.append((peer, False, xgr.apply_token_bitmask_inplace))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=["cpu"])
    ap.add_argument("--reps", type=int, default=500, help="timed calls per figure (default 500)")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    if "cuda" in args.devices and not torch.cuda.is_available():
        ap.error("no CUDA device here")
    lines = ["| device | vocab | batch | engine | mask on | p50 µs | p99 µs |", "|---|---|---|---|---|---|---|"]
    gen = torch.Generator().manual_seed(0)
    for device in args.devices:
        for vocab in VOCABS:
            words = (vocab + 31) // 32
            for batch in BATCHES:
                bits = torch.rand(batch, words * 32, generator=gen) < 0.05
                packed = (bits.view(batch, words, 32).long() << torch.arange(32)).sum(-1)
                host_mask = torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
                dev_mask = host_mask.to(device)
                logits = torch.randn(batch, vocab, generator=gen).to(device)
                # What every engine must give, from the mask's bits themselves (not from any engine).
                expected = logits.masked_fill(~bits[:, :vocab].to(device), float("-inf"))
                for name, on_host, fn in engines(device):
                    mask = host_mask if on_host else dev_mask
                    check = logits.clone()
                    fn(check, mask)
                    if not torch.equal(check, expected):
                        raise AssertionError(f"{name} masks differently ({device}, {vocab}, {batch})")
                    work = logits.clone()
                    p50, p99 = timed(lambda: fn(work, mask), device, args.reps)
                    where = "host" if on_host else device
                    lines.append(f"| {device} | {vocab:,} | {batch} | {name} | {where} | {p50:.1f} | {p99:.1f} |")
                    print(lines[-1], flush=True)
    title = torch.cuda.get_device_name() if "cuda" in args.devices else "CPU"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("apply_cuda.md" if "cuda" in args.devices else "apply_cpu.md")
    path.write_text(f"# Mask application ({title}; torch {torch.__version__})\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
