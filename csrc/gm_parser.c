/* The parser: the LR(1) tables driven over a virtual parse state (see vstate in gm_internal.h), behind the
 * rules that turn lexer terminals into parser terminals: Python's indentation (NEWLINE, INDENT, DEDENT as
 * CPython's tokenizer makes them), Go's semicolons, and the stack of open f-strings. */
#include "gm_internal.h"

static inline int32_t vs_len(const vstack *vs) { return vs->base + vs->ov->len; }

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


int vstate_copy_into(gm_matcher *m, const vstate *src, vstate *dst, int pair) {
    gm_stack *a = &m->scratch[2 * pair], *b = &m->scratch[2 * pair + 1];
    if (grow32(&a->data, &a->cap, src->lr.ov->len + 1) || grow32(&b->data, &b->cap, src->ind.ov->len + 1))
        return GM_NOMEM;
    memmove(a->data, src->lr.ov->data, (size_t)src->lr.ov->len * sizeof(int32_t));
    memmove(b->data, src->ind.ov->data, (size_t)src->ind.ov->len * sizeof(int32_t));
    a->len = src->lr.ov->len;
    b->len = src->ind.ov->len;
    *dst = *src;
    dst->lr.ov = a;
    dst->ind.ov = b;
    return 0;
}

/* A copy of `src` in the second pair of overlays (for "could it take X?" questions). */
static int vstate_copy(gm_matcher *m, const vstate *src, vstate *dst) {
    return vstate_copy_into(m, src, dst, 1);
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
        int32_t top = vstack_top(vs);
        int32_t a = g->action[(size_t)top * ncols + term];
        if (a >= 0) return vs_push(vs, a) ? GM_NOMEM : 1;
        if (a == GM_ERROR) return 0;
        int32_t r = -a - 2, s;
        if (g->rule_len[r] == 1) {
            s = unit_chain(m, vs_below_top(vs), top, term);
            vs_pop(vs, 1);
        } else {
            vs_pop(vs, g->rule_len[r]);
            s = g->go[(size_t)vstack_top(vs) * g->n_nonterminals + g->rule_lhs[r]];
        }
        if (vs_push(vs, s)) return GM_NOMEM;
        if (term == g->n_terminals && s == g->lr_end) return 1;
    }
}

