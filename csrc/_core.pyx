# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# (wraparound=False: no negative indices here, not even on Python objects; some Cython versions pass
# them through to numpy unadjusted.)
"""Thin Cython layer over the C core (gm_core.h): owns the arrays the C structs point into, raises on C errors."""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uintptr_t
from cpython.mem cimport PyMem_Free, PyMem_Malloc

import numpy as np

cdef extern from "gm_core.h":
    ctypedef struct gm_grammar:
        int32_t n_lex_states, n_terminals
        const int32_t *lex_trans
        const int32_t *lex_winner
        const int32_t *lex_cset
        const uint8_t *lex_final
        const uint8_t *term_ignored
        const int32_t *cset_begin
        const int32_t *cset_terms
        int32_t n_lr_states, n_nonterminals, lr_start, lr_end
        const int32_t *action
        const int32_t *go
        const int32_t *rule_lhs
        const int32_t *rule_len
        int32_t indenter, lex_init, t_nl, t_newline, t_indent, t_dedent, t_cont
        const int8_t *term_bracket
        int32_t tab_len
        const uint8_t *lex_nl
        const uint8_t *term_flags
        int32_t t_semicolon
        int32_t n_modes
        const int32_t *mode_start
        const int32_t *lex_mode
        const int8_t *term_fop
        const int32_t *term_farg
        const int32_t *term_restart
        const int32_t *state_mode
        const int32_t *mode_event
        int32_t t_rbrace, t_colon, t_walrus, t_fclose, t_spec_open, t_spec_text
        int32_t lex_fallback
        const int32_t *lex_cond
        const int32_t *cond_rows
        const int32_t *lex_void
        int32_t n_rules

    ctypedef struct gm_fill_cache:
        pass

    ctypedef struct gm_vocab:
        int32_t vocab_size, n_words, n_tokens
        const uint8_t *tok_bytes
        const int64_t *tok_begin
        const uint8_t *is_stop
        const int32_t *stop_ids
        int32_t n_stop
        int32_t strip_leading_space
        const int32_t *uncond_mask
        const uint32_t *masks
        const int32_t *group_begin
        const int32_t *group_seq
        const int32_t *group_cset
        const int32_t *group_tok_begin
        const int32_t *group_toks
        const int32_t *group_dense
        const int32_t *group_lcp
        const int32_t *seq_begin
        const int32_t *seq_terms
        const int32_t *wsop_begin
        const uint8_t *wsop_bytes
        const uint8_t *wsop_reset
        gm_fill_cache *fill_cache
        gm_lazy_tables *lazy

    ctypedef struct gm_lazy_tables:
        pass

    ctypedef struct gm_wsops:
        const int32_t *begin
        const uint8_t *bytes
        const uint8_t *reset

    ctypedef struct gm_state_tables:
        const uint32_t *uncond
        int32_t n_groups
        const int32_t *seq
        const int32_t *cset
        const int32_t *lcp
        const int32_t *dense
        const int32_t *tok_begin
        const int32_t *toks
        const uint32_t *masks
        const int32_t *seq_begin
        const int32_t *seq_terms
        gm_wsops ws

    ctypedef struct gm_matcher:
        int32_t lex_state, at_start, terminated, n_hist, max_hist
        gm_fill_cache *fill_cache

    ctypedef struct gm_build:
        int32_t n_table_states, n_words
        uint32_t *masks
        int32_t *group_begin
        int32_t *group_seq
        int32_t *group_cset
        int32_t *group_tok_begin
        int32_t n_groups
        int32_t *group_toks
        int64_t n_group_toks
        int32_t *seq_begin
        int32_t *seq_terms
        int32_t n_seqs
        int64_t n_seq_terms
        int32_t *wsop_begin
        uint8_t *wsop_bytes
        uint8_t *wsop_reset
        int32_t n_wsops

    ctypedef struct gm_lalr_grammar:
        int32_t n_terms, n_nonterms, n_rules, n_rhs
        const int32_t *rule_lhs
        const int32_t *rule_begin
        const int32_t *rhs
        const int32_t *rule_prio
        int32_t root_rule, end_term
        double deadline

    ctypedef struct gm_lalr_tables:
        int32_t n_states, n_symbols, end_state
        int32_t *trans
        int32_t *reduce
        int32_t n_conflicts
        int32_t *conflicts
        int32_t n_collisions
        int32_t *collisions
        int32_t *collision_rules

    int GM_LALR_TIMEOUT, GM_LALR_FALLBACK, GM_LALR_BAD_INPUT
    int gm_lalr_build(const gm_lalr_grammar *g, gm_lalr_tables *out) nogil
    void gm_lalr_free(gm_lalr_tables *t) nogil

    int GM_OK, GM_NOMEM, GM_ERR_LEX, GM_ERR_PARSE, GM_ERR_PENDING, GM_FILL_SETS, GM_FILL_WAYS, GM_FILL_PRIVATE

    gm_fill_cache *gm_fill_cache_new(int32_t n_words, int32_t n_sets, int32_t ways, int shared) nogil
    void gm_fill_cache_free(gm_fill_cache *c) nogil
    int64_t gm_fill_cache_memory(const gm_fill_cache *c) nogil
    void gm_fill_cache_stats(const gm_fill_cache *c, int64_t *hits, int64_t *misses) nogil
    void gm_test_fail_alloc(int64_t n) nogil
    int64_t gm_test_live_blocks() nogil
    int gm_check_grammar(const gm_grammar *g, char *msg, int32_t msg_len) nogil
    int gm_matcher_init(gm_matcher *m, const gm_grammar *g, const gm_vocab *v) nogil
    int gm_matcher_private_fill_cache(gm_matcher *m, int32_t n_entries) nogil
    int gm_accept_tokens(gm_matcher *m, const int32_t *tokens, int32_t n) nogil
    void gm_matcher_free(gm_matcher *m) nogil
    void gm_matcher_reset(gm_matcher *m) nogil
    int gm_fill_bitmask(gm_matcher *m, uint32_t *out) nogil
    int64_t gm_matcher_memory(const gm_matcher *m) nogil
    void gm_group_lcp(const gm_vocab *v, int32_t n_table_states, int32_t *out) nogil
    int gm_accept_token(gm_matcher *m, int32_t token) nogil
    int gm_rollback(gm_matcher *m, int32_t n) nogil
    int gm_is_complete(gm_matcher *m) nogil
    int gm_acceptable_terminals(gm_matcher *m, uint8_t *out) nogil
    int gm_flush_lexeme(gm_matcher *m) nogil
    int gm_accept_bytes(gm_matcher *m, const uint8_t *b, int64_t n) nogil
    int gm_can_continue(gm_matcher *m) nogil
    int gm_feed_bytes(gm_matcher *m, const uint8_t *b, int64_t n, int64_t offset,
                      int64_t *err_pos, int32_t *err_term, int64_t *lexeme_begin) nogil
    int gm_build_vocab(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                       const int32_t *order, int32_t n_order, int32_t n_words, int32_t strip,
                       int32_t n_threads, gm_build *out) nogil
    void gm_build_free(gm_build *out) nogil
    int gm_state_tables_of(const gm_vocab *v, int32_t ts, gm_state_tables *out) nogil
    ctypedef struct gm_vocab_index:
        int32_t *block_end
        int64_t max_len
    int gm_vocab_index_init(gm_vocab_index *ix, const uint8_t *tok_bytes, const int64_t *tok_begin,
                            const int32_t *order, int32_t n_order) nogil
    void gm_vocab_index_free(gm_vocab_index *ix) nogil
    gm_lazy_tables *gm_lazy_new(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                                const int32_t *order, int32_t n_order, const gm_vocab_index *ix,
                                int32_t n_words, int32_t strip) nogil
    void gm_lazy_free(gm_lazy_tables *lz) nogil
    void gm_lazy_stats(gm_lazy_tables *lz, int32_t *n_built, int64_t *n_bytes) nogil
    int gm_lazy_built(gm_lazy_tables *lz, int32_t ts) nogil
    void gm_apply_bitmask(void *logits, int32_t elem_size, int64_t rows, int64_t vocab, int64_t row_stride,
                          int64_t col_stride, uint32_t neg_inf, const uint32_t *mask, int64_t n_words,
                          int64_t mask_row_stride) nogil


