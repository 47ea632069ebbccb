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

/* ---- A pending fallback's bytes: the first GM_FB_INLINE in the context, the rest in the matcher's arena ---- */

/* Byte i (< c->fb_n) of the bytes after the complete lexeme the one in progress passed. */
static inline uint8_t fb_byte(const gm_matcher *m, const gm_ictx *c, int32_t i) {
    return i < GM_FB_INLINE ? c->fb_bytes[i] : m->fb_arena[c->fb_ext + (i - GM_FB_INLINE)];
}

static inline void fb_clear(gm_ictx *c) {
    if (!c->fb_n) return;
    memset(c->fb_bytes, 0, sizeof(c->fb_bytes));
    c->fb_n = c->fb_state = c->fb_term = c->fb_ext = 0;
}

/* Context c is real now (the matcher's, or in its history): the arena keeps its bytes. */
static inline void fb_keep_real(gm_matcher *m, const gm_ictx *c) {
    if (c->fb_n <= GM_FB_INLINE) return;
    const int64_t end = (int64_t)c->fb_ext + (c->fb_n - GM_FB_INLINE);
    if (end > m->fb_keep) m->fb_keep = end;
}

/* Drop what virtual states appended to the arena: called where none of them is used any more (before a
 * token's bytes are fed from the matcher's state, before raw text is). */
static inline void fb_trim(gm_matcher *m) {
    m->fb_arena_len = m->fb_keep;
}

/* Append byte b to c's bytes: 0, or GM_NOMEM. In the arena, where c's bytes end at its end (a state that
 * goes on, the common case) or where the byte after them is b already (their bytes never change), in place;
 * else c's bytes are copied to the end first. */
static int fb_push(gm_matcher *m, gm_ictx *c, uint8_t b) {
    if (c->fb_n < GM_FB_INLINE) {
        c->fb_bytes[c->fb_n++] = b;
        return 0;
    }
    const int64_t k = c->fb_n - GM_FB_INLINE, end = k ? (int64_t)c->fb_ext + k : -1;
    if (k && end < m->fb_arena_len && m->fb_arena[end] == b) {
        c->fb_n++;
        return 0;
    }
    if (k == 0 || end != m->fb_arena_len) {
        const int64_t at = m->fb_arena_len;
        if (c->fb_n == INT32_MAX || at + k + 1 > INT32_MAX ||
            grow((void **)&m->fb_arena, &m->fb_arena_cap, at + k + 1, 1))
            return GM_NOMEM;
        if (k) memcpy(m->fb_arena + at, m->fb_arena + c->fb_ext, (size_t)k);
        c->fb_ext = (int32_t)at;
        m->fb_arena_len = at + k;
    } else if (grow((void **)&m->fb_arena, &m->fb_arena_cap, m->fb_arena_len + 1, 1)) {
        return GM_NOMEM;
    }
    m->fb_arena[m->fb_arena_len++] = b;
    c->fb_n++;
    return 0;
}

/* lex_fallback: what byte b, lexed from state `from` into state nq (a lexeme in progress unless a start),
 * leaves of the fallback in *c: a complete lexeme passed, kept with the bytes after it, or none. 0, or
 * GM_NOMEM. */
static inline int track_fallback(gm_matcher *m, gm_ictx *c, int32_t from, uint8_t b, int32_t nq) {
    const gm_grammar *g = m->g;
    const int continued = !is_start(g, from) && g->lex_trans[(size_t)from * 256 + b] >= 0;
    if (c->fb_n) { /* the character b ends failed the look-ahead of the lexeme kept: void */
        const int32_t w = fallback_term_in(g, nq, c->fb_term);
        if (w < 0) fb_clear(c);
        else c->fb_term = w;
    }
    if (is_start(g, nq) || g->lex_winner[nq] >= 0 || !continued) {
        fb_clear(c);
    } else if (winner_before(g, from, b) >= 0) {
        fb_clear(c);
        c->fb_state = from;
        c->fb_term = winner_before(g, from, b);
        c->fb_n = 1;
        c->fb_bytes[0] = b;
    } else if (c->fb_n) {
        return fb_push(m, c, b);
    }
    return 0;
}

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
    fb_keep_real(m, &m->ctx);
    vstate_init(m, vs);
    return 1;
}

static inline int feed_byte(gm_matcher *m, vstate *vs, int32_t *q, uint8_t b, int real, byte_fed *fed);

/* lex_fallback: the lexeme in progress (in *q) died, or the text ended, after it passed a complete one:
 * feed that one's terminal, and lex the bytes after it again from where the next lexeme starts, as Lark's
 * re.match backtracks. Returns as feed_byte (nothing fed again refused: 1, *q the state after). */
