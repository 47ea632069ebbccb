"""Lark postlexers grammask enforces: `lark.indenter.Indenter` and its subclasses that only set its
attributes (as `PythonIndenter` does). Their settings become the engine's own indentation tracking
(gm_parser.c's lark_feed), so the masks enforce exactly what Lark's Indenter does; anything else a
postlexer could do (its own `process`) is refused, since no table can say it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..fsm.lexer import TerminalSpec
from .directives import IndenterSpec
from .errors import GrammarError

# What decides an Indenter's behaviour: a subclass that changes one of these is not Lark's Indenter.
_BEHAVIOUR = ("process", "_process", "handle_NL", "always_accept")
_MAX_TAB_LEN = 0x3FFFFFFF  # GM_LARK_MAX_WIDTH: the core counts indentation below it


@dataclass(frozen=True)
class LarkIndenterSettings:
    """An Indenter's attributes, by terminal name (lark/indenter.py)."""
    nl_type: str
    open_paren_types: tuple[str, ...]
    close_paren_types: tuple[str, ...]
    indent_type: str
    dedent_type: str
    tab_len: int

    def key(self) -> str:
        """A stable text of the settings (the grammar digest and table cache keys hold it)."""
        return json.dumps(["lark.indenter", self.nl_type, list(self.open_paren_types),
                           list(self.close_paren_types), self.indent_type, self.dedent_type, self.tab_len])


def read_postlex(postlex) -> Optional[LarkIndenterSettings]:
    """The settings of a Lark postlexer, or None for none; GrammarError for one grammask cannot enforce."""
    if postlex is None or isinstance(postlex, LarkIndenterSettings):
        return postlex
    shown = f"postlex={type(postlex).__name__}(...)"
    supported = ("grammask supports lark.indenter.Indenter postlexers (e.g. PythonIndenter, or a subclass "
                 "that sets NL_type, OPEN_PAREN_types, CLOSE_PAREN_types, INDENT_type, DEDENT_type, tab_len)")
    try:
        from lark.indenter import Indenter
    except ImportError:  # pragma: no cover - Lark is a dependency
        Indenter = None
    if Indenter is None or not isinstance(postlex, Indenter):
        raise GrammarError(f"{shown}: {supported}; this one is not an Indenter")
    for name in _BEHAVIOUR:
        if getattr(type(postlex), name) is not getattr(Indenter, name) or name in vars(postlex):
            raise GrammarError(f"{shown}: it overrides Indenter.{name}, whose behaviour grammask cannot "
                               f"enforce; {supported}")

    def name(attr: str) -> str:
        value = getattr(postlex, attr)
        if not isinstance(value, str) or not value:
            raise GrammarError(f"{shown}: {attr} must be a terminal name, not {value!r}")
        return value

    def names(attr: str) -> tuple[str, ...]:
        value = getattr(postlex, attr)
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise GrammarError(f"{shown}: {attr} must be a list of terminal names, not {value!r}")
        return tuple(value)

    tab_len = postlex.tab_len
    if type(tab_len) is not int or not 0 < tab_len <= _MAX_TAB_LEN:
        raise GrammarError(f"{shown}: tab_len must be an int from 1 to {_MAX_TAB_LEN}, not {tab_len!r}")
    return LarkIndenterSettings(name("NL_type"), names("OPEN_PAREN_types"), names("CLOSE_PAREN_types"),
                                name("INDENT_type"), name("DEDENT_type"), tab_len)


def resolve_lark_indenter(settings: LarkIndenterSettings, terminals: list[TerminalSpec],
                          source: Optional[str]) -> tuple[IndenterSpec, np.ndarray]:
    """The indenter as terminal indices, and each terminal's bracket count (+1 an OPEN_PAREN type, -1 a
    CLOSE_PAREN one; Lark tests OPEN first). Paren types the grammar lacks never come: left out."""
    ids = {t.name: i for i, t in enumerate(terminals)}
    for role, attr in (("NL_type", settings.nl_type), ("INDENT_type", settings.indent_type),
                       ("DEDENT_type", settings.dedent_type)):
        if attr not in ids:
            raise GrammarError(f"postlex Indenter: {role} {attr} is not a terminal of the grammar "
                               "(INDENT/DEDENT: %declare them and use them in rules)", source=source)
    nl = ids[settings.nl_type]
    if terminals[nl].regex is None:
        raise GrammarError(f"postlex Indenter: NL_type {settings.nl_type} must be a lexer terminal (a pattern)",
                           source=source)
    bracket = np.zeros(len(terminals), dtype=np.int8)
    for name in settings.close_paren_types:
        if name in ids:
            bracket[ids[name]] = -1
    for name in settings.open_paren_types:
        if name in ids:
            bracket[ids[name]] = 1
    spec = IndenterSpec(nl, nl, ids[settings.indent_type], ids[settings.dedent_type], None, kind="lark",
                        tab_len=settings.tab_len)
    return spec, bracket


def nl_states(trans: np.ndarray, ends_as_nl: np.ndarray, starts) -> np.ndarray:
    """(n_states,) uint8: the lexer states whose lexeme may still become an NL token (mode starts: 0),
    given those where it can end as one (LexerDFA.ends_as). The core counts indentation there, and keeps
    it out of the fill cache key elsewhere."""
    reach = ends_as_nl.copy()
    while True:  # backwards along the transitions, to a fixed point
        succ = np.where(trans >= 0, reach[np.maximum(trans, 0)], False).any(axis=1)
        grown = reach | succ
        if np.array_equal(grown, reach):
            break
        reach = grown
    reach[list(starts)] = False
    return reach.astype(np.uint8)
