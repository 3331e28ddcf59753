/*
 * Hostile-input harness for one generated softmax kernel: a libFuzzer target
 * (LLVMFuzzerTestOneInput) that replay_main.c also drives without libFuzzer.
 *
 * Built with -fsanitize=address,undefined: every buffer handed to the kernel is a heap block of
 * exactly the size the contract allows, so any read or write outside it is an AddressSanitizer
 * report; a second call writes into a buffer framed by canary bytes, so a stray write is caught
 * even where the sanitizer is absent. Every other check aborts with a "harness:" message.
 *
 * Compile-time parameters (-D), all taken from the generated header by the test driver:
 *   KERNEL_HEADER  "k.h"            the generated declarations
 *   K_FUNC         lcg_softmax_s8   the kernel
 *   K_IN_T         int8_t           its input element type (int8_t unless given)
 *   K_OUT_T        int8_t           its output element type
 *   K_MAX_ROW      LCG_MAX_ROW      longest accepted row (the header's macro)
 *   K_OUT_BITS     LCG_OUTPUT_BITS  output precision B (the header's macro)
 *   K_SCRATCH_T    lcg_scratch_t    only for a kernel with a scratch row (--scratch-row on):
 *                                   its entry type; every call gets a fresh heap row
 *
 * Unit format (what the fuzzer mutates; short units read as if padded with zeros):
 *   byte 0      flags: bit 0 input NULL, bit 1 output NULL, bit 2 in place (when input and
 *               output elements have the same size)
 *   bytes 1..4  num_rows, int32 little-endian; a positive value v becomes 1 + (v - 1) % 64
 *   bytes 5..8  row_size, int32 little-endian, passed unchanged
 *   bytes 9..   logits, one byte each (int16 input: two bytes each, little-endian); the input
 *               is exactly num_rows * row_size of them, these bytes repeated (zeros if none)
 *
 * With the environment variable LCG_HARNESS_DUMP set to a file name, every call appends
 * int32 status, num_rows, row_size, flags and, when the status is 0, the input logits and the
 * outputs, so the test driver can compare them with the numpy reference model.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include KERNEL_HEADER

#ifndef K_IN_T
#define K_IN_T int8_t
#endif

#define GUARD 64                /* canary bytes on each side of the guarded output */
#define CANARY 0xA5
#define UNWRITTEN 0x5A          /* fill of output payloads the kernel has not written yet */
#define MAX_ROWS_PER_UNIT 64
#define OUT_MIN (-(1L << (K_OUT_BITS - 1)))
#define OUT_MAX ((1L << (K_OUT_BITS - 1)) - 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, long a, long b)
{
    fprintf(stderr, "harness: %s (%ld, %ld)\n", what, a, b);
    abort();
}

static int32_t read_i32(const uint8_t *data, size_t size, size_t at)
{
    uint32_t v = 0u;
    size_t i;

    for (i = 0; i < 4u; ++i) {
        uint32_t byte = at + i < size ? data[at + i] : 0u;
        v |= byte << (8u * i);
    }
    /* two's complement without implementation-defined conversion */
    return v < 0x80000000u ? (int32_t)v : (int32_t)(v - 0x80000000u) - INT32_MAX - 1;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n == 0u ? 1u : n);

    if (p == NULL) {
        fail("out of memory", (long)n, 0);
    }
    return p;
}

static int32_t expected_status(int input_null, int output_null, int32_t num_rows,
                               int32_t row_size)
{
    if (input_null || output_null) {
        return -1;
    }
    if (num_rows < 0) {
        return -2;
    }
    if (row_size < 1 || row_size > K_MAX_ROW) {
        return -3;
    }
    return 0;
}

/* A function, not an inline test: for 8-bit outputs the comparison is vacuous at the call site. */
static int in_range(long v)
{
    return v >= OUT_MIN && v <= OUT_MAX;
}

