/* Text into the parser: the one byte loop. A token's bytes (gm_matcher.c's feed_token_bytes, also for the
 * fill's tokens that cross a restart the context decides) and raw text (gm_validator.c) go through the same
 * feed_byte, so that what a mask allows and what the validator accepts cannot drift apart. The token tables
 * (gm_build.c) follow the same rule for a t_nl lexeme's indentation: it begins where the lexeme before it
 * ended. Static inline: each caller runs it per byte, and compiles it with `real` fixed. */
#ifndef GM_FEED_H
#define GM_FEED_H

#include "gm_internal.h"

#define FEED_DEAD 2    /* feed_byte: no lexeme can continue with the byte */

/* What feed_byte saw of one byte. */
typedef struct {
    int boundary;       /* the lexeme before the byte ended at it (a new one begins with the byte) */
    int at_start;       /* taken: no lexeme is in progress after it (is_start of the new state) */
    int32_t refused;    /* the terminal the parser refused, or -1 */
    int refused_ended;  /* ... and it was that lexeme before the byte (not one the byte ended or began) */
} byte_fed;

/* Write `vs` into the matcher's stacks and context (no history), and start `vs` afresh from them: 1, or
 * GM_NOMEM with the matcher as it was. */
static inline int make_real(gm_matcher *m, vstate *vs) {
    if (grow32(&m->lr.data, &m->lr.cap, (int64_t)vs->lr.base + vs->lr.ov->len) ||
        grow32(&m->ind.data, &m->ind.cap, (int64_t)vs->ind.base + vs->ind.ov->len))
        return GM_NOMEM;
    memcpy(m->lr.data + vs->lr.base, vs->lr.ov->data, (size_t)vs->lr.ov->len * sizeof(int32_t));
    m->lr.len = vs->lr.base + vs->lr.ov->len;
    memcpy(m->ind.data + vs->ind.base, vs->ind.ov->data, (size_t)vs->ind.ov->len * sizeof(int32_t));
    m->ind.len = vs->ind.base + vs->ind.ov->len;
    m->ctx = vs->ctx;
    vstate_init(m, vs);
    return 1;
}

static inline int feed_byte(gm_matcher *m, vstate *vs, int32_t *q, uint8_t b, int real, byte_fed *fed);

/* lex_fallback: the lexeme in progress (in *q) died, or the text ended, after it passed a complete one:
 * feed that one's terminal, and lex the bytes after it again from where the next lexeme starts, as Lark's
 * re.match backtracks. Returns as feed_byte (nothing fed again refused: 1, *q the state after). */
static int fall_back(gm_matcher *m, vstate *vs, int32_t *q, int real, byte_fed *fed) {
    const gm_grammar *g = m->g;
    uint8_t again[GM_FB_MAX];
    const int32_t n = vs->ctx.fb_n, ended = vs->ctx.fb_state, w = vs->ctx.fb_term;
    memcpy(again, vs->ctx.fb_bytes, sizeof(again));
    memset(vs->ctx.fb_bytes, 0, sizeof(vs->ctx.fb_bytes));
    vs->ctx.fb_n = vs->ctx.fb_state = vs->ctx.fb_term = 0;
    if (!g->term_ignored[w]) {
        int r = post_feed(m, vs, w);
        if (r == 1 && real) r = make_real(m, vs);
        if (r != 1) {
            fed->boundary = 1;
            fed->refused = w;
            fed->refused_ended = 1;
            return r;
        }
    }
    int32_t next = restart_state(g, ended, w);
    *q = next == GM_RESUME ? gm_mode_start(g, &vs->ctx, g->state_mode ? vstack_top(&vs->lr) : 0) : next;
    for (int32_t i = 0; i < n; i++) {
        int r = feed_byte(m, vs, q, again[i], real, fed);
        if (r != 1) return r;
    }
    return 1;
}

/* Lex byte b from lexer state *q and feed what it ends to the parser in `vs`; keep the running indentation of
 * a t_nl lexeme and the line continuation in vs->ctx. 1: taken, *q the state after; 0: the parser refused a
 * terminal (see `fed`); FEED_DEAD: no lexeme continues with b (*q the state it was lexed from); <0: an error.
 * `real`: `vs` is the matcher's own state (vstate_init), and each terminal the parser takes is made real at
 * once (make_real), so that after a refusal the matcher holds the state just before it; else nothing of the
 * matcher is written. */
