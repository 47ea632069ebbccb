/* The validator: raw text fed straight into a matcher without token tables, no history kept, with the
 * offset of the first error and what went wrong there (gm_feed_bytes). Bytes go through gm_feed.h's
 * feed_byte, as tokens' bytes do. */
#include "gm_feed.h"

/* Feed one event and make the result real. */
static int feed_real(gm_matcher *m, int32_t ev) {
    vstate vs;
    vstate_init(m, &vs);
    int r = post_feed(m, &vs, ev);
    return r == 1 ? make_real(m, &vs) : r;
}

/* The matcher's text (its lexeme in progress in state q) can still go on to a text the parser takes. */
static int pending_viable(gm_matcher *m, int32_t q) {
    vstate vs;
    vstate_init(m, &vs);
    int r = lexeme_viable(m, &vs, q);
    fb_trim(m);
    return r;
}

int gm_flush_lexeme(gm_matcher *m) {
    int32_t ev;
    if (m->ctx.fb_n) {
        vstate vs;
        fb_trim(m);
        vstate_init(m, &vs);
        int r = flush_fallbacks(m, &vs, &m->lex_state, 1);
        if (r != 1) return r == FEED_DEAD ? 0 : r;
    }
    int p = pending_event(m, &ev);
    if (p < 0) return 0;
    if (p) {
        int r = feed_real(m, ev);
        if (r != 1) return r;
    }
    m->lex_state = gm_mode_start(m->g, &m->ctx, m->lr.data[m->lr.len - 1]);
    return 1;
}

int gm_feed_bytes(gm_matcher *m, const uint8_t *bytes, int64_t n, int64_t offset,
                  int64_t *err_pos, int32_t *err_term, int64_t *lexeme_begin) {
    const gm_grammar *g = m->g;
    int32_t q = m->lex_state;
    int32_t checked_cset = cset_of(g, q);
    vstate vs;
    byte_fed fed;
    *err_term = -1;
    fb_trim(m);
    vstate_init(m, &vs);
    int at_start = is_start(g, q);
    for (int64_t i = 0; i < n; i++) {
        const int64_t pos = offset + i;
        if (at_start) *lexeme_begin = pos;
        const int64_t prev_begin = *lexeme_begin;
        int r = feed_byte(m, &vs, &q, bytes[i], 1, &fed);
        if (r == FEED_DEAD) {
            *err_pos = pos;
            m->lex_state = q;
            return GM_ERR_LEX;
        }
        if (fed.boundary) {
            *lexeme_begin = pos; /* the byte may end the lexeme before it */
            checked_cset = GM_ANY;
        }
        if (r < 0) return r;
        if (r == 0) {
            /* the matcher holds the state before the refused terminal */
            *err_term = fed.refused;
            *err_pos = fed.refused_ended ? prev_begin : *lexeme_begin;
            m->lex_state = gm_mode_start(g, &m->ctx, m->lr.data[m->lr.len - 1]);
            return GM_ERR_PARSE;
        }
        /* A lexeme in progress: check its terminals afresh when its completable set changes, or when the
         * character it took failed a look-ahead (lex_void: the fallback it kept may be gone). */
        at_start = fed.at_start;
        if (at_start) {
            checked_cset = GM_ANY;
        } else if (g->lex_cset[q] != checked_cset || (g->lex_void && g->lex_void[q] != GM_NO_VOID)) {
            checked_cset = g->lex_cset[q];
            m->lex_state = q;
            r = pending_viable(m, q);
            if (r < 0) return r;
            if (!r) {
                *err_term = checked_cset;
                *err_pos = *lexeme_begin;
                return GM_ERR_PENDING;
            }
            vstate_init(m, &vs); /* the check used the same overlays */
        }
    }
    m->lex_state = q;
    if (m->ctx.fb_n && !at_start) {
        /* a fallback pending: whether some text goes on from here is more than the completable set */
        int r = pending_viable(m, q);
        if (r < 0) return r;
        if (!r) {
            *err_term = g->lex_cset[q];
            *err_pos = *lexeme_begin;
            return GM_ERR_PENDING;
        }
    }
    return GM_OK;
}

int gm_accept_bytes(gm_matcher *m, const uint8_t *bytes, int64_t n) {
    /* The validator path writes the matcher directly: keep its state, put it back on failure. */
    gm_kept_state kept;
    if (keep_state(m, &kept)) return GM_NOMEM;
    int64_t err_pos, lexeme_begin = 0;
    int32_t err_term;
    int r = gm_feed_bytes(m, bytes, n, 0, &err_pos, &err_term, &lexeme_begin);
    if (r == GM_OK) {
        m->n_hist = 0; /* the token history does not reach across raw text */
        m->n_saved = 0;
        drop_kept_state(&kept);
        return 1;
    }
    put_back_state(m, &kept);
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
