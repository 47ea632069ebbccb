/* grammask native core. See gm_core.h and DESIGN.md ("One way to get both"). */
#include "gm_core.h"

#ifndef _WIN32
#include <pthread.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------
 * Allocation. Every block of the core goes through these, so a test can make the n-th allocation from
 * now fail (gm_test_fail_alloc) and count the blocks still held (gm_test_live_blocks): the failure paths
 * are exercised, and shown to leave the matcher as it was and to leak nothing.
 * ---------------------------------------------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define ATOMIC_ADD(p, v) (*(p) += (v))
#define ATOMIC_LOAD(p) (*(p))
#define ATOMIC_STORE(p, v) (*(p) = (v))
#endif

static int64_t alloc_countdown = 0; /* > 0: the allocation that brings it to 0 fails */
static int64_t live_blocks = 0;

static inline int alloc_fails(void) {
    return ATOMIC_LOAD(&alloc_countdown) > 0 && ATOMIC_ADD(&alloc_countdown, -1) == 0;
}

static void *gm_malloc(size_t n) {
    void *p = alloc_fails() ? NULL : malloc(n ? n : 1);
    if (p) ATOMIC_ADD(&live_blocks, 1);
    return p;
}

static void *gm_calloc(size_t n, size_t size) {
    void *p = alloc_fails() ? NULL : calloc(n ? n : 1, size ? size : 1);
    if (p) ATOMIC_ADD(&live_blocks, 1);
    return p;
}

static void *gm_realloc(void *old, size_t n) {
    void *p = alloc_fails() ? NULL : realloc(old, n ? n : 1);
    if (p && !old) ATOMIC_ADD(&live_blocks, 1);
    return p;
}

static void gm_free(void *p) {
    if (p) ATOMIC_ADD(&live_blocks, -1);
    free(p);
}

void gm_test_fail_alloc(int64_t n) { ATOMIC_STORE(&alloc_countdown, n); }
int64_t gm_test_live_blocks(void) { return ATOMIC_LOAD(&live_blocks); }

/* ------------------------------------------------------------------------------------------------
 * Growable buffers
 * ---------------------------------------------------------------------------------------------- */

static int grow(void **buf, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *p = gm_realloc(*buf, (size_t)c * elem);
    if (!p) return GM_NOMEM;
    *buf = p;
    *cap = c;
    return 0;
}

static int grow32(int32_t **buf, int32_t *cap, int64_t need) {
    int64_t c = *cap;
    int r = grow((void **)buf, &c, need, sizeof(int32_t));
    if (c > INT32_MAX) return GM_NOMEM;
    *cap = (int32_t)c;
    return r;
}

/* ------------------------------------------------------------------------------------------------
 * Lexer
 * ---------------------------------------------------------------------------------------------- */

static inline int is_start(const gm_grammar *g, int32_t q) {
    return g->n_modes > 1 ? g->mode_start[g->lex_mode[q]] == q : q == 0;
}

/* Where the lexeme after terminal `w` (which ended in state q) starts: a state, or GM_RESUME. */
static inline int32_t restart_state(const gm_grammar *g, int32_t q, int32_t w) {
    if (g->n_modes <= 1) return 0;
    const int32_t r = g->term_restart[w];
    if (r == GM_RESTART_SAME) return g->mode_start[g->lex_mode[q]];
    return r == GM_RESTART_DYNAMIC ? GM_RESUME : g->mode_start[r];
}

int32_t gm_lex_byte(const gm_grammar *g, int32_t q, uint8_t b, int32_t *emit, int *n_emit, int *consumed) {
    *n_emit = 0;
    *consumed = 1;
    int32_t from = q;
    int32_t nq = g->lex_trans[(size_t)q * 256 + b];
    if (nq < 0) {
        /* The byte cannot extend the lexeme: it ends here, if it is a complete terminal. */
        if (is_start(g, q)) return GM_DEAD;
        int32_t w = g->lex_winner[q];
        if (w < 0) return GM_DEAD;
        if (!g->term_ignored[w]) emit[(*n_emit)++] = w;
        from = restart_state(g, q, w);
        if (from == GM_RESUME) {
            *consumed = 0;
            return GM_RESUME;
        }
        nq = g->lex_trans[(size_t)from * 256 + b];
        if (nq < 0) return GM_DEAD;
    }
    if (g->n_modes > 1) {
        const int32_t ev = g->mode_event[(size_t)g->lex_mode[from] * 256 + b];
        if (ev >= 0) emit[(*n_emit)++] = ev;
    }
    if (g->lex_final[nq]) {
        /* Nothing can extend it: emit now, so the state after a closed lexeme is always a start. */
        int32_t w = g->lex_winner[nq];
        if (!g->term_ignored[w]) emit[(*n_emit)++] = w;
        nq = restart_state(g, nq, w);
    }
    return nq;
}

/* Indentation columns as CPython counts them: tabs to the next multiple of 8 (and as 1 for `alt`). */
static inline void indent_byte(uint8_t b, int32_t *w, int32_t *alt) {
    if (b == ' ') {
        (*w)++;
        (*alt)++;
    } else if (b == '\t') {
        *w = (*w / 8 + 1) * 8;
        (*alt)++;
    } else if (b == '\n' || b == '\f') {
        *w = 0;
        *alt = 0;
    }
}

/* ------------------------------------------------------------------------------------------------
 * Virtual parse state: the real stacks below `base`, plus overlays of pushed entries; and a copy of
 * the indentation context. Checks never write to the matcher, so they cost no copy of its stacks.
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
    const int32_t *real;
    int32_t base;
    gm_stack *ov;
    int32_t *low;   /* the lowest base reached (what of the real stack a fill depends on) */
} vstack;

typedef struct {
    vstack lr, ind;
    gm_ictx ctx;
} vstate;

static inline int32_t vs_len(const vstack *vs) { return vs->base + vs->ov->len; }

static inline int32_t vs_top(const vstack *vs) {
    return vs->ov->len ? vs->ov->data[vs->ov->len - 1] : vs->real[vs->base - 1];
}

static inline void vs_pop(vstack *vs, int32_t k) {
    if (k <= vs->ov->len) {
        vs->ov->len -= k;
    } else {
        vs->base -= k - vs->ov->len;
        vs->ov->len = 0;
        if (vs->base < *vs->low) *vs->low = vs->base;
    }
}

static inline int vs_push(vstack *vs, int32_t s) {
    gm_stack *o = vs->ov;
    if (o->len == o->cap && grow32(&o->data, &o->cap, (int64_t)o->len + 1)) return GM_NOMEM;
    o->data[o->len++] = s;
    return 0;
}

static void vstate_init(gm_matcher *m, vstate *vs) {
    m->scratch[0].len = m->scratch[1].len = 0;
    vs->lr = (vstack){m->lr.data, m->lr.len, &m->scratch[0], &m->lr_low};
    vs->ind = (vstack){m->ind.data, m->ind.len, &m->scratch[1], &m->ind_low};
    vs->ctx = m->ctx;
}

/* A copy of `src` in the second pair of overlays (for "could it take X?" questions). */
static int vstate_copy(gm_matcher *m, const vstate *src, vstate *dst) {
    gm_stack *a = &m->scratch[2], *b = &m->scratch[3];
    if (grow32(&a->data, &a->cap, src->lr.ov->len + 1) || grow32(&b->data, &b->cap, src->ind.ov->len + 1))
        return GM_NOMEM;
    memcpy(a->data, src->lr.ov->data, (size_t)src->lr.ov->len * sizeof(int32_t));
    memcpy(b->data, src->ind.ov->data, (size_t)src->ind.ov->len * sizeof(int32_t));
    a->len = src->lr.ov->len;
    b->len = src->ind.ov->len;
    *dst = *src;
    dst->lr.ov = a;
    dst->ind.ov = b;
    return 0;
}

static inline int32_t vs_below_top(const vstack *vs) {
    const int32_t n = vs->ov->len;
    return n >= 2 ? vs->ov->data[n - 2] : n == 1 ? vs->real[vs->base - 1] : vs->real[vs->base - 2];
}

/* The state a chain of unit reductions (rules of length 1) on lookahead `term` leads to from `top`:
 * each pops one state and pushes a goto from the same `below`, so the chain depends only on
 * (below, top, term). Expression grammars have long chains (name -> atom -> ... -> test), so the
 * answers are cached per matcher. */
static int32_t unit_chain(gm_matcher *m, int32_t below, int32_t top, int32_t term) {
    const gm_grammar *g = m->g;
    const uint32_t h = ((uint32_t)below * 0x9E3779B1u ^ (uint32_t)top * 0x85EBCA77u ^ (uint32_t)term * 0xC2B2AE3Du);
    gm_unit_memo *e = &m->unit_memo[(h ^ (h >> 15)) & (GM_UNIT_MEMO - 1)];
    if (e->top == top && e->below == below && e->term == term) return e->result;
    const int32_t ncols = g->n_terminals + 1;
    int32_t s = top;
    for (;;) {
        const int32_t a = g->action[(size_t)s * ncols + term];
        if (a >= -1 || g->rule_len[-a - 2] != 1) break;
        s = g->go[(size_t)below * g->n_nonterminals + g->rule_lhs[-a - 2]];
        if (term == g->n_terminals && s == g->lr_end) break;
    }
    *e = (gm_unit_memo){below, top, term, s};
    return s;
}

/* Feed one terminal to the LR parser: 1 if taken (shift, or accept on $END), 0 on a syntax error. */
static int lr_feed(gm_matcher *m, vstack *vs, int32_t term) {
    const gm_grammar *g = m->g;
    const int32_t ncols = g->n_terminals + 1;
    for (;;) {
        int32_t top = vs_top(vs);
        int32_t a = g->action[(size_t)top * ncols + term];
        if (a >= 0) return vs_push(vs, a) ? GM_NOMEM : 1;
        if (a == GM_ERROR) return 0;
        int32_t r = -a - 2, s;
        if (g->rule_len[r] == 1) {
            s = unit_chain(m, vs_below_top(vs), top, term);
            vs_pop(vs, 1);
        } else {
            vs_pop(vs, g->rule_len[r]);
            s = g->go[(size_t)vs_top(vs) * g->n_nonterminals + g->rule_lhs[r]];
        }
        if (vs_push(vs, s)) return GM_NOMEM;
        if (term == g->n_terminals && s == g->lr_end) return 1;
    }
}

#define PACK_INDENT(w, alt) (((w) << 16) | ((alt) & 0xFFFF))
#define INDENT_WIDTH(level) ((level) >> 16)
#define INDENT_ALT(level) ((level) & 0xFFFF)

/* The logical line's first token is here: INDENT or DEDENTs as CPython's tokenizer emits them. */
static int emit_indentation(gm_matcher *m, vstate *vs) {
    const gm_grammar *g = m->g;
    vs->ctx.line_start = 0;
    const int32_t w = vs->ctx.width, alt = vs->ctx.altwidth;
    if (w > 0x7FFF || alt > 0xFFFF) return 0;
    int32_t top = vs_top(&vs->ind);
    if (w == INDENT_WIDTH(top)) return alt == INDENT_ALT(top);
    if (w > INDENT_WIDTH(top)) {
        m->ind_len_read = 1;
        if (alt <= INDENT_ALT(top) || vs_len(&vs->ind) > GM_MAX_INDENT_LEVELS) return 0;
        if (vs_push(&vs->ind, PACK_INDENT(w, alt))) return GM_NOMEM;
        return lr_feed(m, &vs->lr, g->t_indent);
    }
    /* Only the bottom level has width 0, so this never pops it (and reads no stack length). */
    while (w < INDENT_WIDTH(vs_top(&vs->ind))) {
        vs_pop(&vs->ind, 1);
        int r = lr_feed(m, &vs->lr, g->t_dedent);
        if (r != 1) return r;
    }
    top = vs_top(&vs->ind);
    return w == INDENT_WIDTH(top) && alt == INDENT_ALT(top); /* else: dedent to no enclosing level */
}

/* A t_nl lexeme ended, the next line's indentation being (w, alt). */
static int end_line(gm_matcher *m, vstate *vs, int32_t w, int32_t alt) {
    const gm_grammar *g = m->g;
    if (vs->ctx.depth > 0) return 1; /* implicit line joining inside brackets */
    vs->ctx.width = w;
    vs->ctx.altwidth = alt;
    vs->ctx.line_start = 1;
    if (!vs->ctx.has_content) return 1; /* blank or comment-only line */
    vs->ctx.has_content = 0;
    return lr_feed(m, &vs->lr, g->t_newline);
}

/* Event codes beyond terminals: a t_nl lexeme that ended, with its indentation given explicitly. */
#define EV_NL_WIDTH(w, alt) (-2 - PACK_INDENT(w, alt))
#define EV_IS_NL_WIDTH(ev) ((ev) <= -2)

