/* A table state's token tables as the fill reads them (gm_state_tables): from gm_vocab's arrays, where every
 * state's tables were built at compile time (or loaded from the disk cache), or built on the state's first
 * fill and kept (lazy tables: a schema's first mask needs one state's tables, not every state's). */
#include "gm_internal.h"

struct gm_lazy_tables {
    state_builder *bd;      /* one builder, used under `lock` */
    int32_t n_ts;
    built_state **states;   /* [n_ts]: NULL until built; stored with release, read with acquire */
    gm_lock lock;
    int32_t n_built;
    int64_t bytes;
};

gm_lazy_tables *gm_lazy_new(const gm_grammar *g, const uint8_t *tok_bytes, const int64_t *tok_begin,
                            const int32_t *order, int32_t n_order, const gm_vocab_index *ix, int32_t n_words,
                            int32_t strip_leading_space) {
    gm_lazy_tables *lz = gm_calloc(1, sizeof(gm_lazy_tables));
    if (!lz) return NULL;
    lz->n_ts = g->n_lex_states + (strip_leading_space ? 1 : 0);
    lz->states = gm_calloc((size_t)lz->n_ts, sizeof(built_state *));
    lz->bd = builder_new(g, tok_bytes, tok_begin, order, n_order, ix, n_words, strip_leading_space);
    if (!lz->states || !lz->bd || LOCK_INIT(&lz->lock)) {
        builder_free(lz->bd);
        GM_FREE_ALL(lz->states, lz);
        return NULL;
    }
    return lz;
}

void gm_lazy_free(gm_lazy_tables *lz) {
    if (!lz) return;
    for (int32_t ts = 0; ts < lz->n_ts; ts++) gm_free(lz->states[ts]);
    builder_free(lz->bd);
    LOCK_DESTROY(&lz->lock);
    GM_FREE_ALL(lz->states, lz);
}

void gm_lazy_stats(gm_lazy_tables *lz, int32_t *n_built, int64_t *bytes) {
    LOCK(&lz->lock);
    *n_built = lz->n_built;
    *bytes = lz->bytes;
    UNLOCK(&lz->lock);
}

int gm_lazy_built(gm_lazy_tables *lz, int32_t ts) { return ATOMIC_ACQUIRE(&lz->states[ts]) != NULL; }

/* State ts's tables, built now if no fill built them before (fills of other unbuilt states wait meanwhile;
 * built ones are read without the lock). */
static int lazy_state(gm_lazy_tables *lz, int32_t ts, const built_state **out) {
    const built_state *bs = ATOMIC_ACQUIRE(&lz->states[ts]);
    int rc = 0;
    if (!bs) {
        LOCK(&lz->lock);
        bs = lz->states[ts];
        if (!bs) {
            built_state *made = NULL;
            if (!(rc = build_state_tables(lz->bd, ts, &made))) {
                ATOMIC_RELEASE(&lz->states[ts], made);
                lz->n_built++;
                lz->bytes += made->bytes;
                bs = made;
            }
        }
        UNLOCK(&lz->lock);
    }
    *out = bs;
    return rc;
}

int gm_state_tables_of(const gm_vocab *v, int32_t ts, gm_state_tables *out) {
    if (v->lazy) {
        const built_state *bs;
        int rc = lazy_state(v->lazy, ts, &bs);
        if (!rc) *out = bs->tab;
        return rc;
    }
    const int32_t g0 = v->group_begin[ts];
    *out = (gm_state_tables){v->masks + (size_t)v->uncond_mask[ts] * v->n_words, v->group_begin[ts + 1] - g0,
                             v->group_seq + g0, v->group_cset + g0, v->group_lcp + g0, v->group_dense + g0,
                             v->group_tok_begin + g0, v->group_toks, v->masks, v->seq_begin, v->seq_terms,
                             {v->wsop_begin, v->wsop_bytes, v->wsop_reset}};
    return 0;
}

void gm_group_lcp(const gm_vocab *v, int32_t n_table_states, int32_t *out) {
    for (int32_t ts = 0; ts < n_table_states; ts++) {
        for (int32_t gi = v->group_begin[ts]; gi < v->group_begin[ts + 1]; gi++) {
            out[gi] = gi == v->group_begin[ts] ? 0
                      : seq_lcp(v->seq_begin, v->seq_terms, v->group_seq[gi - 1], v->group_seq[gi]);
        }
    }
}
