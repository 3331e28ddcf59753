"""The ``lut`` kernel's optional C paths give the same bits as the default one.

The generated file chooses, by compiler feature macros, between a count-leading-zeros builtin and
a binary search, between divide instructions, a Newton reciprocal and restoring
shift-and-subtract, and between the high-multiply output form and plain 32- or 64-bit products.
The host compiler takes one combination by default; these tests force every combination and
compare with the reference, and check the reciprocals against a 64-bit division for every
denominator they can receive: the seeded one of the default design (den = sum << k has 8 low zero
bits there: all 2^23), Newton's method of designs with wider sums or more precision, the one from
32-bit products that Cortex-M0+ takes where there is no seed table (all 2^31), and the one from
divide instructions that Cortex-M3 and up take (every denominator of its designs).
The Arm DSP and Helium paths run on the emulated boards (host_tests/test_firmware.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from cbuild import require_tool
from exactness import check_random_rows, check_short_rows

from lutcodegen import Spec, design_for, render
from lutcodegen.methods.lut import (
    has_mul32_reciprocal,
    newton_steps,
    recip_divide,
    recip_seed,
)

PATHS = [
    ("LCG_USE_CLZ=0", "LCG_RECIP_NEWTON=0", "LCG_USE_MULHI=0"),
    ("LCG_USE_CLZ=0", "LCG_RECIP_NEWTON=1", "LCG_USE_MULHI=1"),
    ("LCG_USE_CLZ=1", "LCG_RECIP_NEWTON=0", "LCG_USE_MULHI=1"),
    ("LCG_USE_CLZ=1", "LCG_RECIP_NEWTON=1", "LCG_USE_MULHI=0"),
    # Cortex-M0+'s combination: the reciprocal from 32 x 32 -> 32-bit products
    ("LCG_USE_CLZ=0", "LCG_RECIP_NEWTON=0", "LCG_RECIP_MUL32=1", "LCG_USE_MULHI=0"),
    # Cortex-M3 and up: the reciprocal from the divide instruction, where the design has it
    ("LCG_USE_CLZ=1", "LCG_RECIP_DIV=1", "LCG_USE_MULHI=1"),
    ("LCG_USE_CLZ=0", "LCG_RECIP_DIV=1", "LCG_USE_MULHI=0"),
]

#: Two widths (max_row 4096: 32-bit products up to 512 elements), the size variant, 16-bit
#: output with the high-multiply form (bits 12), compact tables.
SPECS = [
    Spec(),
    Spec(bits=16),
    Spec(bits=4, input_scale=0.25),
    Spec(bits=8, max_row=1024),
    Spec(unroll=1, table_layout="compact"),
    Spec(max_row=4096),
    Spec(optimize="size"),
    Spec(max_row=4096, optimize="size"),
    Spec(bits=12, input_scale=1 / 64),
]


def _spec_id(spec: Spec) -> str:
    return f"b{spec.bits}-n{spec.max_row}-u{spec.unroll}-{spec.optimize}-{spec.table_layout}"


@pytest.mark.parametrize("spec", SPECS, ids=_spec_id)
@pytest.mark.parametrize("defines", PATHS, ids=lambda d: "-".join(d))
def test_every_path_equals_the_reference(
    spec: Spec, defines: tuple[str, ...], build_kernel
) -> None:
    dsg = design_for(spec)
    assert dsg.sum_bits == 32  # the paths exist only for 32-bit sums
    kernel = build_kernel(dsg, defines)
    check_short_rows(kernel, dsg, 24)
    lengths = {1, 5, 64, spec.max_row}
    if 0 < dsg.narrow_rows < spec.max_row:
        lengths |= {dsg.narrow_rows, dsg.narrow_rows + 1}  # both sides of the width switch
    check_random_rows(kernel, dsg, np.random.default_rng(spec.bits), lengths, 50)


#: Calls the file's static reciprocal for den = 2^31, 2^31 + step, ... and the top 256
#: denominators that are multiples of ALIGN (2^z for the seeded reciprocal, whose den always has
#: z low zero bits), against round(2^(32 + P) / den) from a 64-bit division; prints how many
#: differ.
HARNESS = r"""
#include "softmax.c"
#include <stdio.h>

static int check(uint64_t den)
{
    const uint64_t want = ((((uint64_t)1u << (33 + LCG_RECIP_BITS)) / den) + 1u) >> 1;
    return (uint64_t)lcg_reciprocal((uint32_t)den) != want;
}

