#!/usr/bin/env python3
"""Goldens for Tessera's GGUF dequantisers, from the `gguf` Python package (pip install gguf numpy).

For each block type: blocks of random bytes whose f16 scale fields are set to sane values (so no
NaN/inf), dequantised by gguf.quants.dequantize; plus, for each GGUF path given, the first blocks of
the first tensor of every quantised type in it (SmolLM2: Q4_1, Q8_0; Gemma 3 270M Q4_K_M: Q4_K, Q5_0,
Q6_K, Q8_0; Qwen2.5-Coder: Q4_K, Q5_0, Q6_K, Q8_0). Writes Tests/TesseraFormatsTests/Goldens/dequant.json:
{ name: {"type": ggml type name, "bytes": hex, "values": [float32 values]} }.

Usage: python3 scripts/goldens/make_dequant_goldens.py [model.gguf ...]
  (the models: `tessera fetch all`, then ~/.cache/tessera/models/*.gguf)
"""
import json
import pathlib
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFReader
from gguf import quants

# (type, blocks, byte offsets of f16 scale fields within a block)
LAYOUTS = {
    "Q4_0": (T.Q4_0, 8, [0]), "Q4_1": (T.Q4_1, 8, [0, 2]), "Q5_0": (T.Q5_0, 8, [0]), "Q5_1": (T.Q5_1, 8, [0, 2]),
    "Q8_0": (T.Q8_0, 8, [0]), "Q2_K": (T.Q2_K, 3, [80, 82]), "Q3_K": (T.Q3_K, 3, [108]),
    "Q4_K": (T.Q4_K, 3, [0, 2]), "Q5_K": (T.Q5_K, 3, [0, 2]), "Q6_K": (T.Q6_K, 3, [208]),
}

def main():
    rng = np.random.default_rng(1234)
    out = {}
    for name, (qtype, blocks, scale_offsets) in LAYOUTS.items():
        block_size, block_bytes = quants.GGML_QUANT_SIZES[qtype]
        data = rng.integers(0, 256, size=blocks * block_bytes, dtype=np.uint8)
        for b in range(blocks):
            for off in scale_offsets:
                scale = np.float16(rng.uniform(-0.05, 0.05))
                data[b * block_bytes + off: b * block_bytes + off + 2] = np.frombuffer(scale.tobytes(), dtype=np.uint8)
        values = quants.dequantize(data, qtype).astype(np.float32).reshape(-1)
        out[name] = {"type": name, "bytes": data.tobytes().hex(), "values": [float(v) for v in values]}
    for gguf_path in sys.argv[1:]:
        reader = GGUFReader(gguf_path)
        model = pathlib.Path(gguf_path).stem.split(".")[0].split("-")[0].lower()
        seen = set()
        for t in reader.tensors:
            if t.tensor_type in seen or t.tensor_type.name in ("F32", "F16", "BF16"):
                continue
            seen.add(t.tensor_type)
            block_size, block_bytes = quants.GGML_QUANT_SIZES[t.tensor_type]
            blocks = 4 if block_size == 32 else 2
            raw = np.asarray(t.data).reshape(-1).view(np.uint8)[: blocks * block_bytes].copy()
            values = quants.dequantize(raw, t.tensor_type).astype(np.float32).reshape(-1)
            out[f"{model} {t.name}"] = {"type": t.tensor_type.name, "bytes": raw.tobytes().hex(),
                                        "values": [float(v) for v in values]}
    path = pathlib.Path(__file__).resolve().parents[2] / "Tests/TesseraFormatsTests/Goldens/dequant.json"
    path.write_text(json.dumps(out, indent=0))
    print(f"wrote {path} ({len(out)} cases)")

if __name__ == "__main__":
    main()
