"""grammask.decoding: compile tables, match tokens, apply masks, validate texts."""

from .bitmask import allocate_token_bitmask, apply_token_bitmask_inplace, unpack_bitmask
from .compiler import CompiledGrammar, compile
from .generation import generate, load_model
from .matcher import GrammarMatcher
from .processor import GrammarLogitsProcessor
from .validator import ValidationResult, validate

__all__ = ["CompiledGrammar", "GrammarLogitsProcessor", "GrammarMatcher", "generate", "load_model", "ValidationResult", "allocate_token_bitmask",
           "apply_token_bitmask_inplace", "compile", "unpack_bitmask", "validate"]
