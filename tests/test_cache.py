"""The on-disk table cache: keyed by content, atomic, self-healing."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import grammask as gm
from conftest import BYTE_LEVEL, load_tokenizer, tokenizer_info, walk_masks

TEXT = '{"a": [1, "two", {"b": null}]}'



@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(BYTE_LEVEL), tokenizer_info(BYTE_LEVEL)


def test_second_compile_loads_the_same_tables(tmp_path, tokenizer):
    tok, info = tokenizer
    first = gm.compile("json", info, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert not first.from_cache and len(files) == 1
    second = gm.compile("json", info, cache_dir=tmp_path)
    assert second.from_cache
    ids = tok.encode(TEXT)
    for a, b in zip(walk_masks(first, ids), walk_masks(second, ids), strict=True):
        assert np.array_equal(a, b)


def test_key_follows_content_not_identity(tmp_path, tokenizer):
    _, info = tokenizer
    gm.compile("json", info, cache_dir=tmp_path)
    # Same content (text, start rule, lexing rule) under another object and name: a hit.
    same = gm.Grammar.from_lark(gm.Grammar.builtin("json").text, lexer="longest")
    assert gm.compile(same, info, cache_dir=tmp_path).from_cache
    # One character of grammar changed: a miss. Another vocabulary size: a miss.
    changed = gm.Grammar.from_lark(gm.Grammar.builtin("json").text.replace('"null"', '"nil"'), lexer="longest")
    assert not gm.compile(changed, info, cache_dir=tmp_path).from_cache
    bigger = gm.TokenizerInfo.from_huggingface(load_tokenizer(BYTE_LEVEL), vocab_size=info.vocab_size + 64)
    assert not gm.compile("json", bigger, cache_dir=tmp_path).from_cache
    assert len(list(tmp_path.glob("*.npz"))) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_cache_file_is_rebuilt(tmp_path, tokenizer, damage):
    tok, info = tokenizer
    reference = walk_masks(gm.compile("json", info, cache_dir=False), tok.encode(TEXT))
    gm.compile("json", info, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        i = len(data) // 2
        data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
    elif damage == "garbage":
        data = os.urandom(len(data))
    else:
        data = b""
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = gm.compile("json", info, cache_dir=tmp_path)
    assert not compiled.from_cache
    assert any("unreadable cache file" in str(w.message) for w in caught)
    for a, b in zip(reference, walk_masks(compiled, tok.encode(TEXT)), strict=True):
        assert np.array_equal(a, b)
    assert gm.compile("json", info, cache_dir=tmp_path).from_cache  # rewritten, whole again


def test_unwritable_cache_dir_only_warns(tmp_path, tokenizer):
    _, info = tokenizer
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    with pytest.warns(RuntimeWarning, match="cannot write the table cache"):
        compiled = gm.compile("json", info, cache_dir=blocked / "sub")
    assert len(compiled.matcher().allowed_token_ids()) > 0


def test_cache_dir_from_environment(tmp_path, tokenizer, monkeypatch):
    _, info = tokenizer
    monkeypatch.setenv("GRAMMASK_CACHE_DIR", str(tmp_path / "env-cache"))
    gm.compile("json", info)
    assert len(list((tmp_path / "env-cache").glob("*.npz"))) == 1
    monkeypatch.setenv("GRAMMASK_CACHE_DIR", "")
    assert not gm.compile("json", info).from_cache


def test_store_and_load_keep_any_plain_array(tmp_path):
    """cache.store / cache.load (also used for a grammar's own tables): dtypes, shapes (empty ones too)
    and values come back, each array a 64-byte aligned view of the file read once."""
    from grammask.decoding import cache

    arrays = dict(empty=np.asarray([]), flags=np.array([True, False]), names=np.array(["x", "yz"]),
                  small=np.arange(6, dtype=np.int16).reshape(2, 3), rows=np.zeros((0, 256), np.int32),
                  big=np.arange(100_003, dtype=np.int64), half=np.float32([1.5]))
    cache.store(tmp_path, "k" * 64, {"note": [1, "two"]}, arrays)
    meta, back = cache.load(tmp_path, "k" * 64)
    assert meta["note"] == [1, "two"]
    assert sorted(back) == sorted(arrays)
    for name, arr in arrays.items():
        got = back[name]
        assert got.dtype == arr.dtype and got.shape == arr.shape and np.array_equal(got, arr), name
        assert got.ctypes.data % 64 == 0, name