/* ---- f-strings: the stack of open ones in the context (see grammar/fstrings.py) ---- */
#define FPOS_LIT 0     /* literal text */
#define FPOS_FIELD 1   /* a replacement field */
#define FPOS_SPEC 2    /* its format spec */
#define FPOS_SFIELD 3  /* a field inside the spec */
#define FPOS_SSPEC 4   /* that field's spec: text only */
#define FSTR(kr, pos, depth) ((kr) | (pos) << 3 | (depth) << 8)
#define FSTR_KR(f) ((f) & 7)
#define FSTR_POS(f) (((f) >> 3) & 7)
#define FSTR_DEPTH(f) ((f) >> 8)  /* bracket depth before the open field's `{` */
#define GM_EV_SQ 1                /* event bits: a quote ' or ", a newline, a backslash */
#define GM_EV_DQ 2
#define GM_EV_NL 4
#define GM_EV_BS 8

/* The mode numbers are grammar/fstrings.py's: TOP 0, FIELD 1, LIT 2 + kr, SPEC 10 + kr. */
int32_t gm_mode_start(const gm_grammar *g, const gm_ictx *c) {
    if (g->n_modes <= 1) return 0;
    if (c->fn == 0) return g->mode_start[0];
    const int32_t f = c->fstr[c->fn - 1], pos = FSTR_POS(f);
    const int32_t mode = pos == FPOS_LIT ? 2 + FSTR_KR(f)
                       : (pos == FPOS_FIELD || pos == FPOS_SFIELD) ? 1 : 10 + FSTR_KR(f);
    return g->mode_start[mode];
}

/* What an open f-string cannot hold in its fields, nor in strings nested there: its quote character
 * where it is single-quoted, and then newlines too (its token would end), and backslashes. */
static inline int32_t fstring_forbids(int32_t kr) {
    switch (kr >> 1) {
    case 0: return GM_EV_SQ | GM_EV_NL | GM_EV_BS;
    case 1: return GM_EV_DQ | GM_EV_NL | GM_EV_BS;
    default: return GM_EV_BS;
    }
}

/* Whether a string opened with quote kind `kind` may stand inside the open f-strings: three quotes end
 * one opened with the same three. */
static inline int triple_quotes_fit(const gm_ictx *c, int32_t kind) {
    for (int32_t i = 0; kind >= 2 && i < c->fn; i++)
        if (FSTR_KR(c->fstr[i]) >> 1 == kind) return 0;
    return 1;
}

/* An f-string terminal or event against the context: 0 refused, 1 feed *ev (possibly another terminal,
 * e.g. FCLOSE for a `}` at the field's own depth), 2 nothing to feed (an event that passed). */
static int fstring_step(gm_matcher *m, vstate *vs, int32_t *ev) {
    const gm_grammar *g = m->g;
    gm_ictx *c = &vs->ctx;
    const int op = g->term_fop[*ev];
    int32_t *top = c->fn ? &c->fstr[c->fn - 1] : NULL;
    const int32_t pos = top ? FSTR_POS(*top) : -1, kr = top ? FSTR_KR(*top) : 0;
    const int in_field = pos == FPOS_FIELD || pos == FPOS_SFIELD;
    const int at_field_depth = in_field && c->depth == FSTR_DEPTH(*top) + 1;
    switch (op) {
    case 0:
        if (in_field && g->term_bracket[*ev] > 0 && c->depth - FSTR_DEPTH(*top) - 1 >= GM_MAX_FIELD_DEPTH) return 0;
        return 1;
    case GM_FOP_EVENT_OWN:
    case GM_FOP_EVENT_ALL: {
        const int32_t n = c->fn - (op == GM_FOP_EVENT_OWN);
        for (int32_t i = 0; i < n; i++)
            if (fstring_forbids(FSTR_KR(c->fstr[i])) & g->term_farg[*ev]) return 0;
        return 2;
    }
    case GM_FOP_TRIPLE_STRING:
        if (!triple_quotes_fit(c, 2 + (g->term_farg[*ev] & 1))) return 0;
        *ev = g->term_farg[*ev] >> 1;
        return 1;
    case GM_FOP_FSTART: {
        const int32_t farg = g->term_farg[*ev], opened = farg & 7;
        if (c->fn == GM_MAX_FSTRINGS || (!(farg & GM_FARG_FREE_NESTING) && !triple_quotes_fit(c, opened >> 1)))
            return 0;
        c->fstr[c->fn++] = FSTR(opened, FPOS_LIT, 0);
        return 1;
    }
    case GM_FOP_FOPEN:
        if (pos != FPOS_LIT && pos != FPOS_SPEC) return 0; /* a field in a spec's field's spec: too deep */
        *top = FSTR(kr, pos == FPOS_LIT ? FPOS_FIELD : FPOS_SFIELD, c->depth);
        c->depth++;
        return 1;
    case GM_FOP_RBRACE:
    case GM_FOP_CONV_CLOSE:
        if (!at_field_depth) {
            if (op == GM_FOP_CONV_CLOSE) return 0;
            *ev = g->t_rbrace;
            return 1;
        }
        *top = FSTR(kr, pos == FPOS_FIELD ? FPOS_LIT : FPOS_SPEC, 0);
        c->depth--;
        if (op == GM_FOP_RBRACE) *ev = g->t_fclose;
        return 1;
    case GM_FOP_COLON:
    case GM_FOP_WALRUS:
    case GM_FOP_CONV_SPEC:
        if (!at_field_depth) {
            if (op == GM_FOP_CONV_SPEC) return 0;
            *ev = op == GM_FOP_COLON ? g->t_colon : g->t_walrus;
            return 1;
        }
        *top = FSTR(kr, pos == FPOS_FIELD ? FPOS_SPEC : FPOS_SSPEC, 0);
        if (op == GM_FOP_WALRUS) { /* ":=" is the spec's start and its first character */
            int r = lr_feed(m, &vs->lr, g->t_spec_open);
            if (r != 1) return r;
            *ev = g->t_spec_text;
        } else if (op == GM_FOP_COLON) {
            *ev = g->t_spec_open;
        }
        return 1;
    case GM_FOP_SPEC_CLOSE:
        if (pos != FPOS_SPEC && pos != FPOS_SSPEC) return 0;
        *top = FSTR(kr, pos == FPOS_SPEC ? FPOS_LIT : FPOS_SPEC, 0);
        c->depth--;
        return 1;
    case GM_FOP_FEND:
        if (pos != FPOS_LIT) return 0; /* a closing quote in a spec: CPython's token ends there */
        c->fn--;
        return 1;
    }
    return 0;
}

/* Feed one event to the parser through the indentation rules. Events: a terminal id, $END, a t_nl
 * lexeme with a whitespace op from the token tables (ev > n_terminals), or with explicit widths. */
static int post_feed(gm_matcher *m, vstate *vs, int32_t ev) {
    const gm_grammar *g = m->g;
    if (g->n_modes > 1 && ev >= 0 && ev < g->n_terminals && (vs->ctx.fn || g->term_fop[ev])) {
        int r = fstring_step(m, vs, &ev);
        if (r != 1) return r == 2 ? 1 : r;
    }
    if (!g->indenter) return lr_feed(m, &vs->lr, ev);
    if (g->indenter == GM_SEMICOLONS) {
        const int ends_line = ev == g->n_terminals || (g->term_flags[ev] & GM_TERM_NEWLINE);
        if (ends_line && vs->ctx.semi) {
            vs->ctx.semi = 0;
            int r = lr_feed(m, &vs->lr, g->t_semicolon);
            if (r != 1) return r;
        }
        if (ev == g->n_terminals) return lr_feed(m, &vs->lr, ev);
        if (ends_line) return 1;
        vs->ctx.semi = (g->term_flags[ev] & GM_TERM_SEMI_AFTER) != 0;
        return lr_feed(m, &vs->lr, ev);
    }
    if (EV_IS_NL_WIDTH(ev)) {
        int32_t packed = -ev - 2;
        return end_line(m, vs, INDENT_WIDTH(packed), INDENT_ALT(packed));
    }
    if (ev > g->n_terminals) {
        const gm_vocab *v = m->v;
        int32_t k = ev - g->n_terminals - 1;
        int32_t w = v->wsop_reset[k] ? 0 : vs->ctx.width, alt = v->wsop_reset[k] ? 0 : vs->ctx.altwidth;
        for (int32_t i = v->wsop_begin[k]; i < v->wsop_begin[k + 1]; i++) indent_byte(v->wsop_bytes[i], &w, &alt);
        return end_line(m, vs, w, alt);
    }
    if (ev == g->t_nl) return end_line(m, vs, vs->ctx.width, vs->ctx.altwidth);
    if (ev == g->t_cont) return 1; /* joins lines; the lexer tracks it for the end-of-text check */
    int r;
    if (ev == g->n_terminals) { /* end of input: close the last line and every block */
        if (vs->ctx.depth > 0) return 0;
        if (vs->ctx.has_content) {
            vs->ctx.has_content = 0;
            if ((r = lr_feed(m, &vs->lr, g->t_newline)) != 1) return r;
        }
        while (vs_len(&vs->ind) > 1) {
            vs_pop(&vs->ind, 1);
            if ((r = lr_feed(m, &vs->lr, g->t_dedent)) != 1) return r;
        }
        return lr_feed(m, &vs->lr, ev);
    }
    if (vs->ctx.line_start && vs->ctx.depth == 0 && (r = emit_indentation(m, vs)) != 1) return r;
    vs->ctx.has_content = 1;
    if (g->term_bracket[ev] > 0 && vs->ctx.fn == 0 && vs->ctx.depth >= GM_MAX_BRACKET_DEPTH) return 0;
    vs->ctx.depth += g->term_bracket[ev];
    if (vs->ctx.depth < 0) return 0;
    return lr_feed(m, &vs->lr, ev);
}

/* Can the parser, in the state `vs`, take `term` next? `vs` is left unchanged. */
static int can_take(gm_matcher *m, const vstate *vs, int32_t term) {
    const gm_grammar *g = m->g;
    const int plain = g->indenter == GM_SEMICOLONS
                          ? term != g->n_terminals && !(g->term_flags[term] & GM_TERM_NEWLINE)
                          : !vs->ctx.line_start && term != g->t_nl && term != g->t_cont && term != g->n_terminals;
    /* The action table answers alone, except for what post_feed may refuse beyond it: f-string terminals
     * (the context decides them) and opening brackets (nesting limits). */
    const int checked = term < g->n_terminals
                        && (g->term_bracket[term] > 0 || (g->n_modes > 1 && g->term_fop[term]));
    if ((!g->indenter || plain) && !checked) {
        int32_t a = g->action[(size_t)vs_top(&vs->lr) * (g->n_terminals + 1) + term];
        if (a >= 0) return 1;
        if (a == GM_ERROR) return 0;
    }
    vstate copy;
    if (vstate_copy(m, vs, &copy)) return GM_NOMEM;
    return post_feed(m, &copy, term);
}

/* Does the parser take `seq`, and can the pending lexeme (completable set `cset`) then still become
 * a terminal it takes? On success `vs` holds the state after `seq`. */
/* Can the pending lexeme (completable set `cset`) still become a terminal the parser in `vs` takes? */
static int pending_ok(gm_matcher *m, const vstate *vs, int32_t cset) {
    const gm_grammar *g = m->g;
    if (cset == GM_ANY) return 1;
    for (int32_t k = g->cset_begin[cset]; k < g->cset_begin[cset + 1]; k++) {
        int r = can_take(m, vs, g->cset_terms[k]);
        if (r != 0) return r;
    }
    return 0;
}

static int check_seq(gm_matcher *m, const int32_t *seq, int32_t n, int32_t cset, vstate *vs) {
    vstate_init(m, vs);
    for (int32_t i = 0; i < n; i++) {
        int r = post_feed(m, vs, seq[i]);
        if (r != 1) return r;
    }
    return pending_ok(m, vs, cset);
}

static inline int32_t cset_of(const gm_grammar *g, int32_t q) {
    return is_start(g, q) ? GM_ANY : g->lex_cset[q];
}

/* ------------------------------------------------------------------------------------------------
 * Matcher
 * ---------------------------------------------------------------------------------------------- */

int gm_matcher_init(gm_matcher *m, const gm_grammar *g, const gm_vocab *v) {
    memset(m, 0, sizeof(*m));
    m->g = g;
    m->v = v;
    m->fill_cache = v ? v->fill_cache : NULL;
    m->take_stamp = gm_calloc((size_t)g->n_terminals + 1, sizeof(uint32_t));
    m->take_ok = gm_calloc((size_t)g->n_terminals + 1, 1);
    m->unit_memo = gm_malloc(GM_UNIT_MEMO * sizeof(gm_unit_memo));
    if (grow32(&m->lr.data, &m->lr.cap, 64) || grow32(&m->ind.data, &m->ind.cap, 16) || !m->take_stamp ||
        !m->take_ok || !m->unit_memo) {
        gm_matcher_free(m);
        return GM_NOMEM;
    }
    for (int i = 0; i < GM_UNIT_MEMO; i++) m->unit_memo[i].top = -1;
    gm_matcher_reset(m);
    return 0;
}