cdef extern from *:
    """
    #ifndef GM_SOURCE_HASH
    #define GM_SOURCE_HASH ""
    #endif
    """
    const char *GM_SOURCE_HASH


ERR_LEX = GM_ERR_LEX
ERR_PARSE = GM_ERR_PARSE
ERR_PENDING = GM_ERR_PENDING
FILL_CACHE_ENTRIES = GM_FILL_SETS * GM_FILL_WAYS
# SHA-256 of the C and Cython sources this module was built from (setup.py), or "" if built otherwise.
SOURCE_HASH = GM_SOURCE_HASH.decode("ascii")


class CoreError(RuntimeError):
    """The native core failed (out of memory, or an internal inconsistency)."""


class TableError(ValueError):
    """Tables (from a cache file or a caller) that the core could not follow safely: an index out of range,
    or LR tables that could pop their bottom state, read an undefined goto, or reduce forever."""


def _fail_allocation_after(int64_t n):
    """Tests: the n-th allocation of the native core from now fails (0: none does)."""
    gm_test_fail_alloc(n)


def _live_blocks():
    """Tests: the blocks the native core holds now."""
    return gm_test_live_blocks()


cdef inline int _check(int rc) except -1:
    if rc == GM_NOMEM:
        raise MemoryError("grammask core: out of memory")
    if rc < 0:
        raise CoreError(f"grammask core: internal error {rc}")
    return rc


cdef uintptr_t _ptr(object arr):
    return <uintptr_t>arr.ctypes.data


cdef object _copy(const void *p, int64_t n, dtype):
    """A numpy array of the n elements of `dtype` at p, copied (none: p is not read)."""
    if n == 0:
        return np.zeros(0, dtype)
    cdef int64_t n_bytes = n * np.dtype(dtype).itemsize
    return np.frombuffer(<char[:n_bytes]><char *>p, dtype=dtype).copy()


def apply_bitmask(uintptr_t logits, int32_t elem_size, int64_t rows, int64_t vocab, int64_t row_stride,
                  int64_t col_stride, uint32_t neg_inf, uintptr_t mask, int64_t n_words, int64_t mask_row_stride):
    """Store the -inf pattern `neg_inf` at every banned id of a rows x vocab logits array (raw addresses:
    the caller keeps both arrays alive and checks shapes, strides and element size)."""
    if elem_size != 4 and elem_size != 2:
        raise ValueError(f"elements of {elem_size} bytes: only 4 (float32) and 2 (float16, bfloat16)")
    with nogil:
        gm_apply_bitmask(<void *>logits, elem_size, rows, vocab, row_stride, col_stride, neg_inf,
                         <const uint32_t *>mask, n_words, mask_row_stride)


class LalrTimeout(RuntimeError):
    """The LALR(1) build went past its deadline."""


def lalr_tables(int32_t n_terms, int32_t n_nonterms, rule_lhs, rule_begin, rhs, rule_prio, int32_t root_rule,
                int32_t end_term, double deadline=0.0):
    """LALR(1) tables of a grammar as flat arrays (gm_core.h gm_lalr_grammar): a dict with n_states,
    end_state, trans [n_states, n_terms + n_nonterms], reduce [n_states, n_terms], conflicts [k, 3]
    (state, terminal, rule) and collisions [(state, terminal, rules)]; None where Lark's own construction
    must answer (GM_LALR_FALLBACK). Raises LalrTimeout past `deadline` (time.monotonic; 0: none),
    MemoryError, ValueError for arrays that do not describe a grammar."""
    lhs = np.ascontiguousarray(rule_lhs, dtype=np.int32)
    begin = np.ascontiguousarray(rule_begin, dtype=np.int32)
    sym = _array(rhs, np.int32)
    prio = np.ascontiguousarray(rule_prio, dtype=np.int32)
    n_rules = lhs.shape[0]
    n_rhs = np.asarray(rhs).size
    if lhs.ndim != 1 or prio.shape != (n_rules,) or begin.shape != (n_rules + 1,) or n_rules < 1:
        raise ValueError("lalr_tables: rule_lhs, rule_prio [n_rules] and rule_begin [n_rules + 1] expected")
    cdef gm_lalr_grammar g
    g.n_terms, g.n_nonterms, g.n_rules, g.n_rhs = n_terms, n_nonterms, n_rules, n_rhs
    g.rule_lhs = <const int32_t *><uintptr_t>_ptr(lhs)
    g.rule_begin = <const int32_t *><uintptr_t>_ptr(begin)
    g.rhs = <const int32_t *><uintptr_t>_ptr(sym)
    g.rule_prio = <const int32_t *><uintptr_t>_ptr(prio)
    g.root_rule, g.end_term, g.deadline = root_rule, end_term, deadline
    cdef gm_lalr_tables t
    cdef int rc
    with nogil:
        rc = gm_lalr_build(&g, &t)
    if rc == GM_LALR_FALLBACK:
        return None
    if rc == GM_LALR_TIMEOUT:
        raise LalrTimeout("building the LALR(1) tables took too long (limit: build_timeout)")
    if rc == GM_LALR_BAD_INPUT:
        raise ValueError("lalr_tables: the arrays do not describe a grammar (an index out of range, or the "
                         "root rule not alone)")
    _check(rc)
    try:
        n_states, n_symbols = t.n_states, t.n_symbols
        bounds = _copy(t.collisions, 3 * (t.n_collisions + 1), np.int32).reshape(-1, 3)
        rules = _copy(t.collision_rules, int(bounds[-1, 2]), np.int32)
        return {
            "n_states": n_states, "end_state": t.end_state,
            "trans": _copy(t.trans, <int64_t>n_states * n_symbols, np.int32).reshape(n_states, n_symbols),
            "reduce": _copy(t.reduce, <int64_t>n_states * n_terms, np.int32).reshape(n_states, n_terms),
            "conflicts": _copy(t.conflicts, 3 * t.n_conflicts, np.int32).reshape(-1, 3),
            "collisions": [(int(bounds[k, 0]), int(bounds[k, 1]), rules[bounds[k, 2]:bounds[k + 1, 2]].tolist())
                           for k in range(t.n_collisions)],
        }
    finally:
        gm_lalr_free(&t)


def _array(a, dtype):
    """C-contiguous copy-free view of `a` as dtype, never empty (C gets a valid pointer)."""
    arr = np.ascontiguousarray(a, dtype=dtype)
    if arr.size == 0:
        arr = np.zeros(1, dtype=dtype)
    return arr


def _owned(arr, dtype):
    """A C-contiguous copy of `arr` as dtype that only the core holds, read-only, never empty: what the
    checks see is what the C code reads, whatever the caller does with its arrays afterwards."""
    out = np.array(arr, dtype=dtype, order="C", copy=True) if arr.size else np.zeros(1, dtype=dtype)
    out.flags.writeable = False
    return out


# ---- checks of tables from any source: every index the core follows lies in range -----------------

