#!/usr/bin/env python3
"""Reference ("golden") outputs from Hugging Face transformers, in fp32, for Tessera's model tests.

Writes, under Tests/TesseraModelsTests/Goldens/:

  Part A (--only tiny, or one family: --only tiny-llama ...): tiny random models, committed to the repo.
    tiny-<family>/config.json      save_pretrained() output (transformers 5.x format: "rope_parameters",
                                   "layer_types"), plus the legacy keys that Hub configs written by
                                   transformers 4.x carry ("rope_theta", "rope_scaling", and for Gemma 3
                                   "rope_local_base_freq"); a reload of this exact file is checked to give
                                   the same logits.
    tiny-<family>/model.safetensors  f32, every parameter randomised (norm weights, biases included).
    tiny-<family>/golden.json      {"family", "inputs": [[ids]x2], "logits": [[[vocab f32] per position] per
                                   input], "greedy": {"prompt", "tokens", "top2_gap"}, ...}
    Families: tiny-llama (llama3 rope scaling, GQA, untied), tiny-smollm (tied, MQA), tiny-mistral
    (sliding window 8), tiny-qwen2 (q/k/v biases, tied), tiny-gemma3 (gemma3_text, local/global layers),
    tiny-gpt2.

  Part B (--only smollm2 | gemma3 | qwen25, or --only real): real GGUF models dequantised to fp32 by
    transformers' own GGUF loader (AutoModelForCausalLM/AutoTokenizer with gguf_file=...), from
    ~/.cache/tessera/models (or --models-dir). SHA-256 of each file is checked.
    real-<name>.json: "file", "sha256", "text_ids" (one sequence, 250-350 tokens, default special-token
    behaviour of the GGUF's tokenizer), "top1", "top1_logit", "top5" ([[id, logit] x5] per position),
    "max_abs_logit", "greedy" (4 cases: {"kind", "prompt", "prompt_ids", "tokens", "top2_gap", ...}).

How to run (from the repository root; heavy, so niced; the real models need ~3 GB RAM, a few minutes):

    python3.11 -m venv /work/venv-gold
    /work/venv-gold/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
        # (that index is unreachable here; pip took torch-2.13.0+cpu from the local find-links dir
        #  /opt/wheels instead; plain `pip install torch==2.13.0` from PyPI also works, just bigger)
    /work/venv-gold/bin/pip install transformers==5.24.0 safetensors==0.8.0 gguf==0.19.0 \\
        sentencepiece==0.2.3 tokenizers==0.23.3 protobuf==7.36.2 accelerate==1.15.0 numpy==2.4.6
    nice -n 19 /work/venv-gold/bin/python scripts/goldens/make_model_goldens.py              # everything
    nice -n 19 /work/venv-gold/bin/python scripts/goldens/make_model_goldens.py --only tiny
    nice -n 19 /work/venv-gold/bin/python scripts/goldens/make_model_goldens.py --only smollm2 --only qwen25

Versions the committed goldens were made with: Python 3.11.7, torch 2.13.0+cpu, transformers 5.24.0,
safetensors 0.8.0, gguf 0.19.0, sentencepiece 0.2.3, tokenizers 0.23.3, protobuf 7.36.2, accelerate 1.15.0,
numpy 2.4.6, Jinja2 3.1.6. Other versions may move the last bits of the logits; the script is deterministic
for a given set (fixed seeds, no sampling).

Conventions worth knowing on the Swift side (all checked against this transformers version):
  * Sliding window (masking_utils.sliding_window_overlay): query i sees key j iff j <= i and
    j > i - sliding_window, i.e. i - j < window: a window of W covers W tokens including the query itself.
  * Gemma 3: attention scale query_pre_attn_scalar ** -0.5; embeddings multiplied by sqrt(hidden_size)
    (cast to the weight dtype); every RMSNorm (incl. q_norm/k_norm) computes x * (1 + w) in fp32 with w as
    stored by HF. llama.cpp's converter stores w + 1 in GGUF for every tensor ending in "norm.weight"
    (transformers subtracts 1 on load). Layer i is local (sliding) iff (i + 1) % pattern != 0; the GGUF has
    no pattern key: llama.cpp and transformers both use 6 for gemma3, local rope theta 10000.
  * llama-arch GGUF (SmolLM2): Q/K rows are permuted by llama.cpp's converter (interleaved-pair RoPE
    layout); transformers un-permutes them. qwen2 and gemma3 GGUFs are not permuted (NeoX/half-split RoPE).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
GOLDENS = REPO / "Tests" / "TesseraModelsTests" / "Goldens"

TINY_FAMILIES = ["tiny-llama", "tiny-smollm", "tiny-mistral", "tiny-qwen2", "tiny-gemma3", "tiny-gpt2"]
REAL_MODELS = ["smollm2", "gemma3", "qwen25"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def f32(x: float) -> float:
    """The shortest decimal that round-trips to the same float32, as a Python float (so json prints it short)."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="0"))


