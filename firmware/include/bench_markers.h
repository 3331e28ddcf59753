/*
 * Markers around measured code. On the emulated boards the QEMU plugin tools/qemu-plugin/insncount
 * counts the instructions executed from the entry of bench_start() to the entry of bench_stop();
 * the functions themselves do nothing. They are kept out of line (noipa) so that their addresses
 * exist and the compiler cannot merge or move them.
 */
#ifndef BENCH_MARKERS_H
#define BENCH_MARKERS_H

void bench_start(void);
void bench_stop(void);

#endif /* BENCH_MARKERS_H */