def _table(str name, a, dtype, shape):
    """`a` as the core's own copy (see _owned) of `dtype` (integers only, no value changed by the
    conversion) of `shape` (None: any length along that axis). Returns (array for C, length along the
    first axis)."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biu":
        raise TableError(f"{name}: {arr.dtype} is not an integer array")
    if arr.ndim != len(shape) or any(want is not None and got != want for got, want in zip(arr.shape, shape)):
        want = tuple("*" if w is None else w for w in shape)
        raise TableError(f"{name}: shape {arr.shape}, expected {want}")
    if arr.dtype != dtype and arr.size:
        info = np.iinfo(dtype)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise TableError(f"{name}: values do not fit {np.dtype(dtype).name}")
    return _owned(arr, dtype), (arr.shape[0] if arr.ndim else 0)


def _in_range(str name, arr, int64_t n, lo, hi):
    """The first n values of arr lie in [lo, hi)."""
    if n == 0:
        return
    view = arr.reshape(-1)[:n] if arr.ndim == 1 else arr
    low, high = int(view.min()), int(view.max())
    if low < lo or high >= hi:
        raise TableError(f"{name}: values must lie in [{lo}, {hi}), found {low}..{high}")


def _bounds(str name, arr, n, limit):
    """arr[:n] are offsets into an array of `limit` elements: from 0, never decreasing, at most limit."""
    view = arr[:n]
    if (n == 0 or int(view.item(0)) < 0 or int(view.item(n - 1)) > limit
            or (n > 1 and bool(np.any(view[1:] < view[:n - 1])))):
        raise TableError(f"{name}: not offsets into {limit} elements (from 0, never decreasing)")


def _scalar(str name, int64_t value, int64_t lo, int64_t hi):
    if not lo <= value < hi:
        raise TableError(f"{name} = {value}: must lie in [{lo}, {hi})")


cdef class CoreGrammar:
    """Lexer DFA and LR tables, as the C core reads them: its own copy of every array, checked (see
    TableError)."""

    cdef gm_grammar g
    cdef readonly dict arrays
    cdef readonly dict scalars
    cdef readonly int32_t n_csets
    cdef readonly int32_t n_lex_states, n_terminals  # g's, for Python

    def __init__(self, *, lex_trans, lex_winner, lex_cset, lex_final, term_ignored, cset_begin,
                 cset_terms, action, goto, rule_lhs, rule_len, int lr_start, int lr_end, term_bracket, lex_nl,
                 term_flags,
                 int indenter=0, int lex_init=0, int t_nl=-1, int t_newline=-1, int t_indent=-1,
                 int t_dedent=-1, int t_cont=-1, int t_semicolon=-1, int tab_len=8, mode_start=None, lex_mode=None,
                 term_fop=None, term_farg=None, term_restart=None, mode_event=None, int t_rbrace=-1,
                 int t_colon=-1, int t_walrus=-1, int t_fclose=-1, int t_spec_open=-1, int t_spec_text=-1,
                 state_mode=None, int lex_fallback=0, lex_cond=None, cond_rows=None, lex_void=None):
        a = {}
        a["term_ignored"], n_terms = _table("term_ignored", term_ignored, np.uint8, (None,))
        a["lex_trans"], n_states = _table("lex_trans", lex_trans, np.int32, (None, 256))
        a["action"], n_lr = _table("action", action, np.int32, (None, n_terms + 1))
        a["rule_lhs"], n_rules = _table("rule_lhs", rule_lhs, np.int32, (None,))
        a["rule_len"], _ = _table("rule_len", rule_len, np.int32, (n_rules,))
        a["goto"], _ = _table("goto", goto, np.int32, (n_lr, None))
        n_nonterms = np.asarray(goto).shape[1]
        a["cset_begin"], n_cset_begin = _table("cset_begin", cset_begin, np.int32, (None,))
        a["cset_terms"], n_cset_terms = _table("cset_terms", cset_terms, np.int32, (None,))
        for name, arg, dtype in (("lex_winner", lex_winner, np.int32), ("lex_cset", lex_cset, np.int32),
                                 ("lex_final", lex_final, np.uint8), ("lex_nl", lex_nl, np.uint8)):
            a[name], _ = _table(name, arg, dtype, (n_states,))
        for name, arg, dtype in (("term_bracket", term_bracket, np.int8), ("term_flags", term_flags, np.uint8)):
            a[name], _ = _table(name, arg, dtype, (n_terms,))
        if n_terms < 1 or n_states < 1 or n_lr < 1 or n_cset_begin < 1:
            raise TableError("tables without terminals, lexer states, LR states or completable sets")
        self.n_csets = n_cset_begin - 1
        _in_range("lex_trans", a["lex_trans"], n_states, -1, n_states)
        _in_range("lex_winner", a["lex_winner"], n_states, -1, n_terms)
        _in_range("lex_cset", a["lex_cset"], n_states, -1, self.n_csets)
        if bool(np.any(a["lex_winner"][a["lex_final"] != 0] < 0)):
            raise TableError("lex_winner: a final lexer state produces no terminal")
        _in_range("term_bracket", a["term_bracket"], n_terms, -1, 2)
        _bounds("cset_begin", a["cset_begin"], n_cset_begin, n_cset_terms)
        _in_range("cset_terms", a["cset_terms"], n_cset_terms, 0, n_terms)
        _in_range("action", a["action"], n_lr, -1 - n_rules, n_lr)
        _in_range("goto", a["goto"], n_lr * n_nonterms, -1, n_lr)
        _in_range("rule_lhs", a["rule_lhs"], n_rules, 0, n_nonterms)
        _in_range("rule_len", a["rule_len"], n_rules, 0, n_lr + 1)
        _scalar("lr_start", lr_start, 0, n_lr)
        _scalar("lr_end", lr_end, 0, n_lr)
        _scalar("indenter", indenter, 0, 4)
        _scalar("lex_init", lex_init, 0, n_states)
        _scalar("lex_fallback", lex_fallback, 0, 2)
        if indenter == 1:
            for name, value in (("t_nl", t_nl), ("t_newline", t_newline), ("t_indent", t_indent),
                                ("t_dedent", t_dedent)):
                _scalar(name, value, 0, n_terms)
            _scalar("t_cont", t_cont, -1, n_terms)
        elif indenter == 2:
            _scalar("t_semicolon", t_semicolon, 0, n_terms)
        elif indenter == 3:  # Lark's Indenter: NL goes to the parser itself
            for name, value in (("t_nl", t_nl), ("t_indent", t_indent), ("t_dedent", t_dedent)):
                _scalar(name, value, 0, n_terms)
            _scalar("tab_len", tab_len, 1, 0x40000000)
        self.arrays = a
        self.scalars = dict(lr_start=lr_start, lr_end=lr_end, indenter=indenter, lex_init=lex_init, t_nl=t_nl,
                            t_newline=t_newline, t_indent=t_indent, t_dedent=t_dedent, t_cont=t_cont,
                            t_semicolon=t_semicolon, tab_len=tab_len, lex_fallback=lex_fallback)
        self.g.n_lex_states = self.n_lex_states = <int32_t>n_states
        self.g.n_terminals = self.n_terminals = <int32_t>n_terms
        self.g.lex_trans = <const int32_t *>_ptr(a["lex_trans"])
        self.g.lex_winner = <const int32_t *>_ptr(a["lex_winner"])
        self.g.lex_cset = <const int32_t *>_ptr(a["lex_cset"])
        self.g.lex_final = <const uint8_t *>_ptr(a["lex_final"])
        self.g.term_ignored = <const uint8_t *>_ptr(a["term_ignored"])
        self.g.cset_begin = <const int32_t *>_ptr(a["cset_begin"])
        self.g.cset_terms = <const int32_t *>_ptr(a["cset_terms"])
        self.g.n_lr_states = <int32_t>n_lr
        self.g.n_nonterminals = <int32_t>n_nonterms
        self.g.n_rules = <int32_t>n_rules
        self.g.lr_start = lr_start
        self.g.lr_end = lr_end
        self.g.action = <const int32_t *>_ptr(a["action"])
        self.g.go = <const int32_t *>_ptr(a["goto"])
        self.g.rule_lhs = <const int32_t *>_ptr(a["rule_lhs"])
        self.g.rule_len = <const int32_t *>_ptr(a["rule_len"])
        self.g.term_bracket = <const int8_t *>_ptr(a["term_bracket"])
        self.g.lex_nl = <const uint8_t *>_ptr(a["lex_nl"])
        self.g.indenter = indenter
        self.g.lex_init = lex_init
        self.g.t_nl, self.g.t_newline, self.g.t_indent, self.g.t_dedent = t_nl, t_newline, t_indent, t_dedent
        self.g.t_cont = t_cont
        self.g.tab_len = tab_len
        self.g.lex_fallback = lex_fallback
        self.g.term_flags = <const uint8_t *>_ptr(a["term_flags"])
        self.g.t_semicolon = t_semicolon
        self.g.n_modes = 1
        if mode_start is not None and len(mode_start) > 1:
            self._set_modes(mode_start, lex_mode, term_fop, term_farg, term_restart, mode_event,
                            (t_rbrace, t_colon, t_walrus, t_fclose, t_spec_open, t_spec_text))
        if lex_cond is not None or cond_rows is not None:
            if lex_cond is None or cond_rows is None:
                raise TableError("lex_cond and cond_rows come together")
            a["cond_rows"], n_cond = _table("cond_rows", cond_rows, np.int32, (None, 257))
            a["lex_cond"], _ = _table("lex_cond", lex_cond, np.int32, (n_states,))
            _in_range("lex_cond", a["lex_cond"], n_states, -1, n_cond)
            _in_range("cond_rows", a["cond_rows"], n_cond * 257, -1, n_terms)
            if bool(np.any(a["lex_winner"][a["lex_cond"] >= 0] >= 0)):
                raise TableError("lex_cond: a conditional lexer state has an unconditional winner")
            self.g.lex_cond = <const int32_t *>_ptr(a["lex_cond"])
            self.g.cond_rows = <const int32_t *>_ptr(a["cond_rows"])
        if lex_void is not None:
            if lex_cond is None or not lex_fallback:
                raise TableError("lex_void without conditional lexer states and lex_fallback")
            a["lex_void"], _ = _table("lex_void", lex_void, np.int32, (n_states,))
            _in_range("lex_void", a["lex_void"], n_states, -2, n_terms)
            self.g.lex_void = <const int32_t *>_ptr(a["lex_void"])
        if state_mode is not None:
            if self.g.n_modes < 2:
                raise TableError("state_mode without lexer modes")
            a["state_mode"], _ = _table("state_mode", state_mode, np.int32, (n_lr,))
            _in_range("state_mode", a["state_mode"], n_lr, 0, self.g.n_modes)
            self.g.state_mode = <const int32_t *>_ptr(a["state_mode"])
        cdef char msg[300]
        cdef int rc
        with nogil:
            rc = gm_check_grammar(&self.g, msg, sizeof(msg))
        if rc == -1:
            raise TableError(msg.decode("utf-8", "replace"))
        _check(rc)

    def _set_modes(self, mode_start, lex_mode, term_fop, term_farg, term_restart, mode_event, roles):
        """Lexer modes (f-strings): checked, since the core indexes with them unchecked."""
        a = self.arrays
        n_states, n_terms = self.g.n_lex_states, self.g.n_terminals
        a["mode_start"], n_modes = _table("mode_start", mode_start, np.int32, (None,))
        a["lex_mode"], _ = _table("lex_mode", lex_mode, np.int32, (n_states,))
        for name, arg, dtype in (("term_fop", term_fop, np.int8), ("term_farg", term_farg, np.int32),
                                 ("term_restart", term_restart, np.int32)):
            a[name], _ = _table(name, arg, dtype, (n_terms,))
        a["mode_event"], _ = _table("mode_event", mode_event, np.int32, (n_modes, 256))
        # Without f-string operations (structural tags' lexmodes) the modes are plain: no roles to check.
        fstrings = bool(np.any(a["term_fop"] != 0)) or bool(np.any(a["mode_event"] >= 0))
        if fstrings and n_modes < 18:
            raise TableError(f"{n_modes} lexer modes: f-string grammars have at least 18")
        _in_range("mode_start", a["mode_start"], n_modes, 0, n_states)
        _in_range("lex_mode", a["lex_mode"], n_states, 0, n_modes)
        _in_range("term_fop", a["term_fop"], n_terms, 0, 13)
        _in_range("term_restart", a["term_restart"], n_terms, -2, n_modes)
        _in_range("mode_event", a["mode_event"], n_modes, -1, n_terms)
        fop, farg = a["term_fop"][:n_terms], a["term_farg"][:n_terms]
        _in_range("term_farg of f-string starts", farg[fop == 1], int(np.sum(fop == 1)), 0, 16)
        triple = farg[fop == 12]
        _in_range("term_farg of triple-quoted strings", triple, triple.shape[0], 0, 2 * n_terms)
        for name, value in zip(("t_rbrace", "t_colon", "t_walrus", "t_fclose", "t_spec_open", "t_spec_text"), roles):
            _scalar(name, value, 0 if fstrings else -1, n_terms)
        self.g.n_modes = <int32_t>n_modes
        self.g.mode_start = <const int32_t *>_ptr(a["mode_start"])
        self.g.lex_mode = <const int32_t *>_ptr(a["lex_mode"])
        self.g.term_fop = <const int8_t *>_ptr(a["term_fop"])
        self.g.term_farg = <const int32_t *>_ptr(a["term_farg"])
        self.g.term_restart = <const int32_t *>_ptr(a["term_restart"])
        self.g.mode_event = <const int32_t *>_ptr(a["mode_event"])
        self.g.t_rbrace, self.g.t_colon, self.g.t_walrus = roles[:3]
        self.g.t_fclose, self.g.t_spec_open, self.g.t_spec_text = roles[3:]
        self.scalars.update(zip(("t_rbrace", "t_colon", "t_walrus", "t_fclose", "t_spec_open", "t_spec_text"), roles))

    def build_vocab(self, tok_bytes, tok_begin, order, int n_words, bint strip_leading_space, int n_threads=1):
        """Run the table builder over the sorted vocabulary (on n_threads threads); returns the raw tables
        as arrays."""
        tb, n_bytes = _table("tok_bytes", tok_bytes, np.uint8, (None,))
        tbeg, n_begin = _table("tok_begin", tok_begin, np.int64, (None,))
        order_arr, n = _table("order", order, np.int32, (None,))
        _bounds("tok_begin", tbeg, n_begin, n_bytes)
        _in_range("order", order_arr, n, 0, n_begin - 1)
        if n_words < 1 or (n_begin - 1) > 32 * <int64_t>n_words:
            raise TableError(f"{n_begin - 1} tokens do not fit masks of {n_words} words")
        cdef int32_t n_order = <int32_t>n
        cdef gm_build out
        cdef const uint8_t *p_bytes = <const uint8_t *>_ptr(tb)
        cdef const int64_t *p_begin = <const int64_t *>_ptr(tbeg)
        cdef const int32_t *p_order = <const int32_t *>_ptr(order_arr)
        cdef int rc
        with nogil:
            rc = gm_build_vocab(&self.g, p_bytes, p_begin, p_order, n_order, n_words,
                                strip_leading_space, n_threads, &out)
        _check(rc)
        try:
            n_ts = out.n_table_states
            res = dict(
                masks=_copy(out.masks, n_ts * n_words, np.uint32).reshape(n_ts, n_words),
                group_begin=_copy(out.group_begin, n_ts + 1, np.int32),
                group_seq=_copy(out.group_seq, out.n_groups, np.int32),
                group_cset=_copy(out.group_cset, out.n_groups, np.int32),
                group_tok_begin=_copy(out.group_tok_begin, out.n_groups + 1, np.int32),
                group_toks=_copy(out.group_toks, out.n_group_toks, np.int32),
                seq_begin=_copy(out.seq_begin, out.n_seqs + 1, np.int32),
                seq_terms=_copy(out.seq_terms, out.n_seq_terms, np.int32),
                wsop_begin=_copy(out.wsop_begin, out.n_wsops + 1, np.int32),
                wsop_bytes=_copy(out.wsop_bytes, out.wsop_begin[out.n_wsops], np.uint8),
                wsop_reset=_copy(out.wsop_reset, out.n_wsops, np.uint8),
            )
        finally:
            gm_build_free(&out)
        return res


cdef class CoreTokens:
    """A vocabulary as the table builder reads it: every token's bytes and their offsets, the stop flags and
    (for lazy tables) the ids of the tokens with text sorted by their bytes; its own copies, checked, with
    the index the lazy builder derives from the sorted order (gm_vocab_index). Read-only once made, so one
    per tokenizer serves every CoreVocab over it: a grammar made per request (a JSON Schema) then neither
    copies, checks nor walks the whole vocabulary again before its first fill."""

    cdef gm_vocab_index ix
    cdef readonly dict arrays
    cdef readonly int32_t vocab_size, n_tokens, n_order
    cdef readonly object stop_ids

    def __init__(self, *, int vocab_size, tok_bytes, tok_begin, is_stop, order=None):
        gm_vocab_index_free(&self.ix)  # (__init__ called again: the old index goes)
        if vocab_size < 1:
            raise TableError(f"vocab_size {vocab_size}")
        a = {}
        a["tok_bytes"], n_bytes = _table("tok_bytes", tok_bytes, np.uint8, (None,))
        a["tok_begin"], n_begin = _table("tok_begin", tok_begin, np.int64, (None,))
        a["is_stop"], _ = _table("is_stop", is_stop, np.uint8, (vocab_size,))
        n_tokens = n_begin - 1
        if not 0 <= n_tokens <= vocab_size:
            raise TableError(f"tok_begin: {n_tokens} tokens for a vocabulary of {vocab_size}")
        _bounds("tok_begin", a["tok_begin"], n_begin, n_bytes)
        self.vocab_size, self.n_tokens, self.n_order = vocab_size, <int32_t>n_tokens, -1
        self.stop_ids = np.ascontiguousarray(np.flatnonzero(a["is_stop"]), dtype=np.int32)
        if order is not None:
            a["order"], n_order = _table("order", order, np.int32, (None,))
            _in_range("order", a["order"], n_order, 0, max(n_tokens, 1))
            self.n_order = <int32_t>n_order
            _check(gm_vocab_index_init(&self.ix, <const uint8_t *>_ptr(a["tok_bytes"]),
                                       <const int64_t *>_ptr(a["tok_begin"]), <const int32_t *>_ptr(a["order"]),
                                       self.n_order))
        self.arrays = a

    def __dealloc__(self):
        gm_vocab_index_free(&self.ix)


cdef class CoreVocab:
    """Token tables for one CoreGrammar and one vocabulary: its own copy of every array, checked (see
    TableError). Holds the fill cache its matchers share.

    Eager tables: every state's, from gm_build_vocab (or the disk cache). Lazy tables (`order` given, the
    table arrays not; or `tokens`, a CoreTokens with its order, in place of tok_bytes, tok_begin, is_stop and
    order): each state's built by the first fill that needs it."""

    cdef gm_vocab v
    cdef readonly CoreGrammar grammar
    cdef readonly CoreTokens tokens
    cdef readonly dict arrays
    cdef readonly int32_t vocab_size, n_words  # v's, for Python
    cdef readonly int32_t n_table_states
    cdef object stop_ids

    def __init__(self, CoreGrammar grammar, *, int vocab_size, bint strip_leading_space, tok_bytes=None,
                 tok_begin=None, is_stop=None, order=None, CoreTokens tokens=None, uncond_mask=None, masks=None,
                 group_begin=None, group_seq=None, group_cset=None, group_tok_begin=None, group_toks=None,
                 group_dense=None, seq_begin=None, seq_terms=None, wsop_begin=None, wsop_bytes=None,
                 wsop_reset=None):
        self.grammar = grammar
        tables = (uncond_mask, masks, group_begin, group_seq, group_cset, group_tok_begin, group_toks, group_dense,
                  seq_begin, seq_terms, wsop_begin, wsop_bytes, wsop_reset)
        if tokens is None:
            if tok_bytes is None or tok_begin is None or is_stop is None:
                raise TypeError("CoreVocab needs tok_bytes, tok_begin and is_stop (or `tokens`)")
            tokens = CoreTokens(vocab_size=vocab_size, tok_bytes=tok_bytes, tok_begin=tok_begin, is_stop=is_stop,
                                order=order)
        else:
            if any(x is not None for x in (tok_bytes, tok_begin, is_stop, order)):
                raise TypeError("CoreVocab takes `tokens` in place of tok_bytes, tok_begin, is_stop and order")
            if tokens.n_order < 0:
                raise TypeError("CoreVocab's `tokens` serve lazy tables: they need their sorted order")
            if tokens.vocab_size != vocab_size:
                raise TableError(f"tokens of a vocabulary of {tokens.vocab_size}, not {vocab_size}")
        lazy = tokens.n_order >= 0
        if lazy and any(t is not None for t in tables):
            raise TypeError("CoreVocab takes either `order` (lazy tables) or the table arrays, not both")
        if not lazy and any(t is None for t in tables):
            raise TypeError("CoreVocab needs every table array (or `order`, for lazy tables)")
        n_words = (vocab_size + 31) // 32
        self.n_table_states = grammar.g.n_lex_states + (1 if strip_leading_space else 0)
        self.tokens = tokens
        a = self.arrays = dict(tokens.arrays)
        self.stop_ids = tokens.stop_ids
        self.v.vocab_size = self.vocab_size = vocab_size
        self.v.n_words = self.n_words = n_words
        self.v.n_tokens = tokens.n_tokens
        self.v.tok_bytes = <const uint8_t *>_ptr(a["tok_bytes"])
        self.v.tok_begin = <const int64_t *>_ptr(a["tok_begin"])
        self.v.is_stop = <const uint8_t *>_ptr(a["is_stop"])
        self.v.stop_ids = <const int32_t *>_ptr(self.stop_ids)
        self.v.n_stop = <int32_t>self.stop_ids.shape[0]
        self.v.strip_leading_space = strip_leading_space
        if lazy:
            self.v.lazy = gm_lazy_new(&grammar.g, self.v.tok_bytes, self.v.tok_begin,
                                      <const int32_t *>_ptr(a["order"]), tokens.n_order, &tokens.ix, n_words,
                                      strip_leading_space)
            if self.v.lazy == NULL:
                raise MemoryError("grammask core: out of memory")
        else:
            self._set_tables(*tables)
        self.v.fill_cache = gm_fill_cache_new(self.v.n_words, GM_FILL_SETS, GM_FILL_WAYS, 1)
        if self.v.fill_cache == NULL:
            raise MemoryError("grammask core: out of memory")

    def _set_tables(self, uncond_mask, masks, group_begin, group_seq, group_cset, group_tok_begin, group_toks,
                    group_dense, seq_begin, seq_terms, wsop_begin, wsop_bytes, wsop_reset):
        cdef CoreGrammar grammar = self.grammar
        cdef int32_t n_ts = self.n_table_states, n_words = self.n_words, vocab_size = self.vocab_size
        cdef int32_t n_tokens = self.v.n_tokens
        n_terms = grammar.g.n_terminals
        a = self.arrays
        a["uncond_mask"], _ = _table("uncond_mask", uncond_mask, np.int32, (n_ts,))
        a["masks"], n_masks = _table("masks", masks, np.uint32, (None, n_words))
        a["group_begin"], _ = _table("group_begin", group_begin, np.int32, (n_ts + 1,))
        a["group_seq"], n_groups = _table("group_seq", group_seq, np.int32, (None,))
        for name, arg in (("group_cset", group_cset), ("group_dense", group_dense)):
            a[name], _ = _table(name, arg, np.int32, (n_groups,))
        a["group_tok_begin"], _ = _table("group_tok_begin", group_tok_begin, np.int32, (n_groups + 1,))
        a["group_toks"], n_group_toks = _table("group_toks", group_toks, np.int32, (None,))
        a["seq_begin"], n_seq_begin = _table("seq_begin", seq_begin, np.int32, (None,))
        a["seq_terms"], n_seq_terms = _table("seq_terms", seq_terms, np.int32, (None,))
        a["wsop_begin"], n_wsop_begin = _table("wsop_begin", wsop_begin, np.int32, (None,))
        a["wsop_bytes"], n_wsop_bytes = _table("wsop_bytes", wsop_bytes, np.uint8, (None,))
        a["wsop_reset"], _ = _table("wsop_reset", wsop_reset, np.uint8, (n_wsop_begin - 1,))
        if n_masks < 1 or n_seq_begin < 2 or n_wsop_begin < 1:
            raise TableError("tables without masks, terminal sequences or whitespace offsets")
        _in_range("uncond_mask", a["uncond_mask"], n_ts, 0, n_masks)
        if vocab_size % 32 and bool(np.any(a["masks"][:, n_words - 1] >> (vocab_size % 32))):
            raise TableError(f"masks: bits set past the vocabulary's {vocab_size} tokens")
        _bounds("group_begin", a["group_begin"], n_ts + 1, n_groups)
        _in_range("group_seq", a["group_seq"], n_groups, 0, n_seq_begin - 1)
        _in_range("group_cset", a["group_cset"], n_groups, -2, grammar.n_csets)
        _in_range("group_dense", a["group_dense"], n_groups, -1, n_masks)
        _bounds("group_tok_begin", a["group_tok_begin"], n_groups + 1, n_group_toks)
        _in_range("group_toks", a["group_toks"], n_group_toks, 0, n_tokens)
        _bounds("seq_begin", a["seq_begin"], n_seq_begin, n_seq_terms)
        # terminals, or (indentation grammars) a newline lexeme's whitespace op past $END, or (a contextual
        # lexer's restarts the parser state decides) a mode marker, -1 - mode
        n_events = n_terms + 1 + (n_wsop_begin - 1) if grammar.g.indenter in (1, 3) else n_terms
        n_markers = grammar.g.n_modes if grammar.g.state_mode != NULL else 0
        _in_range("seq_terms", a["seq_terms"], n_seq_terms, -n_markers, n_events)
        if n_seq_terms and bool(np.any(a["seq_terms"][:n_seq_terms] == n_terms)):
            raise TableError("seq_terms: $END inside a token")
        _bounds("wsop_begin", a["wsop_begin"], n_wsop_begin, n_wsop_bytes)
        self.v.uncond_mask = <const int32_t *>_ptr(a["uncond_mask"])
        self.v.masks = <const uint32_t *>_ptr(a["masks"])
        self.v.group_begin = <const int32_t *>_ptr(a["group_begin"])
        self.v.group_seq = <const int32_t *>_ptr(a["group_seq"])
        self.v.group_cset = <const int32_t *>_ptr(a["group_cset"])
        self.v.group_tok_begin = <const int32_t *>_ptr(a["group_tok_begin"])
        self.v.group_toks = <const int32_t *>_ptr(a["group_toks"])
        self.v.group_dense = <const int32_t *>_ptr(a["group_dense"])
        self.v.seq_begin = <const int32_t *>_ptr(a["seq_begin"])
        self.v.seq_terms = <const int32_t *>_ptr(a["seq_terms"])
        self.v.wsop_begin = <const int32_t *>_ptr(a["wsop_begin"])
        self.v.wsop_bytes = <const uint8_t *>_ptr(a["wsop_bytes"])
        self.v.wsop_reset = <const uint8_t *>_ptr(a["wsop_reset"])
        # Derived, not stored: how much each group's sequence shares with the one before it (the fill
        # then never compares sequences).
        lcp = np.zeros(max(n_groups, 1), dtype=np.int32)
        gm_group_lcp(&self.v, <int32_t>n_ts, <int32_t *>_ptr(lcp))
        a["group_lcp"] = lcp
        self.v.group_lcp = <const int32_t *>_ptr(lcp)

    def __dealloc__(self):
        gm_fill_cache_free(self.v.fill_cache)
        gm_lazy_free(self.v.lazy)

    @property
    def lazy(self):
        return self.v.lazy != NULL

    @property
    def lazy_stats(self):
        """Lazy tables: (states built so far, bytes they hold); eager: None."""
        cdef int32_t n_built
        cdef int64_t n_bytes
        if self.v.lazy == NULL:
            return None
        gm_lazy_stats(self.v.lazy, &n_built, &n_bytes)
        return n_built, n_bytes

    def built_states(self):
        """Lazy tables: the table states built so far (eager: all)."""
        if self.v.lazy == NULL:
            return list(range(self.n_table_states))
        return [ts for ts in range(self.n_table_states) if gm_lazy_built(self.v.lazy, ts)]

    def state_tables(self, int32_t ts):
        """Table state ts's tables (built now if lazy), for tests: (unconditional mask as uint32 words,
        {(terminal sequence, completable set): sorted token ids}). A sequence's whitespace ops are shown as
        ("ws", reset, bytes), the same whichever table numbered them."""
        cdef gm_state_tables t
        if not 0 <= ts < self.n_table_states:
            raise IndexError(f"table state {ts} of {self.n_table_states}")
        _check(gm_state_tables_of(&self.v, ts, &t))
        cdef int32_t W = self.n_words, n_terms = self.grammar.g.n_terminals
        uncond = np.array(<uint32_t[:W]><uint32_t *>t.uncond, dtype=np.uint32) if W else np.zeros(0, np.uint32)
        groups = {}
        for gi in range(t.n_groups):
            seq = []
            for k in range(t.seq_begin[t.seq[gi]], t.seq_begin[t.seq[gi] + 1]):
                e = t.seq_terms[k]
                if e > n_terms:
                    op = e - n_terms - 1
                    text = bytes([t.ws.bytes[i] for i in range(t.ws.begin[op], t.ws.begin[op + 1])])
                    e = ("ws", t.ws.reset[op], text)
                seq.append(e)
            if t.dense[gi] >= 0:
                words = np.array(<uint32_t[:W]><uint32_t *>(t.masks + <size_t>t.dense[gi] * W), dtype=np.uint32)
                toks = np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little")).tolist()
            else:
                toks = sorted(t.toks[k] for k in range(t.tok_begin[gi], t.tok_begin[gi + 1]))
            groups[(tuple(seq), t.cset[gi])] = tuple(toks)
        return uncond, groups

    @property
    def fill_cache_bytes(self):
        """Bytes of the fill cache the matchers of these tables share."""
        return gm_fill_cache_memory(self.v.fill_cache)

    @property
    def fill_cache_stats(self):
        """(hits, misses) of the shared fill cache so far."""
        cdef int64_t hits, misses
        gm_fill_cache_stats(self.v.fill_cache, &hits, &misses)
        return hits, misses


