"""grammask: exact grammar-constrained decoding for Hugging Face models.

    import grammask as gm
    g = gm.Grammar.builtin("json")
    info = gm.TokenizerInfo.from_huggingface(tokenizer)
    m = gm.compile(g, info).matcher()
    bm = gm.allocate_token_bitmask(1, info.vocab_size)
    m.fill_next_token_bitmask(bm); gm.apply_token_bitmask_inplace(logits, bm); m.accept_token(t)
"""

import importlib as _importlib
import os as _os

# A source checkout on PYTHONPATH (a git worktree, say): the subpackages live beside this folder, not in
# it, and must come from the same checkout rather than from wherever grammask is installed.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "decoding", "__init__.py")) and _checkout not in __path__:
    __path__.append(_checkout)

__version__ = "0.1.0"

__all__ = ["CompiledGrammar", "Grammar", "GrammarError", "GrammarLogitsProcessor", "GrammarMatcher",
           "GrammarWarning", "TokenizerError", "TokenizerInfo", "ValidationResult", "allocate_token_bitmask",
           "apply_token_bitmask_inplace", "compile", "generate", "load_model", "parse_tool_calls", "tool_call_spec"]

# Each public name's subpackage, imported on first use (PEP 562): validating a text never loads the
# decoding side (torch, transformers), and the command line decides its process settings before numpy
# loads (grammask/cli.py).
_HOME = {
    "Grammar": "grammar", "GrammarError": "grammar", "GrammarWarning": "grammar",
    "TokenizerError": "fsm", "TokenizerInfo": "fsm",
    "CompiledGrammar": "decoding", "GrammarLogitsProcessor": "decoding", "GrammarMatcher": "decoding",
    "ValidationResult": "decoding", "allocate_token_bitmask": "decoding", "apply_token_bitmask_inplace": "decoding",
    "compile": "decoding", "generate": "decoding", "load_model": "decoding",
    "parse_tool_calls": "decoding", "tool_call_spec": "decoding",
}
_SUBPACKAGES = ("decoding", "fsm", "grammar")


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is not None:
        value = getattr(_importlib.import_module(f".{home}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))
