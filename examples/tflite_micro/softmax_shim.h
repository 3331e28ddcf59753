/*
 * Drop-in for TFLite Micro's int8 softmax: use the generated table kernel when its baked-in
 * SoftmaxParams match the operator's, and tell the caller to fall back otherwise.
 */
#ifndef SOFTMAX_SHIM_H
#define SOFTMAX_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Same arguments as CMSIS-NN arm_softmax_s8(); bit-identical outputs.
 * @return 1 if the generated kernel handled the call (output written), 0 if the parameters or
 *         the row size are not the ones it was generated for (nothing written: fall back).
 */
int32_t tflm_softmax_s8_generated(const int8_t *input, int32_t num_rows, int32_t row_size,
                                  int32_t input_multiplier, int32_t input_left_shift,
                                  int32_t diff_min, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* SOFTMAX_SHIM_H */
