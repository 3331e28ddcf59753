/*
 * Compile-time checks of the generated model's interface, built with main.c by `pio test`.
 * The run itself is checked on the host by ../test_custom_runner.py, which compares the logits
 * main.c prints for every image with the host reference model's.
 */
#include "model.h"

/* An array of negative size fails the build: a digit classifier whose scratch fits 16 KiB. */
typedef char dvit_has_ten_classes[(DVIT_CLASSES == 10) ? 1 : -1];
typedef char dvit_scratch_fits_16k[(DVIT_SCRATCH_BYTES < 16384) ? 1 : -1];
