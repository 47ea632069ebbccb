# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# (wraparound=False: no negative indices here, not even on Python objects; some Cython versions pass
# them through to numpy unadjusted.)
"""Thin Cython layer over gm_core.c: owns the arrays the C structs point into, raises on C errors."""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uintptr_t

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
        const uint8_t *lex_nl
        const uint8_t *term_flags
        int32_t t_semicolon
        int32_t n_modes
        const int32_t *mode_start
        const int32_t *lex_mode
        const int8_t *term_fop
        const int32_t *term_farg
        const int32_t *term_restart
        const int32_t *mode_event
        int32_t t_rbrace, t_colon, t_walrus, t_fclose, t_spec_open, t_spec_text

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

    ctypedef struct gm_matcher:
        int32_t lex_state, at_start, terminated, n_hist, max_hist, no_fill_cache

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

    int GM_OK, GM_NOMEM, GM_ERR_LEX, GM_ERR_PARSE, GM_ERR_PENDING

    int gm_matcher_init(gm_matcher *m, const gm_grammar *g, const gm_vocab *v) nogil
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
    void gm_apply_bitmask(void *logits, int32_t elem_size, int64_t rows, int64_t vocab, int64_t row_stride,
                          int64_t col_stride, uint32_t neg_inf, const uint32_t *mask, int64_t n_words,
                          int64_t mask_row_stride) nogil


ERR_LEX = GM_ERR_LEX
ERR_PARSE = GM_ERR_PARSE
ERR_PENDING = GM_ERR_PENDING


class CoreError(RuntimeError):
    """The native core failed (out of memory, or an internal inconsistency)."""


cdef inline int _check(int rc) except -1:
    if rc == GM_NOMEM:
        raise MemoryError("grammask core: out of memory")
    if rc < 0:
        raise CoreError(f"grammask core: internal error {rc}")
    return rc


cdef uintptr_t _ptr(object arr):
    return <uintptr_t>arr.ctypes.data


def apply_bitmask(uintptr_t logits, int32_t elem_size, int64_t rows, int64_t vocab, int64_t row_stride,
                  int64_t col_stride, uint32_t neg_inf, uintptr_t mask, int64_t n_words, int64_t mask_row_stride):
    """Store the -inf pattern `neg_inf` at every banned id of a rows x vocab logits array (raw addresses:
    the caller keeps both arrays alive and checks shapes, strides and element size)."""
    if elem_size != 4 and elem_size != 2:
        raise ValueError(f"elements of {elem_size} bytes: only 4 (float32) and 2 (float16, bfloat16)")
    with nogil:
        gm_apply_bitmask(<void *>logits, elem_size, rows, vocab, row_stride, col_stride, neg_inf,
                         <const uint32_t *>mask, n_words, mask_row_stride)


def _array(a, dtype):
    """C-contiguous copy-free view of `a` as dtype, never empty (C gets a valid pointer)."""
    arr = np.ascontiguousarray(a, dtype=dtype)
    if arr.size == 0:
        arr = np.zeros(1, dtype=dtype)
    return arr


