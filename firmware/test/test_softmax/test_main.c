/*
 * On-target exactness tests: every generated kernel must reproduce the host reference model's
 * outputs (golden_vectors.c) bit for bit, and must reject bad arguments with its status codes
 * without writing anything.
 *
 * Output follows Unity's line format ("file:line:name:PASS" / ":FAIL: message" and a final
 * "N Tests N Failures 0 Ignored"), which PlatformIO's test runner parses; on real boards the
 * real Unity is used. A mismatch prints its first positions as "pos i: act X ref Y" and a count.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "golden.h"

/* Largest output written per call; longer cases are run in several calls of whole rows. */
#define BUFFER_BYTES 4096
/* Bytes after the written outputs that must stay untouched. */
#define GUARD_BYTES 16
#define GUARD 0x5a
/* Mismatching positions printed per case. */
#define SHOW_MISMATCHES 8
/* Rows per partial-overlap case. */
#define OVERLAP_ROWS 3

static union {
    int8_t s8[BUFFER_BYTES + GUARD_BYTES];
    int16_t s16[(BUFFER_BYTES + GUARD_BYTES) / 2];
} out;

/* Callers format failure details here; the first failure of a test is copied for its report. */
static char message[160];

#if defined(FIRMWARE_REAL_BOARD)
#include <unity.h>
#define REPORT_FAIL(text) TEST_FAIL_MESSAGE(text)
#define RUN(fn, name) UnityDefaultTestRun(fn, name, __LINE__)
void setUp(void) {}
void tearDown(void) {}
#else
static char failure[sizeof message];
static int current_failed;
static int tests_run;
static int tests_failed;
#define REPORT_FAIL(text) report_fail(text)
#define RUN(fn, name) run_test(fn, name, __LINE__)

static void report_fail(const char *text)
{
    if (!current_failed) {
        current_failed = 1;
        snprintf(failure, sizeof failure, "%s", text);
    }
}

static void run_test(void (*fn)(void), const char *name, int line)
{
    current_failed = 0;
    fn();
    tests_run += 1;
    tests_failed += current_failed;
    if (current_failed) {
        printf("%s:%d:%s:FAIL: %s\n", __FILE__, line, name, failure);
    } else {
        printf("%s:%d:%s:PASS\n", __FILE__, line, name);
    }
}
#endif

static int32_t call_kernel(const struct golden_kernel *k, const void *input, int32_t rows,
                           int32_t row_size, void *output)
{
    if (k->s8 != NULL) {
        return k->s8((const int8_t *)input, rows, row_size, (int8_t *)output);
    }
    if (k->in16 != NULL) {
        return k->in16((const int16_t *)input, rows, row_size, (int16_t *)output);
    }
    return k->s16((const int8_t *)input, rows, row_size, (int16_t *)output);
}

static int32_t output_at(const struct golden_kernel *k, const void *base, int32_t i)
{
    return k->s8 != NULL ? ((const int8_t *)base)[i] : ((const int16_t *)base)[i];
}

static int guard_intact(int32_t offset_bytes)
{
    int32_t i;
    for (i = 0; i < GUARD_BYTES; ++i) {
        if ((uint8_t)out.s8[offset_bytes + i] != GUARD) {
            return 0;
        }
    }
    return 1;
}

