/* The next-token mask. The token tables say, per lexer state, which tokens stay inside the lexeme whatever
 * the parser does (one unconditional mask) and, for the rest, groups of tokens that feed the same terminal
 * sequence and leave the same completable set pending: the fill feeds each sequence to the virtual parser
 * once and ORs in the groups it takes. Costly fills are kept in the fill cache (gm_fill_cache.c). */
#include "gm_feed.h"

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

static int fill_groups(gm_matcher *m, int32_t ts, uint32_t *restrict out);
static int fill_from(gm_matcher *m, const gm_state_tables *tab, uint32_t *restrict out);
static int fill_stripped(gm_matcher *m, uint32_t *restrict out);
static int fill_each(gm_matcher *m, uint32_t *restrict out);
static int fill_fallback(gm_matcher *m, uint32_t *restrict out);

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
    if (m->ctx.fb_n) {
        /* A fallback pending (a token ended inside the bytes it would lex again): the token tables do
         * not hold those bytes, so each token is lexed on its own. */
        if ((r = (m->at_start && v->strip_leading_space) ? fill_each(m, out) : fill_fallback(m, out))) return r;
    } else if (m->at_start && v->strip_leading_space && m->lex_state != m->g->lex_init) {
        /* The first token after a prefix: its leading space is still dropped (the output is decoded
         * alone), but the start table is for the start of a text. The tokens with a space, one by one. */
        if ((r = fill_groups(m, m->lex_state, out))) return r;
        if ((r = fill_stripped(m, out))) return r;
    } else {
        gm_state_tables tab;
        if (gm_state_tables_of(v, ts, &tab)) return GM_NOMEM;
        if (!m->fill_cache || tab.n_groups < GM_FILL_CACHE_MIN_GROUPS) {
            if ((r = fill_from(m, &tab, out))) return r;
        } else {
            int32_t first[KEY_FIRST];
            const uint64_t hash = fill_key_first(m, ts, first);
            if (!fill_cache_lookup(m, m->fill_cache, hash, first, out)) {
                m->lr_low = m->lr.len;
                m->ind_low = m->ind.len;
                m->ind_len_read = 0;
                if ((r = fill_from(m, &tab, out))) return r;
                if ((r = fill_cache_store(m, m->fill_cache, hash, first, out))) return r;
            }
        }
    }
    /* Apart: whether the text is complete reads the whole stack, and the stop bits are few. */
    if ((r = gm_is_complete(m)) < 0) return r;
    if (r) set_stop_bits(v, out);
    return 0;
}

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
static int fill_dynamic(gm_matcher *m, const gm_state_tables *tab, int32_t gi, uint32_t *restrict out) {
    for (int32_t k = tab->tok_begin[gi]; k < tab->tok_begin[gi + 1]; k++) {
        const int32_t t = tab->toks[k];
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

/* Every token checked as accept_token would (no token tables). */
static int fill_each(gm_matcher *m, uint32_t *restrict out) {
    const gm_vocab *v = m->v;
    memset(out, 0, (size_t)v->n_words * sizeof(uint32_t));
    for (int32_t t = 0; t < v->n_tokens; t++) {
        if (v->tok_begin[t + 1] == v->tok_begin[t] || v->is_stop[t]) continue;
        int r = token_viable(m, t);
        if (r < 0) return r;
        if (r) out[t >> 5] |= 1u << (t & 31);
    }
    return 0;
}

/* A fallback pending. The tokens whose first byte kills the lexeme in progress (not complete before it) are
 * the ones the token tables allow after the fallback (the shorter lexeme fed, the bytes after it lexed
 * again): the matcher is put in that state for one fill from the tables, then put back. The others go on
 * with the lexeme, or end it there: each is lexed on its own. */
static int fill_fallback(gm_matcher *m, uint32_t *restrict out) {
    const gm_grammar *g = m->g;
    const gm_vocab *v = m->v;
    const int32_t q = m->lex_state;
    vstate vs;
    byte_fed fed;
    int32_t after = q;
    vstate_init(m, &vs);
    int r = fall_back(m, &vs, &after, 0, &fed);
    if (r < 0) return r;
    if (r == 1 && vs.ctx.fb_n) return fill_each(m, out); /* the bytes lexed again leave one pending too */
    memset(out, 0, (size_t)v->n_words * sizeof(uint32_t));
    if (r == 1) {
        gm_kept_state kept;
        if (keep_state(m, &kept)) return GM_NOMEM;
        r = make_real(m, &vs);
        if (r == 1) {
            m->lex_state = after;
            m->at_start = 0;
            r = fill_groups(m, after, out);
        }
        put_back_state(m, &kept);
        if (r < 0) return r;
    }
    for (int32_t t = 0; t < v->n_tokens; t++) {
        const int64_t at = v->tok_begin[t];
        if (v->tok_begin[t + 1] == at || v->is_stop[t]) continue;
        const uint8_t first = v->tok_bytes[at];
        if (g->lex_trans[(size_t)q * 256 + first] < 0 && winner_before(g, q, first) < 0) continue; /* above */
        out[t >> 5] &= ~(1u << (t & 31));
        if ((r = token_viable(m, t)) < 0) return r;
        if (r) out[t >> 5] |= 1u << (t & 31);
    }
    return 0;
}

/* The mask from table state ts's token tables. */
static int fill_groups(gm_matcher *m, int32_t ts, uint32_t *restrict out) {
    gm_state_tables tab;
    if (gm_state_tables_of(m->v, ts, &tab)) return GM_NOMEM;
    return fill_from(m, &tab, out);
}

/* The mask from one state's token tables: its unconditional mask and every group the parser takes. */
static int fill_from(gm_matcher *m, const gm_state_tables *tab, uint32_t *restrict out) {
    const int32_t W = m->v->n_words;
    memcpy(out, tab->uncond, (size_t)W * sizeof(uint32_t));
    m->ws = tab->ws;
    /* A state's groups come sorted by terminal sequence (see the compiler). The parse state after each
     * prefix of the last sequence fed is kept, so a sequence is fed only past the prefix it shares with
     * that one, once for all its completable sets; and a refused prefix refuses what follows with it.
     * In sorted order, what a sequence shares with the last one fed is the least group_lcp since. */
    vstate vs;
    vstate_init(m, &vs);
    if (save_snapshot(m, &vs, 0)) return GM_NOMEM;
    int32_t shared = 0;             /* elements shared with the last sequence fed ... */
    int32_t fed_depth = 0;          /* ... its elements taken (snapshots 0..fed_depth) ... */
    int fed_refused = 0;            /* ... and whether element fed_depth was refused (vs is then spoiled;
                                     * else it still holds snapshot fed_depth: pending checks only copy it) */
    int32_t prev = -1;
    int prev_ok = 0;
    const int32_t *restrict toks = tab->toks;
    for (int32_t gi = 0; gi < tab->n_groups; gi++) {
        const int32_t s = tab->seq[gi];
        if (s != prev) {
            prev = s;
            if (tab->lcp[gi] < shared) shared = tab->lcp[gi];
            if (fed_refused && shared > fed_depth) {
                prev_ok = 0;
            } else {
                const int32_t *seq = tab->seq_terms + tab->seq_begin[s];
                const int32_t n = tab->seq_begin[s + 1] - tab->seq_begin[s];
                int32_t d = shared < fed_depth ? shared : fed_depth;
                if (d < fed_depth || fed_refused) restore_snapshot(m, &vs, d);
                for (; d < n; d++) {
                    /* a mode marker (gm_build.c's walk_in_mode): taken where the parser state's mode is it */
                    int r = seq[d] < 0 ? m->g->state_mode[vstack_top(&vs.lr)] == -1 - seq[d]
                                       : post_feed(m, &vs, seq[d]);
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
        if (tab->cset[gi] == GM_DYNAMIC_GROUP) {
            int r = fill_dynamic(m, tab, gi, out);
            if (r < 0) return r;
            restore_snapshot(m, &vs, fed_depth); /* fill_dynamic used the same overlays */
            continue;
        }
        int r = pending_ok_memo(m, &vs, tab->cset[gi]);
        if (r < 0) return r;
        if (!r) continue;
        const int32_t dense = tab->dense[gi];
        if (dense >= 0) {
            const uint32_t *restrict mask = tab->masks + (size_t)dense * W;
            for (int32_t w = 0; w < W; w++) out[w] |= mask[w];
        } else {
            const int32_t end = tab->tok_begin[gi + 1];
            for (int32_t k = tab->tok_begin[gi]; k < end; k++) out[toks[k] >> 5] |= 1u << (toks[k] & 31);
        }
    }
    return 0;
}

