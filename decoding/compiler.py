"""compile(): grammar + tokenizer -> CompiledGrammar (token mask tables), cached on disk."""

from __future__ import annotations

import hashlib
import os
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .. import _core, fsm, grammar as grammar_package
from .._core import CoreGrammar, CoreTokens, CoreVocab
from ..fsm.vocab import TokenizerInfo
from ..grammar import Grammar, GrammarError
from ..grammar.tables import GrammarTables
from . import cache

DYNAMIC_GROUP = -2  # group_cset of the tokens the fill lexes one by one (GM_DYNAMIC_GROUP)
_GRAMMAR_ARRAYS = ("lex_trans", "lex_winner", "lex_cset", "lex_final", "term_ignored", "cset_begin",
                   "cset_terms", "action", "goto", "rule_lhs", "rule_len", "term_bracket", "lex_nl", "term_flags")
_GRAMMAR_SCALARS = ("lr_start", "lr_end", "indenter", "lex_init", "t_nl", "t_newline", "t_indent", "t_dedent",
                    "t_cont", "t_semicolon", "tab_len", "lex_fallback")
_FSTRING_ARRAYS = ("mode_start", "lex_mode", "term_fop", "term_farg", "term_restart", "mode_event", "state_mode")
_COND_ARRAYS = ("lex_cond", "cond_rows", "lex_void")  # only a grammar with conditional lexer states has them
_FSTRING_SCALARS = ("t_rbrace", "t_colon", "t_walrus", "t_fclose", "t_spec_open", "t_spec_text")
_VOCAB_ARRAYS = ("tok_bytes", "tok_begin", "is_stop", "uncond_mask", "masks", "group_begin", "group_seq",
                 "group_cset", "group_tok_begin", "group_toks", "group_dense", "seq_begin", "seq_terms", "wsop_begin",
                 "wsop_bytes", "wsop_reset")


def core_grammar_arrays(tables: GrammarTables) -> dict:
    lex = tables.lexer
    cset_begin = np.cumsum([0] + [len(c) for c in lex.csets]).astype(np.int32)
    cset_terms = np.asarray([t for c in lex.csets for t in c], dtype=np.int32)
    ind = tables.indenter
    semi = tables.semicolons
    return dict(lex_trans=lex.trans, lex_winner=lex.winner, lex_cset=lex.cset, lex_final=lex.final,
                term_ignored=np.asarray([t.ignored for t in tables.terminals], dtype=np.uint8),
                cset_begin=cset_begin, cset_terms=cset_terms, action=tables.parser.action,
                goto=tables.parser.goto, rule_lhs=tables.parser.rule_lhs, rule_len=tables.parser.rule_len,
                term_bracket=tables.term_bracket, lex_nl=tables.lex_nl, term_flags=tables.term_flags,
                lr_start=tables.parser.start_state, lr_end=tables.parser.end_state,
                indenter=(3 if ind.kind == "lark" else 1) if ind else (2 if semi else 0), lex_init=tables.lex_init,
                tab_len=ind.tab_len if ind else 8, lex_fallback=int(tables.lex_fallback),
                t_semicolon=semi.semicolon if semi else -1,
                t_nl=ind.nl if ind else -1, t_newline=ind.newline if ind else -1,
                t_indent=ind.indent if ind else -1, t_dedent=ind.dedent if ind else -1,
                t_cont=ind.cont if ind and ind.cont is not None else -1, **_fstring_arrays(tables),
                **_cond_arrays(lex))


def _cond_arrays(lex) -> dict:
    """Conditional lexer states (a lookahead past the lexeme): only when the grammar has one."""
    if lex.cond is None:
        return {}
    out = dict(lex_cond=lex.cond, cond_rows=lex.cond_rows)
    if lex.void is not None:
        out["lex_void"] = lex.void
    return out


