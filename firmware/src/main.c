/*
 * Benchmark firmware: runs the generated softmax once per row length, between bench markers.
 *
 * For each length L of BENCH_LENGTHS it softmaxes BENCH_ELEMENTS / L rows (at least one) of
 * uniform random int8 (or, for an int16-input kernel, int16) logits in one call, and prints one
 * line per call:
 *
 *   bench: length 64 rows 16 status 0 stack 48 checksum 1234
 *
 * Instruction counts come from outside (QEMU plugin, `lutcodegen bench`); the firmware itself
 * reports the stack the call used, measured by filling the unused stack with a pattern before
 * the call and finding the deepest word that changed. The first marked region is empty and
 * measures the cost of the markers, which the bench subtracts.
 */
#include <stdint.h>
#include <stdio.h>

#include "bench_config.h"
#include "bench_markers.h"
#include "lutcodegen_config.h"

#ifndef PIO_UNIT_TESTING

/* Elements per measured call: enough rows that per-row costs average out. */
#define BENCH_ELEMENTS 1024

/* Bytes below the caller's stack pointer filled with STACK_PATTERN before each call. */
#define STACK_PROBE_BYTES 1024u
#define STACK_PATTERN 0x5aa5c33cu

static const int32_t bench_lengths[] = {BENCH_LENGTHS};

static lutcodegen_input_t input[BENCH_ELEMENTS > LUTCODEGEN_MAX_ROW ? BENCH_ELEMENTS
                                                                   : LUTCODEGEN_MAX_ROW];
static lutcodegen_output_t output[sizeof input / sizeof input[0]];

#if defined(LUTCODEGEN_SCRATCH_ENTRIES)
/* The kernel was generated with a scratch row (--scratch-row on): it gets this one. */
static lutcodegen_scratch_t scratch[LUTCODEGEN_SCRATCH_ENTRIES];
#define CALL_SOFTMAX(in, rows, n, out) LUTCODEGEN_SOFTMAX(in, rows, n, out, scratch)
#else
#define CALL_SOFTMAX(in, rows, n, out) LUTCODEGEN_SOFTMAX(in, rows, n, out)
#endif

/*
 * xorshift32: the same logits on every target and every run. It restarts from the seed for each
 * length, so a length's count does not depend on which other lengths the run measures.
 */
#define RANDOM_SEED 2463534242u
static uint32_t random_state = RANDOM_SEED;

static lutcodegen_input_t random_logit(void)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 17;
    random_state ^= random_state << 5;
#if LUTCODEGEN_INPUT_BITS == 16
    return (lutcodegen_input_t)((int32_t)(random_state >> 16) - 32768);
#else
    return (int8_t)(int32_t)(random_state >> 24);
#endif
}

static inline uintptr_t stack_pointer(void)
{
    uintptr_t sp;
#if defined(__arm__)
    __asm__ volatile("mov %0, sp" : "=r"(sp));
#elif defined(__riscv)
    __asm__ volatile("mv %0, sp" : "=r"(sp));
#else
#error "stack_pointer() needs an Arm or RISC-V target"
#endif
    return sp;
}

#if defined(FIRMWARE_REAL_BOARD) && \
    (defined(__riscv) || defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || \
     defined(__ARM_ARCH_8M_MAIN__))
/* Real hardware with a cycle counter (ARMv6-M has none): DWT CYCCNT or mcycle. */
#define HAVE_CYCLE_COUNTER 1

static uint32_t cycles(void)
{
#if defined(__riscv)
    uint32_t c;
    __asm__ volatile("csrr %0, mcycle" : "=r"(c));
    return c;
#else
    volatile uint32_t *const demcr = (volatile uint32_t *)0xE000EDFCu;
    volatile uint32_t *const dwt_ctrl = (volatile uint32_t *)0xE0001000u;
    volatile uint32_t *const dwt_cyccnt = (volatile uint32_t *)0xE0001004u;
    *demcr |= 1u << 24;   /* TRCENA */
    *dwt_ctrl |= 1u;      /* CYCCNTENA */
    return *dwt_cyccnt;
#endif
}
#endif

int main(void)
{
    size_t k;
    int32_t failures = 0;

    printf("bench: %s\n", LUTCODEGEN_COMMAND);
    bench_start();
    bench_stop();
    printf("bench: markers\n");

    for (k = 0; k < sizeof bench_lengths / sizeof bench_lengths[0]; ++k) {
        const int32_t length = bench_lengths[k];
        const int32_t rows = length < BENCH_ELEMENTS ? BENCH_ELEMENTS / length : 1;
        const int32_t count = rows * length;
        volatile uint32_t *probe;
        uintptr_t sp;
        uint32_t used = 0u;
        uint32_t checksum = 0u;
        int32_t status;
        int32_t i;
#if defined(HAVE_CYCLE_COUNTER)
        uint32_t t0;
#endif

        random_state = RANDOM_SEED;
        for (i = 0; i < count; ++i) {
            input[i] = random_logit();
        }
        /* Paint the free stack below this frame; nothing here calls a function meanwhile. */
        sp = stack_pointer();
        probe = (volatile uint32_t *)(sp - STACK_PROBE_BYTES);
        for (i = 0; i < (int32_t)(STACK_PROBE_BYTES / 4u); ++i) {
            probe[i] = STACK_PATTERN;
        }
#if defined(HAVE_CYCLE_COUNTER)
        t0 = cycles();
#endif
        bench_start();
        status = CALL_SOFTMAX(input, rows, length, output);
        bench_stop();
#if defined(HAVE_CYCLE_COUNTER)
        t0 = cycles() - t0;
#endif
        for (i = 0; i < (int32_t)(STACK_PROBE_BYTES / 4u); ++i) {
            if (probe[i] != STACK_PATTERN) {
                used = STACK_PROBE_BYTES - 4u * (uint32_t)i;
                break;
            }
        }
        for (i = 0; i < count; ++i) {
            checksum = checksum * 31u + (uint32_t)(int32_t)output[i];
        }
        printf("bench: length %ld rows %ld status %ld stack %lu checksum %lu\n", (long)length,
               (long)rows, (long)status, (unsigned long)used, (unsigned long)checksum);
#if defined(HAVE_CYCLE_COUNTER)
        printf("bench: cycles %lu (%lu per element)\n", (unsigned long)t0,
               (unsigned long)(t0 / (uint32_t)count));
#endif
        failures += status != 0;
    }
    printf("bench: done\n");
    return failures != 0;
}

#endif /* PIO_UNIT_TESTING */