/* Runs one case in chunks of whole rows; returns the number of mismatching outputs. */
static int32_t check_case(const struct golden_case *c, int in_place)
{
    const struct golden_kernel *k = &golden_kernels[c->kernel];
    const int32_t size = k->s8 != NULL ? 1 : 2;
    const int32_t in_size = k->in16 != NULL ? 2 : 1;
    const int32_t chunk = BUFFER_BYTES / (c->row_size * size) > 0 ? BUFFER_BYTES / (c->row_size * size) : 1;
    int32_t mismatches = 0;
    int32_t first;

    for (first = 0; first < c->rows; first += chunk) {
        const int32_t rows = c->rows - first < chunk ? c->rows - first : chunk;
        const int32_t count = rows * c->row_size;
        const void *input = k->in16 != NULL ? (const void *)(c->input16 + first * c->row_size)
                                            : (const void *)(c->input + first * c->row_size);
        int32_t status;
        int32_t i;

        memset(out.s8, GUARD, sizeof out.s8);
        if (in_place) {
            memcpy(out.s8, input, (size_t)(count * in_size));
            input = out.s8;
        }
        status = call_kernel(k, input, rows, c->row_size, out.s8);
        if (status != 0) {
            snprintf(message, sizeof message, "status %ld", (long)status);
            REPORT_FAIL(message);
            return count;
        }
        if (!guard_intact(count * size)) {
            REPORT_FAIL("wrote past the end of the output");
        }
        for (i = 0; i < count; ++i) {
            const int32_t pos = first * c->row_size + i;
            const int32_t act = output_at(k, out.s8, i);
            const int32_t ref = output_at(k, c->expected, pos);
            if (act != ref) {
                if (mismatches < SHOW_MISMATCHES) {
                    printf("pos %ld: act %ld ref %ld\n", (long)pos, (long)act, (long)ref);
                }
                mismatches += 1;
            }
        }
    }
    if (mismatches != 0) {
        printf("%ld mismatches of %ld (row length %ld, %s, %s)\n", (long)mismatches,
               (long)(c->rows * c->row_size), (long)c->row_size, k->name,
               in_place ? "in place" : "separate output");
        snprintf(message, sizeof message, "%ld mismatches of %ld", (long)mismatches,
                 (long)(c->rows * c->row_size));
        REPORT_FAIL(message);
    }
    return mismatches;
}

static int32_t current_case;

static void test_golden_case(void)
{
    const struct golden_case *c = &golden_cases[current_case];
    if (check_case(c, 0) == 0
        && (golden_kernels[c->kernel].s8 != NULL || golden_kernels[c->kernel].in16 != NULL)) {
        check_case(c, 1); /* int8 and int16-input kernels promise in-place operation */
    }
}

static int32_t current_kernel;

static void expect_rejected(const char *what, int32_t status, int32_t expected)
{
    if (status != expected) {
        snprintf(message, sizeof message, "%s: status %ld, expected %ld", what, (long)status,
                 (long)expected);
        REPORT_FAIL(message);
    } else if (!guard_intact(0)) {
        snprintf(message, sizeof message, "%s: wrote output although rejected", what);
        REPORT_FAIL(message);
    }
}

static void test_status_codes(void)
{
    const struct golden_kernel *k = &golden_kernels[current_kernel];
    static const int16_t input[4] = {1, 2, 3, 4}; /* read as int8 or int16 logits */

    memset(out.s8, GUARD, sizeof out.s8);
    expect_rejected("NULL input", call_kernel(k, NULL, 1, 4, out.s8), k->status_null_pointer);
    expect_rejected("NULL output", call_kernel(k, input, 1, 4, NULL), k->status_null_pointer);
    expect_rejected("num_rows -1", call_kernel(k, input, -1, 4, out.s8), k->status_bad_num_rows);
    expect_rejected("row_size 0", call_kernel(k, input, 1, 0, out.s8), k->status_bad_row_size);
    expect_rejected("row_size -1", call_kernel(k, input, 1, -1, out.s8), k->status_bad_row_size);
    expect_rejected("row_size max_row+1", call_kernel(k, input, 1, k->max_row + 1, out.s8),
                    k->status_bad_row_size);
    expect_rejected("num_rows 0", call_kernel(k, input, 0, 4, out.s8), 0);
    if (k->status_null_pointer >= 0 || k->status_bad_num_rows >= 0 || k->status_bad_row_size >= 0) {
        REPORT_FAIL("error statuses must be negative");
    }
    if (k->scratch_rejections != NULL) {
        const int32_t failed = k->scratch_rejections();
        if (failed != 0) {
            snprintf(message, sizeof message, "scratch row check %ld failed", (long)failed);
            REPORT_FAIL(message);
        }
    }
}