def f32_list(a) -> list:
    return [f32(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    log(f"wrote {path.relative_to(REPO)} ({len(text) / 1024:.0f} KiB)")


def versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def seed_for(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


# ----------------------------------------------------------------------------------------------------------
# Part A: tiny random models
# ----------------------------------------------------------------------------------------------------------

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}


def tiny_spec(family: str):
    """(model class, config, legacy keys to add to config.json, gemma-style (1+w) norms?)"""
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    common = dict(vocab_size=256, hidden_size=64, head_dim=16, max_position_embeddings=128,
                  bos_token_id=1, eos_token_id=2, pad_token_id=None)
    if family == "tiny-llama":
        cfg = LlamaConfig(**common, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, rope_theta=10000.0, rope_scaling=dict(LLAMA3_SCALING),
                          tie_word_embeddings=False, rms_norm_eps=1e-5)
        return LlamaForCausalLM, cfg, {"rope_theta": 10000.0, "rope_scaling": dict(LLAMA3_SCALING)}, False
    if family == "tiny-smollm":
        cfg = LlamaConfig(**common, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                          num_key_value_heads=1, rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5)
        return LlamaForCausalLM, cfg, {"rope_theta": 100000.0, "rope_scaling": None}, False
    if family == "tiny-mistral":
        cfg = MistralConfig(**common, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, sliding_window=8, rope_theta=10000.0, tie_word_embeddings=False,
                            rms_norm_eps=1e-5)
        return MistralForCausalLM, cfg, {"rope_theta": 10000.0}, False
    if family == "tiny-qwen2":
        c = dict(common)
        c.pop("head_dim")  # Qwen2 derives head_dim = hidden_size / heads (= 16)
        cfg = Qwen2Config(**c, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, rope_theta=1e6, tie_word_embeddings=True, rms_norm_eps=1e-6,
                          use_sliding_window=False)
        return Qwen2ForCausalLM, cfg, {"rope_theta": 1e6}, False
    if family == "tiny-gemma3":
        c = dict(common, bos_token_id=2, eos_token_id=1, pad_token_id=0)
        layer_types = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
        # intermediate 64 (not 128) keeps the 4-layer model.safetensors under ~500 KB
        cfg = Gemma3TextConfig(**c, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                               num_key_value_heads=2, query_pre_attn_scalar=16, sliding_window=8,
                               layer_types=layer_types, sliding_window_pattern=2, rope_theta=1e6,
                               rope_local_base_freq=10000.0, hidden_activation="gelu_pytorch_tanh",
                               tie_word_embeddings=True, final_logit_softcapping=None,
                               attn_logit_softcapping=None, rms_norm_eps=1e-6)
        assert cfg.layer_types == layer_types, cfg.layer_types
        legacy = {"rope_theta": 1e6, "rope_local_base_freq": 10000.0, "rope_scaling": None,
                  "sliding_window_pattern": 2}
        return Gemma3ForCausalLM, cfg, legacy, True
    if family == "tiny-gpt2":
        cfg = GPT2Config(vocab_size=256, n_embd=64, n_layer=2, n_head=4, n_positions=64,
                         activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                         bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)
        return GPT2LMHeadModel, cfg, {}, False
    raise ValueError(family)


def randomise(model: torch.nn.Module, gemma_norms: bool, seed: int) -> None:
    """Every parameter random: matrices/embeddings N(0, 0.125); norms 1 + 0.1 N (Gemma: 0.1 N, the stored
    offset of its (1 + w) norms); biases N(0, 0.1)."""
    norm_params = set()
    for mod in model.modules():
        cls = type(mod).__name__
        if isinstance(mod, torch.nn.LayerNorm) or "RMSNorm" in cls or "LayerNorm" in cls:
            for p in mod.parameters(recurse=False):
                norm_params.add(id(p))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if id(p) in norm_params and name.endswith("weight"):
                v = 0.1 * r if gemma_norms else 1.0 + 0.1 * r
            elif name.endswith("bias"):
                v = 0.1 * r
            else:
                v = 0.125 * r
            p.copy_(v)


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0].float()


def greedy_reference(model, prompt: list[int], n: int) -> tuple[list[int], list[float]]:
    """Greedy decoding by full recomputation (no KV cache): the check on generate()."""
    ids = list(prompt)
    gaps = []
    for _ in range(n):
        last = logits_of(model, ids)[-1]
        top2 = torch.topk(last, 2)
        gaps.append(float(top2.values[0] - top2.values[1]))
        ids.append(int(top2.indices[0]))
    return ids[len(prompt):], gaps


def generate_greedy(model, prompt_ids: list[int], n: int, eos_ids: list[int] | None):
    """model.generate(do_sample=False). Without eos_ids exactly n tokens; with them it stops at EOS."""
    from transformers import GenerationConfig

    if not eos_ids:
        # No EOS at all: otherwise generate() falls back to model.generation_config's EOS, and with
        # min_new_tokens it would suppress that token instead of taking the plain argmax.
        model.generation_config.eos_token_id = None
    gc = GenerationConfig(do_sample=False, max_new_tokens=n, num_beams=1,
                          eos_token_id=eos_ids if eos_ids else None,
                          pad_token_id=(eos_ids[0] if eos_ids else 0),
                          temperature=None, top_p=None, top_k=None,
                          return_dict_in_generate=True, output_logits=True)
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([prompt_ids], dtype=torch.long),
                             attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                             generation_config=gc)
    toks = out.sequences[0, len(prompt_ids):].tolist()
    gaps = []
    for step in out.logits:
        t2 = torch.topk(step[0].float(), 2).values
        gaps.append(float(t2[0] - t2[1]))
    if eos_ids:
        # generate pads after EOS in batches; with batch 1 it simply stops. Cut defensively.
        for i, t in enumerate(toks):
            if t in eos_ids:
                toks, gaps = toks[: i + 1], gaps[: i + 1]
                break
    return toks, gaps[: len(toks)]


