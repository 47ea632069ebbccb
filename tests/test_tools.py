"""Tool calls (grammask.decoding.tools and generate(tools=...)): every format's grammar accepts the calls
its chat templates write and nothing else; completed calls validate under their tool's schema
(jsonschema, the outside oracle); the calls are read back from the text."""

from __future__ import annotations

import numpy as np
import pytest
from jsonschema import Draft202012Validator

import grammask as gm
from conftest import BYTE_LEVEL, SENTENCEPIECE, tokenizer_info
from grammask.decoding.tools import ToolCall, parse_tool_calls, read_tools, tool_call_spec

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "calculator", "parameters": {
        "type": "object", "properties": {"expression": {"type": "string"}, "precision": {"type": "integer",
                                                                                        "minimum": 0}},
        "required": ["expression"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "search", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}, "city": {"type": "string"}},
        "required": ["query"], "additionalProperties": False}}},
]
VALIDATORS = {t["function"]["name"]: Draft202012Validator(t["function"]["parameters"]) for t in TOOLS}

# format -> (valid text, the calls in it, the content outside them), invalid texts
CASES = {
    "hermes": ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}\n'
               '</tool_call>\n<tool_call>{"name": "calculator", "arguments": {"expression": "2+2"}}</tool_call> ok',
               [ToolCall("get_weather", {"city": "Oslo", "unit": "celsius"}), ToolCall("calculator", {"expression": "2+2"})],
               "Let me check.\n\n ok",
               ['<tool_call>{"name": "get_weather", "arguments": {"town": "Oslo"}}</tool_call>',
                '<tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call>',
                '<tool_call>{"name": "calculator", "arguments": {"expression": "1", "precision": -1}}</tool_call>',
                '<tool_call>{"name": "search", "arguments": {"query": "x"}, "extra": 1}</tool_call>']),
    "function_tag": ('I will search. <function=search>{"query": "city", "city": "query"}</function>',
                     [ToolCall("search", {"query": "city", "city": "query"})], "I will search. ",
                     ['<function=search>{"city": "x"}</function>', '<function=find>{"query": "x"}</function>',
                      '<function=get_weather>{"city": "x", "unit": "kelvin"}</function>']),
    "llama3_json": ('{"name": "calculator", "parameters": {"expression": "6*7", "precision": 2}}',
                    [ToolCall("calculator", {"expression": "6*7", "precision": 2})], "",
                    ['Sure: {"name": "calculator", "parameters": {"expression": "1"}}',
                     '{"name": "calculator", "arguments": {"expression": "1"}}']),
    "mistral": ('Calling. [TOOL_CALLS][{"name": "search", "arguments": {"query": "news"}}, '
                '{"name": "get_weather", "arguments": {"city": "Rome"}}]',
                [ToolCall("search", {"query": "news"}), ToolCall("get_weather", {"city": "Rome"})], "Calling. ",
                ['[TOOL_CALLS][]', '[TOOL_CALLS]{"name": "search", "arguments": {"query": "x"}}',
                 '[TOOL_CALLS][{"name": "search", "arguments": {"query": "x"}}] more text']),
}


@pytest.mark.parametrize("fmt", list(CASES))
def test_formats(fmt):
    text, calls, content, invalid = CASES[fmt]
    g = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, fmt))
    assert g.validate(text).ok, g.validate(text).message
    reply = parse_tool_calls(text, fmt)
    assert reply.calls == calls and reply.content == content and reply.text == text
    for call in reply.calls:
        assert VALIDATORS[call.name].is_valid(call.arguments)
    for bad in invalid:
        assert not g.validate(bad).ok, bad


def test_options():
    one = '<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>'
    required = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, required=True))
    assert not required.validate("no call at all").ok and required.validate("x " + one).ok
    single = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, parallel=False))
    assert single.validate(one).ok and not single.validate(one + one).prefix_ok
    bare = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, text=False, required=True))
    assert bare.validate(one + one).ok and not bare.validate("Hi " + one).prefix_ok and not bare.validate("").ok
    thinking = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, reasoning_end="</think>"))
    text = "I might use <tool_call>{broken</tool_call> here.</think>" + one
    assert thinking.validate(text).ok
    assert parse_tool_calls(text, reasoning_end="</think>").calls == [ToolCall("search", {"query": "a"})]