/*
 * Partial overlap, output = input + k elements, is not supported, but it must stay in bounds:
 * status 0, nothing written past the output, and no fault. The outputs are unspecified. Rows
 * whose maximum is low make the overwritten elements exceed it, which takes the masked loops
 * (SIMD32 and Helium included, which no host sanitizer can run). Rows of 64 elements, and rows
 * as long as the buffer holds: longer than the 32-bit-product rows of a long-row kernel.
 */
static void overlap_case(const struct golden_kernel *k, int32_t n, int32_t shift)
{
    const int32_t size = k->s8 != NULL ? 1 : 2;
    const int32_t at = shift * size;
    const int32_t rows = OVERLAP_ROWS;
    int32_t i;
    int32_t status;

    memset(out.s8, GUARD, sizeof out.s8);
    for (i = 0; i < rows * n; ++i) {
        /* Row 0 low (max -127), row 1 varied, row 2 low again. */
        out.s8[i] = (int8_t)(i / n == 1 ? (i * 37) % 256 - 128 : (i % n == 0 ? -127 : -128));
    }
    status = call_kernel(k, out.s8, rows, n, out.s8 + at);
    if (status != 0) {
        snprintf(message, sizeof message, "output = input + %ld, rows of %ld: status %ld",
                 (long)shift, (long)n, (long)status);
        REPORT_FAIL(message);
    } else if (!guard_intact(at + rows * n * size)) {
        snprintf(message, sizeof message,
                 "output = input + %ld, rows of %ld: wrote past the output", (long)shift,
                 (long)n);
        REPORT_FAIL(message);
    }
}

static void test_partial_overlap(void)
{
    static const int32_t shifts[] = {1, 3, 8};
    const struct golden_kernel *k = &golden_kernels[current_kernel];
    const int32_t size = k->s8 != NULL ? 1 : 2;
    /* the longest rows whose input and output, at the largest shift, fit the buffer */
    const int32_t lengths[] = {64, (BUFFER_BYTES - shifts[2] * size) / (OVERLAP_ROWS * size)};
    size_t s;
    size_t l;

    for (l = 0; l < sizeof lengths / sizeof lengths[0]; ++l) {
        const int32_t n = k->max_row < lengths[l] ? k->max_row : lengths[l];
        for (s = 0; s < sizeof shifts / sizeof shifts[0]; ++s) {
            overlap_case(k, n, shifts[s]);
        }
    }
}

int main(void)
{
    char name[48];

#if defined(FIRMWARE_REAL_BOARD)
    UNITY_BEGIN();
#endif
    for (current_kernel = 0; current_kernel < golden_kernel_count; ++current_kernel) {
        printf("kernel %ld: %s\n", (long)current_kernel, golden_kernels[current_kernel].name);
        snprintf(name, sizeof name, "status_codes_kernel%ld", (long)current_kernel);
        RUN(test_status_codes, name);
        snprintf(name, sizeof name, "partial_overlap_kernel%ld", (long)current_kernel);
        RUN(test_partial_overlap, name);
    }
    for (current_case = 0; current_case < golden_case_count; ++current_case) {
        const struct golden_case *c = &golden_cases[current_case];
        snprintf(name, sizeof name, "golden_kernel%ld_length%ld", (long)c->kernel,
                 (long)c->row_size);
        RUN(test_golden_case, name);
    }
#if defined(FIRMWARE_REAL_BOARD)
    return UNITY_END();
#else
    printf("%d Tests %d Failures 0 Ignored\n", tests_run, tests_failed);
    printf("%s\n", tests_failed == 0 ? "OK" : "FAIL");
    return tests_failed != 0;
#endif
}
