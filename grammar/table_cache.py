"""A grammar's tables (GrammarTables) on disk: arrays + JSON metadata and back, kept in the table cache.

Building the tables (Lark's LALR construction, the lexer DFA through interegular) takes from tens of
milliseconds (JSON) to seconds (Python); reading them back takes a few. They are stored in the token
tables' cache directory, in its grammar-tables/ folder (grammask.decoding.cache: npz + JSON, never
pickle; GRAMMASK_CACHE_DIR= disables it), keyed by
content: the grammar text and start rule, the lexer state limit, and a digest of the code that builds
them (so an edit of the builder, or another Lark or interegular, never reads stale tables).

Reading back checks every shape and every index against the sizes it refers to, since the C core
follows them unchecked: a file that fails (corrupt, or not written by this code) is rebuilt, with a
warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from ..decoding import cache
from ..fsm.lexer import LexerDFA, TerminalSpec
from .fstrings import FStringSpec
from .lark_frontend import ParseTables, conflict_warning
from .directives import IndenterSpec, SemicolonSpec
from .tables import GrammarTables, build_tables

FORMAT = "grammar-tables-4"
SUBDIR = "grammar-tables"  # in the token tables' cache directory: apart, so each kind can be listed alone

# Every array of a GrammarTables: its dtype and number of dimensions, as build_tables makes them.
_ARRAYS = {
    "lex_trans": (np.int32, 2), "lex_winner": (np.int32, 1), "lex_final": (np.uint8, 1), "lex_cset": (np.int32, 1),
    "cset_begin": (np.int64, 1), "cset_terms": (np.int64, 1), "mode_start": (np.int32, 1),
    "lex_mode": (np.int32, 1), "action": (np.int32, 2), "goto": (np.int32, 2), "rule_lhs": (np.int32, 1),
    "rule_len": (np.int32, 1), "term_bracket": (np.int8, 1), "lex_nl": (np.uint8, 1), "term_flags": (np.uint8, 1),
}
_FSTRING_ARRAYS = {"f_term_fop": (np.int8, 1), "f_term_farg": (np.int32, 1), "f_term_restart": (np.int32, 1),
                   "f_mode_event": (np.int32, 2)}
_FSTRING_SCALARS = ("t_rbrace", "t_colon", "t_walrus", "t_fclose", "t_spec_open", "t_spec_text")

_builder: Optional[str] = None


def builder_digest() -> str:
    """Digest of the code the tables come from: this package and grammask.fsm (every module: a new
    helper is covered without a list to keep), the native core's sources (its LALR(1) construction,
    csrc/gm_lalr.c), and the installed Lark and interegular."""
    global _builder
    if _builder is None:
        from grammask import _core

        here = Path(__file__).resolve().parent
        fsm = Path(importlib.util.find_spec("grammask.fsm").origin).resolve().parent
        files = sorted(here.glob("*.py")) + sorted(fsm.glob("*.py"))
        for name in ("lark", "interegular"):  # their __init__ holds their version
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin:
                files.append(Path(spec.origin))
        h = hashlib.sha256(FORMAT.encode())
        h.update(f"\0_core\0{_core.SOURCE_HASH}".encode())
        for path in files:
            h.update(f"\0{path.name}\0".encode())
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"unreadable")
        _builder = h.hexdigest()
    return _builder


def cache_key(grammar) -> str:
    return hashlib.sha256(f"{FORMAT}\0{builder_digest()}\0{grammar.max_lexer_states}\0{grammar.digest}"
                          .encode()).hexdigest()


def load_or_build(grammar) -> GrammarTables:
    """The grammar's tables from the cache, or built (and stored) when absent or unreadable. Conflicts
    Lark resolved are warned about either way (when grammar.warn_conflicts)."""
    base = cache.default_cache_dir()
    directory = base / SUBDIR if base is not None else None
    key = cache_key(grammar)
    tables = None
    hit = cache.load(directory, key)
    if hit is not None:
        try:
            tables = from_arrays(*hit)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            warnings.warn(f"grammask: ignoring inconsistent grammar table cache file {directory / key}.npz "
                          f"({exc}); rebuilding it", RuntimeWarning, stacklevel=3)
    if tables is None:
        tables = build_tables(grammar.text, grammar.start, grammar.name, grammar.max_lexer_states,
                              grammar.build_timeout, warn_conflicts=False, source_path=grammar.source_path,
                              lexer_kind=grammar.lexer, postlex=getattr(grammar, "postlex", None))
        if directory is not None:  # (no disk cache, as for a JSON Schema per request: nothing to convert)
            meta, arrays = to_arrays(tables)
            cache.store(directory, key, dict(meta, grammar=grammar.name), arrays)
    if grammar.warn_conflicts:
        for conflict in tables.conflicts:
            warnings.warn(conflict_warning(grammar.name, *conflict), stacklevel=3)
    return tables


# -- GrammarTables -> (metadata, arrays) ---------------------------------------------------------------

def to_arrays(t: GrammarTables) -> tuple[dict, dict[str, np.ndarray]]:
    lex, lr = t.lexer, t.parser
    arrays = dict(
        lex_trans=lex.trans, lex_winner=lex.winner, lex_final=lex.final, lex_cset=lex.cset,
        cset_begin=np.cumsum([0] + [len(c) for c in lex.csets], dtype=np.int64),
        cset_terms=np.asarray([term for c in lex.csets for term in c], dtype=np.int64),
        mode_start=lex.mode_start, lex_mode=lex.lex_mode, action=lr.action, goto=lr.goto,
        rule_lhs=lr.rule_lhs, rule_len=lr.rule_len, term_bracket=t.term_bracket, lex_nl=t.lex_nl,
        term_flags=t.term_flags)
    if t.state_mode is not None:
        arrays["state_mode"] = t.state_mode
    if lex.cond is not None:
        arrays.update(lex_cond=lex.cond, cond_rows=lex.cond_rows)
    if lex.void is not None:
        arrays["lex_void"] = lex.void
    meta = dict(
        tables_format=FORMAT,
        terminals=[[s.name, s.regex, s.priority, s.is_literal, s.ignored, list(s.also), list(s.modes),
                    list(s.mode_regexes), s.fullmatch] for s in t.terminals],
        display=list(t.display), nonterminals=list(lr.nonterminals), start_state=lr.start_state,
        end_state=lr.end_state, lex_init=t.lex_init, lex_fallback=t.lex_fallback, conflicts=[list(c) for c in t.conflicts],
        indenter=None if t.indenter is None else [t.indenter.nl, t.indenter.newline, t.indenter.indent,
                                                  t.indenter.dedent, t.indenter.cont, t.indenter.kind,
                                                  t.indenter.tab_len],
        semicolons=None if t.semicolons is None else [t.semicolons.semicolon, list(t.semicolons.newlines),
                                                      list(t.semicolons.after)],
        fstrings=None, mode_restart=None if t.mode_restart is None else t.mode_restart.tolist())
    f = t.fstrings
    if f is not None:
        arrays.update(f_term_fop=f.term_fop, f_term_farg=f.term_farg, f_term_restart=f.term_restart,
                      f_mode_event=f.mode_event)
        meta["fstrings"] = dict({name: getattr(f, name) for name in _FSTRING_SCALARS},
                                display=sorted([k, v] for k, v in f.display.items()), hidden=sorted(f.hidden))
    return meta, {name: np.asarray(a) for name, a in arrays.items()}


# -- (metadata, arrays) -> GrammarTables, checked --------------------------------------------------------

def from_arrays(meta: dict, arrays: dict[str, np.ndarray]) -> GrammarTables:
    """Raises ValueError (or TypeError, KeyError) when anything is missing, mistyped or out of range."""
    if meta.get("tables_format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    a = {name: _array(arrays, name, dtype, ndim) for name, (dtype, ndim) in _ARRAYS.items()}
    terminals = [_terminal(v) for v in _list(meta["terminals"])]
    n_terms, n_states = len(terminals), a["lex_trans"].shape[0]
    display = [_str(s) for s in _list(meta["display"])]
    nonterminals = [_str(s) for s in _list(meta["nonterminals"])]
    csets = _csets(a["cset_begin"], a["cset_terms"], n_terms)
    mode_start, lex_mode = a["mode_start"], a["lex_mode"]
    _expect(len(display) == n_terms + 1, "one display name per terminal, and end of input")
    _expect(a["lex_trans"].shape[1] == 256 and n_states > 0, "lexer transitions are (states, 256)")
    for name in ("lex_winner", "lex_final", "lex_cset", "lex_mode", "lex_nl"):
        _expect(a[name].shape == (n_states,), f"{name} has one entry per lexer state")
    _in_range(a["lex_trans"], -1, n_states, "lexer transitions")
    _in_range(a["lex_winner"], -1, n_terms, "lexer winners")
    _in_range(a["lex_cset"], -1, len(csets), "completable-set ids")
    _in_range(mode_start, 0, n_states, "mode start states")
    _expect(mode_start.size > 0 and mode_start[0] == 0, "mode 0 starts at state 0")
    _in_range(lex_mode, 0, len(mode_start), "lexer modes")
    lex_cond = cond_rows = None
    if "lex_cond" in arrays or "cond_rows" in arrays:
        lex_cond, cond_rows = _array(arrays, "lex_cond", np.int32, 1), _array(arrays, "cond_rows", np.int32, 2)
        _expect(lex_cond.shape == (n_states,), "lex_cond has one entry per lexer state")
        _expect(cond_rows.shape[1] == 257 and cond_rows.shape[0] > 0, "cond_rows are (rows, 257)")
        _in_range(lex_cond, -1, cond_rows.shape[0], "conditional winner rows")
        _in_range(cond_rows, -1, n_terms, "conditional winners")
    lex_void = None
    if "lex_void" in arrays:
        _expect(lex_cond is not None, "lex_void comes with conditional lexer states")
        lex_void = _array(arrays, "lex_void", np.int32, 1)
        _expect(lex_void.shape == (n_states,), "lex_void has one entry per lexer state")
        _in_range(lex_void, -2, n_terms, "voided fallbacks")
    lexer = LexerDFA(a["lex_trans"], a["lex_winner"], a["lex_final"], a["lex_cset"], csets, mode_start, lex_mode,
                     lex_cond, cond_rows, lex_void)

    action, goto = a["action"], a["goto"]
    n_lr, n_rules = action.shape[0], a["rule_lhs"].shape[0]
    _expect(n_lr > 0 and action.shape[1] == n_terms + 1, "the action table has a column per terminal and $END")
    _expect(goto.shape == (n_lr, max(1, len(nonterminals))), "the goto table has a column per nonterminal")
    _expect(a["rule_len"].shape == (n_rules,), "rule_len has one entry per rule")
    _in_range(action, -2 - n_rules + 1, n_lr, "parse actions")
    _in_range(goto, -1, n_lr, "gotos")
    _in_range(a["rule_lhs"], 0, len(nonterminals), "rule left-hand sides")
    _in_range(a["rule_len"], 0, 1 << 31, "rule lengths")
    start_state, end_state = _index(meta["start_state"], n_lr), _index(meta["end_state"], n_lr)
    parser = ParseTables(action, goto, a["rule_lhs"], a["rule_len"], start_state, end_state, nonterminals)

    for name in ("term_bracket", "term_flags"):
        _expect(a[name].shape == (n_terms,), f"{name} has one entry per terminal")
    indenter = None
    if meta["indenter"] is not None:
        nl, newline, indent, dedent, cont, kind, tab_len = _list(meta["indenter"])
        _expect(kind in ("cpython", "lark"), "indenter kind is cpython or lark")
        tab_len = _int(tab_len)
        _expect(0 < tab_len <= 0x3FFFFFFF, "indenter tab_len is positive")
        indenter = IndenterSpec(*(_index(x, n_terms) for x in (nl, newline, indent, dedent)),
                                None if cont is None else _index(cont, n_terms), kind, tab_len)
    semicolons = None
    if meta["semicolons"] is not None:
        semi, newlines, after = _list(meta["semicolons"])
        semicolons = SemicolonSpec(_index(semi, n_terms), tuple(_index(x, n_terms) for x in _list(newlines)),
                                   tuple(_index(x, n_terms) for x in _list(after)))
    fstrings = None if meta["fstrings"] is None else _fstrings(meta["fstrings"], arrays, n_terms, len(mode_start))
    conflicts = tuple((_opt_int(line), _opt_int(col), _str(what)) for line, col, what in _list(meta["conflicts"]))
    mode_restart = None
    if meta["mode_restart"] is not None:
        mode_restart = np.asarray([_int(x) for x in _list(meta["mode_restart"])], dtype=np.int32)
        _expect(mode_restart.shape == (n_terms,), "mode_restart has one entry per terminal")
    state_mode = None
    if "state_mode" in arrays:
        state_mode = _array(arrays, "state_mode", np.int32, 1)
        _expect(state_mode.shape == (n_lr,) and mode_restart is not None, "state_mode has one entry per LR state")
        _in_range(state_mode, 0, len(mode_start), "contextual lexer modes")
    if mode_restart is not None:
        _expect(mode_restart.shape == (n_terms,), "mode_restart has one entry per terminal")
        _in_range(mode_restart, -1 if state_mode is None else -2, len(mode_start), "restart modes")
    return GrammarTables(terminals, display, lexer, parser, indenter, a["term_bracket"], a["lex_nl"],
                         _index(meta["lex_init"], n_states), semicolons, a["term_flags"], fstrings, conflicts,
                         mode_restart, state_mode, _flag(meta, "lex_fallback"))


def _fstrings(f: dict, arrays: dict, n_terms: int, n_modes: int) -> FStringSpec:
    a = {name: _array(arrays, name, dtype, ndim) for name, (dtype, ndim) in _FSTRING_ARRAYS.items()}
    for name in ("f_term_fop", "f_term_farg", "f_term_restart"):
        _expect(a[name].shape == (n_terms,), f"{name} has one entry per terminal")
    _expect(a["f_mode_event"].shape == (n_modes, 256), "f_mode_event is (modes, 256)")
    _in_range(a["f_term_restart"], -2, n_modes, "f-string restart modes")
    _in_range(a["f_mode_event"], -1, n_terms, "f-string event terminals")
    display = {_index(k, n_terms): _str(v) for k, v in _list(f["display"])}
    hidden = frozenset(_index(t, n_terms) for t in _list(f["hidden"]))
    return FStringSpec(a["f_term_fop"], a["f_term_farg"], a["f_term_restart"], a["f_mode_event"],
                       *(_index(f[name], n_terms) for name in _FSTRING_SCALARS), display, hidden)


def _terminal(v) -> TerminalSpec:
    name, regex, priority, is_literal, ignored, also, modes, mode_regexes, fullmatch = _list(v)
    return TerminalSpec(
        _str(name), None if regex is None else _str(regex), _int(priority), _bool(is_literal), _bool(ignored),
        tuple(_str(x) if isinstance(x, str) else _constraint(x) for x in _list(also)),
        tuple(_int(m) for m in _list(modes)),
        tuple((_int(m), _str(r)) for m, r in (_list(pair) for pair in _list(mode_regexes))), _bool(fullmatch))


def _constraint(x) -> tuple:
    kind, *args = _list(x)
    if kind == "freeText":  # (kind, which, *stops)
        return (kind, _int(args[0]), *(_str(arg) for arg in args[1:]))
    return (_str(kind), *(_int(arg) for arg in args))


def _csets(begin: np.ndarray, terms: np.ndarray, n_terms: int) -> list[tuple[int, ...]]:
    _expect(begin.size > 0 and begin[0] == 0 and begin[-1] == terms.size and bool((np.diff(begin) >= 0).all()),
            "completable-set offsets")
    _in_range(terms, 0, n_terms, "completable-set terminals")
    flat = terms.tolist()
    return [tuple(flat[i:j]) for i, j in zip(begin[:-1].tolist(), begin[1:].tolist())]


def _array(arrays: dict, name: str, dtype, ndim: int) -> np.ndarray:
    arr = arrays[name]
    _expect(arr.dtype == dtype and arr.ndim == ndim, f"{name} is {dtype.__name__}, {ndim}-D")
    return arr


def _in_range(arr: np.ndarray, low: int, high: int, what: str) -> None:
    """Every value in [low, high)."""
    _expect(arr.size == 0 or (int(arr.min()) >= low and int(arr.max()) < high), f"{what} out of range")


def _expect(condition, what: str) -> None:
    if not condition:
        raise ValueError(f"inconsistent tables: {what}")


def _list(v) -> list:
    if not isinstance(v, list):
        raise TypeError(f"expected a list, found {type(v).__name__}")
    return v


def _str(v) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, found {type(v).__name__}")
    return v


def _int(v) -> int:
    if type(v) is not int:
        raise TypeError(f"expected an integer, found {type(v).__name__}")
    return v


def _opt_int(v) -> Optional[int]:
    return None if v is None else _int(v)


def _bool(v) -> bool:
    if type(v) is not bool:
        raise TypeError(f"expected a boolean, found {type(v).__name__}")
    return v


def _index(v, n: int) -> int:
    _expect(0 <= _int(v) < n, f"index {v} out of range (0..{n - 1})")
    return v


def _flag(meta: dict, key: str) -> bool:
    v = meta.get(key)
    _expect(isinstance(v, bool), f"{key} is true or false")
    return v
