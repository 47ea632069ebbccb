"""`grammask validate` as a syntax check: no torch, grammar tables from the disk cache, same answers.

The tables read back from the cache must be the tables a fresh build makes (every array, every field),
answer every text the same, and a cache file that is corrupt or inconsistent must be rebuilt with a
warning. Speed itself is measured in bench/bench_validate.py.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import grammask as gm
from grammask.decoding import cache
from grammask.grammar import table_cache
from grammask.grammar.tables import build_tables

REPO = Path(__file__).resolve().parent.parent
BUILTINS = ("json", "python", "go")

# Texts each built-in answers: valid, invalid at some position, incomplete.
TEXTS = {
    "json": ['{"a": [1, 2.5e3, "x\\u00e9"], "b": null}', '{"a": [1, 2}', '[1, {"k": tru', "", "  \n",
             '"\\x"', b'["\xff"]'],
    "python": ["x = 1\n", "def f(a, *, b=2):\n    return f'{a!r:>{b}}'\n", "if x:\npass\n", "class C(:\n",
               "x = (1,\n", 'f"{x\\n}"\n', "while True:\n    break\n  y = 2\n", "lambda: (yield)\n"],
    "go": ["package main\n\nfunc main() {\n\tx := []int{1, 2}\n\t_ = x\n}\n", "package main\nfunc f() { return\n",
           "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n", "package main\nvar x = 1 +\n",
           "package main\nfunc f() { x := 1; }}\n"],
}


def _env(cache_dir) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), GRAMMASK_CACHE_DIR=str(cache_dir))
    env.pop("PYTHONWARNINGS", None)
    return env


def run_cli(cache_dir, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "grammask", *args], capture_output=True, text=True, cwd=REPO,
                          input=stdin, env=_env(cache_dir), timeout=300)


def assert_same_tables(a, b, where="tables"):
    """Field by field, arrays by dtype, shape and content."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.array_equal(a, b), where
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same_tables(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def _round_trip(tables, directory: Path):
    """Through the real cache files: store, load, rebuild the tables."""
    meta, arrays = table_cache.to_arrays(tables)
    cache.store(directory, "k" * 64, meta, arrays)
    hit = cache.load(directory, "k" * 64)
    assert hit is not None
    return table_cache.from_arrays(*hit)


def _results(grammar, texts) -> list:
    return [dataclasses.asdict(grammar.validate(t)) for t in texts]


# -- the cache round trip ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTINS)
def test_round_trip_gives_the_fresh_tables(name, tmp_path):
    g = gm.Grammar.builtin(name)
    fresh = build_tables(g.text, g.start, g.name, g.max_lexer_states, g.build_timeout, warn_conflicts=False)
    loaded = _round_trip(fresh, tmp_path)
    assert_same_tables(fresh, loaded)
    from_fresh, from_loaded = gm.Grammar.builtin(name), gm.Grammar.builtin(name)
    from_fresh._tables, from_loaded._tables = fresh, loaded
    results = _results(from_fresh, TEXTS[name])
    assert results == _results(from_loaded, TEXTS[name])
    assert any(r["ok"] for r in results) and not all(r["ok"] for r in results)  # the texts tell valid from not


def test_round_trip_of_intersections_and_conflicts(tmp_path):
    schema = {"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0.5},
                                               "b": {"type": "string", "pattern": "^a+$", "minLength": 2}}}
    g = gm.Grammar.from_json_schema(schema)
    fresh = build_tables(g.text, g.start, g.name, warn_conflicts=False)
    assert any(t.also for t in fresh.terminals)  # an intersection with a multipleOf constraint to carry
    assert_same_tables(fresh, _round_trip(fresh, tmp_path / "schema"))
    dangling = 'start: stmt\nstmt: "if" X stmt | "if" X stmt "else" stmt | X\nX: "x"\n%ignore " "'
    fresh = build_tables(dangling, "start", warn_conflicts=False)
    assert fresh.conflicts and fresh.conflicts[0][0] == 2
    assert_same_tables(fresh, _round_trip(fresh, tmp_path / "conflict"))


# -- Grammar.tables through the cache --------------------------------------------------------------------

