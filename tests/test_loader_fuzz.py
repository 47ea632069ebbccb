"""Fuzzing the table loader: mutated cache files are each refused and rebuilt into the same masks as a
fresh build; mutated tables handed to the loader as if signed are refused or run without a crash, here and
with the C core built with AddressSanitizer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import numpy as np
import pytest

import grammask as gm
import loader_fuzz
from conftest import builtin_here, compiled_for, load_tokenizer, tokenizer_info, walk_masks
from grammask.decoding import cache, compiler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smollm2():
    return load_tokenizer("smollm2"), tokenizer_info("smollm2")


@pytest.fixture(scope="module")
def table_sets(smollm2, cache_dir):
    """(meta, arrays) of json and python for smollm2, as the cache stores them."""
    _, info = smollm2
    sets = {}
    for name in ("json", "python"):
        compiled_for(name, "smollm2", cache_dir)
        meta, arrays = cache.load(cache_dir, compiler.cache_key(builtin_here(name), info))
        sets[name] = (meta, {k: np.array(v) for k, v in arrays.items()})
    return sets


def _mutated_file(data: bytes, kind: str, rng, sets, signed_elsewhere: bytes) -> bytes:
    if kind == "flip":
        out = bytearray(data)
        for i in rng.integers(0, len(out), size=int(rng.integers(1, 9))):
            out[i] ^= int(rng.integers(1, 256))
        return bytes(out)
    if kind == "truncate":
        return data[: int(rng.integers(0, len(data)))]
    if kind == "append":
        return data + rng.bytes(int(rng.integers(1, 200)))
    if kind == "elsewhere":  # signed, but with another directory's key
        return signed_elsewhere
    # the arrays re-saved (no key to sign them with) after one mutation of values, shapes, dtypes,
    # truncation, or arrays from the other grammar
    import io

    meta, arrays = sets["json"]
    meta, arrays, _ = loader_fuzz.mutate(meta, arrays, sets["python"][1], rng)
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(__import__("json").dumps(meta).encode(), np.uint8), **arrays)
    return buf.getvalue()


def test_mutated_cache_files_are_refused_and_rebuilt_into_a_fresh_build(tmp_path, smollm2, table_sets):
    tok, info = smollm2
    ids = tok.encode(loader_fuzz.SAMPLES["json"])
    reference = walk_masks(gm.compile("json", info, cache_dir=False), ids)
    home, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    gm.compile("json", info, cache_dir=home)
    gm.compile("json", info, cache_dir=elsewhere)
    key = compiler.cache_key(gm.Grammar.builtin("json"), info)
    path = cache.cache_file(home, key)
    authentic = path.read_bytes()
    signed_elsewhere = cache.cache_file(elsewhere, key).read_bytes()
    rng = np.random.default_rng(17)
    kinds = ["flip", "truncate", "append", "elsewhere", "arrays", "arrays"]
    refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in range(3000):
            kind = kinds[case % len(kinds)]
            path.write_bytes(_mutated_file(authentic, kind, rng, table_sets, signed_elsewhere))
            if case % 300 == 0:  # the whole way: refused, rebuilt, the same masks as a fresh build
                compiled = gm.compile("json", info, cache_dir=home)
                assert not compiled.from_cache, kind
                assert all(np.array_equal(a, b) for a, b in zip(walk_masks(compiled, ids), reference, strict=True)), kind
            else:
                assert cache.load(home, key) is None, kind
            refused += 1
    assert refused == 3000
    path.write_bytes(authentic)
    assert gm.compile("json", info, cache_dir=home).from_cache  # the untouched file still loads


def test_mutated_tables_are_refused_or_run_safely(smollm2, table_sets):
    """As if signed: values, shapes, dtypes, truncation, arrays of the other grammar, swapped arrays,
    scalars. Each is refused by the checks or taken and driven through every matcher entry point."""
    tok, info = smollm2
    counts = {name: loader_fuzz.run_cases(builtin_here(name), info, *table_sets[name],
                                          table_sets[other][1], tok.encode(loader_fuzz.SAMPLES[name]),
                                          loader_fuzz.SAMPLES[name].encode(), cases, seed=3)
              for name, other, cases in (("json", "python", 2000), ("python", "json", 600))}
    for c in counts.values():  # both outcomes occur: the fuzz reaches the matcher, and the checks refuse
        assert c["refused"] > 0 and c["taken"] > 0, counts


def _asan_runtime() -> str:
    if not shutil.which("gcc"):
        return ""
    lib = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return lib if os.path.isabs(lib) and os.path.exists(lib) else ""


def _build_asan_core(out: Path) -> Path:
    """grammask._core compiled with -fsanitize=address (Cython to C, then gcc, in `out`)."""
    c_file, module = out / "_core.c", out / f"_core{sysconfig.get_config_var('EXT_SUFFIX')}"
    # every C file of the core, as setup.py lists them (_core.c is Cython's output)
    core_c_files = sorted(str(p) for p in (ROOT / "csrc").glob("*.c") if p.name != "_core.c")
    subprocess.run([sys.executable, "-m", "cython", "-3", "--module-name", "grammask._core",
                    str(ROOT / "csrc" / "_core.pyx"), "-o", str(c_file)], check=True, capture_output=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address",
                    "-std=c99", "-pthread", f"-I{ROOT / 'csrc'}", f"-I{sysconfig.get_paths()['include']}",
                    str(c_file), *core_c_files, "-o", str(module)],
                   check=True, capture_output=True)
    return module


@pytest.mark.skipif(not _asan_runtime() or not (ROOT / "csrc" / "_core.pyx").exists(),
                    reason="needs gcc with AddressSanitizer and the C sources")
def test_loader_fuzz_under_address_sanitizer(tmp_path, table_sets):
    """The fuzz (and the table builder, on json and python) with every C access checked. (It finds what
    this branch fixed in the builder: a read two bytes before lex_nl in f-string states.)"""
    module = _build_asan_core(tmp_path)
    env = dict(os.environ, LD_PRELOAD=_asan_runtime(), ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    # First the harness itself: a write past a buffer through the core must be reported.
    canary = ("import importlib.util, sys, numpy as np\n"
              f"spec = importlib.util.spec_from_file_location('grammask._core', {str(module)!r})\n"
              "core = importlib.util.module_from_spec(spec); spec.loader.exec_module(core)\n"
              "logits, mask = np.zeros(8, np.float32), np.zeros(1, np.uint32)\n"
              "core.apply_bitmask(logits.ctypes.data, 4, 1, 64, 64, 1, 0xFF800000, mask.ctypes.data, 2, 2)\n")
    run = subprocess.run([sys.executable, "-c", canary], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "AddressSanitizer" in run.stderr, run.stderr[-2000:]
    sets = tmp_path / "sets"
    sets.mkdir()
    loader_fuzz.save_sets(sets, table_sets)
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "loader_fuzz.py"), "--core", str(module),
                          "--sets", str(sets), "--cases", "1000", "--seed", "11"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0 and "AddressSanitizer" not in run.stderr, run.stderr[-4000:]
    assert f"core {module}" in run.stdout and "builder: " in run.stdout, run.stdout