def _fstring_arrays(tables: GrammarTables) -> dict:
    f = tables.fstrings
    if f is None and tables.mode_restart is not None:  # lexmodes, contextual lexer: plain modes, no f-strings
        n_terms, n_modes = len(tables.terminals), len(tables.lexer.mode_start)
        modes = dict(mode_start=tables.lexer.mode_start, lex_mode=tables.lexer.lex_mode,
                     term_fop=np.zeros(n_terms, np.int8), term_farg=np.zeros(n_terms, np.int32),
                     term_restart=tables.mode_restart, mode_event=np.full((n_modes, 256), -1, np.int32))
        if tables.state_mode is not None:
            modes["state_mode"] = tables.state_mode
        return modes
    if f is None:
        return {}
    return dict(mode_start=tables.lexer.mode_start, lex_mode=tables.lexer.lex_mode, term_fop=f.term_fop,
                term_farg=f.term_farg, term_restart=f.term_restart, mode_event=f.mode_event,
                **{name: getattr(f, name) for name in _FSTRING_SCALARS})


def core_grammar(grammar: Grammar) -> CoreGrammar:
    """The grammar's tables in native form (built once per Grammar object)."""
    core = getattr(grammar, "_core", None)
    if core is None:
        core = grammar._core = CoreGrammar(**core_grammar_arrays(grammar.tables))
    return core


def _vocab_arrays(core: CoreGrammar, info: TokenizerInfo) -> dict:
    # Stop tokens are only ever stops; tokens with no text are never allowed.
    tok_bytes, tok_begin, order, is_stop = info.byte_layout()
    n_words = (info.vocab_size + 31) // 32
    raw = core.build_vocab(tok_bytes, tok_begin, order, n_words, info.strips_leading_space, _build_threads())
    # Many lexer states share their unconditional mask: store each distinct mask once.
    distinct: dict[bytes, int] = {}
    uncond = np.empty(raw["masks"].shape[0], dtype=np.int32)
    for ts, row in enumerate(raw["masks"]):
        uncond[ts] = distinct.setdefault(row.tobytes(), len(distinct))
    group_seq, group_cset, group_tok_begin, group_toks = _sort_groups(raw)
    group_dense, group_tok_begin, group_toks = _dense_groups(group_tok_begin, group_toks, group_cset, n_words,
                                                             distinct)
    masks = np.frombuffer(b"".join(distinct), dtype=np.uint32).reshape(len(distinct), n_words)
    return dict(tok_bytes=tok_bytes, tok_begin=tok_begin, is_stop=is_stop, uncond_mask=uncond, masks=masks,
                group_begin=raw["group_begin"], group_seq=group_seq, group_cset=group_cset,
                group_tok_begin=group_tok_begin, group_toks=group_toks, group_dense=group_dense,
                seq_begin=raw["seq_begin"], seq_terms=raw["seq_terms"], wsop_begin=raw["wsop_begin"],
                wsop_bytes=raw["wsop_bytes"], wsop_reset=raw["wsop_reset"])


