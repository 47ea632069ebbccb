"""Structural tags (Grammar.from_structural_tag): free text with triggered structures, exact across the
boundaries, on two tokenizer families.

Oracles: json.loads and jsonschema for every completed structure; for free text, the tokens themselves
(every token whose bytes keep the text valid UTF-8 and write no trigger must be allowed); inside a
structure, a matcher of the content's grammar alone (the same JSON Schema, compiled on its own).
"""

from __future__ import annotations

import codecs
import json
import random

import numpy as np
import pytest
from jsonschema import Draft202012Validator

import grammask as gm
from conftest import BYTE_LEVEL, SENTENCEPIECE, load_tokenizer, tokenizer_info, walk_text

TRIGGER, END = "<tool_call>", "</tool_call>"
ARGS = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"], "additionalProperties": False}
SPEC = {"type": "structural_tag", "structures": [{"begin": TRIGGER, "schema": ARGS, "end": END}],
        "triggers": [TRIGGER]}
FAMILIES = [BYTE_LEVEL, SENTENCEPIECE]


@pytest.fixture(scope="module")
def grammar():
    return gm.Grammar.from_structural_tag(SPEC)


_compiled: dict = {}


def compiled(grammar_or_spec, family: str):
    key = (json.dumps(grammar_or_spec, sort_keys=True) if isinstance(grammar_or_spec, dict) else id(grammar_or_spec),
           family)
    if key not in _compiled:
        g = (gm.Grammar.from_structural_tag(grammar_or_spec) if isinstance(grammar_or_spec, dict)
             else grammar_or_spec)
        _compiled[key] = gm.compile(g, tokenizer_info(family))
    return _compiled[key]


# -- what the spec forms accept ---------------------------------------------------------------------------

VALID = ["", "hello", "text that ends in part of a trigger <tool_c", "<tool_call>{\"city\": \"Oslo\"}</tool_call>",
         'a <tool_call>\n{"city": "x", "days": 2}\n</tool_call> b <tool_call>{"city": "</tool_call>"}</tool_call>',
         "<tool <tool_cal> <<tool_call>{\"city\": \"\"}</tool_call>"]
INVALID_PREFIX = ['x <tool_call>[1]', 'x <tool_call>{"town": 1}', '<tool_call>{"city": "a"}</tool_calx',
                  '<tool_call>{"city": "a"} trailing </tool_call>']
INCOMPLETE = ['x <tool_call>{"city": "a"}', "<tool_call>", '<tool_call>{"city": "a"}</tool_call']


@pytest.mark.parametrize("text", VALID)
def test_valid_texts(grammar, text):
    assert grammar.validate(text).ok, grammar.validate(text).message


@pytest.mark.parametrize("text", INVALID_PREFIX)
def test_invalid_texts(grammar, text):
    r = grammar.validate(text)
    assert not r.ok and not r.prefix_ok, text


@pytest.mark.parametrize("text", INCOMPLETE)
def test_open_structure_is_not_complete(grammar, text):
    r = grammar.validate(text)
    assert not r.ok and r.prefix_ok


def test_forms_agree(grammar):
    """XGrammar's triggered_tags format and the JSON text of the first form define the same language."""
    triggered = {"type": "structural_tag", "format": {
        "type": "triggered_tags", "triggers": [TRIGGER],
        "tags": [{"begin": TRIGGER, "content": {"type": "json_schema", "json_schema": ARGS}, "end": END}]}}
    for g in (gm.Grammar.from_structural_tag(triggered), gm.Grammar.from_structural_tag(json.dumps(SPEC))):
        for text in VALID + INVALID_PREFIX + INCOMPLETE:
            assert g.validate(text).ok == grammar.validate(text).ok, text
            assert g.validate(text).prefix_ok == grammar.validate(text).prefix_ok, text