@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Where the grammar tables go: a folder of the cache directory, the token tables left alone."""
    monkeypatch.setenv("GRAMMASK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / table_cache.SUBDIR


def test_tables_are_stored_once_and_read_back(cache_dir):
    first = gm.Grammar.builtin("go").tables
    files = list(cache_dir.glob("*.npz"))
    assert len(files) == 1 and not list(cache_dir.parent.glob("*.npz"))  # the token tables' folder untouched
    stamp = files[0].stat().st_mtime_ns
    second = gm.Grammar.builtin("go").tables
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten
    assert second is not first
    assert_same_tables(first, second)


def test_cache_key_is_the_content(cache_dir):
    text = 'start: A+\nA: "a" | "b"\n'
    gm.Grammar.from_lark(text)
    gm.Grammar.from_lark(text + "\n")  # other text
    gm.Grammar.from_lark(text.replace("start", "top"), start="top")  # other start rule
    gm.Grammar.from_lark(text, max_lexer_states=50)  # other limit
    assert len(list(cache_dir.glob("*.npz"))) == 4


def test_a_cached_grammar_still_keeps_its_state_limit(cache_dir):
    text = "start: A B\nA: /(a|b)*a(a|b){4}/\nB: /c/"
    assert gm.Grammar.from_lark(text).validate("abbbbc").ok  # built and cached with the default limit
    with pytest.raises(gm.GrammarError, match="more than 10 DFA states"):
        gm.Grammar.from_lark(text, max_lexer_states=10)


def test_conflict_warnings_on_every_load_with_the_current_source(cache_dir, tmp_path):
    text = 'start: stmt\nstmt: "if" X stmt | "if" X stmt "else" stmt | X\nX: "x"\n%ignore " "'
    path = tmp_path / "dangling.lark"
    path.write_text(text)
    for _ in range(2):  # built, then read from the cache
        with pytest.warns(gm.GrammarWarning, match=r"dangling\.lark:2:1: shift/reduce conflict on ELSE"):
            gm.Grammar.from_file(path)
    with pytest.warns(gm.GrammarWarning, match=r"^<grammar>:2:1: shift/reduce conflict on ELSE"):
        gm.Grammar.from_lark(text)
    assert len(list(cache_dir.glob("*.npz"))) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm.Grammar.builtin("python").tables  # the built-ins document their conflicts: no warning


def test_empty_cache_dir_setting_disables_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAMMASK_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gm.Grammar.builtin("json").validate("[1]").ok
    assert list(tmp_path.rglob("*.npz")) == []


def _only_file(directory: Path) -> Path:
    files = list(directory.glob("*.npz"))
    assert len(files) == 1
    return files[0]


def test_a_corrupt_cache_file_is_rebuilt_with_a_warning(cache_dir):
    expected = _results(gm.Grammar.builtin("python"), TEXTS["python"])
    path = _only_file(cache_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside an array: the zip CRC tells
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="unreadable cache file"):
        tables = gm.Grammar.builtin("python").tables
    assert _results(gm.Grammar.builtin("python"), TEXTS["python"]) == expected
    assert_same_tables(tables, table_cache.from_arrays(*cache.load(cache_dir, path.stem)))  # rewritten whole

    expected = _results(gm.Grammar.builtin("json"), TEXTS["json"])
    path = next(p for p in cache_dir.glob("*.npz") if p.stem != path.stem)
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.warns(RuntimeWarning, match="unreadable cache file"):
        assert _results(gm.Grammar.builtin("json"), TEXTS["json"]) == expected


def _tamper(directory: Path, change) -> None:
    path = _only_file(directory)
    meta, arrays = cache.load(directory, path.stem)
    change(meta, arrays)
    cache.store(directory, path.stem, meta, arrays)


@pytest.mark.parametrize("what, change", [
    ("lexer transitions out of range", lambda m, a: a["lex_trans"].__setitem__((0, 65), a["lex_trans"].shape[0])),
    ("parse actions out of range", lambda m, a: a["action"].__setitem__((0, 0), -10_000)),
    ("goto table", lambda m, a: a.__setitem__("goto", a["goto"][:, 1:])),
    ("lex_trans is int32", lambda m, a: a.__setitem__("lex_trans", a["lex_trans"].astype(np.float32))),
    ("one display name per terminal", lambda m, a: m["display"].pop()),
    ("expected an integer", lambda m, a: m.__setitem__("start_state", "0")),
    ("index .* out of range", lambda m, a: m["semicolons"][1].append(10_000)),
    ("lex_mode", lambda m, a: a.pop("lex_mode")),
])
def test_an_inconsistent_cache_file_is_rebuilt_with_a_warning(cache_dir, what, change):
    expected = _results(gm.Grammar.builtin("go"), TEXTS["go"])
    _tamper(cache_dir, change)
    with pytest.warns(RuntimeWarning, match=f"inconsistent grammar table cache file .*{what}"):
        assert _results(gm.Grammar.builtin("go"), TEXTS["go"]) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: read back without a word
        assert _results(gm.Grammar.builtin("go"), TEXTS["go"]) == expected


# -- the command line ----------------------------------------------------------------------------------

_PROBE = ("import sys, grammask.cli\n"
          "status = grammask.cli.main(sys.argv[1:])\n"
          "print(status, *(name in sys.modules for name in ('torch', 'transformers', 'lark', 'interegular')))\n")


@pytest.mark.parametrize("name", BUILTINS)
def test_validate_imports_neither_torch_nor_transformers(name, tmp_path):
    source = tmp_path / f"x.{name}"
    source.write_text(TEXTS[name][0])
    probe = [sys.executable, "-c", _PROBE, "validate", "-q", "-g", name, str(source)]
    cold = subprocess.run(probe, capture_output=True, text=True, cwd=REPO, env=_env(tmp_path / "c"), timeout=300)
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.split() == ["0", "False", "False", "True", "True"]  # built: Lark and interegular, no torch
    warm = subprocess.run(probe, capture_output=True, text=True, cwd=REPO, env=_env(tmp_path / "c"), timeout=300)
    assert warm.stdout.split() == ["0", "False", "False", "False", "False"], warm.stderr  # read back: none
    assert warm.stderr == ""


def test_library_validate_imports_no_torch(tmp_path):
    code = ("import sys, grammask as gm\n"
            "r = gm.Grammar.builtin('json').validate('[1, 2')\n"
            "print(r.prefix_ok, type(r).__name__, 'torch' in sys.modules, 'transformers' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=_env(tmp_path), timeout=300)
    assert res.stdout.split() == ["True", "ValidationResult", "False", "False"], res.stderr


def test_public_names_still_import():
    import grammask.decoding as decoding
    from grammask.decoding.processor import GrammarLogitsProcessor

    for name in gm.__all__:
        exec(f"from grammask import {name}", {})
        assert getattr(gm, name) is not None
        assert name in dir(gm)
    for name in decoding.__all__:
        exec(f"from grammask.decoding import {name}", {})
    assert gm.GrammarLogitsProcessor is GrammarLogitsProcessor
    assert gm.decoding.unpack_bitmask is decoding.unpack_bitmask
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gm.nope
    with pytest.raises(ImportError):
        exec("from grammask.decoding import nope", {})


def _oracle(name: str, text: str) -> bool:
    if name == "json":
        try:
            json.loads(text)
            return True
        except ValueError:
            return False
    if name == "python":
        try:
            ast.parse(text)
            return True
        except SyntaxError:
            return False
    gofmt = shutil.which("gofmt")
    if gofmt is None:
        pytest.skip("gofmt not found (Debian's golang-go): no Go oracle")
    return subprocess.run([gofmt, "-e", "/dev/stdin"], input=text, capture_output=True, text=True).returncode == 0


@pytest.mark.parametrize("name", BUILTINS)
def test_cold_and_warm_runs_answer_alike(name, tmp_path):
    """Exit status and `file:line:col:` lines, one file at a time and all in one call, before and after
    the tables are cached; every verdict agrees with the language's own parser."""
    files = []
    for i, text in enumerate(t for t in TEXTS[name] if isinstance(t, str)):
        files.append(tmp_path / f"f{i}.{name}")
        files[-1].write_text(text)
    cache_dir = tmp_path / "cache"
    cold = run_cli(cache_dir, "validate", "-g", name, *map(str, files), str(tmp_path / "missing"))
    assert len(list((cache_dir / table_cache.SUBDIR).glob("*.npz"))) == 1
    warm = run_cli(cache_dir, "validate", "-g", name, *map(str, files), str(tmp_path / "missing"))
    assert (cold.returncode, cold.stdout, cold.stderr) == (warm.returncode, warm.stdout, warm.stderr)
    assert cold.returncode == 1 and cold.stdout == ""
    lines = cold.stderr.splitlines()
    assert len(lines) == len(files) + 1 and lines[-1].startswith(f"{tmp_path / 'missing'}: cannot read")
    for path, line in zip(files, lines):
        single = run_cli(cache_dir, "validate", "-g", name, str(path))
        assert single.stderr.splitlines() == [line]
        valid = _oracle(name, path.read_text())
        assert single.returncode == (0 if valid else 1), line
        if valid:
            assert line == f"{path}: ok"
        else:
            head, _, message = line.partition(": ")
            file, row, col = head.rsplit(":", 2)
            assert file == str(path) and int(row) >= 1 and int(col) >= 1, line
            assert message.startswith(("error: ", "incomplete: ")), line