int gm_matcher_private_fill_cache(gm_matcher *m, int32_t n_entries) {
    gm_fill_cache *c = NULL;
    if (n_entries > 0 && m->v && !(c = gm_fill_cache_new(m->v->n_words, 1, n_entries, 0))) return GM_NOMEM;
    gm_fill_cache_free(m->own_fill_cache);
    m->own_fill_cache = m->fill_cache = c;
    return 0;
}

void gm_matcher_free(gm_matcher *m) {
    gm_free(m->lr.data);
    gm_free(m->ind.data);
    gm_free(m->hist);
    gm_free(m->saved);
    for (int i = 0; i < 4; i++) gm_free(m->scratch[i].data);
    gm_free(m->snaps);
    gm_free(m->snap_data);
    gm_free(m->take_stamp);
    gm_free(m->take_ok);
    gm_free(m->unit_memo);
    gm_fill_cache_free(m->own_fill_cache);
    memset(m, 0, sizeof(*m));
}

void gm_matcher_reset(gm_matcher *m) {
    m->lr.data[0] = m->g->lr_start;
    m->lr.len = 1;
    m->ind.data[0] = PACK_INDENT(0, 0);
    m->ind.len = 1;
    memset(&m->ctx, 0, sizeof(m->ctx));
    m->ctx.line_start = 1;
    m->lex_state = m->g->lex_init;
    m->at_start = 1;
    m->terminated = 0;
    m->n_hist = 0;
    m->n_saved = 0;
}

/* Room to write a virtual stack into the real one, and to save what it overwrites. */
static int reserve_stack(gm_matcher *m, gm_stack *real, const vstack *vs, int64_t saved_need) {
    if (grow((void **)&m->saved, &m->saved_cap, saved_need, sizeof(int32_t))) return GM_NOMEM;
    return grow32(&real->data, &real->cap, (int64_t)vs->base + vs->ov->len);
}

/* Write a virtual stack into the real one (room reserved); `saved` gets what it overwrote. */
static void apply_stack(gm_matcher *m, gm_stack *real, const vstack *vs) {
    int32_t overwritten = real->len - vs->base;
    memcpy(m->saved + m->n_saved, real->data + vs->base, (size_t)overwritten * sizeof(int32_t));
    m->n_saved += overwritten;
    memcpy(real->data + vs->base, vs->ov->data, (size_t)vs->ov->len * sizeof(int32_t));
    real->len = vs->base + vs->ov->len;
}

/* Drop the k oldest history entries (amortized: called once every max_hist tokens). */
static void forget_oldest(gm_matcher *m, int32_t k) {
    const int64_t drop = m->hist[k].saved_begin;
    memmove(m->saved, m->saved + drop, (size_t)(m->n_saved - drop) * sizeof(int32_t));
    m->n_saved -= drop;
    memmove(m->hist, m->hist + k, (size_t)(m->n_hist - k) * sizeof(gm_history));
    m->n_hist -= k;
    for (int32_t i = 0; i < m->n_hist; i++) m->hist[i].saved_begin -= drop;
}

static void trim_history(gm_matcher *m) {
    if (m->max_hist > 0 && m->n_hist >= 2 * m->max_hist) forget_oldest(m, m->n_hist - m->max_hist);
}

/* Make the virtual state real, remembering what it overwrote so rollback can restore it. Every buffer
 * is grown before anything is written: out of memory, the matcher is as it was. */
static int commit(gm_matcher *m, const vstate *vs, int32_t lex_state) {
    int64_t hcap = m->hist_cap;
    if (m->n_hist == INT32_MAX || grow((void **)&m->hist, &hcap, (int64_t)m->n_hist + 1, sizeof(gm_history)))
        return GM_NOMEM;
    m->hist_cap = (int32_t)hcap;
    const int64_t lr_over = m->lr.len - vs->lr.base, ind_over = m->ind.len - vs->ind.base;
    if (reserve_stack(m, &m->lr, &vs->lr, m->n_saved + lr_over + ind_over) ||
        reserve_stack(m, &m->ind, &vs->ind, m->n_saved + lr_over + ind_over))
        return GM_NOMEM;
    gm_history *h = &m->hist[m->n_hist];
    h->lex_state = m->lex_state;
    h->flags = m->at_start | (m->terminated << 1);
    h->ctx = m->ctx;
    h->lr_len = m->lr.len;
    h->lr_base = vs->lr.base;
    h->ind_len = m->ind.len;
    h->ind_base = vs->ind.base;
    h->saved_begin = m->n_saved;
    apply_stack(m, &m->lr, &vs->lr);
    apply_stack(m, &m->ind, &vs->ind);
    m->n_hist++;
    m->ctx = vs->ctx;
    m->lex_state = lex_state;
    m->at_start = 0;
    trim_history(m);
    return 0;
}

int gm_rollback(gm_matcher *m, int32_t n) {
    if (n < 0 || n > m->n_hist) return -1;
    while (n--) {
        gm_history *h = &m->hist[--m->n_hist];
        int64_t k_lr = h->lr_len - h->lr_base, k_ind = h->ind_len - h->ind_base;
        memcpy(m->lr.data + h->lr_base, m->saved + h->saved_begin, (size_t)k_lr * sizeof(int32_t));
        memcpy(m->ind.data + h->ind_base, m->saved + h->saved_begin + k_lr, (size_t)k_ind * sizeof(int32_t));
        m->lr.len = h->lr_len;
        m->ind.len = h->ind_len;
        m->n_saved = h->saved_begin;
        m->ctx = h->ctx;
        m->lex_state = h->lex_state;
        m->at_start = h->flags & 1;
        m->terminated = (h->flags >> 1) & 1;
    }
    return 0;
}

/* The event that ends the pending lexeme, if it is a complete terminal: 1 and *ev, or 0 for "none
 * needed" (*ev = -1), or -1 if the lexeme is incomplete. */
static int pending_event(const gm_matcher *m, int32_t *ev) {
    const gm_grammar *g = m->g;
    int32_t q = m->lex_state;
    *ev = -1;
    if (is_start(g, q)) return 0;
    int32_t w = g->lex_winner[q];
    if (w < 0) return -1;
    if (g->term_ignored[w]) return 0;
    *ev = w;
    return 1;
}

int gm_is_complete(gm_matcher *m) {
    /* CPython: EOF in a continuation */
    if (m->g->indenter == GM_INDENT && m->ctx.cont && is_start(m->g, m->lex_state)) return 0;
    int32_t seq[2], ev;
    int32_t n = 0;
    int p = pending_event(m, &ev);
    if (p < 0) return 0;
    if (p) seq[n++] = ev;
    seq[n++] = m->g->n_terminals; /* $END */
    vstate vs;
    return check_seq(m, seq, n, GM_ANY, &vs);
}

int gm_acceptable_terminals(gm_matcher *m, uint8_t *out) {
    const gm_grammar *g = m->g;
    vstate vs;
    vstate_init(m, &vs);
    for (int32_t t = 0; t <= g->n_terminals; t++) {
        if (t < g->n_terminals && g->term_ignored[t]) {
            out[t] = 1;
            continue;
        }
        int r = can_take(m, &vs, t);
        if (r < 0) return r;
        out[t] = (uint8_t)r;
    }
    return 0;
}

static void set_stop_bits(const gm_vocab *v, uint32_t *out) {
    for (int32_t i = 0; i < v->n_stop; i++) out[v->stop_ids[i] >> 5] |= 1u << (v->stop_ids[i] & 31);
}

/* Save `vs` as the state after the first d elements of the sequence being fed. */
static int save_snapshot(gm_matcher *m, const vstate *vs, int32_t d) {
    if (grow((void **)&m->snaps, &m->snaps_cap, (int64_t)d + 1, sizeof(gm_snapshot))) return GM_NOMEM;
    const gm_stack *lr = vs->lr.ov, *ind = vs->ind.ov;
    const int64_t at = d ? m->snaps[d - 1].at + m->snaps[d - 1].lr_n + m->snaps[d - 1].ind_n : 0;
    if (grow((void **)&m->snap_data, &m->snap_data_cap, at + lr->len + ind->len, sizeof(int32_t))) return GM_NOMEM;
    if (lr->len) memcpy(m->snap_data + at, lr->data, (size_t)lr->len * sizeof(int32_t));
    if (ind->len) memcpy(m->snap_data + at + lr->len, ind->data, (size_t)ind->len * sizeof(int32_t));
    m->snaps[d] = (gm_snapshot){vs->lr.base, lr->len, vs->ind.base, ind->len, at, vs->ctx};
    return 0;
}

/* Make `vs` the saved state after d elements (the overlays' capacity already held it once). */
static void restore_snapshot(gm_matcher *m, vstate *vs, int32_t d) {
    const gm_snapshot *sn = &m->snaps[d];
    vstate_init(m, vs);
    vs->lr.base = sn->lr_base;
    vs->ind.base = sn->ind_base;
    if (sn->lr_n) memcpy(m->scratch[0].data, m->snap_data + sn->at, (size_t)sn->lr_n * sizeof(int32_t));
    if (sn->ind_n) memcpy(m->scratch[1].data, m->snap_data + sn->at + sn->lr_n, (size_t)sn->ind_n * sizeof(int32_t));
    m->scratch[0].len = sn->lr_n;
    m->scratch[1].len = sn->ind_n;
    vs->ctx = sn->ctx;
}

/* A new parse state for pending_ok_memo: forget the answers of the last one. */
static void new_take_memo(gm_matcher *m) {
    if (++m->stamp == 0) {
        memset(m->take_stamp, 0, ((size_t)m->g->n_terminals + 1) * sizeof(uint32_t));
        m->stamp = 1;
    }
}

/* pending_ok, remembering can_take per terminal while the parse state stays the same (the groups of one
 * terminal sequence differ only in their completable sets, which share terminals). */
static int pending_ok_memo(gm_matcher *m, const vstate *vs, int32_t cset) {
    const gm_grammar *g = m->g;
    if (cset == GM_ANY) return 1;
    for (int32_t k = g->cset_begin[cset]; k < g->cset_begin[cset + 1]; k++) {
        const int32_t t = g->cset_terms[k];
        if (m->take_stamp[t] != m->stamp) {
            int r = can_take(m, vs, t);
            if (r < 0) return r;
            m->take_stamp[t] = m->stamp;
            m->take_ok[t] = (uint8_t)r;
        }
        if (m->take_ok[t]) return 1;
    }
    return 0;
}

void gm_group_lcp(const gm_vocab *v, int32_t n_table_states, int32_t *out) {
    for (int32_t ts = 0; ts < n_table_states; ts++) {
        for (int32_t gi = v->group_begin[ts]; gi < v->group_begin[ts + 1]; gi++) {
            int32_t k = 0;
            if (gi > v->group_begin[ts]) {
                const int32_t a = v->group_seq[gi - 1], b = v->group_seq[gi];
                const int32_t *sa = v->seq_terms + v->seq_begin[a], *sb = v->seq_terms + v->seq_begin[b];
                const int32_t na = v->seq_begin[a + 1] - v->seq_begin[a], nb = v->seq_begin[b + 1] - v->seq_begin[b];
                while (k < na && k < nb && sa[k] == sb[k]) k++;
            }
            out[gi] = k;
        }
    }
}

/* A fill cache key. First part, compared whole: table state and context; the indentation width only
 * where it is read (at a line start, or inside a newline lexeme). Second part, what the fill read of
 * the stacks: the indentation stack's length if read (else -1), then the top of each stack as deep
 * as the fill's parses popped it (vs_pop keeps the lowest base; vs_top reads one state under it, and
 * vs_below_top one more). */
#define KEY_FIRST (1 + (int32_t)(sizeof(gm_ictx) / sizeof(int32_t)))

static uint64_t fill_key_first(gm_matcher *m, int32_t ts, int32_t *k) {
    k[0] = ts;
    gm_ictx c = m->ctx;
    if (!c.line_start && !(m->g->lex_nl && ts < m->g->n_lex_states && m->g->lex_nl[ts])) c.width = c.altwidth = 0;
    memcpy(k + 1, &c, sizeof(gm_ictx));
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int32_t j = 0; j < KEY_FIRST; j++) h = (h ^ (uint32_t)k[j]) * 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 29);
}

static inline int stack_top_equal(const gm_stack *st, const int32_t *saved) {
    const int32_t n = saved[0];
    return n <= st->len && !memcmp(saved + 1, st->data + st->len - n, (size_t)n * sizeof(int32_t));
}

/* ---- the fill cache (see gm_fill_cache in gm_core.h) ---- */

#ifdef _WIN32
#include <windows.h>
typedef SRWLOCK gm_lock;
#define LOCK_INIT(l) (InitializeSRWLock(l), 0)
#define LOCK(l) AcquireSRWLockExclusive(l)
#define UNLOCK(l) ReleaseSRWLockExclusive(l)
#define LOCK_DESTROY(l) ((void)0)
#else
typedef pthread_mutex_t gm_lock;
#define LOCK_INIT(l) pthread_mutex_init((l), NULL)
#define LOCK(l) pthread_mutex_lock(l)
#define UNLOCK(l) pthread_mutex_unlock(l)
#define LOCK_DESTROY(l) pthread_mutex_destroy(l)
#endif

