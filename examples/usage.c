/*
 * Minimal use of a generated softmax: build with
 *   lutcodegen --bits 8 -o softmax_lut.c && cc -std=c99 usage.c softmax_lut.c -o usage
 * Logits use the default input scale 1/16, so 16 means 1.0.
 */
#include <stdint.h>
#include <stdio.h>

int32_t lcg_softmax_s8(const int8_t *input, int32_t num_rows, int32_t row_size, int8_t *output);

int main(void)
{
    const int8_t logits[2][4] = {{32, 16, 0, -16}, {0, 0, 0, 0}};
    int8_t probs[2][4];
    int i;

    if (lcg_softmax_s8(&logits[0][0], 2, 4, &probs[0][0]) != 0) {
        return 1;
    }
    for (i = 0; i < 8; ++i) { /* probability = (q + 128) / 256 */
        printf("%d %.4f\n", probs[i / 4][i % 4], (probs[i / 4][i % 4] + 128) / 256.0);
    }
    return 0;
}