static inline int feed_byte(gm_matcher *m, vstate *vs, int32_t *q, uint8_t b, int real, byte_fed *fed) {
    const gm_grammar *g = m->g;
    int32_t from = *q, nq, emit[3];
    int ne, consumed;
    if (g->lex_fallback && vs->ctx.fb_n && vs->ctx.fb_n != GM_FB_LOST && g->lex_trans[(size_t)from * 256 + b] < 0
        && winner_before(g, from, b) < 0) {
        /* b kills the lexeme in progress, which is not complete before b (a conditional state may be): back
         * to the complete one it passed, then b */
        int r = fall_back(m, vs, q, real, fed);
        return r == 1 ? feed_byte(m, vs, q, b, real, fed) : r;
    }
    fed->boundary = !is_start(g, from) && g->lex_trans[(size_t)from * 256 + b] < 0;
    fed->refused = -1;
    fed->refused_ended = 0;
    fed->at_start = 0;
    /* GM_LARK_INDENT: the indentation of the lexeme b joins, b counted (NL tokens are read whole) */
    int32_t lark_w = 0, lark_seen = 0;
    if (g->indenter == GM_LARK_INDENT) {
        if (!nl_begins(g, from, b)) {
            lark_w = vs->ctx.width;
            lark_seen = vs->ctx.altwidth;
        }
        lark_indent_byte(b, g->tab_len, &lark_w, &lark_seen);
    }
    for (int pass = 0;; pass++) {
        nq = gm_lex_byte(g, from, b, emit, &ne, &consumed);
        if (nq == GM_DEAD) {
            *q = from;
            return FEED_DEAD;
        }
        for (int e = 0; e < ne; e++) {
            /* a t_nl lexeme ends: the indentation after its last newline goes with it */
            const int32_t ev = (g->indenter == GM_INDENT && emit[e] == g->t_nl)
                                   ? EV_NL_WIDTH(vs->ctx.width, vs->ctx.altwidth) : emit[e];
            if (g->indenter == GM_LARK_INDENT && ev == g->t_nl && !emitted_before(g, from, b, e)) {
                vs->ctx.width = lark_w; /* an NL lexeme that ended with b: b is part of it */
                vs->ctx.altwidth = lark_seen;
            }
            int r = post_feed(m, vs, ev);
            if (r == 1 && real) r = make_real(m, vs);
            if (r != 1) {
                fed->refused = emit[e];
                /* the first terminal is the lexeme before the byte, if that one ended (a complete terminal:
                 * the lexer took the byte) and is not ignored */
                fed->refused_ended = pass == 0 && e == 0 && fed->boundary && emitted_before(g, from, b, 0);
                *q = from;
                return r;
            }
        }
        if (nq != GM_RESUME) break;
        /* A lexeme ended after which the open f-strings say where the lexer restarts. */
        nq = gm_mode_start(g, &vs->ctx, g->state_mode ? vstack_top(&vs->lr) : 0);
        if (consumed) break;
        from = nq; /* the byte starts the next lexeme, in the mode now known */
    }
    if (g->indenter == GM_LARK_INDENT) {
        /* zero outside NL lexemes, where nothing reads them (the fill cache keys hold the context) */
        vs->ctx.width = g->lex_nl[nq] ? lark_w : 0;
        vs->ctx.altwidth = g->lex_nl[nq] ? lark_seen : 0;
    } else if (g->indenter && g->lex_nl[nq]) {
        /* A new t_nl lexeme begins with this byte, or the one in progress goes on. */
        const int begins = !g->lex_nl[from] || (!is_start(g, from) && g->lex_trans[(size_t)from * 256 + b] < 0);
        if (begins) vs->ctx.width = vs->ctx.altwidth = 0;
        indent_byte(b, &vs->ctx.width, &vs->ctx.altwidth);
    }
    if (g->lex_fallback) track_fallback(g, &vs->ctx, from, b, nq);
    fed->at_start = is_start(g, nq);
    if (!fed->at_start) vs->ctx.cont = 0;
    else if (ne && emit[ne - 1] == g->t_cont) vs->ctx.cont = 1;
    if (real) { /* the rest of the context is the matcher's already (make_real) */
        m->ctx.width = vs->ctx.width;
        m->ctx.altwidth = vs->ctx.altwidth;
        m->ctx.cont = vs->ctx.cont;
        m->ctx.fb_state = vs->ctx.fb_state;
        m->ctx.fb_term = vs->ctx.fb_term;
        m->ctx.fb_n = vs->ctx.fb_n;
        memcpy(m->ctx.fb_bytes, vs->ctx.fb_bytes, sizeof(m->ctx.fb_bytes));
    }
    *q = nq;
    return 1;
}

