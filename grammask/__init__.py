"""grammask: exact grammar-constrained decoding for Hugging Face models.

    import grammask as gm
    g = gm.Grammar.builtin("json")
    info = gm.TokenizerInfo.from_huggingface(tokenizer)
    m = gm.compile(g, info).matcher()
    bm = gm.allocate_token_bitmask(1, info.vocab_size)
    m.fill_next_token_bitmask(bm); gm.apply_token_bitmask_inplace(logits, bm); m.accept_token(t)
"""

import os as _os

# A source checkout on PYTHONPATH (a git worktree, say): the subpackages live beside this folder, not in
# it, and must come from the same checkout rather than from wherever grammask is installed.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "decoding", "__init__.py")) and _checkout not in __path__:
    __path__.append(_checkout)

from .decoding import (CompiledGrammar, GrammarLogitsProcessor, GrammarMatcher, ValidationResult,
                       allocate_token_bitmask, apply_token_bitmask_inplace, compile, generate, load_model)
from .fsm import TokenizerError, TokenizerInfo
from .grammar import Grammar, GrammarError, GrammarWarning

__version__ = "0.1.0"

__all__ = ["CompiledGrammar", "Grammar", "GrammarError", "GrammarLogitsProcessor", "GrammarMatcher",
           "GrammarWarning", "TokenizerError", "TokenizerInfo", "ValidationResult", "allocate_token_bitmask",
           "apply_token_bitmask_inplace", "compile", "generate", "load_model"]
