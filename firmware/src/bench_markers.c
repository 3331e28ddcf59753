#include "bench_markers.h"

__attribute__((noipa)) void bench_start(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noipa)) void bench_stop(void)
{
    __asm__ volatile("" ::: "memory");
}
