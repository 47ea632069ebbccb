"""The built-in Go grammar against the Go toolchain's parser (gofmt -e) and real code: the toolchain's own
source tree (always) and the shared Go 1.19 corpus (where present).

gofmt reads stdin as a possible fragment (no package clause, bare statements); the Go grammar is for
whole files, so gofmt reads /dev/stdin as a named file, where it takes only complete source files.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import numpy as np
import pytest

import grammask as gm
from conftest import (BOTH_KINDS, BYTE_LEVEL, CODE_CORPORA, decoded_text, go_corpus, load_tokenizer, mutate_lines,
                      mutation_agreement, shared_corpus, tokenizer_info, walks_parse)

GOFMT = shutil.which("gofmt")

# The differences the grammar header lists, recognized from gofmt's message; every other disagreement
# fails the test. Each is a go/parser check on the tree it built, not on the token sequence the grammar sees:
KNOWN = {
    # the number of expressions before := or = in a range clause
    "at most 2 expressions": "grammar accepts any number",
    # a type switch guard takes a list of names before := (go/parser: exactly one)
    "switch expression": "grammar accepts several names in a type switch guard",
}


def gofmt_error(text: str):
    """None when gofmt -e parses `text` as a Go source file, else its first message."""
    if GOFMT is None:
        pytest.fail("gofmt not found: install Debian's golang-go (scripts/setup does, as root)")
    r = subprocess.run([GOFMT, "-e", "/dev/stdin"], input=text.encode(), capture_output=True, timeout=30)
    if r.returncode == 0:
        return None
    return r.stderr.decode("utf-8", "replace").split("\n")[0] or "gofmt error"


@pytest.fixture(scope="module")
def go():
    return gm.Grammar.builtin("go")


@pytest.mark.parametrize("which", CODE_CORPORA)
def test_accepts_the_whole_corpus(go, which):
    files = go_corpus(which)
    assert len(files) == 150
    results = [(p.name, go.validate(p.read_bytes())) for p in files]
    rejected = [(name, r.message) for name, r in results if not r.ok]
    assert not rejected


def test_identifiers_of_unicode_letters(go):
    text = "package p\n\nfunc polar(θ, µ float64) float64 { return θ * µ }\n"
    assert gofmt_error(text) is None
    assert go.validate(text).ok, go.validate(text).message


# letter = Unicode category L or "_", digit = Nd; any other non-ASCII character is an error
@pytest.mark.parametrize("name", ["café", "π", "名前", "x\u0660", "\u0660x", "x²", "ǅ", "ⅰ", "e\u0301", "a€",
                                  "\u02b0", "_\u0966"])
def test_unicode_identifiers_as_gofmt_takes_them(go, name):
    text = f"package p\n\nvar {name} = 1\n"
    assert go.validate(text).ok == (gofmt_error(text) is None), name


def _swap_two_chars(line: str, rng: random.Random):
    if len(line) < 2:
        return None
    j = rng.randrange(len(line) - 1)
    return line[:j] + line[j + 1] + line[j] + line[j + 2:]


def _mutate(text: str, rng: random.Random) -> str:
    """Delete, insert or swap a character, delete or swap a line, or truncate the text."""
    return mutate_lines(text, rng, "()[]{}:;,.=+-*&<!\"'`/ \t\n~|^%0xi_", _swap_two_chars)


@pytest.mark.parametrize("which", CODE_CORPORA)
def test_mutations_agree_with_gofmt(go, which):
    total, agree, unknown = mutation_agreement(go_corpus(which)[::2], 8, _mutate, gofmt_error, go, KNOWN)
    assert total == 600
    assert agree / total >= 0.995, f"{agree}/{total}"
    assert not unknown, unknown[:5]


@pytest.mark.parametrize("text,ok", [
    ("package p", True), ("package p\n", True), ("package _\n", True), ("import \"fmt\"\n", False),
    ('package p\nimport (\n\t"fmt"\n\tm "math"\n\t. "os"\n)\n', True), ('package p\nimport "a b"\n', False),
    ('package p\nimport ""\n', False), ("package p\nimport `x/y`\n", True),
    # literals
    ("package p\nvar x = 0b1_0 + 0o7 + 0_7 + 0x_fF + 1_000 + 07\n", True), ("package p\nvar x = 08\n", False),
    ("package p\nvar x = 08.5 + 1. + .5 + 1e3 + 1.5e-3 + 0x1p-2 + 0x1.8p1 + 0x.8p0\n", True),
    ("package p\nvar x = 0x1.8\n", False), ("package p\nvar x = 1__0\n", False), ("package p\nvar x = 1_\n", False),
    ("package p\nvar x = 1i + 0123i + 089i + 0x1i + 1.5e2i\n", True), ("package p\nvar x = 1..5\n", False),
    ("package p\nvar x = 'a' + '\\n' + '\\'' + '\\x41' + '\\101' + '\\u00e9' + '\\U0001F600' + 'é'\n", True),
    ("package p\nvar x = '\\\"'\n", False), ("package p\nvar x = 'ab'\n", False), ("package p\nvar x = ''\n", False),
    ("package p\nvar x = '\\400'\n", False), ("package p\nvar x = '\\ud800'\n", False),
    ('package p\nvar x = "a\\tb\\"c\\\\" + `raw\\n\n` + "\\u00e9\\x00"\n', True), ('package p\nvar x = "\\q"\n', False),
    ('package p\nvar x = "\\\'"\n', False), ('package p\nvar x = "a\nb"\n', False),
    # comments: a general comment with a newline ends the line
    ("package p\nvar x = 1 /* c */ + 2\n", True), ("package p\nvar x = 1 /*\n*/ + 2\n", False),
    ("package p\nvar x = 1 /* c */\nvar y = 2 // d\n", True), ("package p /* unterminated\n", False),
    # declarations and generics
    ("package p\ntype T[K comparable, V any] struct{ m map[K]V }\n", True),
    ("package p\ntype N interface{ ~int | ~int64 | string; M() }\n", True),
    ("package p\nfunc F[T interface{ ~[]E }, E any](s T) T { return s }\n", True),
    ("package p\nfunc (r *T[K]) M(a, b int, c ...string) (n int, err error) { return }\n", True),
    ("package p\nfunc (r T) M[X any]() {}\n", False), ("package p\nfunc f(a int, string) {}\n", False),
    ("package p\nfunc f(int, string, []byte, ...T) {}\n", True), ("package p\nfunc f(a, b [2]int, c []T) {}\n", True),
    ("package p\nfunc f(a T[int], T[int, string]) {}\n", False), ("package p\ntype A [N]int\n", True),
    ("package p\nconst (\n\ta = iota\n\tb\n)\n", True), ("package p\nconst a\n", False), ("package p\nvar a\n", False),
    ("package p\ntype S struct {\n\tA, B int `json:\"a\"`\n\t*T\n\tio.Reader\n\tL[int]\n\tx [4]byte\n}\n", True),
    ("package p\nvar c chan<- <-chan int\nvar d <-chan chan int\n", True),
    # statements
    ("package p\nfunc f() {\n\tif x := g(); x {\n\t} else if y {\n\t} else {\n\t}\n}\n", True),
    ("package p\nfunc f() {\n\tif x == T{} {\n\t}\n}\n", False), ("package p\nfunc f() {\n\tif x == (T{}) {\n\t}\n}\n", True),
    ("package p\nfunc f() {\n\tfor _, v := range []T{{}} {\n\t}\n}\n", True),
    ("package p\nfunc f() {\n\tswitch v := x.(type) {\n\tcase int, []T:\n\t\tfallthrough\n\tdefault:\n\t}\n}\n", True),
    ("package p\nfunc f() {\n\tselect {\n\tcase v, ok := <-c:\n\tcase c <- 1:\n\tdefault:\n\t}\n}\n", True),
    ("package p\nfunc f() {\nL:\n\tfor i := 0; i < 3; i++ {\n\t\tgoto L\n\t\tcontinue L\n\t}\n\tgo g()\n\tdefer h()\n}\n",
     True),
    ("package p\nfunc f() {\n\tgo (g())\n}\n", False), ("package p\nfunc f() {\n\tdefer g\n}\n", False),
    ("package p\nfunc f() {\n\tx := []int{1, 2, 3}[1:2:3]\n\ty := x[:]\n}\n", True),
    ("package p\nfunc f() {\n\tx := y[1::3]\n}\n", False), ("package p\nfunc f()\n{\n}\n", False),
    ("package p\nfunc f() {\n\tx := g(1,\n\t\t2)\n}\n", True), ("package p\nfunc f() {\n\tx := g(1,\n\t\t2\n\t)\n}\n", False),
    ("package p\nfunc f() { x := func(a int) int { return a }(1); _ = x }", True),
    ("package p\nfunc f() {\n\tvar x = [...]int{1}\n\ty := [...]int\n}\n", False),
    ("package p\nfunc f() {\n\ta, b := 1, 2\n\ta.b, c = 1, 2\n\ta, b.c := 1, 2\n}\n", False),
    ("package p\nfunc f() {\n\ta, b\n}\n", False),
    # types are values only as callee, argument, selector base, first index or under "*"
    ("package p\nvar x = []int\n", False), ("package p\nvar x = []int{} == map[int]int\n", False),
    ("package p\nvar x, y = (*[4]byte)(p), []byte(s)\nvar z = make(<-chan struct{}, 1)\nvar w = f[[]int](1)\n", True),
    ("package p\nvar x = -[]int(nil) + *(*int)(p) + *<-c\n", True), ("package p\nvar x = chan int\n", False),
    # tokens and line ends
    ("package p\nvar x = 1 // c", True), ("package p\nfunc f() { a..b }", False), ("package p\nfunc f() { x.5 }", False),
    ("package p\nvar x = 0b12\n", False), ("package p\nvar x = 0x_\n", False), ("package p\nvar x = 0b1.0\n", False),
    ("package p\nvar x = 1_0.0_1e1_0i + 00 + 0_0\n", True), ("package p\nvar x = '\\U00110000'\n", False),
    ("package p\nfunc f() {\n\treturn /*\n*/ 1\n}\n", True), ("package p\nfunc f() {\n\tx++ /* a */ /* b\n*/\n}\n", True),
    ("package p\nfunc f() {\n\tgoto\n}\n", True), ("package p\nfunc f() {\nL:\n}\n", True), ("package p\r\nvar x = 1\r\n", True),
    ("package p\nfunc f() {\n\tselect {\n\tcase a.b, c[0] = <-d:\n\tcase x := <-y:\n\t}\n}\n", True),
    ("package p\nfunc f() {\n\tselect {\n\tcase a, b, c = <-d:\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\tselect {\n\tcase a, b:\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\tswitch x := 1; x {\n\tcase 1, []int{2}[0]:\n\t}\n}\n", True),
    ("package p\nfunc f() {\n\tswitch x {\n\tcase []int:\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\tswitch x.(type) {\n\tcase 1:\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\tswitch x := y; x := z.(type) {\n\tcase nil, *T, (U), func() int:\n\t}\n}\n", True),
    ("package p\nfunc f() {\n\tswitch x := 1 {\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\t~x\n}\n", False), ("package p\nfunc f() {\n\tx = ~y\n\tif ~x {\n\t}\n\t-x\n}\n", True),
    # inside a clause, a statement ends with ";" unless it is the last one before "}"
    ("package p\nfunc f() {\n\tswitch {\n\tcase a: x() case b:\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\tswitch {\n\tcase a: x(); case b: y() }\n}\n", True),
    ("package p\nfunc f() {\n\tselect {\n\tdefault: L: case <-c:\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\tswitch x.(type) { case int: if a {} default: }\n}\n", False),
    ("package p\nfunc f(a, b.c) {}\n", True), ("package p\nfunc f(a b, c) {}\n", False), ("package p\nfunc () f() {}\n", True), ("package p\nfunc f() {\n\tswitch x = y.(type) {\n\t}\n}\n", False),
    ("package p\nfunc f() {\n\tfor k, v := range m {\n\t}\n\tfor k.x = range m {\n\t}\n\tfor range m {\n\t}\n}\n", True),
])
def test_constructs(go, text, ok):
    assert go.validate(text).ok == ok == (gofmt_error(text) is None), (go.validate(text).message, gofmt_error(text))


def _small_files(n: int):
    files = [p for p in go_corpus() if p.stat().st_size < 6_000][:n]
    assert len(files) == n
    return files


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_every_token_of_real_files(go, family, cache_dir):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    matcher = gm.compile(go, info, cache_dir=cache_dir).matcher()
    bm = np.zeros((info.vocab_size + 31) // 32, dtype=np.int32)
    stop = info.stop_token_ids[0]
    for path in _small_files(20):
        ids = tok.encode(path.read_text(encoding="utf-8"), add_special_tokens=False)
        matcher.reset()
        for i, t in enumerate(ids):
            matcher.fill_next_token_bitmask(bm)
            assert int(bm[t >> 5]) >> (t & 31) & 1, (family, path.name, tok.decode(ids[max(0, i - 20):i]))
            assert matcher.accept_token(t)
        matcher.fill_next_token_bitmask(bm)
        assert int(bm[stop >> 5]) >> (stop & 31) & 1, path.name


# Go's words for random walks (a walk over the whole vocabulary would rarely close a brace).
WORDS = {b"", b"package", b"p", b"func", b"f", b"(", b")", b"{", b"}", b"x", b":=", b"1", b"return", b"if", b"else",
         b"for", b"++", b"+", b";", b"==", b"<", b"int", b"var", b"=", b",", b"[", b"]", b"go", b"defer", b"chan",
         b"<-", b"struct", b"type", b"T", b".", b'"', b"switch", b"case", b"default", b":", b"//", b"range", b"*",
         b"&", b"map", b"string", b"0x1", b"'a'", b"/*", b"*/", b"..."}


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_random_walks_never_dead_end_and_stopped_ones_parse(go, family, cache_dir):
    info = tokenizer_info(family)
    matcher = gm.compile(go, info, cache_dir=cache_dir).matcher()
    rng = np.random.default_rng(13)
    ended = walks_parse(matcher, info, WORDS, rng, 150, go, gofmt_error, max_steps=80, stop_from=25)
    assert ended >= 40, ended


CLOSERS = {b"}", b")", b"]", b'"', b"1", b"*/", b"'a'", b""}  # what ends open constructs (b"": newlines)


def _pick_a_word(rng, info, tokens) -> int:
    """A word (a token's text without blanks), then one of its tokens: vocabularies hold from a few to a
    hundred tokens of blanks alone (the word b""), which would crowd out every other word."""
    words = sorted({info.token_bytes[t].strip() for t in tokens})
    word = words[rng.integers(len(words))]
    return int(rng.choice([t for t in tokens if info.token_bytes[t].strip() == word]))


def test_prompts_continue_inside_a_function_body(go, cache_dir):
    """MBGP prompts end inside a function body: accepted as a prefix, and walks from there go on and end."""
    info = tokenizer_info(BYTE_LEVEL)
    compiled = gm.compile(go, info, cache_dir=cache_dir)
    prompts_file = shared_corpus("go", "mbgp", "mbgp_release_v1.1.jsonl")
    prompts = [json.loads(line)["prompt"] for line in prompts_file.read_text(encoding="utf-8").splitlines()[:200:40]]
    assert len(prompts) == 5
    is_stop = np.zeros(info.vocab_size, bool)
    is_stop[list(info.stop_token_ids)] = True
    usable = np.zeros(info.vocab_size, bool)
    usable[: len(info.token_bytes)] = [b is not None and b.strip(b" \t\n") in WORDS for b in info.token_bytes]
    rng = np.random.default_rng(3)
    ended = 0
    for prompt in prompts:
        assert go.validate(prompt).prefix_ok and not go.validate(prompt).ok
        matcher = compiled.matcher()
        for _ in range(6):
            matcher.reset()
            assert matcher.accept_string(prompt)
            ids = []
            stopped = False
            for step in range(120):
                allowed = matcher.allowed_token_ids()
                assert len(allowed), prompt + decoded_text(info, ids).decode()
                stops, small = allowed[is_stop[allowed]], allowed[usable[allowed] & ~is_stop[allowed]]
                closing = [t for t in small if info.token_bytes[t].strip() in CLOSERS]
                if len(stops) and step > 10:
                    t = int(rng.choice(stops))
                elif step > 40 and closing:  # steer towards the end after a while
                    t = _pick_a_word(rng, info, closing)
                elif len(small):
                    t = _pick_a_word(rng, info, small)
                else:
                    t = int(rng.choice(allowed))
                assert matcher.accept_token(t)
                if is_stop[t]:
                    stopped = True
                    break
                ids.append(t)
            text = prompt + b"".join(info.token_bytes[i] for i in ids).decode("utf-8")
            if stopped:
                ended += 1
                assert gofmt_error(text) is None, (text[-300:], gofmt_error(text))
            else:
                assert go.validate(text).prefix_ok
    assert ended >= 10, ended
