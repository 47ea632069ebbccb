/* Mask application on the CPU (see gm_apply_bitmask in gm_core.h). */
#include "gm_internal.h"

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