struct gm_fill_cache {
    int32_t n_words, n_sets, ways;
    int32_t shared;          /* used by several matchers, maybe on several threads: each set locked */
    gm_fill_entry *entries;  /* [n_sets * ways]: a configuration goes to the set its hash names */
    int32_t *next;           /* [n_sets] the way to replace next in each set (round robin) */
    gm_lock *locks;          /* [n_sets] when shared */
    int64_t hits, misses, n_masks;
};

gm_fill_cache *gm_fill_cache_new(int32_t n_words, int32_t n_sets, int32_t ways, int shared) {
    gm_fill_cache *c = gm_calloc(1, sizeof(gm_fill_cache));
    if (!c) return NULL;
    c->n_words = n_words;
    c->n_sets = n_sets;
    c->ways = ways;
    c->shared = shared;
    c->entries = gm_calloc((size_t)n_sets * ways, sizeof(gm_fill_entry));
    c->next = gm_calloc((size_t)n_sets, sizeof(int32_t));
    c->locks = shared ? gm_calloc((size_t)n_sets, sizeof(gm_lock)) : NULL;
    int32_t locked = 0;
    if (c->entries && c->next && (!shared || c->locks))
        while (locked < (shared ? n_sets : 0) && !LOCK_INIT(&c->locks[locked])) locked++;
    if (!c->entries || !c->next || (shared && (!c->locks || locked < n_sets))) {
        while (locked--) LOCK_DESTROY(&c->locks[locked]);
        gm_free(c->entries);
        gm_free(c->next);
        gm_free(c->locks);
        gm_free(c);
        return NULL;
    }
    return c;
}

void gm_fill_cache_free(gm_fill_cache *c) {
    if (!c) return;
    for (int32_t i = 0; i < c->n_sets * c->ways; i++) {
        gm_free(c->entries[i].key);
        gm_free(c->entries[i].mask);
    }
    for (int32_t i = 0; c->shared && i < c->n_sets; i++) LOCK_DESTROY(&c->locks[i]);
    gm_free(c->entries);
    gm_free(c->next);
    gm_free(c->locks);
    gm_free(c);
}

int64_t gm_fill_cache_memory(const gm_fill_cache *c) {
    if (!c) return 0;
    const int64_t n = (int64_t)c->n_sets * c->ways;
    int64_t b = (int64_t)sizeof(*c) + c->n_sets * (4 + (c->shared ? (int64_t)sizeof(gm_lock) : 0))
              + n * (int64_t)sizeof(gm_fill_entry) + ATOMIC_LOAD(&c->n_masks) * 4 * (int64_t)c->n_words;
    for (int64_t i = 0; i < n; i++) b += 4 * (int64_t)c->entries[i].key_cap; /* (racy read: a figure) */
    return b;
}

void gm_fill_cache_stats(const gm_fill_cache *c, int64_t *hits, int64_t *misses) {
    *hits = c ? ATOMIC_LOAD(&c->hits) : 0;
    *misses = c ? ATOMIC_LOAD(&c->misses) : 0;
}

static inline int32_t fill_set(const gm_fill_cache *c, uint64_t hash) {
    return (int32_t)((hash >> 32) % (uint64_t)c->n_sets);
}

/* Copy the mask cached for the matcher's configuration to out: 1 if there is one. */
static int fill_cache_lookup(const gm_matcher *m, gm_fill_cache *c, uint64_t hash, const int32_t *first,
                             uint32_t *out) {
    int found = 0;
    const int32_t set = fill_set(c, hash);
    if (c->shared) LOCK(&c->locks[set]);
    for (int32_t i = set * c->ways; i < (set + 1) * c->ways && !found; i++) {
        const gm_fill_entry *e = &c->entries[i];
        if (!e->valid || e->hash != hash || memcmp(e->key, first, KEY_FIRST * sizeof(int32_t))) continue;
        const int32_t *k = e->key + KEY_FIRST;
        if (k[0] >= 0 && k[0] != m->ind.len) continue;
        if (!stack_top_equal(&m->lr, k + 1)) continue;
        if (!stack_top_equal(&m->ind, k + 2 + k[1])) continue;
        memcpy(out, e->mask, (size_t)c->n_words * sizeof(uint32_t));
        found = 1;
    }
    if (c->shared) UNLOCK(&c->locks[set]);
    ATOMIC_ADD(found ? &c->hits : &c->misses, 1);
    return found;
}

/* Keep `mask` for the configuration the fill just read (m->lr_low, m->ind_low, m->ind_len_read). */
static int fill_cache_store(const gm_matcher *m, gm_fill_cache *c, uint64_t hash, const int32_t *first,
                            const uint32_t *mask) {
    const int32_t lr_low = m->lr_low >= 2 ? m->lr_low - 2 : 0, ind_low = m->ind_low >= 1 ? m->ind_low - 1 : 0;
    const int32_t lr_n = m->lr.len - lr_low, ind_n = m->ind.len - ind_low;
    const int32_t set = fill_set(c, hash);
    int rc = 0;
    if (c->shared) LOCK(&c->locks[set]);
    gm_fill_entry *e = &c->entries[set * c->ways + c->next[set]];
    if (!e->mask && (e->mask = gm_malloc((size_t)c->n_words * sizeof(uint32_t)))) ATOMIC_ADD(&c->n_masks, 1);
    if (!e->mask || grow32(&e->key, &e->key_cap, KEY_FIRST + 3 + lr_n + ind_n)) {
        rc = GM_NOMEM; /* the entry is as it was (or empty, if it had no mask yet) */
    } else {
        int32_t *k = e->key;
        memcpy(k, first, KEY_FIRST * sizeof(int32_t));
        k += KEY_FIRST;
        *k++ = m->ind_len_read ? m->ind.len : -1;
        *k++ = lr_n;
        memcpy(k, m->lr.data + lr_low, (size_t)lr_n * sizeof(int32_t));
        k += lr_n;
        *k++ = ind_n;
        memcpy(k, m->ind.data + ind_low, (size_t)ind_n * sizeof(int32_t));
        e->hash = hash;
        e->valid = 1;
        memcpy(e->mask, mask, (size_t)c->n_words * sizeof(uint32_t));
        c->next[set] = (c->next[set] + 1) % c->ways;
    }
    if (c->shared) UNLOCK(&c->locks[set]);
    return rc;
}

static int fill_groups(gm_matcher *m, int32_t ts, uint32_t *restrict out);
static int fill_stripped(gm_matcher *m, uint32_t *restrict out);

int gm_fill_bitmask(gm_matcher *m, uint32_t *restrict out) {
    const gm_vocab *v = m->v;
    const int32_t W = v->n_words;
    if (m->terminated) {
        memset(out, 0, (size_t)W * sizeof(uint32_t));
        set_stop_bits(v, out);
        return 0;
    }
    const int32_t ts = (m->at_start && v->strip_leading_space) ? m->g->n_lex_states : m->lex_state;
    int r;
    if (m->at_start && v->strip_leading_space && m->lex_state != m->g->lex_init) {
        /* The first token after a prefix: its leading space is still dropped (the output is decoded
         * alone), but the start table is for the start of a text. The tokens with a space, one by one. */
        if ((r = fill_groups(m, m->lex_state, out))) return r;
        if ((r = fill_stripped(m, out))) return r;
    } else if (!m->fill_cache || v->group_begin[ts + 1] - v->group_begin[ts] < GM_FILL_CACHE_MIN_GROUPS) {
        if ((r = fill_groups(m, ts, out))) return r;
    } else {
        int32_t first[KEY_FIRST];
        const uint64_t hash = fill_key_first(m, ts, first);
        if (!fill_cache_lookup(m, m->fill_cache, hash, first, out)) {
            m->lr_low = m->lr.len;
            m->ind_low = m->ind.len;
            m->ind_len_read = 0;
            if ((r = fill_groups(m, ts, out))) return r;
            if ((r = fill_cache_store(m, m->fill_cache, hash, first, out))) return r;
        }
    }
    /* Apart: whether the text is complete reads the whole stack, and the stop bits are few. */
    if ((r = gm_is_complete(m)) < 0) return r;
    if (r) set_stop_bits(v, out);
    return 0;
}

static int feed_token_bytes(gm_matcher *m, const uint8_t *b, int64_t n, vstate *vs, int32_t *q_end);
static const uint8_t *token_text(const gm_matcher *m, int32_t token, int64_t *n);

/* Whether the matcher takes token t now (accept_token's answer, the state left unchanged). */
static int token_viable(gm_matcher *m, int32_t t) {
    int64_t n;
    const uint8_t *b = token_text(m, t, &n);
    vstate vs;
    int32_t q;
    return feed_token_bytes(m, b, n, &vs, &q);
}

/* A dynamic group: tokens that go on past an f-string terminal after which the context says where the
 * lexer restarts. Each is checked as accept_token would (few tokens, in f-string states only). */
static int fill_dynamic(gm_matcher *m, int32_t gi, uint32_t *restrict out) {
    const gm_vocab *v = m->v;
    for (int32_t k = v->group_tok_begin[gi]; k < v->group_tok_begin[gi + 1]; k++) {
        const int32_t t = v->group_toks[k];
        int r = token_viable(m, t);
        if (r < 0) return r;
        if (r) out[t >> 5] |= 1u << (t & 31);
    }
    return 0;
}

/* The bits of the tokens that start with a space, lexed without it (see gm_fill_bitmask). */
static int fill_stripped(gm_matcher *m, uint32_t *restrict out) {
    const gm_vocab *v = m->v;
    for (int32_t t = 0; t < v->n_tokens; t++) {
        if (v->tok_begin[t + 1] == v->tok_begin[t] || v->tok_bytes[v->tok_begin[t]] != ' ' || v->is_stop[t]) continue;
        int r = token_viable(m, t);
        if (r < 0) return r;
        if (r) out[t >> 5] |= 1u << (t & 31);
        else out[t >> 5] &= ~(1u << (t & 31));
    }
    return 0;
}

/* The mask from the token tables: the state's unconditional mask and every group the parser takes. */
static int fill_groups(gm_matcher *m, int32_t ts, uint32_t *restrict out) {
    const gm_vocab *v = m->v;
    const int32_t W = v->n_words;
    memcpy(out, v->masks + (size_t)v->uncond_mask[ts] * W, (size_t)W * sizeof(uint32_t));
    /* A state's groups come sorted by terminal sequence (see the compiler). The parse state after each
     * prefix of the last sequence fed is kept, so a sequence is fed only past the prefix it shares with
     * that one, once for all its completable sets; and a refused prefix refuses what follows with it.
     * In sorted order, what a sequence shares with the last one fed is the least group_lcp since. */
    vstate vs;
    vstate_init(m, &vs);
    if (save_snapshot(m, &vs, 0)) return GM_NOMEM;
    int32_t shared = 0;             /* elements shared with the last sequence fed ... */
    int32_t fed_depth = 0;          /* ... its elements taken (snapshots 0..fed_depth) ... */
    int fed_refused = 0;            /* ... and whether element fed_depth was refused */
    int32_t prev = -1;
    int prev_ok = 0;
    const int32_t *restrict toks = v->group_toks;
    for (int32_t gi = v->group_begin[ts]; gi < v->group_begin[ts + 1]; gi++) {
        const int32_t s = v->group_seq[gi];
        if (s != prev) {
            prev = s;
            if (v->group_lcp[gi] < shared) shared = v->group_lcp[gi];
            if (fed_refused && shared > fed_depth) {
                prev_ok = 0;
            } else {
                const int32_t *seq = v->seq_terms + v->seq_begin[s];
                const int32_t n = v->seq_begin[s + 1] - v->seq_begin[s];
                int32_t d = shared < fed_depth ? shared : fed_depth;
                restore_snapshot(m, &vs, d);
                for (; d < n; d++) {
                    int r = post_feed(m, &vs, seq[d]);
                    if (r < 0) return r;
                    if (!r) break;
                    if (save_snapshot(m, &vs, d + 1)) return GM_NOMEM;
                }
                new_take_memo(m);
                shared = n;
                fed_depth = d;
                fed_refused = d < n;
                prev_ok = !fed_refused;
            }
        }
        if (!prev_ok) continue;
        if (v->group_cset[gi] == GM_DYNAMIC_GROUP) {
            int r = fill_dynamic(m, gi, out);
            if (r < 0) return r;
            restore_snapshot(m, &vs, fed_depth); /* fill_dynamic used the same overlays */
            continue;
        }
        int r = pending_ok_memo(m, &vs, v->group_cset[gi]);
        if (r < 0) return r;
        if (!r) continue;
        const int32_t dense = v->group_dense[gi];
        if (dense >= 0) {
            const uint32_t *restrict mask = v->masks + (size_t)dense * W;
            for (int32_t w = 0; w < W; w++) out[w] |= mask[w];
        } else {
            const int32_t end = v->group_tok_begin[gi + 1];
            for (int32_t k = v->group_tok_begin[gi]; k < end; k++) out[toks[k] >> 5] |= 1u << (toks[k] & 31);
        }
    }
    return 0;
}

