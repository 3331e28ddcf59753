/*
 * Markers around measured code, as in the firmware: the insncount QEMU plugin counts the
 * instructions executed from the entry of bench_start() to the entry of bench_stop(). The
 * functions do nothing; noipa keeps them out of line, so their addresses exist and calls to them
 * are neither merged nor moved.
 */
void bench_start(void);
void bench_stop(void);

__attribute__((noipa)) void bench_start(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noipa)) void bench_stop(void)
{
    __asm__ volatile("" ::: "memory");
}
