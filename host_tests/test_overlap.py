"""Partial overlap of input and output: unspecified values, but never an access outside the
buffer or the tables, under AddressSanitizer and UndefinedBehaviorSanitizer.

The API supports only ``output == input`` (int8 output, or int16 input and output). With
``output = input + k`` an output store changes an input element that the output pass reads
later, and that element can exceed the row maximum the kernel computed; before the fix such a
row indexed a full table about 4e9 entries away. The driver below calls the kernel on one
exactly sized heap buffer with the output shifted by each offset, so ASan reports any read or
write outside it or outside the tables.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cbuild import require_tool
from sanitize import COMMON, RUN_ENV

from lutcodegen import Spec, design_for, render

#: Offsets of the output from the input, in output elements (negative: the output starts first).
OFFSETS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 255, -1, -2, -3, -8, -9)

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "k.h"

static const long offsets[] = {{OFFSETS}};

/* xorshift32: deterministic bytes, every value of int8 reachable. */
static unsigned long state = 2463534242ul;
static unsigned char next_byte(void)
{
    state ^= (state << 13) & 0xfffffffful;
    state ^= state >> 17;
    state ^= (state << 5) & 0xfffffffful;
    return (unsigned char)(state >> 11);
}

int main(void)
{
    const int32_t lengths[] = {1, 2, 3, 4, 7, 8, 9, 16, 17, 31, 64, 100, MAX_ROW};
    const size_t out_size = sizeof(OUT_T);
    size_t o, l, rows, trial;

    for (o = 0; o < sizeof offsets / sizeof offsets[0]; ++o) {
        for (l = 0; l < sizeof lengths / sizeof lengths[0]; ++l) {
            for (rows = 1; rows <= 3; ++rows) {
                for (trial = 0; trial < 40; ++trial) {
                    const int32_t n = lengths[l] < MAX_ROW ? lengths[l] : MAX_ROW;
                    const size_t in_bytes = rows * (size_t)n * sizeof(IN_T);
                    const size_t out_bytes = rows * (size_t)n * out_size;
                    const long k = offsets[o] * (long)out_size;
                    const size_t in_at = k < 0 ? (size_t)-k : 0u;
                    const size_t out_at = k < 0 ? 0u : (size_t)k;
                    const size_t size = in_at + in_bytes > out_at + out_bytes
                                            ? in_at + in_bytes : out_at + out_bytes;
                    unsigned char *buffer = malloc(size);
                    size_t i;
                    int32_t status;

                    if (buffer == NULL) {
                        return 3;
                    }
                    for (i = 0; i < size; ++i) {
                        /* Every other trial: rows of equal or low values, the other paths. */
                        buffer[i] = trial % 4 == 1 ? (unsigned char)0x80u
                                  : trial % 4 == 2 ? (unsigned char)(next_byte() | 0x80u)
                                  : next_byte();
                    }
                    status = FUNC((const IN_T *)(void *)(buffer + in_at), (int32_t)rows, n,
                                  (OUT_T *)(void *)(buffer + out_at));
                    if (status != 0) {
                        fprintf(stderr, "offset %ld length %ld rows %lu: status %ld\n",
                                offsets[o], (long)n, (unsigned long)rows, (long)status);
                        return 2;
                    }
                    free(buffer);
                }
            }
        }
    }
    puts("ok");
    return 0;
}
"""

SPECS = {
    "lut-full": Spec(),
    "lut-compact": Spec(table_layout="compact", input_scale=0.25),
    "lut-size": Spec(optimize="size"),
    "lut-unroll1": Spec(unroll=1, max_row=1024),
    "lut-16bit": Spec(bits=16),
    "lut-16bit-compact": Spec(bits=16, table_layout="compact"),
    "tflite-full": Spec(method="tflite"),
    "tflite-compact": Spec(method="tflite", table_layout="compact"),
    "tflite-16bit": Spec(method="tflite", bits=16),
    "rexp": Spec(method="rexp"),
    "lut2d": Spec(method="lut2d"),
    "lut-s16": Spec(input_bits=16, bits=16, input_scale=0.0003),
    "lut-s16-compact": Spec(input_bits=16, bits=16, input_scale=1 / 16, table_layout="compact"),
    "tflite-s16": Spec(method="tflite", input_bits=16, bits=16, input_scale=0.0003),
}


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
def test_partial_overlap_stays_in_bounds(spec: Spec, tmp_path: Path) -> None:
    """Every offset, row length and row count: status 0 and no sanitizer report."""
    cc = require_tool("gcc")
    generated = render(design_for(spec), header_name="k.h")
    (tmp_path / "k.c").write_text(generated.source)
    (tmp_path / "k.h").write_text(generated.header or "")
    offsets = ", ".join(str(o) for o in OFFSETS)
    (tmp_path / "driver.c").write_text(DRIVER.replace("{{OFFSETS}}", "{" + offsets + "}"))
    prefix = spec.prefix.upper()
    defines = [
        f"-DFUNC={spec.function_name}",
        f"-DIN_T={spec.input_ctype}",
        f"-DOUT_T={spec.output_ctype}",
        f"-DMAX_ROW={prefix}_MAX_ROW",
    ]
    for opt in ("-O1", "-O2"):
        binary = tmp_path / f"driver{opt}"
        flags = [f for f in COMMON if f != "-O1"]
        build = subprocess.run(
            [cc, "-fsanitize=address,undefined", *flags, opt, *defines, "-I."]
            + ["k.c", "driver.c", "-o", str(binary)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert build.returncode == 0, build.stderr
        run = subprocess.run(
            [str(binary)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**RUN_ENV, "PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert run.returncode == 0 and run.stdout == "ok\n", run.stderr[-3000:]