int64_t gm_matcher_memory(const gm_matcher *m) {
    int64_t b = sizeof(*m) + 4 * ((int64_t)m->lr.cap + m->ind.cap)
              + (int64_t)m->hist_cap * sizeof(gm_history) + 4 * m->saved_cap
              + m->snaps_cap * (int64_t)sizeof(gm_snapshot) + 4 * m->snap_data_cap
              + ((int64_t)m->g->n_terminals + 1) * 5 + GM_UNIT_MEMO * (int64_t)sizeof(gm_unit_memo);
    for (int i = 0; i < 4; i++) b += 4 * (int64_t)m->scratch[i].cap;
    return b + gm_fill_cache_memory(m->own_fill_cache); /* not the shared one: the tables hold it */
}

/* Lex a token's bytes from the matcher's state, feeding what they make to the parser as they come (an
 * f-string terminal decides the mode the next lexeme starts in): 1 if the parser takes every terminal and
 * the pending lexeme can still become one it takes; `vs` holds the state after, *q_end the lexer state. */
static int feed_token_bytes(gm_matcher *m, const uint8_t *b, int64_t n, vstate *vs, int32_t *q_end) {
    const gm_grammar *g = m->g;
    int32_t q = m->lex_state;
    int32_t w = m->ctx.width, alt = m->ctx.altwidth, cont = m->ctx.cont;
    vstate_init(m, vs);
    for (int64_t i = 0; i < n; i++) {
        int ne, consumed;
        int32_t emit[3];
        int32_t nq = gm_lex_byte(g, q, b[i], emit, &ne, &consumed);
        if (nq == GM_DEAD) return 0;
        for (int e = 0; e < ne; e++) {
            /* a t_nl lexeme ends: the indentation after its last newline goes with it */
            int32_t ev = (g->indenter == GM_INDENT && emit[e] == g->t_nl) ? EV_NL_WIDTH(w, alt) : emit[e];
            int r = post_feed(m, vs, ev);
            if (r != 1) return r;
        }
        if (nq == GM_RESUME) {
            nq = gm_mode_start(g, &vs->ctx);
            if (!consumed) { /* the byte starts the next lexeme, in the mode now known */
                q = nq;
                i--;
                continue;
            }
        }
        if (!is_start(g, nq)) cont = 0;
        else if (ne && emit[ne - 1] == g->t_cont) cont = 1;
        if (g->indenter && g->lex_nl[nq]) {
            if (!g->lex_nl[q] || ne) w = alt = 0; /* a new t_nl lexeme begins with its newline */
            indent_byte(b[i], &w, &alt);
        }
        q = nq;
    }
    int r = pending_ok(m, vs, cset_of(g, q));
    if (g->indenter && g->lex_nl[q]) {
        vs->ctx.width = w;
        vs->ctx.altwidth = alt;
    }
    vs->ctx.cont = cont;
    *q_end = q;
    return r;
}

/* A token's bytes as the matcher lexes them (the tokenizer's dropped leading space at the start). */
static const uint8_t *token_text(const gm_matcher *m, int32_t token, int64_t *n) {
    const gm_vocab *v = m->v;
    const uint8_t *b = v->tok_bytes + v->tok_begin[token];
    *n = v->tok_begin[token + 1] - v->tok_begin[token];
    if (*n > 0 && m->at_start && v->strip_leading_space && b[0] == ' ') {
        b++;
        (*n)--;
    }
    return b;
}

static int record_noop(gm_matcher *m) {
    vstate vs;
    vstate_init(m, &vs);
    return commit(m, &vs, m->lex_state);
}

int gm_accept_token(gm_matcher *m, int32_t token) {
    const gm_vocab *v = m->v;
    if (token < 0 || token >= v->vocab_size) return 0;
    if (v->is_stop[token]) {
        if (!m->terminated) {
            int c = gm_is_complete(m);
            if (c <= 0) return c;
        }
        int r = record_noop(m);
        if (r) return r;
        m->terminated = 1;
        return 1;
    }
    if (m->terminated || token >= v->n_tokens) return 0;
    if (v->tok_begin[token + 1] == v->tok_begin[token]) return 0;
    int64_t n;
    const uint8_t *b = token_text(m, token, &n);
    vstate vs;
    int32_t q;
    int r = feed_token_bytes(m, b, n, &vs, &q);
    if (r <= 0) return r;
    r = commit(m, &vs, q);
    return r ? r : 1;
}

int gm_accept_tokens(gm_matcher *m, const int32_t *tokens, int32_t n) {
    /* The history is kept whole while they go in (a bounded one may then drop what rollback needs). */
    const int32_t max_hist = m->max_hist, n_hist = m->n_hist;
    m->max_hist = 0;
    int r = 1;
    for (int32_t i = 0; i < n && r == 1; i++) r = gm_accept_token(m, tokens[i]);
    if (r != 1) gm_rollback(m, m->n_hist - n_hist);
    m->max_hist = max_hist;
    trim_history(m);
    return r;
}

/* ------------------------------------------------------------------------------------------------
 * Validator: feed raw bytes, no history.
 * ---------------------------------------------------------------------------------------------- */

/* Feed one event and make the result real (no history). */
static int feed_real(gm_matcher *m, int32_t ev) {
    vstate vs;
    vstate_init(m, &vs);
    int r = post_feed(m, &vs, ev);
    if (r != 1) return r;
    if (grow32(&m->lr.data, &m->lr.cap, (int64_t)vs.lr.base + vs.lr.ov->len) ||
        grow32(&m->ind.data, &m->ind.cap, (int64_t)vs.ind.base + vs.ind.ov->len))
        return GM_NOMEM;
    memcpy(m->lr.data + vs.lr.base, vs.lr.ov->data, (size_t)vs.lr.ov->len * sizeof(int32_t));
    m->lr.len = vs.lr.base + vs.lr.ov->len;
    memcpy(m->ind.data + vs.ind.base, vs.ind.ov->data, (size_t)vs.ind.ov->len * sizeof(int32_t));
    m->ind.len = vs.ind.base + vs.ind.ov->len;
    m->ctx = vs.ctx;
    return 1;
}

static int pending_viable(gm_matcher *m, int32_t cset) {
    vstate vs;
    return check_seq(m, NULL, 0, cset, &vs);
}

int gm_flush_lexeme(gm_matcher *m) {
    int32_t ev;
    int p = pending_event(m, &ev);
    if (p < 0) return 0;
    if (p) {
        int r = feed_real(m, ev);
        if (r != 1) return r;
    }
    m->lex_state = gm_mode_start(m->g, &m->ctx);
    return 1;
}

int gm_feed_bytes(gm_matcher *m, const uint8_t *bytes, int64_t n, int64_t offset,
                  int64_t *err_pos, int32_t *err_term, int64_t *lexeme_begin) {
    const gm_grammar *g = m->g;
    int32_t q = m->lex_state;
    int32_t checked_cset = cset_of(g, q);
    *err_term = -1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t pos = offset + i;
        const uint8_t b = bytes[i];
        if (is_start(g, q)) *lexeme_begin = pos;
        int32_t emit[3];
        int ne, consumed;
        int32_t nq = gm_lex_byte(g, q, b, emit, &ne, &consumed);
        if (nq == GM_DEAD) {
            *err_pos = pos;
            m->lex_state = q;
            return GM_ERR_LEX;
        }
        /* The byte may end the lexeme before it, and may complete a one-byte-final lexeme. */
        const int boundary = !is_start(g, q) && g->lex_trans[(size_t)q * 256 + b] < 0;
        const int prev_emitted = boundary && !g->term_ignored[g->lex_winner[q]];
        const int64_t prev_begin = *lexeme_begin;
        if (boundary) {
            *lexeme_begin = pos;
            checked_cset = GM_ANY; /* a new lexeme: check its terminals afresh */
        }
        for (int e = 0; e < ne; e++) {
            int32_t ev = emit[e];
            if (g->indenter == GM_INDENT && ev == g->t_nl) ev = EV_NL_WIDTH(m->ctx.width, m->ctx.altwidth);
            int r = feed_real(m, ev);
            if (r < 0) return r;
            if (!r) {
                *err_term = emit[e];
                *err_pos = (e == 0 && prev_emitted) ? prev_begin : *lexeme_begin;
                m->lex_state = gm_mode_start(g, &m->ctx);
                return GM_ERR_PARSE;
            }
        }
        if (nq == GM_RESUME) {
            nq = gm_mode_start(g, &m->ctx);
            if (!consumed) { /* the byte starts the next lexeme, in the mode now known */
                q = nq;
                i--;
                continue;
            }
        }
        if (g->indenter && g->lex_nl[nq]) {
            if (!g->lex_nl[q] || boundary) m->ctx.width = m->ctx.altwidth = 0;
            indent_byte(b, &m->ctx.width, &m->ctx.altwidth);
        }
        if (!is_start(g, nq)) m->ctx.cont = 0;
        else if (ne && emit[ne - 1] == g->t_cont) m->ctx.cont = 1;
        q = nq;
        if (is_start(g, q)) {
            checked_cset = GM_ANY;
        } else if (g->lex_cset[q] != checked_cset) {
            checked_cset = g->lex_cset[q];
            m->lex_state = q;
            int r = pending_viable(m, checked_cset);
            if (r < 0) return r;
            if (!r) {
                *err_term = checked_cset;
                *err_pos = *lexeme_begin;
                return GM_ERR_PENDING;
            }
        }
    }
    m->lex_state = q;
    return GM_OK;
}

int gm_accept_bytes(gm_matcher *m, const uint8_t *bytes, int64_t n) {
    /* Snapshot the state (the validator path writes directly), restore it on failure. */
    int32_t *saved = gm_malloc((size_t)(m->lr.len + m->ind.len) * sizeof(int32_t));
    if (!saved) return GM_NOMEM;
    const int32_t lr_len = m->lr.len, ind_len = m->ind.len, q = m->lex_state;
    const gm_ictx ctx = m->ctx;
    memcpy(saved, m->lr.data, (size_t)lr_len * sizeof(int32_t));
    memcpy(saved + lr_len, m->ind.data, (size_t)ind_len * sizeof(int32_t));
    int64_t err_pos, lexeme_begin = 0;
    int32_t err_term;
    int r = gm_feed_bytes(m, bytes, n, 0, &err_pos, &err_term, &lexeme_begin);
    if (r == GM_OK) {
        m->n_hist = 0; /* the token history does not reach across raw text */
        m->n_saved = 0;
        gm_free(saved);
        return 1;
    }
    memcpy(m->lr.data, saved, (size_t)lr_len * sizeof(int32_t));
    memcpy(m->ind.data, saved + lr_len, (size_t)ind_len * sizeof(int32_t));
    m->lr.len = lr_len;
    m->ind.len = ind_len;
    m->lex_state = q;
    m->ctx = ctx;
    gm_free(saved);
    return r < 0 ? r : 0;
}

