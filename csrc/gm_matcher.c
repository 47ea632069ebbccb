/* The matcher: one parse in progress, fed token by token. Each accepted token leaves a history entry (what
 * it overwrote of the stacks), so rollback undoes tokens exactly; the mask comes from gm_fill.c. */
#include "gm_feed.h"

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
    GM_FREE_ALL(m->lr.data, m->ind.data, m->hist, m->saved, m->scratch[0].data, m->scratch[1].data,
                m->scratch[2].data, m->scratch[3].data, m->scratch[4].data, m->scratch[5].data, m->snaps,
                m->snap_data, m->take_stamp, m->take_ok, m->unit_memo);
    gm_free(m->fb_arena);
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
    m->fb_arena_len = m->fb_keep = 0;
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
    fb_keep_real(m, &m->ctx);
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

int pending_event(const gm_matcher *m, int32_t *ev) {
    return lexeme_event(m->g, m->lex_state, ev);
}

int lexeme_event(const gm_grammar *g, int32_t q, int32_t *ev) {
    *ev = -1;
    if (is_start(g, q)) return 0;
    int32_t w = winner_before(g, q, 256);
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
    vstate vs;
    if (m->ctx.fb_n) {
        /* the text ends in a lexeme that needs the fallback */
        int32_t q = m->lex_state;
        fb_trim(m);
        vstate_init(m, &vs);
        int r = flush_fallbacks(m, &vs, &q, 0);
        if (r != 1) return r == FEED_DEAD ? 0 : r;
        int p = lexeme_event(m->g, q, &ev);
        if (p < 0) return 0;
        if (p && (r = post_feed(m, &vs, ev)) != 1) return r;
        return post_feed(m, &vs, m->g->n_terminals);
    }
    int p = pending_event(m, &ev);
    if (p < 0) return 0;
    if (p) seq[n++] = ev;
    seq[n++] = m->g->n_terminals; /* $END */
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

int64_t gm_matcher_memory(const gm_matcher *m) {
    int64_t b = sizeof(*m) + 4 * ((int64_t)m->lr.cap + m->ind.cap)
              + (int64_t)m->hist_cap * sizeof(gm_history) + 4 * m->saved_cap
              + m->snaps_cap * (int64_t)sizeof(gm_snapshot) + 4 * m->snap_data_cap
              + ((int64_t)m->g->n_terminals + 1) * 5 + GM_UNIT_MEMO * (int64_t)sizeof(gm_unit_memo)
              + m->fb_arena_cap;
    for (int i = 0; i < 6; i++) b += 4 * (int64_t)m->scratch[i].cap;
    return b + gm_fill_cache_memory(m->own_fill_cache); /* not the shared one: the tables hold it */
}

int keep_state(const gm_matcher *m, gm_kept_state *k) {
    k->stacks = gm_malloc(((size_t)m->lr.len + m->ind.len) * sizeof(int32_t));
    if (!k->stacks) return GM_NOMEM;
    k->lr_len = m->lr.len;
    k->ind_len = m->ind.len;
    k->lex_state = m->lex_state;
    k->at_start = m->at_start;
    k->ctx = m->ctx;
    memcpy(k->stacks, m->lr.data, (size_t)k->lr_len * sizeof(int32_t));
    memcpy(k->stacks + k->lr_len, m->ind.data, (size_t)k->ind_len * sizeof(int32_t));
    return 0;
}

void put_back_state(gm_matcher *m, gm_kept_state *k) {
    /* the stacks only grew in between: the kept lengths fit */
    memcpy(m->lr.data, k->stacks, (size_t)k->lr_len * sizeof(int32_t));
    memcpy(m->ind.data, k->stacks + k->lr_len, (size_t)k->ind_len * sizeof(int32_t));
    m->lr.len = k->lr_len;
    m->ind.len = k->ind_len;
    m->lex_state = k->lex_state;
    m->at_start = k->at_start;
    m->ctx = k->ctx;
    drop_kept_state(k);
}

void drop_kept_state(gm_kept_state *k) {
    gm_free(k->stacks);
    k->stacks = NULL;
}

int feed_token_bytes(gm_matcher *m, const uint8_t *b, int64_t n, vstate *vs, int32_t *q_end) {
    int32_t q = m->lex_state;
    byte_fed fed;
    fb_trim(m); /* from the matcher's state: no virtual one before is used again */
    vstate_init(m, vs);
    for (int64_t i = 0; i < n; i++) {
        int r = feed_byte(m, vs, &q, b[i], 0, &fed);
        if (r != 1) return r == FEED_DEAD ? 0 : r;
    }
    *q_end = q;
    return lexeme_viable(m, vs, q);
}

const uint8_t *token_text(const gm_matcher *m, int32_t token, int64_t *n) {
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