def test_cli_corrupt_cache_file_warns_and_answers_alike(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"a": [1, 2]}')
    bad.write_text('{"a": [1, 2}\n')
    cache_dir = tmp_path / "cache"
    first = run_cli(cache_dir, "validate", "-g", "json", str(good), str(bad))
    assert first.returncode == 1 and f"{bad}:1:12: error: unexpected '}}'" in first.stderr
    path = _only_file(cache_dir / table_cache.SUBDIR)
    path.write_bytes(b"PK\x03\x04 not a zip file")
    again = run_cli(cache_dir, "validate", "-g", "json", str(good), str(bad))
    assert again.returncode == 1
    assert "unreadable cache file" in again.stderr and "Traceback" not in again.stderr
    assert again.stderr.splitlines()[-2:] == first.stderr.splitlines()
    third = run_cli(cache_dir, "validate", "-g", "json", str(good), str(bad))
    assert (third.returncode, third.stderr) == (first.returncode, first.stderr)


@pytest.mark.parametrize("argv, expected", [
    (["/usr/bin/grammask", "validate"], "1"),  # the console script validating: BLAS on one thread
    (["/usr/bin/grammask", "generate"], "None"),  # generating: untouched (torch may share that BLAS)
    (["my_program.py", "validate"], "None"),  # a program importing the module: untouched
])
def test_only_the_validate_command_limits_blas_threads(argv, expected, tmp_path):
    code = (f"import os, sys\nsys.argv = {argv!r}\nos.environ.pop('OPENBLAS_NUM_THREADS', None)\n"
            "import grammask.cli, numpy\nprint(os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=_env(tmp_path), timeout=300)
    assert res.stdout.split() == [expected], res.stderr