cdef class CoreMatcher:
    """One parse in progress. With a CoreVocab it matches tokens; without, it validates bytes."""

    cdef gm_matcher m
    cdef readonly CoreGrammar grammar
    cdef readonly CoreVocab vocab
    cdef bint ready

    def __cinit__(self, CoreGrammar grammar, CoreVocab vocab=None, int max_history=0, fill_cache=True):
        """fill_cache: True, the tables' shared cache of masks; "private", one of 16 masks of its own (as
        every matcher had before they shared one: benchmarks compare the two); False, none."""
        self.ready = False
        self.grammar = grammar
        self.vocab = vocab
        if vocab is not None and vocab.grammar is not grammar:
            raise ValueError("vocabulary tables belong to another grammar")
        if fill_cache not in (True, False, "private"):
            raise ValueError(f"fill_cache must be True, False or 'private', not {fill_cache!r}")
        _check(gm_matcher_init(&self.m, &grammar.g, &vocab.v if vocab is not None else NULL))
        self.ready = True
        self.m.max_hist = max_history
        if fill_cache is not True:
            _check(gm_matcher_private_fill_cache(&self.m, GM_FILL_PRIVATE if fill_cache == "private" else 0))

    def __dealloc__(self):
        if self.ready:
            gm_matcher_free(&self.m)

    cdef int _need_vocab(self) except -1:
        if self.vocab is None:
            raise ValueError("this matcher has no token tables (it validates bytes only)")
        return 0

    def fill(self, uintptr_t address):
        """Write the packed next-token mask to n_words uint32 at `address` (caller checked the buffer)."""
        cdef int rc
        self._need_vocab()
        with nogil:
            rc = gm_fill_bitmask(&self.m, <uint32_t *>address)
        _check(rc)

    def accept_token(self, int32_t token):
        self._need_vocab()
        return _check(gm_accept_token(&self.m, token)) == 1

    def accept_tokens(self, tokens):
        """Accept every token in order, or none: False (state unchanged) if one is rejected."""
        self._need_vocab()
        arr = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= self.vocab.v.vocab_size):
            return False
        cdef int32_t[::1] ids = np.ascontiguousarray(arr, dtype=np.int32) if arr.size else np.zeros(1, np.int32)
        cdef int32_t n = <int32_t>arr.size
        return _check(gm_accept_tokens(&self.m, &ids[0], n)) == 1

    def rollback(self, int32_t n):
        return gm_rollback(&self.m, n) == 0

    def reset(self):
        gm_matcher_reset(&self.m)

    def is_complete(self):
        return _check(gm_is_complete(&self.m)) == 1

    @property
    def terminated(self):
        return bool(self.m.terminated)

    @property
    def history_length(self):
        return self.m.n_hist

    @property
    def memory_bytes(self):
        return gm_matcher_memory(&self.m)

    @property
    def fill_cache_stats(self):
        """(hits, misses) of the fill cache this matcher uses (shared: all its matchers' together)."""
        cdef int64_t hits, misses
        gm_fill_cache_stats(self.m.fill_cache, &hits, &misses)
        return hits, misses

    @property
    def lex_state(self):
        return self.m.lex_state

    def acceptable_terminals(self):
        """Bool per terminal id (and $END last): may it come next? %ignore terminals are always True."""
        out = np.zeros(self.grammar.g.n_terminals + 1, dtype=np.uint8)
        _check(gm_acceptable_terminals(&self.m, <uint8_t *>_ptr(out)))
        return out.astype(bool)

    def accept_bytes(self, const uint8_t[::1] data):
        """Feed raw text; False (state unchanged) if it does not keep the text a valid prefix."""
        if data.shape[0] == 0:
            return True
        return _check(gm_accept_bytes(&self.m, &data[0], data.shape[0])) == 1

    def can_continue(self):
        """Whether anything but ignored text (whitespace, comments) may still follow."""
        return _check(gm_can_continue(&self.m)) == 1

    def flush_lexeme(self):
        """End the pending lexeme as a terminal; False if it is incomplete or the parser rejects it."""
        return _check(gm_flush_lexeme(&self.m)) == 1

    def feed_bytes(self, const uint8_t[::1] data, int64_t offset=0):
        """Feed raw text bytes. Returns (code, error_offset, terminal_or_cset, lexeme_begin)."""
        cdef int64_t err_pos = -1, lexeme_begin = offset
        cdef int32_t err_term = -1
        cdef int64_t n = data.shape[0]
        cdef int rc
        if n == 0:
            return 0, -1, -1, offset
        with nogil:
            rc = gm_feed_bytes(&self.m, &data[0], n, offset, &err_pos, &err_term, &lexeme_begin)
        _check(rc)
        return rc, err_pos, err_term, lexeme_begin


