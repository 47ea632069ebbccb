"""grammask: exact grammar-constrained decoding for Hugging Face models.

    import grammask as gm
    g = gm.Grammar.builtin("json")
    info = gm.TokenizerInfo.from_huggingface(tokenizer)
    m = gm.compile(g, info).matcher()
    bm = gm.allocate_token_bitmask(1, info.vocab_size)
    m.fill_next_token_bitmask(bm); gm.apply_token_bitmask_inplace(logits, bm); m.accept_token(t)
"""

from .decoding import (CompiledGrammar, GrammarLogitsProcessor, GrammarMatcher, ValidationResult,
                       allocate_token_bitmask, apply_token_bitmask_inplace, compile, generate, load_model)
from .fsm import TokenizerError, TokenizerInfo
from .grammar import Grammar, GrammarError, GrammarWarning

__version__ = "0.1.0"

__all__ = ["CompiledGrammar", "Grammar", "GrammarError", "GrammarLogitsProcessor", "GrammarMatcher",
           "GrammarWarning", "TokenizerError", "TokenizerInfo", "ValidationResult", "allocate_token_bitmask",
           "apply_token_bitmask_inplace", "compile", "generate", "load_model"]
