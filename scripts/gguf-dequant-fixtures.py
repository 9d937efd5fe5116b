#!/usr/bin/env python3
"""Writes Tests/HeadroomKernelsTests/Fixtures/dequant-<format>.bin: random blocks of each GGUF weight format
and gguf-py's dequantization of them (`gguf.quants.dequantize`), for the kernels' bit-for-bit test.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install gguf numpy
    /tmp/venv/bin/python scripts/gguf-dequant-fixtures.py

File layout (little-endian): b"HRQF", u32 ggml type id, u32 block count n, u32 elements per block, u32 bytes
per block, then n blocks of raw bytes, then n × elements f32 values. Block bytes are random except the f16
scales, which are random finite halves, so every value is finite (bf16 and f16 are all random bits/finite halves).
"""
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

BLOCKS = 8
# Byte offsets of the f16 scales in each block.
F16_FIELDS = {
    T.Q4_0: [0], T.Q8_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
FORMATS = [T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


def random_half(rng, n):
    """Finite halves over a wide range of magnitudes, both signs, subnormals included."""
    v = rng.standard_normal(n) * np.exp2(rng.integers(-20, 8, n))
    return v.astype(np.float16)


def main():
    out_dir = os.path.join(os.path.dirname(__file__), "..", "Tests", "HeadroomKernelsTests", "Fixtures")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20250101)
    for t in FORMATS:
        block, size = GGML_QUANT_SIZES[t]
        n = BLOCKS * (32 if block == 1 else 1)   # plain floats: 8 × 32 elements
        raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
        if t == T.F16:
            raw = random_half(rng, n).view(np.uint8).reshape(n, size)
        for off in F16_FIELDS.get(t, []):
            raw[:, off:off + 2] = random_half(rng, n).view(np.uint8).reshape(n, 2)
        values = dequantize(raw.reshape(-1), t).astype("<f4").reshape(-1)
        assert values.size == n * block, (t.name, values.size)
        path = os.path.join(out_dir, f"dequant-{t.name.lower()}.bin")
        with open(path, "wb") as f:
            f.write(b"HRQF" + struct.pack("<4I", int(t), n, block, size))
            f.write(raw.tobytes())
            f.write(values.tobytes())
        print(f"{path}: {n} blocks of {t.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