static int fall_back(gm_matcher *m, vstate *vs, int32_t *q, int real, byte_fed *fed) {
    const gm_grammar *g = m->g;
    const gm_ictx again = vs->ctx; /* its bytes (those in the arena stay: nothing is written below its end) */
    const int32_t n = again.fb_n, ended = again.fb_state, w = again.fb_term;
    fb_clear(&vs->ctx);
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
        int r = feed_byte(m, vs, q, fb_byte(m, &again, i), real, fed);
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
    if (g->lex_fallback && vs->ctx.fb_n && g->lex_trans[(size_t)from * 256 + b] < 0
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
    if (g->lex_fallback && track_fallback(m, &vs->ctx, from, b, nq)) return GM_NOMEM;
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
        m->ctx.fb_ext = vs->ctx.fb_ext;
        memcpy(m->ctx.fb_bytes, vs->ctx.fb_bytes, sizeof(m->ctx.fb_bytes));
        fb_keep_real(m, &m->ctx);
    }
    *q = nq;
    return 1;
}

/* lex_fallback: the text ends with a fallback pending (the lexeme in progress is incomplete): fall back, as
 * often as the bytes lexed again leave one pending. Returns as feed_byte. */
static inline int flush_fallbacks(gm_matcher *m, vstate *vs, int32_t *q, int real) {
    byte_fed fed;
    while (vs->ctx.fb_n) {
        if (winner_before(m->g, *q, 256) >= 0) {
            /* the lexeme in progress is complete at the end of the text (a conditional state): no fallback */
            fb_clear(&vs->ctx);
            if (real) fb_clear(&m->ctx);
            break;
        }
        int r = fall_back(m, vs, q, real, &fed);
        if (r != 1) return r;
    }
    return 1;
}

#define GM_FB_TRIALS 65536 /* continuations fallback_viable tries at most (each a few bytes fed) */

/* One trial of fallback_viable: root + x[0..n) fed in the third overlay pair. Its answer (1 yes, 0 no, <0 an
 * error), or FB_GO_ON: no answer yet, the lexeme in progress (in *q) still has a fallback pending, and *longer
 * says whether bytes that go on with it are tried too. */
#define FB_GO_ON 2
static int fallback_trial(gm_matcher *m, const vstate *root, int32_t q_root, const uint8_t *x, int n, int32_t *q,
                          int *longer) {
    const gm_grammar *g = m->g;
    vstate t;
    byte_fed fed;
    *q = q_root;
    if (vstate_copy_into(m, root, &t, 2)) return GM_NOMEM;
    for (int i = 0; i < n; i++) {
        int r = feed_byte(m, &t, q, x[i], 0, &fed);
        if (r != 1) return r == FEED_DEAD ? 0 : r;
    }
    if (n) {
        int r = pending_ok(m, &t, cset_of(g, *q));
        if (r) return r;
    }
    if (!t.ctx.fb_n || n >= GM_FB_SEARCH) return 0;
    *longer = t.ctx.fb_n < GM_FB_SEARCH; /* longer continuations are tried up to GM_FB_SEARCH bytes back */
    const int32_t w = t.ctx.fb_term;
    if (!g->term_ignored[w]) {
        int r = can_take(m, &t, w);
        if (r <= 0) return r; /* every fallback from here feeds w */
    }
    return FB_GO_ON;
}

/* Whether some bytes x[n..] after root + x[0..n) make a text the parser takes, the lexeme in progress after
 * root being one with a fallback pending: it dies on a byte and the text after the shorter lexeme goes
 * on (continuations that reach a complete lexeme are pending_ok's). Each trial feeds root + x afresh; what
 * it appended to the arena is dropped after it. The bytes that end the lexeme are tried before those that
 * go on with it, and those only while the fallback is less than GM_FB_SEARCH bytes back (a bound on the
 * search, not on the fallback). *trials counts the trials: past GM_FB_TRIALS, the answer is no. */
static int fallback_viable(gm_matcher *m, const vstate *root, int32_t q_root, uint8_t *x, int n, int64_t *trials) {
    const gm_grammar *g = m->g;
    if (++*trials > GM_FB_TRIALS) return 0;
    const int64_t arena_mark = m->fb_arena_len; /* root's bytes end below it */
    int32_t q;
    int longer = 0;
    int r = fallback_trial(m, root, q_root, x, n, &q, &longer);
    m->fb_arena_len = arena_mark;
    if (r != FB_GO_ON) return r;
    for (int going_on = 0; going_on <= longer; going_on++) {
        for (int c = 0; c < 256; c++) {
            const int32_t nq = g->lex_trans[(size_t)q * 256 + c];
            if (going_on ? nq < 0 || g->lex_winner[nq] >= 0 : nq >= 0) continue;
            x[n] = (uint8_t)c;
            r = fallback_viable(m, root, q_root, x, n + 1, trials);
            if (r) return r;
        }
    }
    return 0;
}

/* Whether the text fed so far (lexer state q, the parser in vs) is a prefix of a text the parser takes: the
 * lexeme in progress can still become a terminal it takes or, with a fallback pending, can die so that the
 * text after the shorter lexeme goes on. */
static inline int lexeme_viable(gm_matcher *m, const vstate *vs, int32_t q) {
    int r = pending_ok(m, vs, cset_of(m->g, q));
    if (r || !vs->ctx.fb_n) return r;
    uint8_t x[GM_FB_SEARCH + 1];
    int64_t trials = 0;
    return fallback_viable(m, vs, q, x, 0, &trials);
}

#endif