cdef class CoreGrammar:
    """Lexer DFA and LR tables, as the C core reads them."""

    cdef gm_grammar g
    cdef readonly dict arrays

    def __init__(self, *, lex_trans, lex_winner, lex_cset, lex_final, term_ignored, cset_begin,
                 cset_terms, action, goto, rule_lhs, rule_len, int lr_start, int lr_end, term_bracket, lex_nl,
                 term_flags,
                 int indenter=0, int lex_init=0, int t_nl=-1, int t_newline=-1, int t_indent=-1,
                 int t_dedent=-1, int t_cont=-1, int t_semicolon=-1, mode_start=None, lex_mode=None,
                 term_fop=None, term_farg=None, term_restart=None, mode_event=None, int t_rbrace=-1,
                 int t_colon=-1, int t_walrus=-1, int t_fclose=-1, int t_spec_open=-1, int t_spec_text=-1):
        a = dict(
            lex_trans=_array(lex_trans, np.int32), lex_winner=_array(lex_winner, np.int32),
            lex_cset=_array(lex_cset, np.int32), lex_final=_array(lex_final, np.uint8),
            term_ignored=_array(term_ignored, np.uint8), cset_begin=_array(cset_begin, np.int32),
            cset_terms=_array(cset_terms, np.int32), action=_array(action, np.int32),
            goto=_array(goto, np.int32), rule_lhs=_array(rule_lhs, np.int32),
            rule_len=_array(rule_len, np.int32), term_bracket=_array(term_bracket, np.int8),
            lex_nl=_array(lex_nl, np.uint8), term_flags=_array(term_flags, np.uint8))
        self.arrays = a
        self.g.n_lex_states = <int32_t>a["lex_trans"].shape[0]
        self.g.n_terminals = <int32_t>np.asarray(term_ignored).shape[0]
        self.g.lex_trans = <const int32_t *>_ptr(a["lex_trans"])
        self.g.lex_winner = <const int32_t *>_ptr(a["lex_winner"])
        self.g.lex_cset = <const int32_t *>_ptr(a["lex_cset"])
        self.g.lex_final = <const uint8_t *>_ptr(a["lex_final"])
        self.g.term_ignored = <const uint8_t *>_ptr(a["term_ignored"])
        self.g.cset_begin = <const int32_t *>_ptr(a["cset_begin"])
        self.g.cset_terms = <const int32_t *>_ptr(a["cset_terms"])
        self.g.n_lr_states = <int32_t>a["action"].shape[0]
        self.g.n_nonterminals = <int32_t>(a["goto"].shape[1] if a["goto"].ndim == 2 else 0)
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
        self.g.term_flags = <const uint8_t *>_ptr(a["term_flags"])
        self.g.t_semicolon = t_semicolon
        if indenter == 1 and min(t_nl, t_newline, t_indent, t_dedent) < 0:
            raise ValueError("an indenter grammar needs its newline, NEWLINE, INDENT and DEDENT terminals")
        if indenter == 2 and t_semicolon < 0:
            raise ValueError("a semicolon grammar needs its semicolon terminal")
        if not 0 <= indenter <= 2:
            raise ValueError("unknown indenter mode")
        if not 0 <= lex_init < self.g.n_lex_states:
            raise ValueError("lex_init out of range")
        if a["action"].ndim != 2 or a["action"].shape[1] != self.g.n_terminals + 1:
            raise ValueError("action table must have one column per terminal plus $END")
        if a["lex_trans"].ndim != 2 or a["lex_trans"].shape[1] != 256:
            raise ValueError("lexer transition table must be (n_states, 256)")
        self.g.n_modes = 1
        if mode_start is not None and len(mode_start) > 1:
            self._set_modes(mode_start, lex_mode, term_fop, term_farg, term_restart, mode_event,
                            (t_rbrace, t_colon, t_walrus, t_fclose, t_spec_open, t_spec_text))

    def _set_modes(self, mode_start, lex_mode, term_fop, term_farg, term_restart, mode_event, roles):
        """Lexer modes (f-strings): checked, since the core indexes with them unchecked."""
        a = self.arrays
        n_modes, n_states, n_terms = len(mode_start), self.g.n_lex_states, self.g.n_terminals
        a.update(mode_start=_array(mode_start, np.int32), lex_mode=_array(lex_mode, np.int32),
                 term_fop=_array(term_fop, np.int8), term_farg=_array(term_farg, np.int32),
                 term_restart=_array(term_restart, np.int32), mode_event=_array(mode_event, np.int32))
        if (a["lex_mode"].shape != (n_states,) or a["term_fop"].shape != (n_terms,)
                or a["term_farg"].shape != (n_terms,) or a["term_restart"].shape != (n_terms,)
                or a["mode_event"].shape != (n_modes, 256)):
            raise ValueError("lexer mode arrays do not match the grammar's states and terminals")
        if (not (0 <= a["mode_start"]).all() or not (a["mode_start"] < n_states).all()
                or not (0 <= a["lex_mode"]).all() or not (a["lex_mode"] < n_modes).all()
                or not (-2 <= a["term_restart"]).all() or not (a["term_restart"] < n_modes).all()
                or not (-1 <= a["mode_event"]).all() or not (a["mode_event"] < n_terms).all()
                or not all(0 <= t <= n_terms for t in roles) or n_modes < 18):
            raise ValueError("lexer mode arrays out of range")
        self.g.n_modes = n_modes
        self.g.mode_start = <const int32_t *>_ptr(a["mode_start"])
        self.g.lex_mode = <const int32_t *>_ptr(a["lex_mode"])
        self.g.term_fop = <const int8_t *>_ptr(a["term_fop"])
        self.g.term_farg = <const int32_t *>_ptr(a["term_farg"])
        self.g.term_restart = <const int32_t *>_ptr(a["term_restart"])
        self.g.mode_event = <const int32_t *>_ptr(a["mode_event"])
        self.g.t_rbrace, self.g.t_colon, self.g.t_walrus = roles[:3]
        self.g.t_fclose, self.g.t_spec_open, self.g.t_spec_text = roles[3:]

    @property
    def n_lex_states(self):
        return self.g.n_lex_states

    @property
    def n_terminals(self):
        return self.g.n_terminals

    def build_vocab(self, tok_bytes, tok_begin, order, int n_words, bint strip_leading_space, int n_threads=1):
        """Run the table builder over the sorted vocabulary (on n_threads threads); returns the raw tables
        as arrays."""
        tb = _array(tok_bytes, np.uint8)
        tbeg = _array(tok_begin, np.int64)
        order_arr = _array(order, np.int32)
        cdef int32_t n_order = <int32_t>np.asarray(order).shape[0]
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
                masks=np.asarray(<uint32_t[:n_ts * n_words]>out.masks).reshape(n_ts, n_words).copy(),
                group_begin=np.asarray(<int32_t[:n_ts + 1]>out.group_begin).copy(),
                group_tok_begin=np.asarray(<int32_t[:out.n_groups + 1]>out.group_tok_begin).copy(),
                seq_begin=np.asarray(<int32_t[:out.n_seqs + 1]>out.seq_begin).copy(),
            )
            res["group_seq"] = (np.asarray(<int32_t[:out.n_groups]>out.group_seq).copy()
                                if out.n_groups else np.zeros(0, np.int32))
            res["group_cset"] = (np.asarray(<int32_t[:out.n_groups]>out.group_cset).copy()
                                 if out.n_groups else np.zeros(0, np.int32))
            res["group_toks"] = (np.asarray(<int32_t[:out.n_group_toks]>out.group_toks).copy()
                                 if out.n_group_toks else np.zeros(0, np.int32))
            res["seq_terms"] = (np.asarray(<int32_t[:out.n_seq_terms]>out.seq_terms).copy()
                                if out.n_seq_terms else np.zeros(0, np.int32))
            res["wsop_begin"] = np.asarray(<int32_t[:out.n_wsops + 1]>out.wsop_begin).copy()
            n_ws = out.wsop_begin[out.n_wsops]
            res["wsop_bytes"] = (np.asarray(<uint8_t[:n_ws]>out.wsop_bytes).copy() if n_ws
                                 else np.zeros(0, np.uint8))
            res["wsop_reset"] = (np.asarray(<uint8_t[:out.n_wsops]>out.wsop_reset).copy() if out.n_wsops
                                 else np.zeros(0, np.uint8))
        finally:
            gm_build_free(&out)
        return res