static void dump(int32_t status, int32_t num_rows, int32_t row_size, int32_t flags,
                 const K_IN_T *input, const K_OUT_T *output, size_t count)
{
    static FILE *file = NULL;
    static int opened = 0;
    int32_t head[4];

    if (!opened) {
        const char *name = getenv("LCG_HARNESS_DUMP");
        opened = 1;
        if (name != NULL && name[0] != '\0') {
            file = fopen(name, "ab");
            if (file == NULL) {
                fail("cannot open LCG_HARNESS_DUMP", 0, 0);
            }
        }
    }
    if (file == NULL) {
        return;
    }
    head[0] = status;
    head[1] = num_rows;
    head[2] = row_size;
    head[3] = flags;
    if (fwrite(head, sizeof head, 1u, file) != 1u
        || (status == 0 && count > 0u
            && (fwrite(input, sizeof(K_IN_T), count, file) != count
                || fwrite(output, sizeof(K_OUT_T), count, file) != count))
        || fflush(file) != 0) {
        fail("cannot write LCG_HARNESS_DUMP", 0, 0);
    }
}

/*
 * One call of the kernel. A scratch row is a new uninitialized heap block of exactly row_size
 * entries for each call (one when row_size is out of range): the sanitizers see any access past
 * the entries the row uses, and MemorySanitizer any read of an entry the kernel did not write.
 */
static int32_t call_kernel(const K_IN_T *input, int32_t num_rows, int32_t row_size,
                           K_OUT_T *output)
{
#ifdef K_SCRATCH_T
    const size_t n = row_size >= 1 && row_size <= K_MAX_ROW ? (size_t)row_size : 1u;
    K_SCRATCH_T *scratch = (K_SCRATCH_T *)xmalloc(n * sizeof(K_SCRATCH_T));
    int32_t status = K_FUNC(input, num_rows, row_size, output, scratch);

    free(scratch);
    return status;
#else
    return K_FUNC(input, num_rows, row_size, output);
#endif
}

/* A rejected call must return its status and touch neither buffer. */
static void check_rejected(int input_null, int output_null, int32_t num_rows, int32_t row_size,
                           int32_t expected, int32_t flags)
{
    enum { N = 16 };
    unsigned char *input = (unsigned char *)xmalloc(N * sizeof(K_IN_T));
    unsigned char *out = (unsigned char *)xmalloc(N * sizeof(K_OUT_T));
    int32_t status;
    size_t i;

    memset(input, 0x11, N * sizeof(K_IN_T));
    memset(out, UNWRITTEN, N * sizeof(K_OUT_T));
    status = call_kernel(input_null ? NULL : (const K_IN_T *)(void *)input, num_rows, row_size,
                         output_null ? NULL : (K_OUT_T *)(void *)out);
    if (status != expected) {
        fail("wrong status for a rejected call", (long)status, (long)expected);
    }
    for (i = 0; i < N * sizeof(K_IN_T); ++i) {
        if (input[i] != 0x11) {
            fail("rejected call changed the input", (long)i, 0);
        }
    }
    for (i = 0; i < N * sizeof(K_OUT_T); ++i) {
        if (out[i] != UNWRITTEN) {
            fail("rejected call wrote the output", (long)i, 0);
        }
    }
    dump(status, num_rows, row_size, flags, NULL, NULL, 0u);
    free(input);
    free(out);
}

static void check_row_alone(const K_IN_T *row, int32_t row_size, const K_OUT_T *expected)
{
    size_t n = (size_t)row_size;
    K_IN_T *x = (K_IN_T *)xmalloc(n * sizeof(K_IN_T));
    K_OUT_T *y = (K_OUT_T *)xmalloc(n * sizeof(K_OUT_T));
    size_t i;

    /* The row alone gives the same outputs as inside the batch. */
    memcpy(x, row, n * sizeof(K_IN_T));
    if (call_kernel(x, 1, row_size, y) != 0) {
        fail("single row rejected", (long)row_size, 0);
    }
    if (memcmp(y, expected, n * sizeof(K_OUT_T)) != 0) {
        fail("row differs when computed alone", (long)row_size, 0);
    }
    /* Reversing the row reverses the outputs: no element depends on its position. */
    for (i = 0; i < n; ++i) {
        x[i] = row[n - 1u - i];
    }
    if (call_kernel(x, 1, row_size, y) != 0) {
        fail("reversed row rejected", (long)row_size, 0);
    }
    for (i = 0; i < n; ++i) {
        if (y[i] != expected[n - 1u - i]) {
            fail("reversing the row does not reverse the outputs", (long)i, (long)row_size);
        }
    }
    free(x);
    free(y);
}