MIN_GREEDY_GAP = 1e-3  # re-seed a tiny model whose greedy run has a near tie (fp32 summation order could flip it)


def build_tiny(family: str, seed: int):
    cls, cfg, legacy, gemma_norms = tiny_spec(family)
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    randomise(model, gemma_norms, seed)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
        assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    g = torch.Generator().manual_seed(seed + 1)
    inputs = [torch.randint(0, 256, (24,), generator=g).tolist(), torch.randint(0, 256, (13,), generator=g).tolist()]
    return cls, cfg, legacy, model, inputs


def make_tiny(family: str) -> None:
    log(f"{family}: building")
    base = seed_for(family)
    for k in range(100):
        seed = base + 2 * k
        cls, cfg, legacy, model, inputs = build_tiny(family, seed)
        prompt = inputs[0][:8]
        ref_toks, ref_gaps = greedy_reference(model, prompt, 16)
        if min(ref_gaps) >= MIN_GREEDY_GAP:
            break
        log(f"{family}: seed {seed} has a greedy near tie ({min(ref_gaps):.1e}); re-seeding")
    else:
        raise RuntimeError(f"{family}: no seed without a greedy near tie")

    out_dir = GOLDENS / family
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "generation_config.json").unlink(missing_ok=True)
    cfg_path = out_dir / "config.json"
    cj = json.loads(cfg_path.read_text())
    cj.update(legacy)
    cj.pop("_sliding_window_pattern", None)  # private attribute that to_dict() leaks; "sliding_window_pattern" stays
    cfg_path.write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")
    size = (out_dir / "model.safetensors").stat().st_size
    log(f"{family}: model.safetensors {size / 1024:.0f} KiB, {sum(p.numel() for p in model.parameters())} params")

    all_logits = [logits_of(model, ids) for ids in inputs]
    std = float(torch.cat(all_logits).std())
    log(f"{family}: logits std {std:.3f}, max |logit| {float(torch.cat(all_logits).abs().max()):.3f}")

    # Reload from disk (safetensors + the edited config.json): must give the same logits.
    reloaded = cls.from_pretrained(out_dir, dtype=torch.float32).eval()
    for ids, ref in zip(inputs, all_logits):
        d = float((logits_of(reloaded, ids) - ref).abs().max())
        assert d < 1e-5, f"{family}: reload differs by {d}"

    # Prefix consistency: input 0's logits on a prefix equal the full run's rows (causality).
    pre = logits_of(model, inputs[0][:10])
    assert float((pre - all_logits[0][:10]).abs().max()) < 1e-4

    # The window must matter: without it, positions >= window change and earlier ones do not.
    if getattr(cfg, "sliding_window", None):
        w = cfg.sliding_window
        cfg2 = type(cfg).from_dict(cfg.to_dict())
        cfg2.sliding_window = 10_000
        full = cls(cfg2).eval()
        full.load_state_dict(model.state_dict())
        d = (logits_of(full, inputs[0]) - all_logits[0]).abs().amax(dim=-1)
        assert float(d[:w].max()) < 1e-5 and float(d[w:].min()) > 1e-3, d
        log(f"{family}: without the window, positions >= {w} change by {float(d[w:].min()):.3f}..{float(d.max()):.3f}")

    toks, gaps = generate_greedy(model, prompt, 16, None)
    assert len(toks) == 16
    assert toks == ref_toks, f"{family}: generate() {toks} != recompute {ref_toks} (min gap {min(gaps):.2e})"
    log(f"{family}: greedy {toks} (min top2 gap {min(gaps):.3f})")

    golden = {
        "family": family,
        "architecture": cj["architectures"][0],
        "versions": versions(),
        "seed": seed,
        "inputs": inputs,
        "logits": [[f32_list(row) for row in lg.numpy()] for lg in all_logits],
        "greedy": {"prompt": prompt, "tokens": toks, "top2_gap": [round(x, 6) for x in gaps]},
    }
    if family == "tiny-gemma3":
        golden["local_layers"] = [i for i, t in enumerate(cfg.layer_types) if t == "sliding_attention"]
    write_json(out_dir / "golden.json", golden)


