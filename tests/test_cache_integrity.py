"""The disk cache trusts nothing it did not sign: files carry an HMAC keyed by a private key beside them,
the key and directory must be the user's alone, the key follows the builder's own sources, and tables
read back equal a fresh build bit for bit."""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

import grammask as gm
from conftest import load_tokenizer, tokenizer_info, walk_masks
from grammask import _core
from grammask.decoding import cache, compiler

TEXT = '{"a": [1, "two", {"b": null}], "c": -2.5e3}'
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smollm2():
    return load_tokenizer("smollm2"), tokenizer_info("smollm2")


@pytest.fixture(scope="module")
def reference(smollm2):
    """Masks along TEXT from a fresh build (no cache)."""
    tok, info = smollm2
    return walk_masks(gm.compile("json", info, cache_dir=False), tok.encode(TEXT))



def same_masks(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def compile_quietly(info, directory):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = gm.compile("json", info, cache_dir=directory)
    return compiled, [str(w.message) for w in caught]


def the_file(directory: Path) -> Path:
    (path,) = directory.glob("*.npz")
    return path


# -- bit for bit -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["smollm2", "deepseek"])
@pytest.mark.parametrize("grammar", ["json", "python", "go"])
def test_tables_from_cache_equal_a_fresh_build_bit_for_bit(tmp_path, grammar, family):
    info = tokenizer_info(family)
    fresh = gm.compile(grammar, info, cache_dir=tmp_path)
    loaded = gm.compile(grammar, info, cache_dir=tmp_path)
    assert not fresh.from_cache and loaded.from_cache
    for attr in ("core_grammar", "core_vocab"):
        a, b = getattr(fresh, attr).arrays, getattr(loaded, attr).arrays
        assert sorted(a) == sorted(b)
        for name in a:
            assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
            assert a[name].tobytes() == b[name].tobytes(), name
    assert fresh.core_grammar.scalars == loaded.core_grammar.scalars
    assert fresh.terminal_names == loaded.terminal_names


# -- the signature ---------------------------------------------------------------------------------------

def test_files_are_standard_npz_signed_and_private(tmp_path, smollm2):
    _, info = smollm2
    gm.compile("json", info, cache_dir=tmp_path)
    path = the_file(tmp_path)
    data = path.read_bytes()
    assert data[-85:-64] == b"grammask-hmac-sha256:"
    with np.load(path) as npz:  # any numpy reads it
        assert "masks" in npz.files
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / cache.KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_in_bounds_forgery_without_the_key_is_rebuilt(tmp_path, smollm2, reference):
    """Every mask set to allow everything: in bounds, so only the signature can tell."""
    tok, info = smollm2
    gm.compile("json", info, cache_dir=tmp_path)
    path = the_file(tmp_path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["masks"] = np.full_like(arrays["masks"], 0xFFFFFFFF)
    arrays["masks"][:, -1] &= (1 << (info.vocab_size % 32)) - 1 if info.vocab_size % 32 else 0xFFFFFFFF
    with open(path, "wb") as f:  # re-signed with a digest of its own: the attacker has no key
        np.savez(f, **arrays)
    compiled, messages = compile_quietly(info, tmp_path)
    assert not compiled.from_cache
    assert any("unreadable cache file" in m for m in messages), messages
    assert same_masks(walk_masks(compiled, tok.encode(TEXT)), reference)
    assert gm.compile("json", info, cache_dir=tmp_path).from_cache  # signed anew


def test_file_signed_with_another_directory_key_or_for_another_key_is_rejected(tmp_path, smollm2, reference):
    tok, info = smollm2
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    gm.compile("json", info, cache_dir=tmp_path / "a")
    gm.compile("json", info, cache_dir=tmp_path / "b")
    key = the_file(tmp_path / "a").stem
    # a's file in b: signed, but with a's key
    (tmp_path / "b" / f"{key}.npz").write_bytes((tmp_path / "a" / f"{key}.npz").read_bytes())
    with pytest.warns(RuntimeWarning, match="signature does not match"):
        assert cache.load(tmp_path / "b", key) is None
    # an authentic file under another key's name: the digest covers the key
    gm.compile("json", info, cache_dir=tmp_path / "a")
    other = "0" * 64
    os.rename(tmp_path / "a" / f"{key}.npz", tmp_path / "a" / f"{other}.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cache.load(tmp_path / "a", other) is None
    compiled, _ = compile_quietly(info, tmp_path / "b")
    assert not compiled.from_cache
    assert same_masks(walk_masks(compiled, tok.encode(TEXT)), reference)


def test_signed_tables_that_fail_validation_are_rebuilt_with_a_warning_naming_the_file(tmp_path, smollm2,
                                                                                         reference):
    """A file signed with the right key (its writer could run code as the user) still goes through the
    core's checks: a group token past the vocabulary is refused, the file named, the tables rebuilt."""
    tok, info = smollm2
    gm.compile("json", info, cache_dir=tmp_path)
    key = compiler.cache_key(gm.Grammar.builtin("json"), info)
    meta, arrays = cache.load(tmp_path, key)
    arrays = dict(arrays, group_toks=np.array(arrays["group_toks"]))
    arrays["group_toks"][0] = 10 ** 9
    cache.store(tmp_path, key, meta, arrays)
    compiled, messages = compile_quietly(info, tmp_path)
    assert not compiled.from_cache
    assert any(str(cache.cache_file(tmp_path, key)) in m and "fail validation" in m and "group_toks" in m
               for m in messages), messages
    assert same_masks(walk_masks(compiled, tok.encode(TEXT)), reference)


def test_arrays_handed_to_the_core_are_copied_before_they_are_checked(tmp_path, smollm2, reference):
    """Changing the arrays after the tables were built from them changes nothing the core reads."""
    tok, info = smollm2
    gm.compile("json", info, cache_dir=tmp_path)
    meta, arrays = cache.load(tmp_path, compiler.cache_key(gm.Grammar.builtin("json"), info))
    compiled = compiler._from_arrays(gm.Grammar.builtin("json"), info, meta, arrays, True)
    for arr in arrays.values():
        if arr.dtype.kind in "iu":
            arr[...] = np.iinfo(arr.dtype).max  # every index out of range, had the core kept these arrays
    assert same_masks(walk_masks(compiled, tok.encode(TEXT)), reference)
    assert not compiled.core_vocab.arrays["group_toks"].flags.writeable


# -- the key and the directory ---------------------------------------------------------------------------

def test_key_readable_by_others_is_replaced(tmp_path, smollm2):
    _, info = smollm2
    gm.compile("json", info, cache_dir=tmp_path)
    key_file = tmp_path / cache.KEY_FILE
    old = key_file.read_bytes()
    key_file.chmod(0o644)
    compiled, _ = compile_quietly(info, tmp_path)
    assert not compiled.from_cache  # signed with a key that may have leaked: rebuilt
    assert key_file.read_bytes() != old and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert gm.compile("json", info, cache_dir=tmp_path).from_cache


def test_symlinked_key_is_not_followed(tmp_path, smollm2):
    _, info = smollm2
    planted = tmp_path / "planted-key"
    planted.write_bytes(b"k" * 32)
    planted.chmod(0o600)
    (tmp_path / "cache").mkdir(mode=0o700)
    (tmp_path / "cache" / cache.KEY_FILE).symlink_to(planted)
    gm.compile("json", info, cache_dir=tmp_path / "cache")
    key_file = tmp_path / "cache" / cache.KEY_FILE
    assert not key_file.is_symlink() and key_file.read_bytes() != b"k" * 32
    assert gm.compile("json", info, cache_dir=tmp_path / "cache").from_cache


def test_directory_open_to_others_is_narrowed_and_its_key_dropped(tmp_path, smollm2, reference):
    tok, info = smollm2
    gm.compile("json", info, cache_dir=tmp_path)
    old = (tmp_path / cache.KEY_FILE).read_bytes()
    tmp_path.chmod(0o777)  # anyone could have replaced the key and signed files with it
    compiled, _ = compile_quietly(info, tmp_path)
    assert not compiled.from_cache
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert (tmp_path / cache.KEY_FILE).read_bytes() != old
    assert same_masks(walk_masks(compiled, tok.encode(TEXT)), reference)


needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="giving a file to another user needs root")


@needs_root
def test_directory_of_another_user_is_not_used(tmp_path, smollm2):
    _, info = smollm2
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    with pytest.warns(RuntimeWarning, match="owned by user 12345"):
        compiled = gm.compile("json", info, cache_dir=theirs)
    assert not compiled.from_cache and not list(theirs.iterdir())


@needs_root
def test_key_of_another_user_is_replaced(tmp_path, smollm2):
    _, info = smollm2
    gm.compile("json", info, cache_dir=tmp_path)
    os.chown(tmp_path / cache.KEY_FILE, 12345, 12345)
    compiled, _ = compile_quietly(info, tmp_path)
    assert not compiled.from_cache
    assert (tmp_path / cache.KEY_FILE).stat().st_uid == os.geteuid()


# -- the key follows the builder ------------------------------------------------------------------------

def test_compiled_in_source_digest_is_that_of_csrc():
    """The core's digest (part of every cache key) is that of the sources in csrc/: a build from edited
    sources gets other keys. (Fails too if csrc/ was edited and the extension not rebuilt.)"""
    sources = sorted(p for p in (ROOT / "csrc").iterdir()
                     if p.suffix in (".c", ".h", ".pyx") and p.name != "_core.c")
    digest = hashlib.sha256(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in sources)).hexdigest()
    assert _core.SOURCE_HASH == digest


def test_engine_version_follows_sources_and_library_versions(monkeypatch, smollm2):
    _, info = smollm2
    grammar = gm.Grammar.builtin("json")
    base = compiler.cache_key(grammar, info)
    compiler.engine_version.cache_clear()
    try:
        monkeypatch.setattr(compiler._core, "SOURCE_HASH", "another build")
        assert compiler.cache_key(grammar, info) != base
        monkeypatch.undo()
        compiler.engine_version.cache_clear()
        assert compiler.cache_key(grammar, info) == base
        real_version = compiler.metadata.version
        monkeypatch.setattr(compiler.metadata, "version",
                            lambda name: "0.0" if name == "interegular" else real_version(name))
        compiler.engine_version.cache_clear()
        assert compiler.cache_key(grammar, info) != base
        monkeypatch.undo()
        real_read = Path.read_bytes
        monkeypatch.setattr(Path, "read_bytes", lambda p: real_read(p) + (b"#" if p.name == "lexer.py" else b""))
        compiler.engine_version.cache_clear()
        assert compiler.cache_key(grammar, info) != base  # fsm/lexer.py edited
    finally:
        monkeypatch.undo()
        compiler.engine_version.cache_clear()
    assert compiler.cache_key(grammar, info) == base