@pytest.mark.parametrize("tools, words", [
    ([], "non-empty list"), ([{"type": "retrieval"}], "not 'function'"), ([{"function": {"name": ""}}], "name"),
    ([{"function": {"name": "a", "parameters": []}}], "JSON Schema object"),
    ([{"function": {"name": "a"}}, {"function": {"name": "a"}}], "appears twice"),
])
def test_bad_tools_say_what(tools, words):
    with pytest.raises(ValueError, match=words):
        read_tools(tools)


def test_unknown_format():
    with pytest.raises(ValueError, match="available: hermes"):
        tool_call_spec(TOOLS, "xml")


@pytest.mark.parametrize("family", [BYTE_LEVEL, SENTENCEPIECE])
def test_random_calls_validate(family):
    """Random walks under the Hermes grammar (the reply must be one call): at each step a random allowed
    token, half the time among the punctuation and digit tokens (so strings and objects get closed), and
    now and then the tokens of the end tag when the mask allows them. Every walk that reaches the stop
    token holds one call, valid under the schema of the tool it names."""
    info = tokenizer_info(family)
    c = gm.compile(gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, "hermes", text=False, required=True,
                                                                 parallel=False)), info)
    n = info.vocab_size
    stop = np.zeros(n, bool)
    stop[list(info.stop_token_ids)] = True
    punct = np.array([i < len(info.token_bytes) and bool(info.token_bytes[i])
                      and set(info.token_bytes[i]) <= set(b'{}[]":, 0123456789') for i in range(n)])
    by_bytes: dict = {}
    for t, b in enumerate(info.token_bytes):
        if b:
            by_bytes.setdefault(b, []).append(t)
    rng = np.random.default_rng(5)
    finished = 0
    for _ in range(30):
        m = c.matcher()
        ids: list[int] = []
        plan = b""
        for _ in range(400):
            allowed = m.allowed_token_ids()
            mask = np.zeros(n, bool)
            mask[allowed] = True
            if mask[stop].any() and (rng.random() < 0.5 or mask[stop].sum() == len(allowed)):
                assert m.accept_token(int(np.flatnonzero(stop & mask)[0]))
                break
            if not plan and rng.random() < 0.2:
                plan = rng.choice([b"</tool_call>", b"\n</tool_call>", b"<tool_call>\n"])
            options = [t for k in range(1, len(plan) + 1) for t in by_bytes.get(plan[:k], ()) if mask[t]]
            if options:
                t = int(rng.choice(options))
                plan = plan[len(info.token_bytes[t]):]
            else:
                plan = b""
                pool = allowed[punct[allowed]] if rng.random() < 0.5 else allowed[~stop[allowed]]
                if len(pool) == 0:
                    pool = allowed[~stop[allowed]]
                assert len(pool), text_of(info, ids)  # a mask is never empty
                t = int(rng.choice(pool))
            assert m.accept_token(t)
            ids.append(t)
        if not m.is_terminated():
            continue
        text = text_of(info, ids)
        reply = parse_tool_calls(text, "hermes")
        assert len(reply.calls) == 1 and reply.content.strip() == "", text
        call = reply.calls[0]
        assert VALIDATORS[call.name].is_valid(call.arguments), text
        finished += 1
    assert finished >= 5


def text_of(info, ids) -> str:
    text = b"".join(info.token_bytes[t] for t in ids).decode("utf-8")
    return text[1:] if info.strips_leading_space and text.startswith(" ") else text


def test_generate_with_tools():
    """The default model, asked for a call, writes one that validates (the grammar makes the reply a call)."""
    model, tok = gm.load_model()
    grammar = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, text=False, required=True, parallel=False))
    reply = gm.generate(model, tok, "What's the weather in Paris?", grammar, tools=TOOLS, max_new_tokens=48,
                        jump_forward=True)
    assert len(reply.calls) == 1, reply.text
    assert VALIDATORS[reply.calls[0].name].is_valid(reply.calls[0].arguments)
    assert grammar.validate(reply.text).ok
    with pytest.raises(ValueError, match="builds its own grammar"):
        gm.generate(model, tok, "x", "python", tools=TOOLS)