# ---- the lexer DFA's construction (gm_lexbuild.c; fsm/lexer.py drives it) ----------------------------

cdef extern from "gm_lexbuild.h":
    ctypedef struct gm_lexbuild:
        int32_t n_states
        int32_t *trans
        int32_t *winner
        uint8_t *dead_end
        int32_t *class_of
        int32_t *rep
        int32_t *cset
        int32_t n_csets
        int32_t *cset_begin
        int32_t *cset_terms

    int GM_LEXB_TOO_MANY, GM_LEXB_TIMEOUT, GM_LEXB_NOTHING, GM_LEXB_BAD_INPUT
    int gm_lex_determinize(int32_t n_nfa, const int32_t *edge_begin, int64_t n_edges, const int32_t *edge_lo,
                           const int32_t *edge_hi, const int32_t *edge_dst, const int32_t *accept,
                           int32_t n_starts, const int32_t *starts, int32_t n_terms, const int32_t *term_rank,
                           int32_t max_states, double time_left, gm_lexbuild *out) nogil
    int gm_lex_minimize(int32_t n, const int32_t *trans, const int32_t *winner, const int32_t *mode,
                        const int32_t *cond, int32_t n_starts, const int32_t *starts, gm_lexbuild *out) nogil
    int gm_lex_csets(int32_t n, const int32_t *trans, const int32_t *winner, const int32_t *cond, int32_t n_rows,
                     const int32_t *cond_rows, int32_t n_terms, const uint8_t *ignored, int32_t n_starts,
                     const int32_t *starts, gm_lexbuild *out) nogil
    void gm_lexbuild_free(gm_lexbuild *out) nogil