def _build_threads() -> int:
    """Threads for the table builder: the cores this process may run on, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _sort_groups(raw: dict):
    """Order each state's groups by terminal sequence (lexicographically), so the fill feeds a sequence
    once for all its groups and skips the sequences behind a prefix the parser refused."""
    seq_begin, seq_terms = raw["seq_begin"], raw["seq_terms"]
    n_seqs = seq_begin.shape[0] - 1
    by_content = sorted(range(n_seqs), key=lambda q: tuple(seq_terms[seq_begin[q]:seq_begin[q + 1]].tolist()))
    rank = np.empty(n_seqs, dtype=np.int64)
    rank[by_content] = np.arange(n_seqs)
    group_seq, group_cset, tok_begin, toks = raw["group_seq"], raw["group_cset"], raw["group_tok_begin"], raw["group_toks"]
    state = np.repeat(np.arange(raw["group_begin"].shape[0] - 1), np.diff(raw["group_begin"]))
    order = np.lexsort((group_cset, rank[group_seq], state))
    sizes = np.diff(tok_begin)[order]
    new_begin = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    gather = np.repeat((tok_begin[:-1][order] - new_begin[:-1]).astype(np.int32), sizes)
    gather += np.arange(int(new_begin[-1]), dtype=np.int32)  # int32 throughout: tens of millions of tokens
    return (np.ascontiguousarray(group_seq[order], dtype=np.int32), np.ascontiguousarray(group_cset[order], dtype=np.int32),
            new_begin, np.ascontiguousarray(toks[gather], dtype=np.int32))


def _dense_groups(tok_begin: np.ndarray, toks: np.ndarray, group_cset: np.ndarray, n_words: int,
                  distinct: dict[bytes, int]):
    """Store each group of more than n_words / 4 tokens as a mask (added to `distinct`): the fill ORs
    words instead of setting one bit per token, and large groups repeat across states, so the masks
    dedupe to less than the token lists they replace. Returns
    (group_dense, tok_begin, toks) with the dense groups' token lists dropped."""
    sizes = np.diff(tok_begin)
    dense = np.full(sizes.shape[0], -1, dtype=np.int32)
    for gi in np.flatnonzero((sizes > n_words // 4) & (group_cset != DYNAMIC_GROUP)):
        bits = np.zeros(n_words * 32, dtype=bool)
        bits[toks[tok_begin[gi]:tok_begin[gi + 1]]] = True
        row = np.packbits(bits, bitorder="little").view("<u4").astype(np.uint32)
        dense[gi] = distinct.setdefault(row.tobytes(), len(distinct))
    kept = np.repeat(dense < 0, sizes)
    new_begin = np.concatenate([[0], np.cumsum(np.where(dense < 0, sizes, 0))]).astype(np.int32)
    return dense, new_begin, np.ascontiguousarray(toks[kept], dtype=np.int32)


class CompiledGrammar:
    """Token mask tables for one grammar and one tokenizer. Create matchers with `matcher()`."""

    def __init__(self, grammar: Grammar, tokenizer_info: TokenizerInfo, core: CoreGrammar,
                 vocab: CoreVocab, terminal_names: list[str], from_cache: bool = False):
        self.grammar = grammar
        self.tokenizer_info = tokenizer_info
        self.core_grammar = core
        self.core_vocab = vocab
        self.terminal_names = terminal_names
        self.from_cache = from_cache

    @property
    def vocab_size(self) -> int:
        return self.tokenizer_info.vocab_size

    @property
    def byte_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(first_byte, byte_token): each token's first byte (-1 for stop tokens and tokens without text),
        (vocab_size,) int16; and for each byte a token whose text is that byte alone, (256,) int64, -1 if
        the vocabulary has none. Built on first use."""
        tables = getattr(self, "_byte_tables", None)
        if tables is None:
            info = self.tokenizer_info
            stops = set(info.stop_token_ids)
            first_byte = np.full(info.vocab_size, -1, dtype=np.int16)
            byte_token = np.full(256, -1, dtype=np.int64)
            for i, b in enumerate(info.token_bytes):
                if b and i not in stops:
                    first_byte[i] = b[0]
                    if len(b) == 1 and byte_token[b[0]] < 0:
                        byte_token[b[0]] = i
            tables = self._byte_tables = (first_byte, byte_token)
        return tables

    def tokens_starting_with(self, byte: int) -> np.ndarray:
        """The packed mask (int32 words, the bitmask layout) of the tokens whose text starts with `byte`."""
        masks = self.__dict__.setdefault("_starting_with", {})
        if byte not in masks:
            bits = self.byte_tables[0] == byte
            n_words = (self.vocab_size + 31) // 32
            padded = np.zeros(n_words * 32, dtype=bool)
            padded[: bits.shape[0]] = bits
            masks[byte] = np.packbits(padded, bitorder="little").view(np.int32)
        return masks[byte]

    def matcher(self, max_rollback_tokens: Optional[int] = None):
        """A new matcher. max_rollback_tokens bounds the undo history (None: unbounded), so a matcher
        that runs for very long keeps a bounded memory."""
        from .matcher import GrammarMatcher

        return GrammarMatcher(self, max_rollback_tokens)

    @property
    def lazy(self) -> bool:
        """Whether each lexer state's token tables are built by the first fill that needs them."""
        return self.core_vocab.lazy

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the grammar and token tables (lazy tables: those built so far)."""
        arrays = list(self.core_grammar.arrays.values()) + list(self.core_vocab.arrays.values())
        built = self.core_vocab.lazy_stats
        return int(sum(a.nbytes for a in arrays)) + (built[1] if built else 0)

    @property
    def fill_cache_bytes(self) -> int:
        """Bytes of the fill cache all matchers of these tables share (grows as used, to 2,048 masks)."""
        return self.core_vocab.fill_cache_bytes

    def __repr__(self) -> str:
        built = self.core_vocab.lazy_stats
        tables = f"lazy tables, {built[0]} states built" if built else "tables"
        return (f"CompiledGrammar({self.grammar.name!r}, vocab_size={self.vocab_size}, "
                f"lexer_states={self.core_grammar.n_lex_states}, {tables}={self.memory_bytes / 1e6:.1f} MB)")


# The libraries whose behaviour shapes the tables: Lark's LALR tables, interegular's regex parsing, numpy's
# sorting and packing.
_TABLE_LIBRARIES = ("lark", "interegular", "numpy")


@lru_cache(maxsize=1)
def engine_version() -> str:
    """A digest of what builds the tables: this module, the grammar and fsm packages, the native core's
    sources (their digest is compiled in; else the compiled module itself) and the versions of the
    libraries that shape the tables. Any change to them is a new cache key: no stale table set is loaded."""
    h = hashlib.sha256()
    files = [Path(__file__)]
    for package in (grammar_package, fsm):
        files += sorted(p for p in Path(package.__file__).parent.iterdir() if p.suffix in (".py", ".lark"))
    for path in files:
        h.update(f"{path.parent.name}/{path.name}\0".encode() + path.read_bytes() + b"\0")
    core = _core.SOURCE_HASH or hashlib.sha256(Path(_core.__file__).read_bytes()).hexdigest()
    h.update(f"core\0{core}\0".encode())
    for name in _TABLE_LIBRARIES:
        h.update(f"{name}\0{metadata.version(name)}\0".encode())
    return h.hexdigest()


def cache_key(grammar: Grammar, info: TokenizerInfo) -> str:
    return hashlib.sha256(f"{engine_version()}\0{grammar.digest}\0{info.digest}".encode()).hexdigest()


def _from_arrays(grammar: Grammar, info: TokenizerInfo, meta: dict, arrays: dict, from_cache: bool):
    core = CoreGrammar(**{k: arrays[k] for k in _GRAMMAR_ARRAYS}, **{k: meta[k] for k in _GRAMMAR_SCALARS},
                       **{k: arrays[k] for k in _FSTRING_ARRAYS + _COND_ARRAYS if k in arrays},
                       **{k: meta[k] for k in _FSTRING_SCALARS if k in meta})
    vocab = CoreVocab(core, vocab_size=info.vocab_size, strip_leading_space=info.strips_leading_space,
                      **{k: arrays[k] for k in _VOCAB_ARRAYS})
    return CompiledGrammar(grammar, info, core, vocab, meta["terminal_names"], from_cache)


DEFAULT_MAX_TABLE_BYTES = 1 << 30
TABLE_MODES = ("auto", "eager", "lazy")


def compile(grammar: Union[Grammar, str], tokenizer_info: TokenizerInfo, *,
            cache_dir: Union[str, Path, None, bool] = True,
            max_table_bytes: int = DEFAULT_MAX_TABLE_BYTES, tables: str = "auto") -> CompiledGrammar:
    """Compile `grammar` (a Grammar or a built-in name) for `tokenizer_info`.

    cache_dir: True (default) uses the user cache directory (see grammask.decoding.cache), a path uses
    that directory, False or None disables the disk cache. max_table_bytes bounds the token tables (one
    mask per lexer state before deduplication, built now or by fills): past it, GrammarError.

    tables: "eager" builds every lexer state's token tables now, and stores them in the disk cache;
    "lazy" builds each state's on the first fill that needs it (the first mask comes in milliseconds; a
    state's first fill pays for its tables once, for all matchers); "auto" (default) loads eager tables
    the disk cache holds, and else is lazy where the tables would not be stored for another process (no
    disk cache, or a per-request grammar: a JSON Schema, a regex, a structural tag) and eager otherwise.
    """
    if isinstance(grammar, str):
        grammar = Grammar.builtin(grammar)
    if not isinstance(grammar, Grammar):
        raise TypeError(f"compile() takes a Grammar or a built-in name, not {type(grammar).__name__}")
    if not isinstance(tokenizer_info, TokenizerInfo):
        raise TypeError("compile() needs a TokenizerInfo (see TokenizerInfo.from_huggingface)")
    if tables not in TABLE_MODES:
        raise ValueError(f"tables={tables!r}: choose one of {', '.join(map(repr, TABLE_MODES))}")
    directory = cache.default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
    key = cache_key(grammar, tokenizer_info)
    hit = None if tables == "lazy" else cache.load(directory, key)
    if hit is not None:
        meta, arrays = hit
        try:
            return _from_arrays(grammar, tokenizer_info, meta, arrays, True)
        except (ValueError, KeyError, TypeError) as exc:  # signed, yet not tables the core can follow
            warnings.warn(f"grammask: cache file {cache.cache_file(directory, key)} holds tables that fail "
                          f"validation ({type(exc).__name__}: {exc}); rebuilding it", RuntimeWarning, stacklevel=2)
    gtables = grammar.tables
    n_states = gtables.lexer.n_states + int(tokenizer_info.strips_leading_space)
    need = n_states * ((tokenizer_info.vocab_size + 31) // 32) * 4
    if need > max_table_bytes:  # (lazy tables as well: fills may visit every state)
        raise GrammarError(f"grammar too large for this vocabulary: {n_states:,} lexer states x "
                           f"{tokenizer_info.vocab_size:,} tokens need {need:,} bytes of masks while building "
                           f"(limit {max_table_bytes:,}: compile(..., max_table_bytes=...))", source=grammar.name)
    if tables == "lazy" or (tables == "auto" and (directory is None or grammar.per_request)):
        return _lazy(grammar, tokenizer_info)
    garrays = core_grammar_arrays(gtables)
    core = core_grammar(grammar)
    varrays = _vocab_arrays(core, tokenizer_info)
    meta = {k: int(garrays.pop(k)) for k in _GRAMMAR_SCALARS + _FSTRING_SCALARS if k in garrays}
    meta.update(terminal_names=list(gtables.display), grammar=grammar.name)
    arrays = {**{k: np.asarray(v) for k, v in garrays.items()}, **varrays}
    cache.store(directory, key, meta, arrays)
    vocab = CoreVocab(core, vocab_size=tokenizer_info.vocab_size,
                      strip_leading_space=tokenizer_info.strips_leading_space, **varrays)
    return CompiledGrammar(grammar, tokenizer_info, core, vocab, list(gtables.display), False)


def _core_tokens(info: TokenizerInfo) -> CoreTokens:
    """The tokenizer's vocabulary as the lazy table builder reads it (copied, checked and indexed once per
    tokenizer, then shared read-only by every grammar compiled for it; two threads meeting a new tokenizer
    at once may each make one, both valid: the first kept wins)."""
    if not info._core_tokens:
        tok_bytes, tok_begin, order, is_stop = info.byte_layout()
        info._core_tokens.append(CoreTokens(vocab_size=info.vocab_size, tok_bytes=tok_bytes, tok_begin=tok_begin,
                                            is_stop=is_stop, order=order))
    return info._core_tokens[0]


def _lazy(grammar: Grammar, info: TokenizerInfo) -> CompiledGrammar:
    """Token tables each lexer state gets on its first fill (see CoreVocab)."""
    core = core_grammar(grammar)
    vocab = CoreVocab(core, vocab_size=info.vocab_size, strip_leading_space=info.strips_leading_space,
                      tokens=_core_tokens(info))
    return CompiledGrammar(grammar, info, core, vocab, list(grammar.tables.display), False)


__all__ = ["CompiledGrammar", "GrammarError", "compile", "core_grammar"]