int gm_can_continue(gm_matcher *m) {
    const gm_grammar *g = m->g;
    int32_t q = m->lex_state;
    /* A pending lexeme that may still grow into a terminal the parser sees. */
    if (!is_start(g, q) && !g->lex_final[q] && g->lex_cset[q] != GM_ANY) return 1;
    int32_t seq[1], ev;
    int32_t n = 0;
    int p = pending_event(m, &ev);
    if (p < 0) return 1;
    if (p) seq[n++] = ev;
    vstate vs;
    int r = check_seq(m, seq, n, GM_ANY, &vs);
    if (r <= 0) return r;
    for (int32_t t = 0; t < g->n_terminals; t++) {
        if (g->term_ignored[t] || (g->n_modes > 1 && g->term_fop[t] >= GM_FOP_EVENT_OWN)) continue;
        r = can_take(m, &vs, t);
        if (r != 0) return r;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Checking tables that come from outside (a cache file, a caller): what range checks of single arrays
 * cannot show. The stacks the LR tables can build are paths from lr_start in the graph of their shift and
 * goto entries, so the checks hold for every stack a parse can reach.
 * ---------------------------------------------------------------------------------------------- */

#define CHECK_WORK_LIMIT 200000000  /* steps: tables needing more are refused rather than checked for long */

static int check_fail(char *msg, int32_t msg_len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (msg_len > 0) vsnprintf(msg, (size_t)msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* The reductions one reachable LR state makes: rule, its length, and the states its goto can push
 * (targets[begin..end)). */
typedef struct { int32_t rule, len; int64_t begin, end; } lr_reduce;

typedef struct {
    const gm_grammar *g;
    int32_t n, T, N;
    int32_t *depth;                 /* fewest shifts and gotos from lr_start; -1: unreachable */
    int32_t *pred_begin, *preds;    /* reachable predecessors, each once */
    lr_reduce *red; int64_t n_red, red_cap;
    int32_t *red_begin;             /* [n + 1] a state's entries in red */
    int32_t *targets; int64_t n_targets, targets_cap;
    int64_t work;
} lr_check;

static int32_t successor(const gm_grammar *g, int32_t p, int32_t k) {
    const int32_t T = g->n_terminals + 1;
    return k < T ? g->action[(size_t)p * T + k] : g->go[(size_t)p * g->n_nonterminals + (k - T)];
}

/* depth[] by breadth-first search, and the reachable predecessor lists. */
static int lr_graph(lr_check *c) {
    const int32_t n = c->n, K = c->T + c->N;
    int32_t *queue = gm_malloc((size_t)n * sizeof(int32_t)), *mark = gm_malloc((size_t)n * sizeof(int32_t));
    int rc = GM_NOMEM;
    c->depth = gm_malloc((size_t)n * sizeof(int32_t));
    c->pred_begin = gm_calloc((size_t)n + 1, sizeof(int32_t));
    if (!queue || !mark || !c->depth || !c->pred_begin) goto done;
    for (int32_t s = 0; s < n; s++) c->depth[s] = -1, mark[s] = -1;
    int32_t head = 0, tail = 0;
    c->depth[c->g->lr_start] = 0;
    queue[tail++] = c->g->lr_start;
    int64_t n_edges = 0;
    while (head < tail) {
        const int32_t p = queue[head++];
        for (int32_t k = 0; k < K; k++) {
            const int32_t s = successor(c->g, p, k);
            if (s < 0 || mark[s] == p) continue;
            mark[s] = p;
            c->pred_begin[s + 1]++;
            n_edges++;
            if (c->depth[s] < 0) {
                c->depth[s] = c->depth[p] + 1;
                queue[tail++] = s;
            }
        }
    }
    c->work += (int64_t)tail * K;
    for (int32_t s = 0; s < n; s++) c->pred_begin[s + 1] += c->pred_begin[s], mark[s] = -1;
    c->preds = gm_malloc((size_t)(n_edges ? n_edges : 1) * sizeof(int32_t));
    if (!c->preds) goto done;
    int32_t *fill = queue; /* reused: next free slot per state */
    memcpy(fill, c->pred_begin, (size_t)n * sizeof(int32_t));
    for (int32_t p = 0; p < n; p++) {
        if (c->depth[p] < 0) continue;
        for (int32_t k = 0; k < K; k++) {
            const int32_t s = successor(c->g, p, k);
            if (s < 0 || mark[s] == p) continue;
            mark[s] = p;
            c->preds[fill[s]++] = p;
        }
    }
    rc = 0;
done:
    gm_free(queue);
    gm_free(mark);
    return rc;
}

/* For each reachable state and rule it reduces: the rule pops no more than the state's depth, and every
 * state that many below it (on any path) has a goto on the rule's left side; those gotos are the
 * reduction's targets. */
static int lr_reductions(lr_check *c, char *msg, int32_t msg_len) {
    const gm_grammar *g = c->g;
    const int32_t n = c->n, T = c->T, N = c->N;
    int rc = GM_NOMEM;
    int32_t *rule_mark = gm_malloc((size_t)(g->n_rules ? g->n_rules : 1) * sizeof(int32_t));
    int32_t *seen = gm_calloc((size_t)n, sizeof(int32_t)), *tmark = gm_calloc((size_t)n, sizeof(int32_t));
    int32_t *layers = NULL, *layer_begin = NULL;
    int64_t layers_cap = 0, lb_cap = 0;
    int32_t stamp = 0;
    c->red_begin = gm_malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!rule_mark || !seen || !tmark || !c->red_begin) goto done;
    for (int32_t r = 0; r < g->n_rules; r++) rule_mark[r] = -1;
    for (int32_t s = 0; s < n; s++) {
        c->red_begin[s] = (int32_t)c->n_red;
        if (c->depth[s] < 0) continue;
        int32_t lmax = -1;
        for (int32_t t = 0; t < T; t++) {
            const int32_t a = g->action[(size_t)s * T + t];
            if (a > -2 || rule_mark[-a - 2] == s) continue;
            const int32_t r = -a - 2, len = g->rule_len[r];
            rule_mark[r] = s;
            if (len > c->depth[s]) {
                rc = check_fail(msg, msg_len, "LR state %d reduces rule %d of length %d, but a stack can hold "
                                "only %d states under it", s, r, len, c->depth[s]);
                goto done;
            }
            if (c->n_red > INT32_MAX - 1 ||
                grow((void **)&c->red, &c->red_cap, c->n_red + 1, sizeof(lr_reduce)))
                goto done;
            c->red[c->n_red++] = (lr_reduce){r, len, 0, 0};
            if (len > lmax) lmax = len;
        }
        if (lmax < 0) continue;
        /* layers[layer_begin[k] .. layer_begin[k+1]): the states k below s on some path */
        if (grow((void **)&layer_begin, &lb_cap, (int64_t)lmax + 2, sizeof(int32_t)) ||
            grow((void **)&layers, &layers_cap, 1, sizeof(int32_t)))
            goto done;
        layer_begin[0] = 0;
        layers[0] = s;
        layer_begin[1] = 1;
        for (int32_t k = 1; k <= lmax; k++) {
            stamp++;
            int64_t end = layer_begin[k];
            for (int32_t i = layer_begin[k - 1]; i < layer_begin[k]; i++) {
                const int32_t q = layers[i];
                c->work += c->pred_begin[q + 1] - c->pred_begin[q] + 1;
                for (int32_t j = c->pred_begin[q]; j < c->pred_begin[q + 1]; j++) {
                    const int32_t p = c->preds[j];
                    if (seen[p] == stamp) continue;
                    seen[p] = stamp;
                    if (grow((void **)&layers, &layers_cap, end + 1, sizeof(int32_t))) goto done;
                    layers[end++] = p;
                }
            }
            layer_begin[k + 1] = (int32_t)end;
        }
        if (c->work > CHECK_WORK_LIMIT) {
            rc = check_fail(msg, msg_len, "LR tables too large to check");
            goto done;
        }
        for (int64_t i = c->red_begin[s]; i < c->n_red; i++) {
            lr_reduce *e = &c->red[i];
            const int32_t lhs = g->rule_lhs[e->rule];
            e->begin = c->n_targets;
            stamp++;
            for (int32_t j = layer_begin[e->len]; j < layer_begin[e->len + 1]; j++) {
                const int32_t p = layers[j], to = g->go[(size_t)p * N + lhs];
                if (to < 0) {
                    rc = check_fail(msg, msg_len, "LR state %d reduces rule %d to nonterminal %d, but state %d "
                                    "under it has no goto on that nonterminal", s, e->rule, lhs, p);
                    goto done;
                }
                if (tmark[to] == stamp) continue;
                tmark[to] = stamp;
                if (grow((void **)&c->targets, &c->targets_cap, c->n_targets + 1, sizeof(int32_t))) goto done;
                c->targets[c->n_targets++] = to;
            }
            e->end = c->n_targets;
            c->work += layer_begin[e->len + 1] - layer_begin[e->len];
        }
    }
    c->red_begin[n] = (int32_t)c->n_red;
    rc = 0;
done:
    gm_free(rule_mark);
    gm_free(seen);
    gm_free(tmark);
    gm_free(layers);
    gm_free(layer_begin);
    return rc;
}

/* The reductions state s makes on lookahead t: its entry in c->red, or NULL (a shift, an error, or the end
 * of the parse: on $END the parser stops as soon as a reduction reaches lr_end). */
static const lr_reduce *reduce_on(const lr_check *c, int32_t s, int32_t t) {
    if (c->depth[s] < 0 || (t == c->T - 1 && s == c->g->lr_end)) return NULL;
    const int32_t a = c->g->action[(size_t)s * c->T + t];
    if (a > -2) return NULL;
    for (int32_t i = c->red_begin[s]; i < c->red_begin[s + 1]; i++)
        if (c->red[i].rule == -a - 2) return &c->red[i];
    return NULL;
}

/* On lookahead t the parser reduces without end only along a cycle of reductions that does not shrink
 * the stack: each pops len states and pushes one, so a cycle whose lengths sum to no more than its
 * number of reductions. Strongly connected components (Tarjan), then Bellman-Ford in each one that has
 * a cycle, with cost (n + 1) * (len - 1) - 1 per edge: negative exactly on the cycles that do not
 * shrink. */
static int lr_cycles(lr_check *c, char *msg, int32_t msg_len) {
    const int32_t n = c->n;
    int rc = GM_NOMEM;
    int32_t *index = gm_malloc((size_t)n * sizeof(int32_t)), *low = gm_malloc((size_t)n * sizeof(int32_t));
    int32_t *comp = gm_malloc((size_t)n * sizeof(int32_t)), *stk = gm_malloc((size_t)n * sizeof(int32_t));
    int32_t *cs_node = gm_malloc((size_t)n * sizeof(int32_t)), *members = gm_malloc((size_t)n * sizeof(int32_t));
    int64_t *cs_edge = gm_malloc((size_t)n * sizeof(int64_t)), *dist = gm_malloc((size_t)n * sizeof(int64_t));
    uint8_t *on_stack = gm_calloc((size_t)n, 1);
    if (!index || !low || !comp || !stk || !cs_node || !members || !cs_edge || !dist || !on_stack) goto done;
    for (int32_t t = 0; t < c->T; t++) {
        for (int32_t v = 0; v < n; v++) index[v] = -1, comp[v] = -1;
        int32_t next_index = 0, sp = 0, n_comp = 0;
        for (int32_t v0 = 0; v0 < n; v0++) {
            if (index[v0] >= 0 || !reduce_on(c, v0, t)) continue;
            int32_t depth;
            index[v0] = low[v0] = next_index++;
            stk[sp++] = v0;
            on_stack[v0] = 1;
            cs_node[0] = v0;
            cs_edge[0] = reduce_on(c, v0, t)->begin;
            depth = 1;
            while (depth) {
                const int32_t v = cs_node[depth - 1];
                const lr_reduce *e = reduce_on(c, v, t);
                if (e && cs_edge[depth - 1] < e->end) {
                    const int32_t w = c->targets[cs_edge[depth - 1]++];
                    c->work++;
                    if (index[w] < 0) {
                        index[w] = low[w] = next_index++;
                        stk[sp++] = w;
                        on_stack[w] = 1;
                        const lr_reduce *ew = reduce_on(c, w, t);
                        cs_node[depth] = w;
                        cs_edge[depth] = ew ? ew->begin : 0;
                        depth++;
                    } else if (on_stack[w] && index[w] < low[v]) {
                        low[v] = index[w];
                    }
                    continue;
                }
                depth--;
                if (depth && low[v] < low[cs_node[depth - 1]]) low[cs_node[depth - 1]] = low[v];
                if (low[v] != index[v]) continue;
                int32_t size = 0, x;
                do {
                    x = stk[--sp];
                    on_stack[x] = 0;
                    comp[x] = n_comp;
                    members[size++] = x;
                } while (x != v);
                /* Bellman-Ford inside the component (a lone state: its own loop, if any, is the cycle) */
                for (int32_t i = 0; i < size; i++) dist[members[i]] = 0;
                int changed = 1;
                for (int32_t round = 0; round <= size && changed; round++) {
                    changed = 0;
                    for (int32_t i = 0; i < size; i++) {
                        const int32_t u = members[i];
                        const lr_reduce *eu = reduce_on(c, u, t);
                        if (!eu) continue;
                        const int64_t cost = (int64_t)(n + 1) * (eu->len - 1) - 1;
                        c->work += eu->end - eu->begin;
                        for (int64_t j = eu->begin; j < eu->end; j++) {
                            const int32_t w = c->targets[j];
                            if (comp[w] != n_comp || dist[u] + cost >= dist[w]) continue;
                            dist[w] = dist[u] + cost;
                            changed = 1;
                        }
                    }
                    if (c->work > CHECK_WORK_LIMIT) {
                        rc = check_fail(msg, msg_len, "LR tables too large to check");
                        goto done;
                    }
                }
                if (changed) {
                    rc = check_fail(msg, msg_len, "on terminal %d the LR tables reduce in a cycle that never ends "
                                    "(through state %d)", t, v);
                    goto done;
                }
                n_comp++;
            }
        }
    }
    rc = 0;
done:
    gm_free(index);
    gm_free(low);
    gm_free(comp);
    gm_free(stk);
    gm_free(cs_node);
    gm_free(members);
    gm_free(cs_edge);
    gm_free(dist);
    gm_free(on_stack);
    return rc;
}

int gm_check_grammar(const gm_grammar *g, char *msg, int32_t msg_len) {
    if (msg_len > 0) msg[0] = 0;
    for (int32_t k = 0; g->n_modes > 1 && k < g->n_modes; k++)
        if (g->lex_mode[g->mode_start[k]] != k)
            return check_fail(msg, msg_len, "lexer mode %d starts in state %d of mode %d", k, g->mode_start[k],
                              g->lex_mode[g->mode_start[k]]);
    lr_check c = {.g = g, .n = g->n_lr_states, .T = g->n_terminals + 1, .N = g->n_nonterminals};
    int rc = lr_graph(&c);
    if (!rc) rc = lr_reductions(&c, msg, msg_len);
    if (!rc) rc = lr_cycles(&c, msg, msg_len);
    gm_free(c.depth);
    gm_free(c.pred_begin);
    gm_free(c.preds);
    gm_free(c.red);
    gm_free(c.red_begin);
    gm_free(c.targets);
    return rc;
}

/* ------------------------------------------------------------------------------------------------
 * Table building
 * ---------------------------------------------------------------------------------------------- */

/* Open-addressing map from int64 keys to int32 values. */
typedef struct {
    int64_t *keys;
    int32_t *vals;
    int64_t cap, n;
} i64map;

static int map_init(i64map *mp, int64_t cap) {
    mp->cap = cap;
    mp->n = 0;
    mp->keys = gm_malloc((size_t)cap * sizeof(int64_t));
    mp->vals = gm_malloc((size_t)cap * sizeof(int32_t));
    if (!mp->keys || !mp->vals) return GM_NOMEM;
    memset(mp->keys, 0xff, (size_t)cap * sizeof(int64_t)); /* key -1 = empty */
    return 0;
}

static void map_free(i64map *mp) {
    gm_free(mp->keys);
    gm_free(mp->vals);
}

static void map_clear(i64map *mp) {
    memset(mp->keys, 0xff, (size_t)mp->cap * sizeof(int64_t));
    mp->n = 0;
}

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int32_t *map_slot(i64map *mp, int64_t key, int *found) {
    uint64_t i = mix((uint64_t)key) & (uint64_t)(mp->cap - 1);
    while (mp->keys[i] != -1 && mp->keys[i] != key) i = (i + 1) & (uint64_t)(mp->cap - 1);
    *found = mp->keys[i] == key;
    if (!*found) {
        mp->keys[i] = key;
        mp->n++;
    }
    return &mp->vals[i];
}

static int map_reserve(i64map *mp) {
    if (mp->n * 2 < mp->cap) return 0;
    i64map bigger;
    if (map_init(&bigger, mp->cap * 2)) {
        map_free(&bigger);
        return GM_NOMEM;
    }
    for (int64_t i = 0; i < mp->cap; i++) {
        if (mp->keys[i] == -1) continue;
        int f;
        *map_slot(&bigger, mp->keys[i], &f) = mp->vals[i];
    }
    map_free(mp);
    *mp = bigger;
    return 0;
}

typedef struct {
    i64map map;
    int32_t *parent, *term;
    int32_t n, parent_cap, term_cap;
} seq_table;

static int32_t seq_append(seq_table *st, int32_t seq, int32_t term) {
    if (map_reserve(&st->map)) return GM_NOMEM;
    int found;
    int32_t *slot = map_slot(&st->map, ((int64_t)seq << 32) | (uint32_t)term, &found);
    if (found) return *slot;
    if (grow32(&st->parent, &st->parent_cap, (int64_t)st->n + 1)) return GM_NOMEM;
    if (grow32(&st->term, &st->term_cap, (int64_t)st->n + 1)) return GM_NOMEM;
    st->parent[st->n] = seq;
    st->term[st->n] = term;
    *slot = st->n;
    return st->n++;
}

/* Interned whitespace ops (see gm_vocab.wsop_*), keyed by a hash of (reset, bytes), checked on hit. */
typedef struct {
    i64map map;
    int32_t *begin; int32_t begin_cap;
    uint8_t *bytes; int64_t bytes_cap;
    uint8_t *reset; int64_t reset_cap;
    int32_t n;
} wsop_table;

static int32_t wsop_intern(wsop_table *t, uint8_t reset, const uint8_t *b, int64_t n) {
    uint64_t h = 1469598103934665603ULL ^ reset;
    for (int64_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    int64_t key = (int64_t)(h >> 2); /* non-negative: -1 marks empty slots */
    if (map_reserve(&t->map)) return GM_NOMEM;
    int found;
    int32_t *slot = map_slot(&t->map, key, &found);
    if (found) {
        int32_t k = *slot;
        if (t->reset[k] != reset || t->begin[k + 1] - t->begin[k] != n || memcmp(t->bytes + t->begin[k], b, (size_t)n))
            return GM_HASH_COLLISION;
        return k;
    }
    int64_t at = t->begin[t->n];
    if (grow((void **)&t->bytes, &t->bytes_cap, at + n + 1, 1) || grow((void **)&t->reset, &t->reset_cap, t->n + 1, 1) ||
        grow32(&t->begin, &t->begin_cap, (int64_t)t->n + 2))
        return GM_NOMEM;
    memcpy(t->bytes + at, b, (size_t)n);
    t->reset[t->n] = reset;
    t->begin[t->n + 1] = (int32_t)(at + n);
    *slot = t->n;
    return t->n++;
}

void gm_build_free(gm_build *out) {
    gm_free(out->wsop_begin);
    gm_free(out->wsop_bytes);
    gm_free(out->wsop_reset);
    gm_free(out->masks);
    gm_free(out->group_begin);
    gm_free(out->group_seq);
    gm_free(out->group_cset);
    gm_free(out->group_tok_begin);
    gm_free(out->group_toks);
    gm_free(out->seq_begin);
    gm_free(out->seq_terms);
    memset(out, 0, sizeof(*out));
}

#define RES_DEAD (-1)
#define DQ_DYNAMIC (-3) /* builder: the token has crossed a lexeme boundary whose next mode the context decides */
#define RES_UNCOND (-2)

/* The interned sequences as seq_begin / seq_terms (parents always precede children). */
static int materialize_seqs(const seq_table *st, gm_build *out) {
    out->n_seqs = st->n;
    out->seq_begin = gm_malloc((size_t)(st->n + 1) * sizeof(int32_t));
    int32_t *lens = gm_malloc((size_t)st->n * sizeof(int32_t));
    if (!out->seq_begin || !lens) {
        gm_free(lens);
        return GM_NOMEM;
    }
    int64_t total = 0;
    for (int32_t s = 0; s < st->n; s++) {
        lens[s] = s == 0 ? 0 : lens[st->parent[s]] + 1;
        out->seq_begin[s] = (int32_t)total;
        total += lens[s];
    }
    out->seq_begin[st->n] = (int32_t)total;
    out->n_seq_terms = total;
    out->seq_terms = gm_malloc((size_t)(total ? total : 1) * sizeof(int32_t));
    if (!out->seq_terms) {
        gm_free(lens);
        return GM_NOMEM;
    }
    for (int32_t s = 1; s < st->n; s++) {
        int32_t x = s;
        for (int32_t i = lens[s] - 1; i >= 0; i--) {
            out->seq_terms[out->seq_begin[s] + i] = st->term[x];
            x = st->parent[x];
        }
    }
    gm_free(lens);
    return 0;
}

/* The builder over table states first, first + step, ...: the others get no groups and a zero mask. */
static int build_part(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                      const int32_t *order, int32_t n_order, int32_t n_words, int32_t strip_leading_space,
                      int32_t first, int32_t step, gm_build *out) {
    int rc = GM_NOMEM;
    memset(out, 0, sizeof(*out));
    const int32_t n_ts = g->n_lex_states + (strip_leading_space ? 1 : 0);
    out->n_table_states = n_ts;
    out->n_words = n_words;

    int64_t max_len = 0;
    for (int32_t k = 0; k < n_order; k++) {
        int64_t len = tok_begin[order[k] + 1] - tok_begin[order[k]];
        if (len > max_len) max_len = len;
    }
    int32_t *dq = gm_malloc((size_t)(max_len + 1) * sizeof(int32_t));
    int32_t *dseq = gm_malloc((size_t)(max_len + 1) * sizeof(int32_t));
    /* Within a t_nl lexeme: whether this token held its newline, and where its indentation starts. */
    uint8_t *dreset = gm_malloc((size_t)(max_len + 1));
    int64_t *dfrom = gm_malloc((size_t)(max_len + 1) * sizeof(int64_t));
    wsop_table ops = {0};
    int32_t *res = gm_malloc((size_t)(n_order ? n_order : 1) * sizeof(int32_t));
    int32_t *gcount = NULL, *gseq = NULL, *gcset = NULL;
    int32_t gcap = 0, gcap2 = 0, gcap3 = 0;
    int64_t tok_begin_cap = 0, seq_cap = 0, cset_cap = 0, toks_cap = 0;
    seq_table st = {0};
    i64map gmap = {0};
    out->masks = gm_calloc((size_t)n_ts * n_words, sizeof(uint32_t));
    out->group_begin = gm_malloc((size_t)(n_ts + 1) * sizeof(int32_t));
    if (!dq || !dseq || !dreset || !dfrom || !res || !out->masks || !out->group_begin) goto done;
    if (map_init(&st.map, 1024) || map_init(&gmap, 256) || map_init(&ops.map, 64)) goto done;
    if (grow32(&ops.begin, &ops.begin_cap, 1)) goto done;
    ops.begin[0] = 0;
    /* seq 0: the empty sequence (not in the map: its key would collide with the empty-slot marker) */
    if (grow32(&st.parent, &st.parent_cap, 1) || grow32(&st.term, &st.term_cap, 1)) goto done;
    st.parent[0] = st.term[0] = -1;
    st.n = 1;
    if (grow((void **)&out->group_tok_begin, &tok_begin_cap, 1, sizeof(int32_t))) goto done;
    out->group_tok_begin[0] = 0;

    for (int32_t ts = 0; ts < n_ts; ts++) {
        out->group_begin[ts] = out->n_groups;
        if (ts % step != first) continue;
        const int strip_state = ts == g->n_lex_states;
        const int32_t q0 = strip_state ? g->lex_init : ts;
        const int32_t state_cset = cset_of(g, q0);
        uint32_t *mask = out->masks + (size_t)ts * n_words;
        int32_t n_local = 0;
        map_clear(&gmap);
        dq[0] = q0;
        dseq[0] = 0;
        dreset[0] = 0;
        dfrom[0] = 0;
        const uint8_t *prev = NULL;
        int64_t prev_len = 0;
        int64_t stop_at = INT64_MAX; /* where the walked path died or turned dynamic */
        for (int32_t k = 0; k < n_order; k++) {
            const int32_t t = order[k];
            const uint8_t *b = tok_bytes + tok_begin[t];
            const int64_t len = tok_begin[t + 1] - tok_begin[t];
            int64_t d = 0;
            int64_t lim = len < prev_len ? len : prev_len;
            while (d < lim && prev[d] == b[d]) d++;
            /* Walk the bytes not shared with the previous (sorted) token, unless the shared part already
             * died or crossed a dynamic restart: then this token did too. */
            if (stop_at <= d) d = len;
            else stop_at = INT64_MAX;
            for (; d < len; d++) {
                if (dq[d] == GM_RESUME) {
                    /* past a lexeme whose successor's mode the context decides */
                    dq[d + 1] = DQ_DYNAMIC;
                    stop_at = d + 1;
                    break;
                }
                if (strip_state && d == 0 && b[0] == ' ') {
                    dq[1] = q0;
                    dseq[1] = 0;
                    dreset[1] = 0;
                    dfrom[1] = 1;
                    continue;
                }
                int32_t emit[3];
                int ne, consumed;
                int32_t nq = gm_lex_byte(g, dq[d], b[d], emit, &ne, &consumed);
                if (nq == GM_RESUME && !consumed) nq = DQ_DYNAMIC;
                int32_t s = dseq[d];
                for (int e = 0; e < ne && nq != GM_DEAD; e++) {
                    int32_t ev = emit[e];
                    if (g->indenter == GM_INDENT && ev == g->t_nl) {
                        int32_t op = wsop_intern(&ops, dreset[d], b + dfrom[d], d - dfrom[d]);
                        if (op < 0) goto done;
                        ev = g->n_terminals + 1 + op;
                    }
                    s = seq_append(&st, s, ev);
                    if (s < 0) goto done;
                }
                dq[d + 1] = nq;
                dseq[d + 1] = s;
                if (nq == GM_DEAD || nq == DQ_DYNAMIC) {
                    stop_at = d + 1;
                    break;
                }
                if (g->indenter && nq >= 0 && g->lex_nl[nq]) { /* (not GM_RESUME: a lexeme ended) */
                    const int starts = !g->lex_nl[dq[d]] || g->lex_trans[(size_t)dq[d] * 256 + b[d]] < 0;
                    if (starts || b[d] == '\n') {
                        dreset[d + 1] = 1;
                        dfrom[d + 1] = d + 1;
                    } else {
                        dreset[d + 1] = dreset[d];
                        dfrom[d + 1] = dfrom[d];
                    }
                }
            }
            prev = b;
            prev_len = len;
            const int32_t q_end = stop_at <= len ? dq[stop_at] : dq[len];
            if (q_end == GM_DEAD) {
                res[k] = RES_DEAD;
                continue;
            }
            /* Ending at a lexeme boundary, nothing is pending; past one the fill lexes the token itself. */
            const int32_t cset = q_end == GM_RESUME ? GM_ANY
                                 : q_end == DQ_DYNAMIC ? GM_DYNAMIC_GROUP : cset_of(g, q_end);
            const int32_t s = q_end == DQ_DYNAMIC ? 0 : dseq[len];
            if (s == 0 && cset != GM_DYNAMIC_GROUP && (cset == GM_ANY || cset == state_cset)) {
                /* Stays inside the lexeme and loses no terminal the parser could have wanted. */
                res[k] = RES_UNCOND;
                mask[t >> 5] |= 1u << (t & 31);
                continue;
            }
            if (map_reserve(&gmap)) goto done;
            int found;
            int32_t *slot = map_slot(&gmap, ((int64_t)s << 32) | (uint32_t)(cset + 1), &found);
            if (!found) {
                if (grow32(&gcount, &gcap, (int64_t)n_local + 1) || grow32(&gseq, &gcap2, (int64_t)n_local + 1) ||
                    grow32(&gcset, &gcap3, (int64_t)n_local + 1))
                    goto done;
                gcount[n_local] = 0;
                gseq[n_local] = s;
                gcset[n_local] = cset;
                *slot = n_local++;
            }
            res[k] = *slot;
            gcount[*slot]++;
        }
        /* Append this state's groups: token lists in group order (a counting sort). */
        const int32_t g0 = out->n_groups;
        int64_t need = (int64_t)g0 + n_local + 1;
        if (grow((void **)&out->group_tok_begin, &tok_begin_cap, need, sizeof(int32_t)) ||
            grow((void **)&out->group_seq, &seq_cap, need, sizeof(int32_t)) ||
            grow((void **)&out->group_cset, &cset_cap, need, sizeof(int32_t)))
            goto done;
        int64_t base = out->group_tok_begin[g0];
        int64_t total = 0;
        for (int32_t i = 0; i < n_local; i++) total += gcount[i];
        if (base + total > INT32_MAX) goto done;
        if (grow((void **)&out->group_toks, &toks_cap, base + total + 1, sizeof(int32_t))) goto done;
        int64_t acc = base;
        for (int32_t i = 0; i < n_local; i++) {
            out->group_seq[g0 + i] = gseq[i];
            out->group_cset[g0 + i] = gcset[i];
            out->group_tok_begin[g0 + i] = (int32_t)acc;
            acc += gcount[i];
            gcount[i] = out->group_tok_begin[g0 + i];
        }
        out->group_tok_begin[g0 + n_local] = (int32_t)acc;
        for (int32_t k = 0; k < n_order; k++)
            if (res[k] >= 0) out->group_toks[gcount[res[k]]++] = order[k];
        out->n_groups += n_local;
        out->n_group_toks = acc;
    }
    out->group_begin[n_ts] = out->n_groups;

    if (materialize_seqs(&st, out)) goto done;
    rc = 0;
done:
    gm_free(dq);
    gm_free(dseq);
    gm_free(dreset);
    gm_free(dfrom);
    map_free(&ops.map);
    if (rc == 0) {
        out->wsop_begin = ops.begin;
        out->wsop_bytes = ops.bytes;
        out->wsop_reset = ops.reset;
        out->n_wsops = ops.n;
    } else {
        gm_free(ops.begin);
        gm_free(ops.bytes);
        gm_free(ops.reset);
    }
    gm_free(res);
    gm_free(gcount);
    gm_free(gseq);
    gm_free(gcset);
    gm_free(st.parent);
    gm_free(st.term);
    map_free(&st.map);
    map_free(&gmap);
    if (rc) gm_build_free(out);
    return rc;
}

typedef struct {
    const gm_grammar *g;
    const uint8_t *tok_bytes;
    const int64_t *tok_begin;
    const int32_t *order;
    int32_t n_order, n_words, strip_leading_space, first, step;
    gm_build part;
    int rc;
} build_job;

static void *build_job_run(void *arg) {
    build_job *j = arg;
    j->rc = build_part(j->g, j->tok_bytes, j->tok_begin, j->order, j->n_order, j->n_words, j->strip_leading_space,
                       j->first, j->step, &j->part);
    return NULL;
}

/* One table set from parts that each built every n-th state: masks ORed, whitespace ops and sequences
 * interned anew (each part numbered its own), groups taken state by state from the part that built it. */
static int merge_parts(const gm_grammar *g, build_job *jobs, int n, gm_build *out) {
    int rc = GM_NOMEM;
    const int32_t n_ts = jobs[0].part.n_table_states, n_words = jobs[0].part.n_words;
    memset(out, 0, sizeof(*out));
    out->n_table_states = n_ts;
    out->n_words = n_words;
    wsop_table ops = {0};
    seq_table st = {0};
    int32_t *seq_map[GM_MAX_BUILD_THREADS] = {0}, *op_map[GM_MAX_BUILD_THREADS] = {0};
    int64_t tok_begin_cap = 0, seq_cap = 0, cset_cap = 0, toks_cap = 0;
    out->masks = jobs[0].part.masks;
    jobs[0].part.masks = NULL;
    for (int p = 1; p < n; p++)
        for (int64_t w = 0; w < (int64_t)n_ts * n_words; w++) out->masks[w] |= jobs[p].part.masks[w];
    if (map_init(&st.map, 1024) || map_init(&ops.map, 64) || grow32(&ops.begin, &ops.begin_cap, 1)) goto done;
    ops.begin[0] = 0;
    if (grow32(&st.parent, &st.parent_cap, 1) || grow32(&st.term, &st.term_cap, 1)) goto done;
    st.parent[0] = st.term[0] = -1;
    st.n = 1;
    for (int p = 0; p < n; p++) {
        const gm_build *b = &jobs[p].part;
        op_map[p] = gm_malloc((size_t)(b->n_wsops ? b->n_wsops : 1) * sizeof(int32_t));
        seq_map[p] = gm_malloc((size_t)(b->n_seqs ? b->n_seqs : 1) * sizeof(int32_t));
        if (!op_map[p] || !seq_map[p]) goto done;
        for (int32_t k = 0; k < b->n_wsops; k++) {
            int32_t op = wsop_intern(&ops, b->wsop_reset[k], b->wsop_bytes + b->wsop_begin[k],
                                     b->wsop_begin[k + 1] - b->wsop_begin[k]);
            if (op < 0) {
                rc = op;
                goto done;
            }
            op_map[p][k] = op;
        }
        for (int32_t q = 0; q < b->n_seqs; q++) {
            int32_t x = 0;
            for (int32_t i = b->seq_begin[q]; i < b->seq_begin[q + 1]; i++) {
                int32_t ev = b->seq_terms[i];
                if (ev > g->n_terminals) ev = g->n_terminals + 1 + op_map[p][ev - g->n_terminals - 1];
                if ((x = seq_append(&st, x, ev)) < 0) goto done;
            }
            seq_map[p][q] = x;
        }
    }
    out->group_begin = gm_malloc((size_t)(n_ts + 1) * sizeof(int32_t));
    if (!out->group_begin || grow((void **)&out->group_tok_begin, &tok_begin_cap, 1, sizeof(int32_t))) goto done;
    out->group_tok_begin[0] = 0;
    for (int32_t ts = 0; ts < n_ts; ts++) {
        const int p = ts % n;
        const gm_build *b = &jobs[p].part;
        const int32_t b0 = b->group_begin[ts], b1 = b->group_begin[ts + 1];
        const int32_t t0 = b->group_tok_begin[b0], t1 = b->group_tok_begin[b1];
        const int32_t g0 = out->n_groups;
        out->group_begin[ts] = g0;
        const int64_t need = (int64_t)g0 + (b1 - b0) + 1, base = out->group_tok_begin[g0];
        if (grow((void **)&out->group_tok_begin, &tok_begin_cap, need, sizeof(int32_t)) ||
            grow((void **)&out->group_seq, &seq_cap, need, sizeof(int32_t)) ||
            grow((void **)&out->group_cset, &cset_cap, need, sizeof(int32_t)) ||
            grow((void **)&out->group_toks, &toks_cap, base + (t1 - t0) + 1, sizeof(int32_t)))
            goto done;
        if (base + (t1 - t0) > INT32_MAX) goto done;
        for (int32_t i = b0; i < b1; i++) {
            out->group_seq[g0 + i - b0] = seq_map[p][b->group_seq[i]];
            out->group_cset[g0 + i - b0] = b->group_cset[i];
            out->group_tok_begin[g0 + i - b0 + 1] = (int32_t)(base + b->group_tok_begin[i + 1] - t0);
        }
        if (t1 > t0) memcpy(out->group_toks + base, b->group_toks + t0, (size_t)(t1 - t0) * sizeof(int32_t));
        out->n_groups += b1 - b0;
        out->n_group_toks = base + (t1 - t0);
    }
    out->group_begin[n_ts] = out->n_groups;
    if (materialize_seqs(&st, out)) goto done;
    out->wsop_begin = ops.begin;
    out->wsop_bytes = ops.bytes;
    out->wsop_reset = ops.reset;
    out->n_wsops = ops.n;
    ops.begin = NULL;
    ops.bytes = ops.reset = NULL;
    rc = 0;
done:
    for (int p = 0; p < n; p++) {
        gm_free(op_map[p]);
        gm_free(seq_map[p]);
    }
    gm_free(ops.begin);
    gm_free(ops.bytes);
    gm_free(ops.reset);
    map_free(&ops.map);
    gm_free(st.parent);
    gm_free(st.term);
    map_free(&st.map);
    if (rc) gm_build_free(out);
    return rc;
}

int gm_build_vocab(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                   const int32_t *order, int32_t n_order, int32_t n_words, int32_t strip_leading_space,
                   int32_t n_threads, gm_build *out) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > GM_MAX_BUILD_THREADS) n_threads = GM_MAX_BUILD_THREADS;
#ifdef _WIN32
    n_threads = 1;  /* no pthreads */
#endif
    if (n_threads == 1)
        return build_part(g, tok_bytes, tok_begin, order, n_order, n_words, strip_leading_space, 0, 1, out);
#ifndef _WIN32
    build_job jobs[GM_MAX_BUILD_THREADS];
    pthread_t threads[GM_MAX_BUILD_THREADS];
    int started[GM_MAX_BUILD_THREADS] = {0};
    for (int p = 0; p < n_threads; p++) {
        jobs[p] = (build_job){g, tok_bytes, tok_begin, order, n_order, n_words, strip_leading_space, p, n_threads,
                              {0}, GM_NOMEM};
        started[p] = p > 0 && pthread_create(&threads[p], NULL, build_job_run, &jobs[p]) == 0;
    }
    build_job_run(&jobs[0]);
    for (int p = 1; p < n_threads; p++) {
        if (started[p]) pthread_join(threads[p], NULL);
        else build_job_run(&jobs[p]);  /* no thread to be had: build it here */
    }
    int rc = 0;
    for (int p = 0; p < n_threads && !rc; p++) rc = jobs[p].rc;
    if (!rc) rc = merge_parts(g, jobs, n_threads, out);
    for (int p = 0; p < n_threads; p++) gm_build_free(&jobs[p].part);
    return rc;
#endif
}

/* ---- mask application ---------------------------------------------------------------------------- */

#define GM_APPLY_ROW(T)                                                                               \
    do {                                                                                              \
        T *out = (T *)logits + r * row_stride;                                                        \
        const T ninf = (T)neg_inf;                                                                    \
        for (int64_t w = 0; w < n_words && w * 32 < vocab; w++) {                                     \
            uint32_t banned = ~mask[r * mask_row_stride + w];                                         \
            if (w * 32 + 32 > vocab) banned &= (vocab - w * 32 >= 32) ? ~0u : ((1u << (vocab - w * 32)) - 1u); \
            if (banned == ~0u && col_stride == 1) { /* a fully banned word: 32 stores in a row */   \
                for (int k = 0; k < 32; k++) out[w * 32 + k] = ninf;                                 \
                continue;                                                                             \
            }                                                                                         \
            while (banned) { /* only the clear bits: a mostly-allowed row costs little */             \
                out[(w * 32 + __builtin_ctz(banned)) * col_stride] = ninf;                            \
                banned &= banned - 1;                                                                 \
            }                                                                                         \
        }                                                                                             \
        for (int64_t id = n_words * 32; id < vocab; id++) out[id * col_stride] = ninf;                \
    } while (0)

void gm_apply_bitmask(void *logits, int32_t elem_size, int64_t rows, int64_t vocab, int64_t row_stride,
                      int64_t col_stride, uint32_t neg_inf, const uint32_t *mask, int64_t n_words,
                      int64_t mask_row_stride) {
    for (int64_t r = 0; r < rows; r++) {
        if (elem_size == 4) GM_APPLY_ROW(uint32_t);
        else GM_APPLY_ROW(uint16_t);
    }
}
