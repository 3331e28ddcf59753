/*
 * Runs the generated digits model on every image of images.h and prints, per image, the
 * returned class and the int8 logits (and on RISC-V the retired-instruction count), through
 * semihosting. The host compares each line with the integer reference.
 *
 * Built by the PlatformIO project in this folder (platformio.ini) with picolibc's semihosting
 * crt0; model.c/model.h and images.h come from the model folder that scripts/model_build.py
 * is given, or that it generates.
 */
#include <stdint.h>
#include <stdio.h>

#include "images.h"
#include "model.h"

/* The model's only working memory besides the stack. */
static int8_t scratch[DVIT_SCRATCH_BYTES];

/*
 * Markers around each inference: an instruction trace of the run is counted from the entry
 * of bench_start() to the entry of bench_stop(). Kept out of line so that their addresses exist.
 */
__attribute__((noipa)) void bench_start(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noipa)) void bench_stop(void)
{
    __asm__ volatile("" ::: "memory");
}

#if defined(__riscv)
/* Retired instructions; exact under QEMU with -icount shift=0. */
static uint32_t retired(void)
{
    uint32_t value;
    __asm__ volatile("csrr %0, minstret" : "=r"(value));
    return value;
}
#else
static uint32_t retired(void)
{
    return 0u; /* counted from the trace instead */
}
#endif

int main(void)
{
    int32_t i, k;

    for (i = 0; i < IMAGE_COUNT; ++i) {
        int8_t logits[DVIT_CLASSES];
        uint32_t before, after;
        int32_t cls;

        before = retired();
        bench_start();
        cls = dvit_model_run(images[i], logits, scratch);
        bench_stop();
        after = retired();
        printf("image %ld class %ld insns %lu logits", (long)i, (long)cls,
               (unsigned long)(after - before));
        for (k = 0; k < DVIT_CLASSES; ++k) {
            printf(" %d", logits[k]);
        }
        printf("\n");
    }
    printf("done %ld\n", (long)IMAGE_COUNT);
    return 0;
}
