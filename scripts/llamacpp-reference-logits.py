#!/usr/bin/env python3
"""llama.cpp's logits on SmolLM2-135M-Instruct Q4_1, the fixture RealModelFileTests checks Headroom against.

For three token sequences (a plain prompt, a ChatML prompt, 64 tokens of prose) this writes what llama.cpp
computes on the same file, and beside it what the model's definition computes in float64 from the same
dequantized weights (the arbiter: llama.cpp rounds activations to 8 bits in its Q4_1 and Q8_0 dot products,
and on this 135M model that alone moves its logits to a cosine of 0.994 from the exact ones at some positions).

Per sequence: the token ids llama.cpp's tokenizer gives; at every position llama.cpp's and float64's argmax and
top two logits, and the cosine between the two; at a few checked positions both full logit vectors (float16,
little-endian), so that the test takes cosines over the whole vocabulary there.

Output (Tests/HeadroomEngineTests/Fixtures/):
  smollm2-llamacpp.json       model digest, llama.cpp version, per sequence: text, ids, per-position figures,
                              the checked positions and each vector's offset (in values) into the logits file
  smollm2-llamacpp.f16        the checked positions' vectors, vocab float16 values each, at the offsets given

Run once by hand (not by `make test`); nothing the user runs needs Python. The exact commands:

  make model-fixtures vocab-fixtures     # the model in .cache/models, llama-cpp-python's sdist in .cache/llama-vocab
  python3 -m venv /tmp/llamacpp-venv
  CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \\
    /tmp/llamacpp-venv/bin/pip install .cache/llama-vocab/sdist/llama_cpp_python-0.3.36.tar.gz numpy gguf==0.19.0
  /tmp/llamacpp-venv/bin/python scripts/llamacpp-reference-logits.py

llama.cpp runs on the CPU with one thread and batch = the whole sequence (one prefill), in its default f16 KV
cache. (An f32 KV cache, flash attention or one token per batch leave the cosines to float64 as low.)
"""
import ctypes
import hashlib
import json
import os
import sys

import numpy as np
import llama_cpp
from gguf import GGUFReader, quants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
OUT_DIR = os.path.join(ROOT, "Tests/HeadroomEngineTests/Fixtures")
OUT_JSON = os.path.join(OUT_DIR, "smollm2-llamacpp.json")
OUT_LOGITS = os.path.join(OUT_DIR, "smollm2-llamacpp.f16")

PROSE = ("The river rose slowly through the spring, and by the first week of May the lower fields were under "
         "water. Farmers moved their animals to the hills, where the grass was thin but dry. In the town, the "
         "baker kept his ovens going through the night, because the roads to the mill were closed and nobody "
         "knew when the next cart of flour would arrive. The children, who had never seen the valley so full, "
         "walked along the levee after school and counted the trees that stood in the current.")


def float64_logits(reader, ids):
    """The llama forward pass by its definition, in float64 on the dequantized tensors: RMSNorm, RoPE on
    adjacent pairs, causal grouped-query attention, SwiGLU, the head tied to the token embedding."""
    meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith("llama.")}
    L, D = meta["llama.block_count"], meta["llama.embedding_length"]
    H, KV = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    eps, base = meta["llama.attention.layer_norm_rms_epsilon"], meta["llama.rope.freq_base"]
    hd = D // H
    assert meta["llama.rope.dimension_count"] == hd
    W = {}
    for t in reader.tensors:
        a = quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        W[t.name] = a.reshape([int(x) for x in reversed(t.shape)])
    assert "output.weight" not in W
    T = len(ids)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope(x, heads):
        x = x.reshape(T, heads, hd).copy()
        angle = np.arange(T)[:, None] * base ** (-np.arange(0, hd, 2) / hd)[None, :]
        c, s = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        a, b = x[..., 0::2].copy(), x[..., 1::2].copy()
        x[..., 0::2], x[..., 1::2] = a * c - b * s, a * s + b * c
        return x

    x = W["token_embd.weight"][ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        p = f"blk.{l}."
        h = rms(x, W[p + "attn_norm.weight"])
        q, k = rope(h @ W[p + "attn_q.weight"].T, H), rope(h @ W[p + "attn_k.weight"].T, KV)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, KV, hd)
        att = np.zeros((T, H, hd))
        for i in range(H):
            g = i // (H // KV)
            s = q[:, i] @ k[:, g].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(1, keepdims=True))
            att[:, i] = (s / s.sum(1, keepdims=True)) @ v[:, g]
        x = x + att.reshape(T, D) @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"])
        gate, up = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ W[p + "ffn_down.weight"].T
    return rms(x, W["output_norm.weight"]) @ W["token_embd.weight"].T