# ----------------------------------------------------------------------------------------------------------
# Part B: real GGUF models
# ----------------------------------------------------------------------------------------------------------

REAL = {
    "smollm2": {
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "chat": True,
        "stop_tokens": ["<|im_end|>"],
    },
    "gemma3": {
        "file": "gemma-3-270m-Q4_K_M.gguf",
        "sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "chat": False,  # base model, no chat template in the GGUF
        "stop_tokens": [],
    },
    "qwen25": {
        "file": "Qwen2.5-Coder-0.5B-Instruct.gguf",
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "chat": True,
        "stop_tokens": ["<|im_end|>", "<|endoftext|>"],
    },
}

TEXT = '''The old lighthouse keeper, Margaret Ellis, had watched the harbour for thirty-seven years. Every evening at 6:45 she climbed the 112 steps, wound the clockwork, and lit the lamp; "A light is a promise," she liked to say, "not a decoration."

In 2019 the council proposed replacing her with an automatic beacon (cost: £48,500). She wrote back politely — and at length.

Here is the small Python script her nephew wrote to count ships:

def count_ships(log_lines):
    total = 0
    for line in log_lines:
        if line.startswith("SHIP"):
            total += 1
    return total

print(count_ships(["SHIP Aurora", "GULL", "SHIP Vega"]))  # prints 2

Her checklist, pinned above the desk, read:
1. Check the lens for salt.
2. Refill the oil (about 3.5 litres).
3. Log the weather: wind, visibility, pressure.
4. Never, ever skip step 1!

Was she stubborn? Perhaps. But when the storm of 12 March knocked out the mains power, hers was the only light on the coast — and the fishing boat "Dawn Treader", with nine people aboard, came home safely at 02:17.
'''

