/*
 * Drives softmax_harness.c without libFuzzer, so any compiler's sanitizers can run a corpus.
 * Each argument is a pack file: records of a uint32 little-endian length and that many bytes,
 * each record one harness unit. Prints "replayed N units" on success; any failure aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long replay(const char *name)
{
    FILE *f = fopen(name, "rb");
    long units = 0;
    unsigned char head[4];

    if (f == NULL) {
        perror(name);
        exit(2);
    }
    while (fread(head, 1u, 4u, f) == 4u) {
        size_t len = (size_t)head[0] | (size_t)head[1] << 8 | (size_t)head[2] << 16
                     | (size_t)head[3] << 24;
        uint8_t *unit = (uint8_t *)malloc(len == 0u ? 1u : len);
        if (unit == NULL || fread(unit, 1u, len, f) != len) {
            fprintf(stderr, "%s: truncated record\n", name);
            exit(2);
        }
        LLVMFuzzerTestOneInput(unit, len);
        free(unit);
        ++units;
    }
    fclose(f);
    return units;
}

int main(int argc, char **argv)
{
    long units = 0;
    int i;

    for (i = 1; i < argc; ++i) {
        units += replay(argv[i]);
    }
    printf("replayed %ld units\n", units);
    return 0;
}
