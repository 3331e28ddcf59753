"""Pieces shared by the two methods of Vasyltsov & Chang (2021), ``rexp`` and ``lut2d``.

Both methods start the same way, per row of int8 logits ``x`` with effective scale ``s``:

1. ``d_i = max(x) - x_i`` in [0, 255] (normalization by the maximum: the paper's first step).
2. ``q_i = (d_i + h) >> k`` with ``k = index_shift`` and ``h = 2^(k-1)`` (0 when k = 0): the
   numerator table index, rounded to nearest, so one entry spans 2^k input LSBs.
3. ``n_i = N[q_i]`` with ``N[q] = round((2^B - 1) * exp(-s * 2^k * q))``: the reciprocal
   exponentials as integers scaled to the output bit width B (the paper's first LUT). Entries
   that round to 0 are left out, and ``exp_entries`` may clip the table earlier; ``n_i = 0``
   past its end. ``N[0] = 2^B - 1`` exactly, since the row maximum has d = 0.
4. ``S = sum n_i``, so ``2^B - 1 <= S <= L (2^B - 1)``: the maximum always contributes N[0].
5. ``j = index(S)``: the sum quantized into one of J buckets (the second table's index).

What the paper leaves open, and is an option here:

* the index step of the numerator table (``index_shift``; default 0, one entry per input LSB);
* where that table stops (``exp_entries``; default: where the entries round to 0);
* how the sum is quantized (``sum_mode``): ``log`` keeps the top ``sum_mantissa + 1`` bits of S
  (2^m buckets per octave, constant relative step, like a tiny float); ``linear`` uses
  buckets of 2^sum_shift numerator units (``j = (S >> t) - (S_min >> t)``), the reading of
  the one public re-implementation (denominator step 1.0);
* the clipping of the sum (``sum_max``): sums above it share the last bucket. The default
  covers every sum a row of ``max_row`` elements can reach; calibration lowers it to the
  largest sum seen in real data, which frees bytes for finer buckets.

Each bucket ``[lo, hi]`` (clipped to the reachable sums) is represented by the midpoint of the
reciprocals, ``(1/lo + 1/hi) / 2``, which minimizes the largest error of ``1/S`` over the bucket.

Everything is integer and divider-free at run time: one table read and one add per element for
the sum, a shift loop (at most one step per octave) for the log index, one compare for the clip.
Overflow: ``S <= max_row * (2^B - 1)`` is held in 32 bits when that bound fits, else 64 bits;
the index is clipped to the table, so no read leaves a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import round_half_up
from ..spec import Spec, SpecError


@dataclass(frozen=True)
class SumQuantizer:
    """Maps a row sum S to a bucket index j in [0, length); both the C and numpy use it."""

    mode: str  #: "log" or "linear"
    resolution: int  #: log: mantissa bits m (2^m buckets per octave); linear: shift t
    s_min: int  #: 2^B - 1, the smallest possible sum
    s_cap: int  #: max_row * (2^B - 1), the largest possible sum
    sum_max: int  #: the largest sum with its own bucket
    offset: int  #: subtracted from the raw index so the first bucket holds s_min
    length: int  #: J, number of buckets
    sum_bits: int  #: 32 or 64: width of S in C

    @property
    def e_min(self) -> int:
        """log mode: S is first shifted right by this, leaving m + 1 bits for S = s_min."""
        return self.s_min.bit_length() - (self.resolution + 1)

    @property
    def mant_max(self) -> int:
        """log mode: the largest mantissa, 2^(m+1) - 1."""
        return (1 << (self.resolution + 1)) - 1

    def raw_index(self, sums: np.ndarray) -> np.ndarray:
        """The unclipped index, computed the way the C does (shift loop, no clz, no divide)."""
        s = np.asarray(sums, dtype=np.uint64).copy()
        if self.mode == "linear":
            result: np.ndarray = (s >> np.uint64(self.resolution)).astype(np.int64)
            return result
        s >>= np.uint64(self.e_min)
        octave = np.zeros(s.shape, dtype=np.int64)
        while True:
            over = s > np.uint64(self.mant_max)
            if not over.any():
                break
            s[over] >>= np.uint64(1)
            octave[over] += 1
        raw: np.ndarray = (octave << self.resolution) + s.astype(np.int64)
        return raw

    def index(self, sums: np.ndarray) -> np.ndarray:
        """Bucket index j = min(raw - offset, J - 1)."""
        result: np.ndarray = np.minimum(self.raw_index(sums) - self.offset, self.length - 1)
        return result

    def bounds(self) -> list[tuple[int, int]]:
        """[lo, hi] of the reachable sums in each bucket (the last one ends at sum_max)."""
        out = []
        for j in range(self.length):
            raw = j + self.offset
            if self.mode == "linear":
                lo, hi = raw << self.resolution, ((raw + 1) << self.resolution) - 1
            else:
                # Octave 0 holds the mantissas <= mant_max of S >> e_min; octave e >= 1 holds
                # raw = e 2^m + mant with mant in [2^m, 2^(m+1)).
                if raw <= self.mant_max:
                    octave, mant = 0, raw
                else:
                    octave = (raw >> self.resolution) - 1
                    mant = raw - (octave << self.resolution)
                octave_shift = self.e_min + octave
                lo, hi = mant << octave_shift, ((mant + 1) << octave_shift) - 1
            out.append((max(lo, self.s_min), min(hi, self.sum_max)))
        return out

    def reciprocals(self) -> np.ndarray:
        """Per bucket, the midpoint of 1/S over the bucket, in float64 (tables round it)."""
        return np.array([(1.0 / lo + 1.0 / hi) / 2.0 for lo, hi in self.bounds()])


def _log_raw(value: int, e_min: int, mant_max: int, resolution: int) -> int:
    s, octave = value >> e_min, 0
    while s > mant_max:
        s >>= 1
        octave += 1
    return (octave << resolution) + s


def make_quantizer(spec: Spec, mode: str, resolution: int, sum_max: int | None) -> SumQuantizer:
    """The sum quantizer for ``spec``; raises ``SpecError`` for a resolution out of domain."""
    B, L = spec.bits, spec.max_row
    s_min, s_cap = (1 << B) - 1, L * ((1 << B) - 1)
    top = s_cap if sum_max is None else sum_max
    if not s_min <= top:
        raise SpecError(f"sum_max must be at least 2^bits - 1 = {s_min}, got {top}")
    top = min(top, s_cap)
    sum_bits = 32 if s_cap < (1 << 32) else 64
    if mode == "log":
        if not 0 <= resolution <= B - 1:
            raise SpecError(f"sum_mantissa must be from 0 to bits - 1 = {B - 1}, got {resolution}")
        e_min = s_min.bit_length() - (resolution + 1)
        mant_max = (1 << (resolution + 1)) - 1
        # s_min >> e_min = 2^(m+1) - 1: the first bucket holds s_min alone (one-hot rows).
        offset = _log_raw(s_min, e_min, mant_max, resolution)
        length = _log_raw(top, e_min, mant_max, resolution) - offset + 1
    elif mode == "linear":
        if not 0 <= resolution <= 40:
            raise SpecError(f"sum_shift must be from 0 to 40, got {resolution}")
        offset = s_min >> resolution
        length = (top >> resolution) - offset + 1
    else:
        raise SpecError(f"unknown sum mode {mode!r}")
    return SumQuantizer(mode, resolution, s_min, s_cap, top, offset, length, sum_bits)


def numerator_table(spec: Spec, index_shift: int, exp_entries: int | None) -> np.ndarray:
    """N[q] = round((2^B - 1) exp(-s 2^k q)) while nonzero, for every q that d in 0..255 reaches.

    uint8 for B <= 8 (entries <= 255), uint16 above.
    """
    B, k = spec.bits, index_shift
    half = (1 << (k - 1)) if k > 0 else 0
    reach = ((255 + half) >> k) + 1
    q = np.arange(reach, dtype=np.float64)
    values = round_half_up(((1 << B) - 1) * np.exp(-spec.scale * (1 << k) * q))
    length = int(np.count_nonzero(values))  # exp is decreasing: the nonzeros are a prefix
    if exp_entries is not None:
        length = min(length, exp_entries)
    table = values[:length].astype(np.uint8 if B <= 8 else np.uint16)
    if int(table[0]) != (1 << B) - 1:
        raise AssertionError("N[0] must be 2^B - 1")
    return table


def numerators(table: np.ndarray, index_shift: int, x: np.ndarray) -> np.ndarray:
    """n_i for int8 rows x (..., L): the table read with nearest-rounded index, 0 past its end."""
    rows = np.asarray(x).astype(np.int64)
    d = rows.max(axis=-1, keepdims=True) - rows
    half = (1 << (index_shift - 1)) if index_shift > 0 else 0
    q = (d + half) >> index_shift
    padded = np.append(table.astype(np.int64), 0)
    result: np.ndarray = padded[np.minimum(q, len(table))]
    return result


def check_row_length(spec: Spec, x: np.ndarray) -> None:
    """The reference model accepts exactly the rows the C accepts."""
    if x.ndim < 1 or x.shape[-1] < 1 or x.shape[-1] > spec.max_row:
        raise ValueError(f"row length {x.shape[-1] if x.ndim else 0} outside 1..{spec.max_row}")


def c_unsigned(value: int, bits: int) -> str:
    """An unsigned C constant of the sum's width (``u`` or ``ull`` suffix)."""
    return f"{value}u" if bits == 32 else f"{value}ull"


def template_numbers(num_table: np.ndarray, index_shift: int, q: SumQuantizer) -> dict[str, int]:
    """Numbers the shared numerator and sum-bucket macros print (templates do no arithmetic)."""
    return {
        "index_step": 1 << index_shift,
        "num_last": len(num_table) - 1,
        "bucket_step": 1 << q.resolution,
        "mantissa_bits": q.resolution + 1,
        "octave_loops": q.s_cap.bit_length() - q.s_min.bit_length(),
    }