def top2(v):
    i = np.argsort(-v)[:2]
    return [int(i[0]), int(i[1])], [float(v[i[0]]), float(v[i[1]])]


def cosine(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def chat_text(model, messages):
    """llama.cpp's own rendering of `messages` with the file's template (llama_chat_apply_template)."""
    arr = (llama_cpp.llama_chat_message * len(messages))()
    keep = []
    for i, (role, content) in enumerate(messages):
        r, c = role.encode(), content.encode()
        keep += [r, c]
        arr[i].role, arr[i].content = r, c
    tmpl = llama_cpp.llama_model_chat_template(model, None)
    buf = ctypes.create_string_buffer(8192)
    n = llama_cpp.llama_chat_apply_template(tmpl, arr, len(messages), True, buf, len(buf))
    assert 0 < n < len(buf), n
    return buf.raw[:n].decode()


def main():
    with open(MODEL, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    llm = llama_cpp.Llama(model_path=MODEL, n_ctx=256, n_batch=256, n_ubatch=256, n_threads=1,
                          n_threads_batch=1, logits_all=True, verbose=False)
    vocab = llm.n_vocab()

    chat = chat_text(llm.model, [("user", "What is the capital of France?")])
    # (name, text, keep the first n tokens, checked positions: -1 is the last)
    sequences = [
        ("prompt", "The capital of France is", None, [-1]),
        ("chat", chat, None, [-1]),
        ("prose64", PROSE, 64, [31, -1]),
    ]
    manifest = {
        "model": os.path.basename(MODEL), "model_sha256": digest,
        "reference": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}, CPU, 1 thread, one batch per sequence",
        "vocab": vocab, "logits_format": "float16 little-endian, vocab values per vector, at the offsets given (in values)",
        "sequences": [],
    }
    reader = GGUFReader(MODEL)
    blobs = []
    offset = 0
    for name, text, limit, checked in sequences:
        # add_bos follows the file (tokenizer.ggml.add_bos_token is false here); special tokens parsed as llama.cpp's chat does.
        ids = llm.tokenize(text.encode(), add_bos=True, special=True)
        if limit is not None:
            ids = ids[:limit]
        llm.reset()
        llm.eval(ids)
        T = len(ids)
        scores = np.array(llm.scores[:T], dtype=np.float32)
        assert scores.shape == (T, vocab)
        exact = float64_logits(reader, ids)
        checked = [T - 1 if p == -1 else p for p in checked]
        entry = {"name": name, "text": text, "truncated_to": limit, "ids": [int(i) for i in ids],
                 "llamacpp_top2": [], "llamacpp_top2_logits": [], "float64_top2": [], "float64_top2_logits": [],
                 "cosine_llamacpp_float64": [], "checked": []}
        for p in range(T):
            i, v = top2(scores[p]); entry["llamacpp_top2"].append(i); entry["llamacpp_top2_logits"].append(v)
            i, v = top2(exact[p]); entry["float64_top2"].append(i); entry["float64_top2_logits"].append(v)
            entry["cosine_llamacpp_float64"].append(cosine(scores[p], exact[p]))
        for p in checked:
            entry["checked"].append({"position": p, "llamacpp_offset": offset, "float64_offset": offset + vocab})
            blobs += [scores[p].astype("<f2").tobytes(), exact[p].astype("<f2").tobytes()]
            offset += 2 * vocab
        manifest["sequences"].append(entry)
        cos = entry["cosine_llamacpp_float64"]
        print(f"{name}: {T} tokens, llama.cpp's argmax at the last position {entry['llamacpp_top2'][-1][0]} "
              f"({llm.detokenize([entry['llamacpp_top2'][-1][0]]).decode(errors='replace')!r}); cosine llama.cpp-float64 "
              f"min {min(cos):.6f}, below 0.999 at {sum(c < 0.999 for c in cos)} positions; checked {checked}", file=sys.stderr)

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(OUT_LOGITS, "wb") as f:
        for b in blobs:
            f.write(b)
    with open(OUT_JSON, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT_JSON} and {OUT_LOGITS} ({offset * 2} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