LEX_TOO_MANY = GM_LEXB_TOO_MANY
LEX_TIMEOUT = GM_LEXB_TIMEOUT
LEX_NOTHING = GM_LEXB_NOTHING


cdef int _lex_check(int rc) except -1:
    if rc == GM_LEXB_BAD_INPUT:
        raise ValueError("lexer construction: an index out of range in its input")
    return _check(rc)


def _lex_input(str name, a, int64_t length, str who="lexer construction", dtype=np.int32):
    """`a` as `dtype` for the C code, never empty, with exactly `length` elements. A count the C code is
    given as len(a) is checked here too: len() of an array of shape (n, 0) is n, but it has no element."""
    arr = np.ascontiguousarray(a, dtype=dtype).reshape(-1)
    if arr.shape[0] != length:
        raise ValueError(f"{who}: {name} has {arr.shape[0]} elements, not {length}")
    return arr if arr.shape[0] else np.zeros(1, dtype=dtype)


def lex_determinize(edge_begin, edge_lo, edge_hi, edge_dst, accept, starts, term_rank, int32_t max_states,
                    double time_left):
    """The DFA of a byte NFA (gm_lex_determinize): (0, n, trans (n, 256), winner), or (LEX_TOO_MANY or
    LEX_TIMEOUT, the states so far, None, None)."""
    cdef gm_lexbuild out
    cdef int rc
    n_nfa = len(accept)
    b = _lex_input("edge_begin", edge_begin, n_nfa + 1)
    n_edges = len(edge_lo)
    lo, hi = _lex_input("edge_lo", edge_lo, n_edges), _lex_input("edge_hi", edge_hi, n_edges)
    dst, acc = _lex_input("edge_dst", edge_dst, n_edges), _lex_input("accept", accept, n_nfa)
    st, rank = _lex_input("starts", starts, len(starts)), _lex_input("term_rank", term_rank, len(term_rank))
    cdef const int32_t *p_begin = <const int32_t *>_ptr(b)
    cdef const int32_t *p_lo = <const int32_t *>_ptr(lo)
    cdef const int32_t *p_hi = <const int32_t *>_ptr(hi)
    cdef const int32_t *p_dst = <const int32_t *>_ptr(dst)
    cdef const int32_t *p_acc = <const int32_t *>_ptr(acc)
    cdef const int32_t *p_st = <const int32_t *>_ptr(st)
    cdef const int32_t *p_rank = <const int32_t *>_ptr(rank)
    cdef int32_t c_nfa = n_nfa, c_starts = len(starts), c_terms = len(term_rank)
    cdef int64_t c_edges = n_edges
    with nogil:
        rc = gm_lex_determinize(c_nfa, p_begin, c_edges, p_lo, p_hi, p_dst, p_acc, c_starts, p_st, c_terms, p_rank,
                                max_states, time_left, &out)
    if rc == GM_LEXB_TOO_MANY or rc == GM_LEXB_TIMEOUT:
        return rc, out.n_states, None, None
    _lex_check(rc)
    try:
        trans = _copy(out.trans, <int64_t>out.n_states * 256, np.int32).reshape(out.n_states, 256)
        return 0, out.n_states, trans, _copy(out.winner, out.n_states, np.int32)
    finally:
        gm_lexbuild_free(&out)


