"""Mutated table sets for the loader fuzz (tests/test_loader_fuzz.py), also run as a script under ASan:

    LD_PRELOAD=$(gcc -print-file-name=libasan.so) python tests/loader_fuzz.py --core ASAN_CORE.so --cases N

Each case is a table set (metadata + arrays, as the cache stores them) with one mutation: values (random,
or at the edges of their ranges), shapes, dtypes, truncation, an array taken from another grammar's set or
two arrays swapped. Handed to the compiler's loader as if it came signed, it is either refused (TableError
or another ValueError) or taken; tables taken are then driven through every matcher entry point, which
must neither crash nor hang.
"""

from __future__ import annotations

import sys

import numpy as np

LIMITS = (-(1 << 31), -3, -2, -1, 0, 1, 2, (1 << 31) - 1)


def _edge_values(arr: np.ndarray, rng) -> list[int]:
    n = max(arr.shape) if arr.ndim else 1
    return list(LIMITS) + [n - 1, n, n + 1, int(rng.integers(-1000, 1 << 20))]


def mutate(meta: dict, arrays: dict, donor: dict, rng) -> tuple[dict, dict, str]:
    """One mutation of (meta, arrays); returns the new pair and what was done."""
    meta, arrays = dict(meta), dict(arrays)
    names = sorted(arrays)
    name = names[int(rng.integers(len(names)))]
    arr = arrays[name]
    kind = rng.choice(["value", "value", "value", "values", "shape", "dtype", "truncate", "donor", "swap",
                       "scalar"])
    if kind in ("value", "values") and arr.size:
        out = np.array(arr, copy=True).reshape(-1)
        count = 1 if kind == "value" else int(rng.integers(2, 64))
        at = rng.integers(0, out.size, size=count)
        info = np.iinfo(out.dtype) if out.dtype.kind in "iu" else None
        for i in at:
            v = int(rng.choice(_edge_values(arr, rng)))
            if info is not None:
                v = min(max(v, int(info.min)), int(info.max))
            out[i] = v
        arrays[name] = out.reshape(arr.shape)
        return meta, arrays, f"{kind} {name}"
    if kind == "shape" and arr.size:
        choice = int(rng.integers(4))
        flat = arr.reshape(-1)
        arrays[name] = (flat[:-1] if choice == 0 else np.concatenate([flat, flat[:1]]) if choice == 1
                        else flat if choice == 2 else arr.T.copy())
        return meta, arrays, f"shape {name} ({choice})"
    if kind == "dtype":
        dtype = rng.choice([np.int64, np.int16, np.uint8, np.float32, np.bool_, np.uint32])
        arrays[name] = arr.astype(dtype)
        return meta, arrays, f"dtype {name} {np.dtype(dtype).name}"
    if kind == "truncate":
        arrays[name] = arr.reshape(-1)[: int(rng.integers(0, max(1, arr.size)))]
        return meta, arrays, f"truncate {name}"
    if kind == "donor" and name in donor:
        arrays[name] = donor[name]
        return meta, arrays, f"donor {name}"
    if kind == "swap":
        other = names[int(rng.integers(len(names)))]
        arrays[name], arrays[other] = arrays[other], arrays[name]
        return meta, arrays, f"swap {name} {other}"
    scalars = [k for k, v in meta.items() if isinstance(v, int)]
    key = scalars[int(rng.integers(len(scalars)))]
    meta[key] = int(rng.choice(_edge_values(np.zeros(50), rng)))
    return meta, arrays, f"scalar {key}={meta[key]}"


