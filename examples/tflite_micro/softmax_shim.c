/*
 * Drop-in for TFLite Micro's int8 softmax (see softmax_shim.h).
 *
 * Generate the kernel for the model's softmax input scale and beta:
 *     lutcodegen --method tflite --input-scale S --beta BETA --max-row N \
 *                --header softmax_tflite.h -o softmax_tflite.c
 * then build this file and softmax_tflite.c with the application.
 */
#include "softmax_shim.h"

#include "softmax_tflite.h"

int32_t tflm_softmax_s8_generated(const int8_t *input, int32_t num_rows, int32_t row_size,
                                  int32_t input_multiplier, int32_t input_left_shift,
                                  int32_t diff_min, int8_t *output)
{
    if (input_multiplier != LCG_INPUT_MULTIPLIER || input_left_shift != LCG_INPUT_LEFT_SHIFT ||
        diff_min != LCG_DIFF_MIN || row_size > LCG_MAX_ROW) {
        return 0;
    }
    return lcg_softmax_s8(input, num_rows, row_size, output) == LCG_STATUS_OK;
}