/* The logical line's first token is here: INDENT or DEDENTs as CPython's tokenizer emits them. */
static int emit_indentation(gm_matcher *m, vstate *vs) {
    const gm_grammar *g = m->g;
    vs->ctx.line_start = 0;
    const int32_t w = vs->ctx.width, alt = vs->ctx.altwidth;
    if (w > 0x7FFF || alt > 0xFFFF) return 0;
    int32_t top = vstack_top(&vs->ind);
    if (w == INDENT_WIDTH(top)) return alt == INDENT_ALT(top);
    if (w > INDENT_WIDTH(top)) {
        m->ind_len_read = 1;
        if (alt <= INDENT_ALT(top) || vs_len(&vs->ind) > GM_MAX_INDENT_LEVELS) return 0;
        if (vs_push(&vs->ind, PACK_INDENT(w, alt))) return GM_NOMEM;
        return lr_feed(m, &vs->lr, g->t_indent);
    }
    /* Only the bottom level has width 0, so this never pops it (and reads no stack length). */
    while (w < INDENT_WIDTH(vstack_top(&vs->ind))) {
        vs_pop(&vs->ind, 1);
        int r = lr_feed(m, &vs->lr, g->t_dedent);
        if (r != 1) return r;
    }
    top = vstack_top(&vs->ind);
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

/* Lark's Indenter (lark/indenter.py, Indenter._process and handle_NL) between the lexer and the parser. An
 * NL token is dropped inside brackets; else it goes to the parser, then its indentation w: deeper than
 * the top level, a new level and INDENT; else DEDENTs while shallower, and it must then equal the top.
 * Every token then counts as a bracket (term_bracket; below 0: Lark's assertion). At the end of the
 * input, a DEDENT for every open level. No blank-line, continuation or tab/space rules: Lark has none. */
static int lark_feed(gm_matcher *m, vstate *vs, int32_t ev) {
    const gm_grammar *g = m->g;
    int r;
    if (ev == g->n_terminals) {
        while (vs_len(&vs->ind) > 1) {
            vs_pop(&vs->ind, 1);
            if ((r = lr_feed(m, &vs->lr, g->t_dedent)) != 1) return r;
        }
        return lr_feed(m, &vs->lr, ev);
    }
    if (ev > g->n_terminals || ev == g->t_nl) {
        int32_t w = vs->ctx.width, seen = vs->ctx.altwidth;
        if (ev > g->n_terminals) { /* from the token tables: the NL lexeme's bytes in this token */
            const gm_wsops *ws = &m->ws;
            const int32_t k = ev - g->n_terminals - 1;
            if (ws->reset[k]) w = seen = 0;
            for (int32_t i = ws->begin[k]; i < ws->begin[k + 1]; i++)
                lark_indent_byte(ws->bytes[i], g->tab_len, &w, &seen);
            ev = g->t_nl;
        }
        vs->ctx.width = vs->ctx.altwidth = 0; /* the lexeme is over */
        if (vs->ctx.depth == 0) {
            if ((r = lr_feed(m, &vs->lr, ev)) != 1) return r;
            if (!seen || w >= GM_LARK_MAX_WIDTH) return 0; /* no '\n' in it: Lark's Indenter fails */
            int32_t top = vstack_top(&vs->ind);
            if (w > top) {
                if (vs_push(&vs->ind, w)) return GM_NOMEM;
                if ((r = lr_feed(m, &vs->lr, g->t_indent)) != 1) return r;
            } else {
                for (; w < top; top = vstack_top(&vs->ind)) { /* the bottom level, 0, is never popped */
                    vs_pop(&vs->ind, 1);
                    if ((r = lr_feed(m, &vs->lr, g->t_dedent)) != 1) return r;
                }
                if (w != top) return 0; /* Lark's DedentError */
            }
        }
    } else if ((r = lr_feed(m, &vs->lr, ev)) != 1) {
        return r;
    }
    if (g->term_bracket[ev] > 0) {
        if (vs->ctx.depth >= GM_LARK_MAX_WIDTH) return 0;
        vs->ctx.depth++;
    } else if (g->term_bracket[ev] < 0 && --vs->ctx.depth < 0) {
        return 0;
    }
    return 1;
}

/* Feed one event to the parser through the indentation rules (see gm_internal.h). */
int post_feed(gm_matcher *m, vstate *vs, int32_t ev) {
    const gm_grammar *g = m->g;
    if (g->n_modes > 1 && ev >= 0 && ev < g->n_terminals && (vs->ctx.fn || g->term_fop[ev])) {
        int r = fstring_step(m, vs, &ev);
        if (r != 1) return r == 2 ? 1 : r;
    }
    if (!g->indenter) return lr_feed(m, &vs->lr, ev);
    if (g->indenter == GM_LARK_INDENT) return lark_feed(m, vs, ev);
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
        const gm_wsops *ws = &m->ws;
        int32_t k = ev - g->n_terminals - 1;
        int32_t w = ws->reset[k] ? 0 : vs->ctx.width, alt = ws->reset[k] ? 0 : vs->ctx.altwidth;
        for (int32_t i = ws->begin[k]; i < ws->begin[k + 1]; i++) indent_byte(ws->bytes[i], &w, &alt);
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

/* can_take's answer past the action table: post_feed on a copy (apart, so that the frequent action-table
 * answer does not pay for the copy's frame). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int can_take_fed(gm_matcher *m, const vstate *vs, int32_t term) {
    const gm_grammar *g = m->g;
    vstate copy;
    if (vstate_copy(m, vs, &copy)) return GM_NOMEM;
    if (g->indenter == GM_LARK_INDENT && term == g->t_nl)
        /* Its indentation is not known until the lexeme ends (post_feed checks it then): the parser's
         * answer, or dropped inside brackets. */
        return copy.ctx.depth > 0 ? 1 : lr_feed(m, &copy.lr, term);
    return post_feed(m, &copy, term);
}

int can_take(gm_matcher *m, const vstate *vs, int32_t term) {
    const gm_grammar *g = m->g;
    const int plain = g->indenter == GM_SEMICOLONS
                          ? term != g->n_terminals && !(g->term_flags[term] & GM_TERM_NEWLINE)
                      : g->indenter == GM_LARK_INDENT
                          ? term != g->t_nl && term != g->n_terminals
                          : !vs->ctx.line_start && term != g->t_nl && term != g->t_cont && term != g->n_terminals;
    /* The action table answers alone, except for what post_feed may refuse beyond it: f-string terminals
     * (the context decides them), opening brackets (nesting limits) and, for Lark's Indenter, closing
     * ones (one too many). */
    const int checked = term < g->n_terminals
                        && (g->term_bracket[term] > 0 || (g->n_modes > 1 && g->term_fop[term])
                            || (g->indenter == GM_LARK_INDENT && g->term_bracket[term] < 0));
    if ((!g->indenter || plain) && !checked) {
        int32_t a = g->action[(size_t)vstack_top(&vs->lr) * (g->n_terminals + 1) + term];
        if (a >= 0) return 1;
        if (a == GM_ERROR) return 0;
    }
    return can_take_fed(m, vs, term);
}

int pending_ok(gm_matcher *m, const vstate *vs, int32_t cset) {
    const gm_grammar *g = m->g;
    if (cset == GM_ANY) return 1;
    for (int32_t k = g->cset_begin[cset]; k < g->cset_begin[cset + 1]; k++) {
        int r = can_take(m, vs, g->cset_terms[k]);
        if (r != 0) return r;
    }
    return 0;
}

int check_seq(gm_matcher *m, const int32_t *seq, int32_t n, int32_t cset, vstate *vs) {
    vstate_init(m, vs);
    for (int32_t i = 0; i < n; i++) {
        int r = post_feed(m, vs, seq[i]);
        if (r != 1) return r;
    }
    return pending_ok(m, vs, cset);
}