def exercise(compiled, token_ids: list[int], text: bytes) -> None:
    """Every matcher entry point on tables that were taken: fills, accepts, rollbacks, raw text, the
    byte-level validator."""
    from grammask._core import CoreMatcher

    for fill_cache in (True, False):
        core = CoreMatcher(compiled.core_grammar, compiled.core_vocab, 0, fill_cache)
        words = np.zeros(compiled.core_vocab.n_words, dtype=np.uint32)
        for t in token_ids:
            core.fill(words.ctypes.data)
            core.acceptable_terminals()
            core.is_complete()
            core.can_continue()
            if not core.accept_token(t):
                break
            core.rollback(1)
            core.accept_token(t)
        core.accept_tokens(token_ids[:4])
        core.accept_tokens([0, compiled.vocab_size - 1, -1])
        core.reset()
        core.accept_bytes(text[: len(text) // 2])
        core.fill(words.ctypes.data)
    validator = CoreMatcher(compiled.core_grammar)
    validator.feed_bytes(text)
    validator.flush_lexeme()
    validator.is_complete()


def run_cases(grammar, info, meta: dict, arrays: dict, donor: dict, token_ids, text: bytes, cases: int,
              seed: int) -> dict:
    """Fuzz `cases` mutations; returns counts by outcome (refused / taken)."""
    from grammask.decoding.compiler import _from_arrays

    rng = np.random.default_rng(seed)
    counts = {"refused": 0, "taken": 0}
    for _ in range(cases):
        m, a, what = mutate(meta, arrays, donor, rng)
        try:
            compiled = _from_arrays(grammar, info, m, a, True)
        except (ValueError, KeyError, TypeError):
            counts["refused"] += 1
            continue
        counts["taken"] += 1
        try:
            exercise(compiled, token_ids, text)
        except MemoryError:
            pass
        except Exception as exc:  # an error is fine, a crash is not; but say which mutation it was
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc
    return counts


def save_sets(directory, sets: dict) -> None:
    """Table sets (name -> (meta, arrays)) into `directory`, for a fuzz run in another process."""
    import json
    from pathlib import Path

    for name, (meta, arrays) in sets.items():
        np.savez(Path(directory) / f"{name}.npz", **arrays)
        (Path(directory) / f"{name}.json").write_text(json.dumps(meta))


def load_sets(directory) -> dict:
    import json
    from pathlib import Path

    out = {}
    for path in sorted(Path(directory).glob("*.npz")):
        with np.load(path) as npz:
            out[path.stem] = (json.loads(path.with_suffix(".json").read_text()), {k: npz[k] for k in npz.files})
    return out


def fuzz(sets: dict, tok, info, cases: int, seed: int) -> dict:
    """`cases` mutations of each built-in grammar's set in `sets`, with arrays from the next one as donors."""
    import grammask as gm

    total = {"refused": 0, "taken": 0}
    names = sorted(sets)
    for i, name in enumerate(names):
        text = SAMPLES[name]
        donor = sets[names[(i + 1) % len(names)]][1]
        grammar = gm.Grammar.builtin(sets[name][0]["grammar"])  # the name the tables were built for
        counts = run_cases(grammar, info, *sets[name], donor, tok.encode(text), text.encode(), cases, seed + i)
        for k in total:
            total[k] += counts[k]
    return total


def build_tables(meta: dict, arrays: dict, info, n_tokens: int = 6000) -> int:
    """Run the table builder (two threads) over the first n_tokens tokens with the given grammar tables:
    the builder reads the lexer tables as the fill does. Returns the number of groups built."""
    from grammask._core import CoreGrammar
    from grammask.decoding.compiler import _FSTRING_ARRAYS, _FSTRING_SCALARS, _GRAMMAR_ARRAYS, _GRAMMAR_SCALARS

    core = CoreGrammar(**{k: arrays[k] for k in _GRAMMAR_ARRAYS}, **{k: meta[k] for k in _GRAMMAR_SCALARS},
                       **{k: arrays[k] for k in _FSTRING_ARRAYS if k in arrays},
                       **{k: meta[k] for k in _FSTRING_SCALARS if k in meta})
    text = [b or b"" for b in info.token_bytes[:n_tokens]]
    tok_begin = np.concatenate([[0], np.cumsum([len(b) for b in text])]).astype(np.int64)
    order = np.asarray(sorted((i for i, b in enumerate(text) if b), key=text.__getitem__), dtype=np.int32)
    raw = core.build_vocab(np.frombuffer(b"".join(text), np.uint8), tok_begin, order, (n_tokens + 31) // 32,
                           True, 2)
    return int(raw["group_seq"].shape[0])


def _main(argv: list[str]) -> int:
    import argparse
    import importlib.util

    ap = argparse.ArgumentParser()
    ap.add_argument("--core", help="a grammask._core build to use instead (e.g. one built with ASan)")
    ap.add_argument("--sets", required=True, help="directory of table sets (see save_sets)")
    ap.add_argument("--cases", type=int, default=200, help="mutations per table set")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.core:
        spec = importlib.util.spec_from_file_location("grammask._core", args.core)
        module = importlib.util.module_from_spec(spec)
        sys.modules["grammask._core"] = module
        spec.loader.exec_module(module)
    import grammask as gm
    from bench.workload import load_tokenizer

    tok = load_tokenizer("smollm2")
    info = gm.TokenizerInfo.from_huggingface(tok)
    sets = load_sets(args.sets)
    groups = sum(build_tables(*sets[name], info) for name in sorted(sets))
    total = fuzz(sets, tok, info, args.cases, args.seed)
    print(f"builder: {groups} groups")
    print(f"core {sys.modules['grammask._core'].__file__}: {total['refused']} refused, {total['taken']} taken")
    return 0


SAMPLES = {"json": '{"a": [1, "two", {"b": null, "c": -2.5e3}], "d": true}',
           "python": 'def f(x, *a):\n    """doc"""\n    return f"{x!r:>{10}}" + [y for y in a][0]\n'}


def table_set(grammar, info) -> tuple[dict, dict]:
    """(meta, arrays) as compile() stores them, built in memory."""
    import tempfile

    import grammask as gm
    from grammask.decoding import cache
    from grammask.decoding.compiler import cache_key

    with tempfile.TemporaryDirectory() as d:
        gm.compile(grammar, info, cache_dir=d)
        meta, arrays = cache.load(__import__("pathlib").Path(d), cache_key(grammar, info))
        return meta, {k: np.array(v) for k, v in arrays.items()}


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    sys.exit(_main(sys.argv[1:]))
