"""Tool calls: OpenAI-style tool lists -> a structural-tag grammar, and the calls read back from the text.

Formats, as common chat templates have models write them:

    hermes        <tool_call>\\n{"name": "get_weather", "arguments": {...}}\\n</tool_call>   (Hermes, Qwen2.5/3)
                  free text around, any number of calls
    function_tag  <function=get_weather>{...}</function>   (Llama 3.1's custom-tool form) free text around
    llama3_json   {"name": "get_weather", "parameters": {...}}   (Llama 3.1/3.2 JSON tool calling): the
                  whole reply is one call
    mistral       [TOOL_CALLS][{"name": "get_weather", "arguments": {...}}, ...]   free text before, the
                  calls end the reply
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

FORMATS = ("hermes", "function_tag", "llama3_json", "mistral")


@dataclass(frozen=True)
class Tool:
    name: str
    parameters: dict
    description: str = ""


def read_tools(tools) -> list[Tool]:
    """OpenAI-style [{"type": "function", "function": {"name", "parameters", "description"}}] (the bare
    function objects are taken too); ValueError naming the entry that is malformed."""
    if not isinstance(tools, (list, tuple)) or not tools:
        raise ValueError("tools must be a non-empty list")
    out = []
    for i, entry in enumerate(tools):
        fn = entry.get("function", entry) if isinstance(entry, dict) else None
        if isinstance(entry, dict) and entry.get("type", "function") != "function":
            raise ValueError(f"tools[{i}]: type {entry.get('type')!r} is not 'function'")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ValueError(f"tools[{i}]: needs a function with a non-empty name")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise ValueError(f"tools[{i}] ({fn['name']}): parameters must be a JSON Schema object")
        out.append(Tool(fn["name"], params, fn.get("description", "")))
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"tools: a name appears twice: {sorted(n for n in names if names.count(n) > 1)[0]!r}")
    return out


def _call_schema(tools: list[Tool], arguments_key: str) -> dict:
    """One call of any of the tools: {"name": that tool's name, <arguments_key>: its parameters}."""
    return {"anyOf": [{"type": "object", "properties": {"name": {"const": t.name}, arguments_key: t.parameters},
                       "required": ["name", arguments_key], "additionalProperties": False} for t in tools]}


def tool_call_spec(tools, format: str = "hermes", *, required: bool = False, parallel: bool = True,
                   text: bool = True, reasoning_end: Optional[str] = None) -> dict:
    """The structural-tag specification (grammask's form) for calls to `tools` in `format`.
    required: at least one call; parallel=False: the reply ends after the first call; text=False: no
    free text, the reply is calls only (tool_choice="required" in OpenAI's terms, with required=True);
    reasoning_end (e.g. "</think>"): free thinking first, where the call tags are plain text."""
    ts = read_tools(tools)
    if format == "hermes":
        spec = {"structures": [{"begin": "<tool_call>", "content": _json(_call_schema(ts, "arguments")),
                                "end": "</tool_call>"}], "triggers": ["<tool_call>"]}
    elif format == "function_tag":
        spec = {"structures": [{"begin": f"<function={t.name}>", "content": _json(t.parameters), "end": "</function>"}
                               for t in ts], "triggers": ["<function="]}
    elif format == "llama3_json":
        spec = {"content": _json(_call_schema(ts, "parameters"))}
    elif format == "mistral":
        calls = {"type": "array", "items": _call_schema(ts, "arguments"), "minItems": 1}
        spec = {"structures": [{"begin": "[TOOL_CALLS]", "content": _json(calls), "end": ""}],
                "triggers": ["[TOOL_CALLS]"], "stop_after_first": True}
        parallel = True  # one [TOOL_CALLS] list holds them all
    else:
        raise ValueError(f"unknown tool-call format {format!r}; available: {', '.join(FORMATS)}")
    if "structures" in spec:
        spec["at_least_one"] = required
        spec["free_text"] = text
        if not parallel:
            spec["stop_after_first"] = True
    if reasoning_end is not None:
        spec["reasoning"] = {"end": reasoning_end}
    return spec


def _json(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": schema}


class ToolCall(NamedTuple):
    name: str
    arguments: Any


class ToolReply(NamedTuple):
    """What generate(..., tools=...) returns: the whole text, the calls in it, and the text outside them."""
    text: str
    calls: list
    content: str


def parse_tool_calls(text: str, format: str = "hermes", *, reasoning_end: Optional[str] = None) -> ToolReply:
    """The calls `text` holds in `format`: each open tag followed by a close tag with a JSON call between
    (the first such close tag: a string in the arguments may hold one). Open tags without a call after
    them (unconstrained text, or a call cut off at the end) stay in the content."""
    body_from = 0
    if reasoning_end is not None:
        cut = text.find(reasoning_end)
        body_from = len(text) if cut < 0 else cut + len(reasoning_end)
    body = text[body_from:]
    calls: list[ToolCall] = []
    content: list[str] = [text[:body_from]]
    if format == "llama3_json":
        call = _loads(body)
        if isinstance(call, dict) and "name" in call:
            return ToolReply(text, [ToolCall(call["name"], call.get("parameters"))], text[:body_from])
        return ToolReply(text, [], text)
    if format == "mistral":
        at = body.find("[TOOL_CALLS]")
        items = _loads(body[at + len("[TOOL_CALLS]"):]) if at >= 0 else None
        if isinstance(items, list):
            calls = [ToolCall(c["name"], c.get("arguments")) for c in items if isinstance(c, dict) and "name" in c]
            return ToolReply(text, calls, text[:body_from] + body[:at])
        return ToolReply(text, [], text)
    if format not in ("hermes", "function_tag"):
        raise ValueError(f"unknown tool-call format {format!r}; available: {', '.join(FORMATS)}")
    open_tag, close_tag = ("<tool_call>", "</tool_call>") if format == "hermes" else ("<function=", "</function>")
    pos = 0
    while True:
        start = body.find(open_tag, pos)
        if start < 0:
            content.append(body[pos:])
            break
        # The call ends at the first close tag before which its JSON is complete: a string in the
        # arguments may hold the close tag itself.
        end, parsed = start, None
        while parsed is None:
            end = body.find(close_tag, end + 1)
            if end < 0:
                break
            parsed = _read_call(format, body[start + len(open_tag):end])
        if parsed is None:  # not a call (unconstrained text), or a cut-off one: text, up to the next open tag
            following = body.find(open_tag, start + 1)
            if following < 0:
                content.append(body[pos:])
                break
            content.append(body[pos:following])
            pos = following
            continue
        content.append(body[pos:start])
        calls.append(parsed)
        pos = end + len(close_tag)
    return ToolReply(text, calls, "".join(content))


def _read_call(format: str, inner: str) -> Optional[ToolCall]:
    if format == "hermes":
        call = _loads(inner)
        return ToolCall(call["name"], call.get("arguments")) if isinstance(call, dict) and "name" in call else None
    name, sep, args = inner.partition(">")
    value = _loads(args) if sep else None
    return ToolCall(name, value) if sep and value is not None else None


def _loads(s: str):
    try:
        return json.loads(s)
    except ValueError:
        return None


def tools_system_prompt(tools, format: str = "hermes") -> str:
    """Instructions for a chat template that ignores `tools` (the default model's does): the tools and how
    to call them, in the words Hermes-style templates use."""
    ts = read_tools(tools)
    listing = "\n".join(json.dumps({"type": "function", "function": {"name": t.name, "description": t.description,
                                                                      "parameters": t.parameters}}) for t in ts)
    how = {
        "hermes": 'For each call, return a JSON object with the function name and arguments within <tool_call>'
                  '</tool_call> tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
                  '</tool_call>',
        "function_tag": "To call a function, write <function=NAME>{arguments as JSON}</function>.",
        "llama3_json": 'Respond with a JSON object {"name": function name, "parameters": arguments object}.',
        "mistral": 'To call functions, write [TOOL_CALLS] then a JSON list of {"name": ..., "arguments": {...}}.',
    }[format]
    return ("You may call one or more functions to assist with the user query.\n\nYou are provided with function "
            f"signatures within <tools></tools> XML tags:\n<tools>\n{listing}\n</tools>\n\n{how}")
