/* grammask native core: products of code-point automata (fsm/fsm_product.py drives it), for the relations
 * between a JSON Schema's string and number terminals: intersection, emptiness of an intersection, inclusion,
 * cover. Every array out is allocated here and freed by gm_product_free; every input is checked, so no input
 * makes this read or write out of range. */
#ifndef GM_PRODUCT_H
#define GM_PRODUCT_H

#include <stdint.h>

#define GM_MAX_CODEPOINT 0x10FFFF

/* A DFA over code points: state q's moves are lo[i]..hi[i] -> dst[i] for i in edge_begin[q]..edge_begin[q+1],
 * sorted and disjoint; state 0 is the initial one. */
typedef struct {
    int32_t n_states;
    const int32_t *edge_begin;   /* [n_states + 1], from 0, never decreasing */
    const int32_t *lo, *hi, *dst;
    const uint8_t *accept;       /* [n_states] */
} gm_char_dfa;

/* Which product states are final, and which automata must be alive in every product state kept. */
#define GM_PROD_ALL 0         /* every automaton accepts; all alive (intersection, disjointness) */
#define GM_PROD_FIRST_ONLY 1  /* the first accepts and none of the others does; the first alive (inclusion,
                               * cover: a string of the first that no other has) */

#define GM_PROD_TOO_MANY 1       /* more product states than max_states */
#define GM_PROD_TIMEOUT 2        /* past the time allowed */
#define GM_PROD_BAD_INPUT (-102) /* an automaton's arrays out of range, unsorted or overlapping */

typedef struct {
    int32_t n_states;      /* product states found (with stop_at_final: up to the first final one) */
    int found;             /* whether a final state is reachable (with stop_at_final: reached) */
    int32_t *edge_begin;   /* [n_states + 1]: the product automaton, numbered breadth first by code point */
    int32_t *lo, *hi, *dst;
    uint8_t *accept;       /* [n_states] */
} gm_product;

/* The product of k automata: the reachable states breadth first (by code point within a state), a move kept
 * only where the automata `rule` needs alive are (in a place: -1 where that automaton is dead). With
 * stop_at_final, stops at the first final state (out->found), and the automaton out is not filled in.
 * time_left < 0: no time limit (else seconds). GM_OK, GM_PROD_TOO_MANY, GM_PROD_TIMEOUT, GM_NOMEM or
 * GM_PROD_BAD_INPUT; nothing held on failure. */
int gm_char_product(int32_t k, const gm_char_dfa *dfas, int rule, int stop_at_final, int64_t max_states,
                    double time_left, gm_product *out);

void gm_product_free(gm_product *out);

#endif