PLAIN_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Once upon a time, in a small village by the sea,",
    "The three primary colours are",
]
CHAT_PROMPTS = [
    "What is the capital of Japan? Answer in one short sentence.",
    "Write a Python function that reverses a string.",
]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_real(name: str, models_dir: Path, check_sha: bool) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = REAL[name]
    path = models_dir / spec["file"]
    if not path.exists():
        sys.exit(f"{path} is missing")
    log(f"{name}: hashing {path}")
    digest = sha256_of(path)
    if digest != spec["sha256"]:
        msg = f"{name}: sha256 {digest} != expected {spec['sha256']}"
        if check_sha:
            sys.exit(msg + " (pass --no-sha-check to use it anyway)")
        log("WARNING " + msg)

    log(f"{name}: loading tokenizer and model (dequantising to fp32)")
    tok = AutoTokenizer.from_pretrained(str(models_dir), gguf_file=spec["file"])
    model = AutoModelForCausalLM.from_pretrained(str(models_dir), gguf_file=spec["file"], dtype=torch.float32).eval()
    cfg = model.config
    log(f"{name}: {type(model).__name__}, {cfg.num_hidden_layers} layers, vocab {cfg.vocab_size}")

    text_ids = tok(TEXT).input_ids
    log(f"{name}: text is {len(text_ids)} tokens (bos {tok.bos_token_id}, first ids {text_ids[:4]})")
    assert 250 <= len(text_ids) <= 350, len(text_ids)
    assert tok.decode(text_ids, skip_special_tokens=True).strip() == TEXT.strip(), "tokenizer does not round-trip"

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([text_ids]), use_cache=False).logits[0].float()
    top5 = torch.topk(logits, 5, dim=-1)
    top1 = top5.indices[:, 0].tolist()
    acc = sum(int(a == b) for a, b in zip(top1[:-1], text_ids[1:])) / (len(text_ids) - 1)
    log(f"{name}: next-token top-1 accuracy on the text {acc:.2%}")

    eos_ids = []
    for t in spec["stop_tokens"]:
        i = tok.convert_tokens_to_ids(t)
        if i is not None and i != tok.unk_token_id:
            eos_ids.append(i)
    cases = []
    prompts = [("plain", p) for p in (PLAIN_PROMPTS[:2] if spec["chat"] else PLAIN_PROMPTS)]
    if spec["chat"]:
        prompts += [("chat", p) for p in CHAT_PROMPTS]
    for kind, p in prompts:
        if kind == "plain":
            prompt_ids = tok(p).input_ids
            toks, gaps = generate_greedy(model, prompt_ids, 48, None)
            rendered = p
        else:
            rendered = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                               tokenize=False)
            prompt_ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                                 tokenize=True, return_dict=True)["input_ids"]
            toks, gaps = generate_greedy(model, prompt_ids, 48, eos_ids)
        stopped = bool(toks) and toks[-1] in eos_ids
        case = {"kind": kind, "prompt": rendered, "prompt_ids": prompt_ids, "tokens": toks,
                "stopped_at_eos": stopped, "top2_gap": [round(x, 4) for x in gaps],
                "text": tok.decode(toks, skip_special_tokens=False)}
        if kind == "chat":
            case["eos_ids"] = eos_ids
        cases.append(case)
        log(f"{name}: [{kind}] {p!r} -> {case['text']!r}" + (" <EOS>" if stopped else ""))

    golden = {
        "model": name,
        "file": spec["file"],
        "sha256": digest,
        "versions": versions(),
        "config": {k: v for k, v in cfg.to_dict().items() if k in (
            "model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
            "head_dim", "vocab_size", "rope_parameters", "sliding_window", "layer_types", "query_pre_attn_scalar",
            "rms_norm_eps", "tie_word_embeddings")},
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "text": TEXT,
        "text_ids": text_ids,
        "top1": top1,
        "top1_logit": f32_list(top5.values[:, 0]),
        "top5": [[[int(i), f32(v)] for i, v in zip(ii.tolist(), vv.tolist())]
                 for ii, vv in zip(top5.indices, top5.values)],
        "max_abs_logit": f32_list(logits.abs().max(dim=-1).values),
        "greedy": cases,
    }
    write_json(GOLDENS / f"real-{name}.json", golden)
    del model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=[],
                    help="tiny | real | tiny-<family> | smollm2 | gemma3 | qwen25 (repeatable; default: all)")
    ap.add_argument("--models-dir", type=Path, default=Path.home() / ".cache" / "tessera" / "models")
    ap.add_argument("--no-sha-check", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    todo: list[str] = []
    for o in args.only or ["tiny", "real"]:
        if o == "tiny":
            todo += TINY_FAMILIES
        elif o == "real":
            todo += REAL_MODELS
        elif o in TINY_FAMILIES or o in REAL_MODELS:
            todo.append(o)
        elif "tiny-" + o in TINY_FAMILIES:
            todo.append("tiny-" + o)
        else:
            ap.error(f"unknown --only {o!r}")
    log(f"versions {versions()}; doing {todo}")
    for item in dict.fromkeys(todo):
        if item in TINY_FAMILIES:
            make_tiny(item)
        else:
            make_real(item, args.models_dir, not args.no_sha_check)
    log("done")


if __name__ == "__main__":
    main()
