"""JSON Schema (draft 2020-12, common draft-07 spellings) -> a Lark grammar for the engine.

Exactness first: every keyword that constrains instances is either enforced exactly by the grammar or
refused with a GrammarError naming the keyword and its JSON pointer. The grammar may be narrower than
the schema (documented below), never wider.

Narrower by design:
- an object of more than ANY_ORDER_MEMBERS listed properties has them in schema order (required and
  optional alike; optional ones may be left out), and so do all objects of an anyOf/oneOf merged in
  schema order (object_unions.py: in any order its product machine would pass MAX_UNION_STATES);
  other keys (when additionalProperties allows them) come anywhere in between;
- strings use one spelling per ASCII character (as json.dumps writes it; no \\/ and no \\u for
  printable ASCII, lowercase hex), non-ASCII raw or as \\uxxxx;
- integers without fraction or exponent; enum/const values spelled as json.dumps spells them;
- a string under a maxLength above EXACT_LENGTH: printable ASCII (short escapes allowed) and at most
  LENGTH_CAP characters (longer bounds build automata too slowly, see string_lengths.length_content), or
  SHORT_LENGTH_CAP where the long cap makes more overlapping value sets than terminals.py allows;
- numbers with a fraction under bounds: no exponent (the bounds themselves exact, as decimals);
- multiples (multipleOf): no exponent (fsm/multiples.py tracks the remainder digit by digit);
- format ipv6 without zone ids, email, uri and hostname as strict subsets of their RFCs (hostname: no
  A-labels, and within three families of label counts and lengths; uri: no IP-literal host), time
  without leap seconds;
- oneOf object branches that may overlap, each requiring a key the other does not: each without the
  other's required key (instance_sets.exclusive_branches);
- whitespace: at most WS_MAX blanks around each punctuation mark (none with compact=True).

Finite instance sets: when an enum/const bounds the instances (on the schema or in its allOf), each
listed value is judged against the whole schema (json_instance.Judge) and the grammar lists the ones
that pass, so any keyword around an enum (not, if/then/else, multipleOf, ...) is exact there.

Lexing: grammask's lexer is context-free (longest match, then priority), so every string or number
terminal must lex exactly. The terminals of one schema form a laminar family (any two are disjoint or
nested); the innermost wins by priority, and a position that expects language L accepts every terminal
contained in L. Two that overlap partially get their intersection as one more terminal (the grammar's
`intersect` directive), closed under intersection; keys that must not occur are kept in the lexer
(`keep` directive) so that their text is never lexed as another key.

The package, in the order a schema meets it: schema_reader ($ref, allOf merged) -> translator (one
nonterminal per subschema, dispatched by keyword family; negation rewrites a `not` of types or required
keys first) -> the families: combinators (anyOf/oneOf, enum/const, with instance_sets proving oneOf
branches disjoint or narrowing them apart, and object_unions running object or array branches side by
side as one object or array), numeric, strings (with formats and string_lengths),
objects (with object_members), arrays; literals spell listed values -> terminals (the pool of string and
number value sets, made laminar) -> grammar_text (the Lark text, only its productive, reachable rules).
keywords holds the vocabulary and the error every refusal raises.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

from ...fsm import fsm_product
from ...fsm.lexer import LexerTooLarge, _time_limit
from ..errors import GrammarError
from .grammar_text import grammar_text
from .numeric import frac_range_regex, int_range_regex
from .string_lengths import LENGTH_CAP, SHORT_LENGTH_CAP
from .terminals import TooManyOverlaps
from .translator import Translator

__all__ = ["schema_to_lark", "int_range_regex", "frac_range_regex"]


def schema_to_lark(schema: Any, compact: bool = False, timeout: Optional[float] = 30.0) -> str:
    """The Lark grammar (start rule `start`) of the JSON texts valid under `schema`."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise GrammarError(f"JSON Schema: not valid JSON: {exc}") from None
    elif hasattr(schema, "model_json_schema"):  # a Pydantic model class (duck-typed: no dependency)
        schema = schema.model_json_schema()
    if not isinstance(schema, (dict, bool)):
        raise GrammarError(f"JSON Schema must be an object or a boolean, not {type(schema).__name__}")
    deadline = time.monotonic() + timeout if timeout else None
    try:
        # the automaton comparisons can blow up too (the native products watch the deadline themselves)
        with _time_limit(deadline), fsm_product.time_limit(deadline):
            t = Translator(schema, compact, LENGTH_CAP)
            try:
                return grammar_text(t, t.node(schema, "#"))
            except TooManyOverlaps:
                if not t.long_bounds:
                    raise
            # Long bounded strings overlap patterns in more ways than the lexer can take: shorter ones.
            t = Translator(schema, compact, SHORT_LENGTH_CAP)
            return grammar_text(t, t.node(schema, "#"))
    except RecursionError:
        raise GrammarError("JSON Schema: nested too deeply") from None
    except LexerTooLarge:
        raise GrammarError(f"JSON Schema: comparing its string/number constraints took longer than {timeout} s "
                           "(build_timeout)") from None