int main(void)
{
    uint64_t den, bad = 0u, count = 0u;
    for (den = 0x80000000u; den <= 0xffffffffu; den += STEP) {
        bad += (uint64_t)check(den);
        ++count;
    }
    for (den = 0x100000000u - 256u * ALIGN; den <= 0xffffffffu; den += ALIGN) {
        bad += (uint64_t)check(den);
        ++count;
    }
    printf("%llu %llu\n", (unsigned long long)count, (unsigned long long)bad);
    return 0;
}
"""


@pytest.mark.parametrize(
    ("spec", "step", "form"),
    [
        (Spec(), 1, "seeded"),  # P = 14, z = 8: every denominator
        (Spec(bits=2), 1, "seeded"),  # P = 9
        (Spec(bits=6), 1, "seeded"),  # P = 13
        (Spec(max_row=64), 1, "seeded"),  # z = 10: 15-bit seeds
        (Spec(max_row=16), 1, "seeded"),  # z = 12
        (Spec(bits=16), 7, "newton"),  # P = 24, three Newton steps
        (Spec(max_row=1024), 997, "newton"),  # P = 9, two steps
        (Spec(bits=12, input_scale=1 / 64), 997, "newton"),
        (Spec(max_row=1024), 1, "mul32"),  # P = 9: every denominator, a few seconds
        (Spec(max_row=512), 13, "mul32"),  # P = 10
        (Spec(), 1, "divide"),  # E = 39: two divisions, every denominator
        (Spec(optimize="size"), 1, "divide"),
        (Spec(bits=2), 1, "divide"),  # E = 34
        (Spec(max_row=16), 1, "divide"),  # z = 12, E = 35
        (Spec(bits=2, max_row=16), 1, "divide"),  # E = 30: one division
    ],
    ids=[
        "b8-all",
        "b2-all",
        "b6-all",
        "n64-all",
        "n16-all",
        "b16",
        "n1024",
        "b12",
        "mul32-n1024-all",
        "mul32-n512",
        "div-b8-all",
        "div-size-all",
        "div-b2-all",
        "div-n16-all",
        "div-b2-n16-all",
    ],
)
def test_reciprocal_is_exact(spec: Spec, step: int, form: str, tmp_path: Path) -> None:
    gcc = require_tool("gcc")
    dsg = design_for(spec)
    seed = recip_seed(dsg)
    divide = recip_divide(dsg)
    if form == "divide":
        # den = sum << k has z low zero bits here too: every multiple of 2^z
        assert divide is not None, "this spec has no divide-instruction reciprocal"
        align = 1 << divide.zero_bits
        defines = ["-DLCG_RECIP_DIV=1"]
    else:
        assert (seed is not None) == (form == "seeded"), "the spec does not take this reciprocal"
        align = 1 << seed.zero_bits if seed is not None else 1
        if form == "mul32":
            assert has_mul32_reciprocal(dsg), "this spec has no 32-bit-product reciprocal"
            defines = ["-DLCG_RECIP_NEWTON=0", "-DLCG_RECIP_MUL32=1"]
        else:
            defines = ["-DLCG_RECIP_NEWTON=1"]
    (tmp_path / "softmax.c").write_text(render(dsg).source)
    (tmp_path / "main.c").write_text(HARNESS)
    exe = tmp_path / "recip"
    subprocess.run(
        [
            gcc,
            "-O2",
            "-std=c99",
            f"-DSTEP={step * align}u",
            f"-DALIGN={align}u",
            *defines,
            "-Wno-unused-function",
            "-o",
            str(exe),
            str(tmp_path / "main.c"),
        ],
        check=True,
        cwd=tmp_path,
    )
    count, bad = (
        int(v)
        for v in subprocess.run(
            [str(exe)], check=True, capture_output=True, text=True, timeout=300
        ).stdout.split()
    )
    assert count >= (1 << 31) // (step * align)
    assert bad == 0, f"P={dsg.precision} ({form}): {bad} of {count} reciprocals differ"


def test_newton_steps_follow_the_precision() -> None:
    assert [newton_steps(p) for p in (8, 14, 15, 24, 28)] == [2, 2, 3, 3, 3]
    with pytest.raises(ValueError):
        newton_steps(29)
