"""grammask.decoding: compile tables, match tokens, apply masks, validate texts."""

import importlib as _importlib

__all__ = ["CompiledGrammar", "GrammarLogitsProcessor", "GrammarMatcher", "generate", "load_model", "ValidationResult", "allocate_token_bitmask",
           "apply_token_bitmask_inplace", "compile", "parse_tool_calls", "tool_call_spec", "unpack_bitmask", "validate"]

# Each public name's module, imported on first use (PEP 562): the validator needs neither torch nor
# transformers, and must not load them through this package.
_HOME = {
    "allocate_token_bitmask": "bitmask", "apply_token_bitmask_inplace": "bitmask", "unpack_bitmask": "bitmask",
    "CompiledGrammar": "compiler", "compile": "compiler",
    "generate": "generation", "load_model": "generation",
    "GrammarMatcher": "matcher",
    "GrammarLogitsProcessor": "processor",
    "parse_tool_calls": "tools", "tool_call_spec": "tools",
    "ValidationResult": "validator", "validate": "validator",
}


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
