/* The lexer: one step of the DFA, with the lexer modes of Python's f-strings (grammar/fstrings.py). Its
 * tables come from grammar/tables.py; gm_feed.h drives it over text, gm_build.c over the vocabulary. */
#include "gm_internal.h"

int32_t gm_lex_byte(const gm_grammar *g, int32_t q, uint8_t b, int32_t *emit, int *n_emit, int *consumed) {
    *n_emit = 0;
    *consumed = 1;
    int32_t from = q;
    int32_t nq = g->lex_trans[(size_t)q * 256 + b];
    if (nq < 0) {
        /* The byte cannot extend the lexeme: it ends here, if it is a complete terminal. */
        if (is_start(g, q)) return GM_DEAD;
        int32_t w = winner_before(g, q, b);
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

/* The mode numbers are grammar/fstrings.py's: TOP 0, FIELD 1, LIT 2 + kr, SPEC 10 + kr. */
int32_t gm_mode_start(const gm_grammar *g, const gm_ictx *c, int32_t lr_top) {
    if (g->n_modes <= 1) return 0;
    if (g->state_mode) return g->mode_start[g->state_mode[lr_top]];
    if (c->fn == 0) return g->mode_start[0];
    const int32_t f = c->fstr[c->fn - 1], pos = FSTR_POS(f);
    const int32_t mode = pos == FPOS_LIT ? 2 + FSTR_KR(f)
                       : (pos == FPOS_FIELD || pos == FPOS_SFIELD) ? 1 : 10 + FSTR_KR(f);
    return g->mode_start[mode];
}