def lex_minimize(trans, winner, mode, cond, starts):
    """Trim, then merge equivalent states (gm_lex_minimize): (0, trans, winner, dead_end, class_of, rep), or
    (LEX_NOTHING,) when no accepting state can be reached from state 0."""
    cdef gm_lexbuild out
    cdef int rc
    n = len(winner)
    t = _lex_input("trans", trans, <int64_t>n * 256)
    w, md = _lex_input("winner", winner, n), _lex_input("mode", mode, n)
    c, st = _lex_input("cond", cond, n), _lex_input("starts", starts, len(starts))
    cdef const int32_t *p_t = <const int32_t *>_ptr(t)
    cdef const int32_t *p_w = <const int32_t *>_ptr(w)
    cdef const int32_t *p_md = <const int32_t *>_ptr(md)
    cdef const int32_t *p_c = <const int32_t *>_ptr(c)
    cdef const int32_t *p_st = <const int32_t *>_ptr(st)
    cdef int32_t c_n = n, c_starts = len(starts)
    with nogil:
        rc = gm_lex_minimize(c_n, p_t, p_w, p_md, p_c, c_starts, p_st, &out)
    if rc == GM_LEXB_NOTHING:
        return (rc,)
    _lex_check(rc)
    try:
        k = out.n_states
        return (0, _copy(out.trans, <int64_t>k * 256, np.int32).reshape(k, 256), _copy(out.winner, k, np.int32),
                _copy(out.dead_end, k, np.uint8), _copy(out.class_of, n, np.int32), _copy(out.rep, k, np.int32))
    finally:
        gm_lexbuild_free(&out)