def test_counts_and_free_text_options():
    call = '<tool_call>{"city": "a"}</tool_call>'
    base = dict(SPEC)
    one = gm.Grammar.from_structural_tag(dict(base, at_least_one=True))
    assert not one.validate("just text").ok and one.validate("just text " + call).ok
    first = gm.Grammar.from_structural_tag(dict(base, stop_after_first=True))
    assert first.validate("x " + call).ok and not first.validate(call + " more").prefix_ok
    assert first.validate("no call").ok
    exactly = gm.Grammar.from_structural_tag(dict(base, at_least_one=True, stop_after_first=True))
    assert exactly.validate(call).ok and not exactly.validate("").ok and not exactly.validate(call + call).prefix_ok
    bare = gm.Grammar.from_structural_tag(dict(base, free_text=False))
    assert bare.validate(call + call).ok and bare.validate("").ok
    assert not bare.validate("x" + call).prefix_ok and not bare.validate(call + " ").prefix_ok


def test_structures_lexed_apart():
    """Two structures whose contents would fight in one lexer: a key of one is a string value of the other,
    and a regex content whose characters are JSON punctuation. Each keeps its own language."""
    spec = {"structures": [
        {"begin": "<function=search>", "content": {"type": "json_schema", "json_schema": {
            "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
         "end": "</function>"},
        {"begin": "<function=weather>", "content": {"type": "json_schema", "json_schema": {
            "type": "object", "properties": {"city": {"enum": ["query", "Oslo"]}}, "required": ["city"]}},
         "end": "</function>"},
        {"begin": "<function=code>", "content": {"type": "regex", "pattern": r"[{}\":a-z]+"}, "end": "</function>"},
        {"begin": "<function=raw>", "content": {"type": "any_text"}, "end": "</function>"}],
        "triggers": ["<function="]}
    g = gm.Grammar.from_structural_tag(spec)
    ok = ['<function=search>{"query": "city"}</function>', '<function=weather>{"city": "query"}</function>',
          '<function=code>{"query":}</function>', '<function=raw>anything {[ <function=x> goes</function>',
          'a<function=search>{"query": "Oslo"}</function>b<function=code>x</function>']
    bad = ['<function=weather>{"city": "city"}</function>', '<function=search>{"city": "x"}</function>',
           '<function=code>{"query": 1}</function>', '<function=other>{}</function>']
    for text in ok:
        assert g.validate(text).ok, (text, g.validate(text).message)
    for text in bad:
        assert not g.validate(text).prefix_ok, text


def test_reasoning_then_structures():
    spec = dict(SPEC, reasoning={"begin": "<think>", "end": "</think>"})
    g = gm.Grammar.from_structural_tag(spec)
    assert g.validate('<think>maybe <tool_call>[not json</tool_call></think>ok <tool_call>{"city": "a"}</tool_call>').ok
    assert not g.validate('<think>x</think><tool_call>[').prefix_ok
    assert not g.validate("no think tag").prefix_ok
    assert not g.validate("<think>still thinking").ok  # the reply may not end while thinking


def test_reasoning_then_grammar_to_the_end():
    g = gm.Grammar.from_structural_tag({"reasoning": {"end": "</think>"},
                                        "content": {"type": "builtin", "name": "json_object"}})
    assert g.validate('Let me think. {"a": 1}</think>{"answer": 42}').ok
    assert not g.validate('x</think>{"answer": 42} and more').prefix_ok
    assert not g.validate("x</think>[1]").prefix_ok


@pytest.mark.parametrize("spec, words", [
    ("not json", "not JSON"),
    ({"structures": []}, "non-empty list"),
    ({"structures": [{"begin": "<a>", "schema": {}, "end": "</a>"}]}, "needs triggers"),
    ({"structures": [{"begin": "<a>", "schema": {}, "end": "</a>"}], "triggers": ["<b>"]}, "starts with no trigger"),
    ({"structures": [{"begin": "<a>", "schema": {}, "end": "</a>"}], "triggers": ["<a>", "<a"]}, "contains"),
    ({"structures": [{"begin": "<a>", "schema": {}, "end": ""}], "triggers": ["<a>"]}, "empty end"),
    ({"structures": [{"begin": "<a>", "content": {"type": "python"}, "end": "</a>"}], "triggers": ["<a>"]},
     "is not one of"),
    ({"structures": [{"begin": "<a>", "content": {"type": "builtin", "name": "python"}, "end": "</a>"}],
      "triggers": ["<a>"]}, "only json and json_object"),
    ({"structures": [{"begin": "<a>", "content": {"type": "regex", "pattern": "[a-z<]+"}, "end": "<"}],
      "triggers": ["<a>"]}, "end string"),
    ({"format": {"type": "sequence"}}, "not supported"),
    ({"structures": [{"begin": "<a>", "schema": {}, "end": "</a>", "extra": 1}], "triggers": ["<a>"]}, "unknown field"),
])
def test_bad_specs_say_what(spec, words):
    with pytest.raises(gm.GrammarError, match=words):
        gm.Grammar.from_structural_tag(spec)


# -- masks: random walks, free text checked token by token ------------------------------------------------

def _split_structures(text: str):
    """Reference segmentation: (free texts, completed contents, open content or None). A structure opens
    at the first trigger; it closes at the first end tag before which the content is a JSON value."""
    free, done = [], []
    pos = 0
    while True:
        at = text.find(TRIGGER, pos)
        if at < 0:
            free.append(text[pos:])
            return free, done, None
        free.append(text[pos:at])
        body_from = at + len(TRIGGER)
        close = body_from
        while True:
            close = text.find(END, close)
            if close < 0:
                return free, done, text[body_from:]
            try:
                json.loads(text[body_from:close])
                break
            except ValueError:
                close += 1
        done.append(text[body_from:close])
        pos = close + len(END)


class Vocab:
    """Per-token facts the free-text check needs, computed once per family."""

    def __init__(self, info: gm.TokenizerInfo):
        self.info = info
        n = info.vocab_size
        self.bytes = [info.token_bytes[i] if i < len(info.token_bytes) else None for i in range(n)]
        self.stop = np.zeros(n, bool)
        self.stop[list(info.stop_token_ids)] = True
        # tokens that hold the trigger's last character: only they can complete a trigger
        last = TRIGGER[-1].encode()
        self.may_complete = np.array([b is not None and last in b for b in self.bytes])
        # tokens that are valid UTF-8 when the text so far ends on a character boundary
        self.clean = np.array([b is not None and len(b) > 0 and _utf8_prefix(b) for b in self.bytes])
        self.by_bytes: dict = {}
        for t, b in enumerate(self.bytes):
            if b:
                self.by_bytes.setdefault(b, []).append(t)
        self.no_lt = np.array([b is not None and b"<" not in b for b in self.bytes])
        self.byte_token = {b[0]: t for t, b in enumerate(self.bytes) if b is not None and len(b) == 1}


def _utf8_prefix(b: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(b, final=False)
        return True
    except UnicodeDecodeError:
        return False


_vocabs: dict = {}


def vocab(family: str) -> Vocab:
    if family not in _vocabs:
        _vocabs[family] = Vocab(tokenizer_info(family))
    return _vocabs[family]


def _ends_on_boundary(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _text_of(info, ids) -> bytes:
    out = b"".join(info.token_bytes[i] for i in ids)
    return out[1:] if info.strips_leading_space and out.startswith(b" ") else out


def _plan_pieces(rng) -> str:
    """A target the walk steers toward now and then: a trigger, a whole call, an end tag, near-misses."""
    call = json.dumps({"city": rng.choice(["Oslo", "</tool_call>", "<tool_call>", "a\\b"]),
                       **({"days": rng.randint(1, 9)} if rng.random() < 0.5 else {})})
    return rng.choice([TRIGGER, TRIGGER + call + END, " <tool_c", "<tool", END, "\n" + TRIGGER + "\n" + call + "\n" + END])


def _walk(c, voc: Vocab, content: gm.CompiledGrammar, rng, steps: int):
    """One guided random walk; asserts every mask against the oracles. Returns the text's bytes."""
    info = voc.info
    m = c.matcher()
    cm = content.matcher()  # the content grammar alone, fed the open structure's text
    ids: list[int] = []
    plan = ""
    for _ in range(steps):
        allowed = m.allowed_token_ids()
        mask = np.zeros(info.vocab_size, bool)
        mask[allowed] = True
        data = _text_of(info, ids)
        text = data.decode("utf-8", "replace")
        free, done, open_content = _split_structures(text)
        if open_content is None and _ends_on_boundary(data):
            # free text: every clean token that cannot complete a trigger is allowed, and the stop token
            must = voc.clean & ~voc.may_complete
            missing = np.flatnonzero(must & ~mask)
            assert missing.size == 0, (text[-60:], [info.token_bytes[i] for i in missing[:5]])
            assert mask[voc.stop].all()
        elif open_content is not None:
            assert not mask[voc.stop].any(), text[-60:]  # never stop inside a structure
            # (a SentencePiece matcher takes a leading space of its whole text for the one the decoder
            # drops: the content grammar alone cannot stand in for a content that starts with one)
            spaced = info.strips_leading_space and open_content[:1] == " "
            if open_content and not spaced and END[:1] not in open_content and _ends_on_boundary(data):
                # inside the content: the same tokens as the content grammar alone (those without '<',
                # which could begin the end tag)
                cm.reset()  # fed token by token, one byte each (accept_string leaves the matcher "at the start")
                for byte in open_content.encode():
                    assert cm.accept_token(voc.byte_token[byte])
                ref = np.zeros(info.vocab_size, bool)
                ref[cm.allowed_token_ids()] = True
                diff = np.flatnonzero((mask ^ ref) & voc.no_lt & ~voc.stop)
                assert diff.size == 0, (text[-60:], [(voc.bytes[i], bool(mask[i])) for i in diff[:6]])
        # next token: follow the plan when the mask allows a token that is a prefix of it, else random
        if not plan and rng.random() < 0.15:
            plan = _plan_pieces(rng)
        t = None
        if plan:
            pb = plan.encode()
            options = [t for k in range(1, len(pb) + 1) for t in voc.by_bytes.get(pb[:k], ()) if mask[t]]
            if options:
                t = int(rng.choice(options))
                plan = pb[len(voc.bytes[t]):].decode("utf-8", "ignore")
            else:
                plan = ""
        if t is None:
            nonstop = allowed[~voc.stop[allowed]]
            if len(nonstop) == 0 or (mask[voc.stop].any() and rng.random() < 0.02):
                assert m.accept_token(int(np.flatnonzero(voc.stop)[0]))
                return _text_of(info, ids), True
            t = int(rng.choice(nonstop))
        assert m.accept_token(t)
        ids.append(t)
    return _text_of(info, ids), False


@pytest.mark.parametrize("family", FAMILIES)
def test_random_walks(grammar, family):
    c = compiled(grammar, family)
    content = gm.compile(gm.Grammar.from_json_schema(ARGS), tokenizer_info(family))
    voc = vocab(family)
    check = Draft202012Validator(ARGS)
    rng = random.Random(23)
    np_rng = np.random.default_rng(23)
    structures = 0
    for _ in range(12):
        data, stopped = _walk(c, voc, content, _Rng(rng, np_rng), steps=120)
        text = data.decode("utf-8", "replace")
        free, done, open_content = _split_structures(text)
        for body in done:
            assert check.is_valid(json.loads(body)), body
        structures += len(done)
        for piece in free:
            assert TRIGGER not in piece
        if stopped:
            assert open_content is None and grammar.validate(data).ok
    assert structures >= 5  # the walks did reach calls


class _Rng:
    """random.Random for decisions, numpy for picks from large arrays."""

    def __init__(self, rng, np_rng):
        self.random, self.randint, self._np = rng.random, rng.randint, np_rng

    def choice(self, seq):
        return seq[int(self._np.integers(len(seq)))]


# -- tokens at the boundaries -------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_token_crossing_the_trigger(grammar, family):
    """After "<tool_call" (the trigger but its last character), each token that begins with ">" is
    allowed exactly when what follows the trigger in it can begin the call: the content grammar alone,
    after optional whitespace, decides."""
    c = compiled(grammar, family)
    info = tokenizer_info(family)
    m = c.matcher()
    assert m.accept_string("Let me check <tool_call")
    allowed = set(m.allowed_token_ids().tolist())
    content = gm.Grammar.from_json_schema(ARGS)
    seen = {True: 0, False: 0}
    for t, b in enumerate(info.token_bytes):
        if not b or not b.startswith(b">") or not _utf8_prefix(b):
            continue
        rest = b[1:]
        expected = content.validate(rest).prefix_ok
        assert (t in allowed) == expected, (b, expected)
        seen[expected] += 1
    assert seen[True] and seen[False], seen  # both kinds exist in the vocabulary


@pytest.mark.parametrize("family", FAMILIES)
def test_trigger_split_over_many_tokens(grammar, family):
    """The trigger written one character per token (the most split), then a byte the content forbids."""
    c = compiled(grammar, family)
    info = tokenizer_info(family)
    single = {b: t for t, b in enumerate(info.token_bytes) if b is not None and len(b) == 1}
    m = c.matcher()
    assert m.accept_string("free text ")
    for ch in TRIGGER.encode():
        t = single[bytes([ch])]
        assert t in m.allowed_token_ids()
        assert m.accept_token(t)
    allowed = set(m.allowed_token_ids().tolist())
    assert single[b"{"] in allowed and single[b"\n"] in allowed
    assert single[b"["] not in allowed and single[b"x"] not in allowed
    assert not set(info.stop_token_ids) & allowed
    # and the tokenizer's own split of a call, token by token
    tok = load_tokenizer(family)
    walk_text(c.matcher(), tok, 'ok<tool_call>{"city": "Oslo", "days": 3}</tool_call>bye')


@pytest.mark.parametrize("family", FAMILIES)
def test_trigger_inside_thinking_is_free(family):
    spec = dict(SPEC, reasoning={"end": "</think>"})
    c = compiled(spec, family)
    info = tokenizer_info(family)
    single = {b: t for t, b in enumerate(info.token_bytes) if b is not None and len(b) == 1}
    m = c.matcher()
    assert m.accept_string("I could write <tool_call>")
    allowed = set(m.allowed_token_ids().tolist())
    assert single[b"["] in allowed and single[b"x"] in allowed  # still thinking: free text
    assert not set(info.stop_token_ids) & allowed  # and the reply may not end while thinking
    assert m.accept_string("[oops</tool_call> done.</think> now <tool_call>")
    allowed = set(m.allowed_token_ids().tolist())
    assert single[b"["] not in allowed and single[b"{"] in allowed


def test_free_text_state_stays_bounded(grammar):
    """Trigger search keeps no memory of the text: after 20,000 characters of free text (near-miss
    triggers included) the matcher is in the same lexer state as after a few."""
    c = compiled(grammar, BYTE_LEVEL)
    short, long_ = c.matcher(), c.matcher()
    assert short.accept_string("a <tool")
    assert long_.accept_string(("words and <tool_cal near misses " * 625) + "a <tool")
    assert short._core.lex_state == long_._core.lex_state
    assert np.array_equal(short.allowed_token_ids(), long_.allowed_token_ids())


def test_lark_content_against_lark():
    """A user's Lark grammar as the content (imports, an alias, %ignore, anonymous literals): the texts
    Lark's own parser accepts are exactly the calls the structural grammar accepts."""
    from lark import Lark
    from lark.exceptions import LarkError

    lark_text = """
start: expr
?expr: term (("+" | "-") term)*
?term: NUMBER | NAME | "(" expr ")"
%import common.NUMBER
%import common.CNAME -> NAME
%import common.WS
%ignore WS
"""
    reference = Lark(lark_text, parser="lalr")
    g = gm.Grammar.from_structural_tag({"structures": [{"begin": "<calc>", "end": "</calc>",
                                                        "content": {"type": "grammar", "grammar": lark_text}}],
                                        "triggers": ["<calc>"]})
    for text in ["1 + x", "(a-2)", " 3.5 ", "1 +", "+", "a b", "((x))", "(x", "x1 - y_2 + 7", "", "1 + (2"]:
        try:
            reference.parse(text)
            expected = True
        except LarkError:
            expected = False
        assert g.validate(f"say <calc>{text}</calc> done").ok == expected, text