static void check_accepted(const uint8_t *logits, size_t logits_len, int32_t num_rows,
                           int32_t row_size, int in_place, int32_t flags)
{
    size_t count = (size_t)num_rows * (size_t)row_size;
    size_t out_bytes = count * sizeof(K_OUT_T);
    size_t in_bytes = count * sizeof(K_IN_T);
    K_IN_T *input = (K_IN_T *)xmalloc(in_bytes);
    K_IN_T *copy = (K_IN_T *)xmalloc(in_bytes);
    K_OUT_T *out = (K_OUT_T *)xmalloc(out_bytes);
    unsigned char *guarded = (unsigned char *)xmalloc(out_bytes + 2u * GUARD);
    int32_t status;
    size_t i;
    int32_t r;

    for (i = 0; i < count; ++i) {
        uint32_t value = 0u;
        size_t b;
        for (b = 0; b < sizeof(K_IN_T); ++b) {
            size_t at = i * sizeof(K_IN_T) + b;
            value |= (uint32_t)(logits_len > 0u ? logits[at % logits_len] : 0u) << (8u * b);
        }
        /* two's complement of the element's width, without implementation-defined conversion */
        input[i] = (K_IN_T)(value < (1u << (8u * sizeof(K_IN_T) - 1u))
                                ? (long)value : (long)value - (1L << (8u * sizeof(K_IN_T))));
    }
    memcpy(copy, input, in_bytes);

    /* 1. Exact-size heap buffers: the sanitizer sees any access outside them. */
    status = call_kernel(input, num_rows, row_size, out);
    if (status != 0) {
        fail("valid call rejected", (long)status, (long)row_size);
    }
    if (count > 0u && memcmp(input, copy, in_bytes) != 0) {
        fail("kernel changed its input", 0, 0);
    }
    for (i = 0; i < count; ++i) {
        if (!in_range((long)out[i])) {
            fail("output out of range", (long)out[i], (long)i);
        }
    }

    /* 2. Canaries around the output, and the same result a second time. */
    memset(guarded, CANARY, out_bytes + 2u * GUARD);
    memset(guarded + GUARD, UNWRITTEN, out_bytes);
    status = call_kernel(input, num_rows, row_size, (K_OUT_T *)(void *)(guarded + GUARD));
    if (status != 0) {
        fail("second call rejected", (long)status, 0);
    }
    for (i = 0; i < GUARD; ++i) {
        if (guarded[i] != CANARY || guarded[GUARD + out_bytes + i] != CANARY) {
            fail("write outside output[0 .. num_rows * row_size)", (long)i, 0);
        }
    }
    if (out_bytes > 0u && memcmp(guarded + GUARD, out, out_bytes) != 0) {
        fail("second call gave different outputs", 0, 0);
    }

    /* 3. Rows are independent of each other and of element order. */
    for (r = 0; r < num_rows; ++r) {
        size_t at = (size_t)r * (size_t)row_size;
        check_row_alone(copy + at, row_size, out + at);
    }

    /* 4. In place (documented where input and output elements have the same size). */
    if (in_place && sizeof(K_OUT_T) == sizeof(K_IN_T) && count > 0u) {
        K_IN_T *buf = (K_IN_T *)xmalloc(in_bytes);
        memcpy(buf, copy, in_bytes);
        if (call_kernel(buf, num_rows, row_size, (K_OUT_T *)(void *)buf) != 0) {
            fail("in-place call rejected", 0, 0);
        }
        if (memcmp(buf, out, in_bytes) != 0) {
            fail("in-place result differs", 0, 0);
        }
        free(buf);
    }

    dump(0, num_rows, row_size, flags, copy, out, count);
    free(input);
    free(copy);
    free(out);
    free(guarded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int32_t flags = size > 0u ? (int32_t)data[0] : 0;
    int input_null = (flags & 1) != 0;
    int output_null = (flags & 2) != 0;
    int in_place = (flags & 4) != 0;
    int32_t num_rows = read_i32(data, size, 1u);
    int32_t row_size = read_i32(data, size, 5u);
    int32_t expected;

    if (num_rows > 0) {
        num_rows = 1 + (num_rows - 1) % MAX_ROWS_PER_UNIT;
    }
    expected = expected_status(input_null, output_null, num_rows, row_size);
    if (expected != 0) {
        check_rejected(input_null, output_null, num_rows, row_size, expected, flags);
    } else {
        check_accepted(size > 9u ? data + 9 : NULL, size > 9u ? size - 9u : 0u, num_rows,
                       row_size, in_place, flags);
    }
    return 0;
}