def lex_csets(trans, winner, cond, cond_rows, ignored, starts):
    """The completable sets (gm_lex_csets): (cset per state, [tuple of terminals per set]). cond: None, or
    per state a row of cond_rows (n_rows, 257)."""
    cdef gm_lexbuild out
    cdef int rc
    n = len(winner)
    n_terms = len(ignored)
    t = _lex_input("trans", trans, <int64_t>n * 256)
    w = _lex_input("winner", winner, n)
    c = _lex_input("cond", np.full(n, -1, np.int32) if cond is None else cond, n)
    n_rows = 0 if cond_rows is None else len(cond_rows)
    rows = _lex_input("cond_rows", np.zeros(0, np.int32) if cond_rows is None else cond_rows, <int64_t>n_rows * 257)
    ig = _lex_input("ignored", ignored, n_terms, dtype=np.uint8)
    st = _lex_input("starts", starts, len(starts))
    cdef const int32_t *p_t = <const int32_t *>_ptr(t)
    cdef const int32_t *p_w = <const int32_t *>_ptr(w)
    cdef const int32_t *p_c = <const int32_t *>_ptr(c)
    cdef const int32_t *p_rows = <const int32_t *>_ptr(rows)
    cdef const uint8_t *p_ig = <const uint8_t *>_ptr(ig)
    cdef const int32_t *p_st = <const int32_t *>_ptr(st)
    cdef int32_t c_n = n, c_rows = n_rows, c_terms = n_terms, c_starts = len(starts)
    with nogil:
        rc = gm_lex_csets(c_n, p_t, p_w, p_c, c_rows, p_rows, c_terms, p_ig, c_starts, p_st, &out)
    _lex_check(rc)
    try:
        cset = _copy(out.cset, n, np.int32)
        begin = _copy(out.cset_begin, out.n_csets + 1, np.int32).tolist()
        terms = _copy(out.cset_terms, begin[out.n_csets], np.int32).tolist()
        return cset, [tuple(terms[begin[i]:begin[i + 1]]) for i in range(out.n_csets)]
    finally:
        gm_lexbuild_free(&out)


cdef extern from "gm_product.h":
    ctypedef struct gm_char_dfa:
        int32_t n_states
        const int32_t *edge_begin
        const int32_t *lo
        const int32_t *hi
        const int32_t *dst
        const uint8_t *accept

    ctypedef struct gm_product:
        int32_t n_states
        int found
        int32_t *edge_begin
        int32_t *lo
        int32_t *hi
        int32_t *dst
        uint8_t *accept

    int GM_PROD_ALL, GM_PROD_FIRST_ONLY, GM_PROD_TOO_MANY, GM_PROD_TIMEOUT, GM_PROD_BAD_INPUT
    int gm_char_product(int32_t k, const gm_char_dfa *dfas, int rule, int stop_at_final, int64_t max_states,
                        double time_left, gm_product *out) nogil
    void gm_product_free(gm_product *out) nogil

PRODUCT_ALL = GM_PROD_ALL
PRODUCT_FIRST_ONLY = GM_PROD_FIRST_ONLY
PRODUCT_TOO_MANY = GM_PROD_TOO_MANY
PRODUCT_TIMEOUT = GM_PROD_TIMEOUT


def char_product(dfas, int rule, bint stop_at_final, int64_t max_states, double time_left):
    """The product of code-point automata (gm_char_product), each given as (edge_begin, lo, hi, dst, accept)
    arrays: (0, found, n_states, (edge_begin, lo, hi, dst, accept) or None with stop_at_final), or
    (PRODUCT_TOO_MANY or PRODUCT_TIMEOUT, False, the states so far, None)."""
    dfas = list(dfas)  # its length is the number of entries filled in below, whatever len() said
    cdef int32_t k = len(dfas)
    if k < 1:
        raise ValueError("char_product: no automata")
    kept = []
    cdef gm_char_dfa *c_dfas = <gm_char_dfa *>PyMem_Malloc(k * sizeof(gm_char_dfa))
    if c_dfas == NULL:
        raise MemoryError()
    cdef gm_product out
    cdef int rc
    try:
        for i, (begin, lo, hi, dst, accept) in enumerate(dfas):
            acc = np.ascontiguousarray(accept, dtype=np.uint8).reshape(-1)
            n_states, n_edges, who = acc.shape[0], len(lo), f"char_product: automaton {i}"
            arrays = (_lex_input("edge_begin", begin, n_states + 1, who), _lex_input("lo", lo, n_edges, who),
                      _lex_input("hi", hi, n_edges, who), _lex_input("dst", dst, n_edges, who), acc)
            if n_states < 1 or arrays[0][n_states] != n_edges:
                raise ValueError(f"char_product: automaton {i}'s arrays do not fit together")
            kept.append(arrays)
            c_dfas[i].n_states = n_states
            c_dfas[i].edge_begin = <const int32_t *>_ptr(arrays[0])
            c_dfas[i].lo = <const int32_t *>_ptr(arrays[1])
            c_dfas[i].hi = <const int32_t *>_ptr(arrays[2])
            c_dfas[i].dst = <const int32_t *>_ptr(arrays[3])
            c_dfas[i].accept = <const uint8_t *>_ptr(arrays[4])
        with nogil:
            rc = gm_char_product(k, c_dfas, rule, stop_at_final, max_states, time_left, &out)
    finally:
        PyMem_Free(c_dfas)
    if rc == GM_PROD_TOO_MANY or rc == GM_PROD_TIMEOUT:
        return rc, False, out.n_states, None
    if rc == GM_PROD_BAD_INPUT:
        raise ValueError("char_product: an automaton's ranges are out of range, unsorted or overlapping")
    _check(rc)
    try:
        if stop_at_final:
            return 0, bool(out.found), out.n_states, None
        n, n_edges = out.n_states, out.edge_begin[out.n_states]
        return 0, bool(out.found), n, (_copy(out.edge_begin, n + 1, np.int32), _copy(out.lo, n_edges, np.int32),
                                       _copy(out.hi, n_edges, np.int32), _copy(out.dst, n_edges, np.int32),
                                       _copy(out.accept, n, np.uint8))
    finally:
        gm_product_free(&out)