/* lex_fallback: the text ends with a fallback pending (the lexeme in progress is incomplete): fall back, as
 * often as the bytes lexed again leave one pending. Returns as feed_byte. */
static inline int flush_fallbacks(gm_matcher *m, vstate *vs, int32_t *q, int real) {
    byte_fed fed;
    while (vs->ctx.fb_n && vs->ctx.fb_n != GM_FB_LOST) {
        if (winner_before(m->g, *q, 256) >= 0) {
            /* the lexeme in progress is complete at the end of the text (a conditional state): no fallback */
            memset(vs->ctx.fb_bytes, 0, sizeof(vs->ctx.fb_bytes));
            vs->ctx.fb_n = vs->ctx.fb_state = vs->ctx.fb_term = 0;
            if (real) {
                memset(m->ctx.fb_bytes, 0, sizeof(m->ctx.fb_bytes));
                m->ctx.fb_n = m->ctx.fb_state = m->ctx.fb_term = 0;
            }
            break;
        }
        int r = fall_back(m, vs, q, real, &fed);
        if (r != 1) return r;
    }
    return 1;
}

#define GM_FB_TRIALS 65536 /* continuations fallback_viable tries at most (each a few bytes fed) */

/* Whether some bytes x[n..] after root + x[0..n) make a text the parser takes, the lexeme in progress after
 * root being one with a fallback pending: it dies on a byte and the text after the shorter lexeme goes
 * on (continuations that reach a complete lexeme are pending_ok's). Each trial feeds root + x afresh, in the
 * third overlay pair. *trials counts them: past GM_FB_TRIALS, the answer is no. */
static int fallback_viable(gm_matcher *m, const vstate *root, int32_t q_root, uint8_t *x, int n, int64_t *trials) {
    const gm_grammar *g = m->g;
    if (++*trials > GM_FB_TRIALS) return 0;
    vstate t;
    int32_t q = q_root;
    byte_fed fed;
    if (vstate_copy_into(m, root, &t, 2)) return GM_NOMEM;
    for (int i = 0; i < n; i++) {
        int r = feed_byte(m, &t, &q, x[i], 0, &fed);
        if (r != 1) return r == FEED_DEAD ? 0 : r;
    }
    if (n) {
        int r = pending_ok(m, &t, cset_of(g, q));
        if (r) return r;
    }
    if (!t.ctx.fb_n || t.ctx.fb_n == GM_FB_LOST || n >= GM_FB_MAX) return 0;
    const int32_t w = t.ctx.fb_term;
    if (!g->term_ignored[w]) {
        int r = can_take(m, &t, w);
        if (r <= 0) return r; /* every fallback from here feeds w */
    }
    const int grows = t.ctx.fb_n < GM_FB_MAX; /* a longer one keeps no fallback */
    for (int c = 0; c < 256; c++) {
        const int32_t nq = g->lex_trans[(size_t)q * 256 + c];
        if (nq >= 0 && (g->lex_winner[nq] >= 0 || !grows)) continue;
        x[n] = (uint8_t)c;
        int r = fallback_viable(m, root, q_root, x, n + 1, trials);
        if (r) return r;
    }
    return 0;
}

/* Whether the text fed so far (lexer state q, the parser in vs) is a prefix of a text the parser takes: the
 * lexeme in progress can still become a terminal it takes or, with a fallback pending, can die so that the
 * text after the shorter lexeme goes on. */
static inline int lexeme_viable(gm_matcher *m, const vstate *vs, int32_t q) {
    int r = pending_ok(m, vs, cset_of(m->g, q));
    if (r || !vs->ctx.fb_n || vs->ctx.fb_n == GM_FB_LOST) return r;
    uint8_t x[GM_FB_MAX + 1];
    int64_t trials = 0;
    return fallback_viable(m, vs, q, x, 0, &trials);
}

#endif