cdef class CoreVocab:
    """Token tables for one CoreGrammar and one vocabulary."""

    cdef gm_vocab v
    cdef readonly CoreGrammar grammar
    cdef readonly dict arrays
    cdef object stop_ids

    def __init__(self, CoreGrammar grammar, *, int vocab_size, tok_bytes, tok_begin, is_stop,
                 bint strip_leading_space, uncond_mask, masks, group_begin, group_seq, group_cset,
                 group_tok_begin, group_toks, group_dense, seq_begin, seq_terms, wsop_begin, wsop_bytes, wsop_reset):
        self.grammar = grammar
        a = dict(tok_bytes=_array(tok_bytes, np.uint8), tok_begin=_array(tok_begin, np.int64),
                 is_stop=_array(is_stop, np.uint8), uncond_mask=_array(uncond_mask, np.int32),
                 masks=_array(masks, np.uint32), group_begin=_array(group_begin, np.int32),
                 group_seq=_array(group_seq, np.int32), group_cset=_array(group_cset, np.int32),
                 group_tok_begin=_array(group_tok_begin, np.int32), group_toks=_array(group_toks, np.int32),
                 group_dense=_array(group_dense, np.int32),
                 seq_begin=_array(seq_begin, np.int32), seq_terms=_array(seq_terms, np.int32),
                 wsop_begin=_array(wsop_begin, np.int32), wsop_bytes=_array(wsop_bytes, np.uint8),
                 wsop_reset=_array(wsop_reset, np.uint8))
        self.arrays = a
        self.stop_ids = np.ascontiguousarray(np.flatnonzero(a["is_stop"]), dtype=np.int32)
        n_ts = grammar.g.n_lex_states + (1 if strip_leading_space else 0)
        if a["uncond_mask"].shape[0] != n_ts or a["group_begin"].shape[0] != n_ts + 1:
            raise ValueError("token tables do not match the grammar's lexer states")
        if a["is_stop"].shape[0] != vocab_size:
            raise ValueError("is_stop must have vocab_size entries")
        self.v.vocab_size = vocab_size
        self.v.n_words = (vocab_size + 31) // 32
        if a["masks"].ndim != 2 or a["masks"].shape[1] != self.v.n_words:
            raise ValueError("masks must be (n_masks, ceil(vocab_size / 32))")
        if int(a["uncond_mask"].max()) >= a["masks"].shape[0] or int(a["uncond_mask"].min()) < 0:
            raise ValueError("unconditional mask index out of range")
        n_groups = a["group_seq"].shape[0]
        if a["group_dense"].shape[0] != n_groups or a["group_tok_begin"].shape[0] != n_groups + 1:
            raise ValueError("group arrays do not match")
        if n_groups and int(a["group_dense"].max()) >= a["masks"].shape[0]:
            raise ValueError("dense group mask index out of range")
        n_seqs = a["seq_begin"].shape[0] - 1
        if n_groups and not (0 <= int(a["group_seq"].min()) and int(a["group_seq"].max()) < n_seqs):
            raise ValueError("group sequence index out of range")
        if n_seqs < 1 or int(a["seq_begin"][n_seqs]) > a["seq_terms"].shape[0] or np.any(np.diff(a["seq_begin"]) < 0):
            raise ValueError("sequence bounds out of range")
        self.v.n_tokens = <int32_t>(np.asarray(tok_begin).shape[0] - 1)
        self.v.tok_bytes = <const uint8_t *>_ptr(a["tok_bytes"])
        self.v.tok_begin = <const int64_t *>_ptr(a["tok_begin"])
        self.v.is_stop = <const uint8_t *>_ptr(a["is_stop"])
        self.v.stop_ids = <const int32_t *>_ptr(self.stop_ids)
        self.v.n_stop = <int32_t>self.stop_ids.shape[0]
        self.v.strip_leading_space = strip_leading_space
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
        lcp = np.zeros(n_groups, dtype=np.int32)
        gm_group_lcp(&self.v, <int32_t>n_ts, <int32_t *>_ptr(lcp))
        a["group_lcp"] = lcp
        self.v.group_lcp = <const int32_t *>_ptr(lcp)

    @property
    def vocab_size(self):
        return self.v.vocab_size

    @property
    def n_words(self):
        return self.v.n_words


cdef class CoreMatcher:
    """One parse in progress. With a CoreVocab it matches tokens; without, it validates bytes."""

    cdef gm_matcher m
    cdef readonly CoreGrammar grammar
    cdef readonly CoreVocab vocab
    cdef bint ready

    def __cinit__(self, CoreGrammar grammar, CoreVocab vocab=None, int max_history=0, bint fill_cache=True):
        self.ready = False
        self.grammar = grammar
        self.vocab = vocab
        if vocab is not None and vocab.grammar is not grammar:
            raise ValueError("vocabulary tables belong to another grammar")
        _check(gm_matcher_init(&self.m, &grammar.g, &vocab.v if vocab is not None else NULL))
        self.m.max_hist = max_history
        self.m.no_fill_cache = not fill_cache
        self.ready = True

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
