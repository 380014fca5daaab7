#!/usr/bin/env python3
"""Training goldens for Tessera's trainer: 20 steps of nanoGPT (char-level, tiny) in PyTorch, f32, CPU.

Writes Tests/TesseraTrainingTests/Goldens/gpt-tiny/ (about 450 KB in all):

  init.safetensors       the initial weights (all F32), names and shapes below.
  grads_step0.safetensors  d(loss)/d(param) for every parameter after the first backward (step 0, initial
                         weights, BEFORE gradient clipping), same names and shapes.
  weights_step1.safetensors   every parameter after the first optimizer step (it = 0).
  weights_step20.safetensors  every parameter after all 20 steps (it = 0 ... 19).
  golden.json            {"config": {...}, "vocab": "<sorted unique characters, one string>",
                          "steps": [{"it", "x": [[T ids] x B], "y": [[T ids] x B], "loss", "lr", "grad_norm"}
                                    x 20],
                          "tolerances_note": "..."}

Tensor names and shapes (C = n_embd = 32, V = vocab_size = 62, block_size = 16, n_layer = 2, i in 0..<2):
  transformer.wte.weight              [V, C]       token embedding; ALSO the output projection (tied: no
                                                   lm_head tensor is stored; logits = ln_f(x) @ wte.T)
  transformer.wpe.weight              [16, C]      position embedding
  transformer.h.{i}.ln_1.weight       [C]          transformer.h.{i}.ln_1.bias        [C]
  transformer.h.{i}.attn.c_attn.weight [3C, C]     transformer.h.{i}.attn.c_attn.bias [3C]
  transformer.h.{i}.attn.c_proj.weight [C, C]      transformer.h.{i}.attn.c_proj.bias [C]
  transformer.h.{i}.ln_2.weight       [C]          transformer.h.{i}.ln_2.bias        [C]
  transformer.h.{i}.mlp.c_fc.weight   [4C, C]      transformer.h.{i}.mlp.c_fc.bias    [4C]
  transformer.h.{i}.mlp.c_proj.weight [C, 4C]      transformer.h.{i}.mlp.c_proj.bias  [C]
  transformer.ln_f.weight             [C]          transformer.ln_f.bias              [C]
Linear weights are PyTorch's [out, in]: y = x @ W.T + b. The safetensors files are the standard layout
(u64 little-endian header length, JSON header, raw little-endian f32 data), written by the `safetensors`
package; the header's tensor order is alphabetical (safetensors sorts), so look tensors up by name.

Model (nanoGPT's GPT, dropout 0, bias=True, f32):
  x = wte[idx] + wpe[0..<T]
  per layer:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    LayerNorm: (x - mean) / sqrt(biased var + 1e-5) * w + b, over the last dim (C).
    attn: qkv = h @ c_attn.W.T + c_attn.b  -> split along the last dim into q, k, v (in that order, C each);
          each split into n_head = 4 heads of head_dim = C/4 = 8 (head j = columns j*8 ..< (j+1)*8);
          att = softmax((q @ k.T) * (1/sqrt(8)) with causal mask (key pos > query pos -> -inf));
          y = att @ v; heads concatenated back (head j -> columns j*8..); out = y @ c_proj.W.T + c_proj.b
    mlp:  c_fc -> exact GELU (0.5*x*(1+erf(x/sqrt(2))), nn.GELU()) -> c_proj
  logits = ln_f(x) @ wte.weight.T           (no bias)
  (The attention is written out explicitly below, not via F.scaled_dot_product_attention; same math.)

Loss: F.cross_entropy(logits.view(-1, V), y.view(-1), ignore_index=-1), reduction mean, i.e. the mean of
  (logsumexp(logits) - logit[target]) over the positions whose target != -1. Step it = 3's batch has the
  last 3 targets of row 0 set to -1 (already so in golden.json's "y"), so it averages over 61 of 64.

Data: Tests/TesseraEngineTests/Resources/hamlet-excerpt.txt (read as UTF-8, it is ASCII); vocab =
  sorted(set(text)) (by code point), ids = index in vocab. Batches: torch.Generator seeded 42, per step
  offsets = torch.randint(len(ids) - T, (B,)), x = ids[o:o+T], y = ids[o+1:o+T+1]; B = 4, T = 16. The
  batches are recorded in golden.json, so the Swift side need not reproduce torch's RNG: read them.

Init (irrelevant to Swift, which loads init.safetensors): torch.manual_seed(1337), nanoGPT's _init_weights
  (normal std 0.02 for Linear and Embedding weights, zero biases; then every *c_proj.weight std
  0.02/sqrt(2*n_layer)), then, so LayerNorm and bias gradients are non-trivial, in named_parameters()
  order from the same global RNG stream: every LayerNorm weight += N(0, 0.1), every bias (Linear and
  LayerNorm) += N(0, 0.02).

Training loop, per step it = 0 ..< 20:
  zero_grad; loss = forward(x, y); loss.backward();
  grad_norm = clip_grad_norm_(params, 1.0)   (global L2 norm over ALL gradients, before clipping; recorded)
      PyTorch's clipping: coef = min(1, 1.0 / (grad_norm + 1e-6)); every grad *= coef (the multiply is done
      even when coef == 1). Note the +1e-6.
  lr(it) set on both groups; optimizer.step().
  lr(it): max_lr = 1e-3, min_lr = 1e-4, warmup = 5, decay_iters = 20
      it < warmup:  lr = max_lr * (it + 1) / warmup
      else:         ratio = (it - warmup) / (decay_iters - warmup);
                    lr = min_lr + 0.5 * (1 + cos(pi * ratio)) * (max_lr - min_lr)
  (The "loss" recorded is the loss of that step's forward, i.e. before that step's update.)

AdamW (torch.optim.AdamW, foreach=False, fused=False, betas (0.9, 0.95), eps 1e-8, amsgrad off):
  groups: weight_decay 0.1 for every parameter with dim >= 2 (wte, wpe, all Linear weights),
          0.0 for the rest (biases, LayerNorm weights and biases).
  for each param p with (clipped) grad g, step count t = it + 1 (starting at 1):
      p *= 1 - lr * wd                          (decoupled decay, applied first)
      m = 0.9 * m + 0.1 * g                     (torch uses m.lerp_(g, 0.1): m + 0.1*(g - m))
      v = 0.95 * v + 0.05 * g * g
      bc1 = 1 - 0.9^t;  bc2 = 1 - 0.95^t
      denom = sqrt(v) / sqrt(bc2) + eps         (eps added AFTER the bias correction of sqrt(v))
      p -= (lr / bc1) * m / denom
  m, v start at zero. Since wte is tied, it is one parameter and gets one update from the summed gradient
  (embedding lookup + output projection).

Determinism: torch.set_num_threads(1), torch.use_deterministic_algorithms(True). The script asserts that
reloading init.safetensors into a fresh model reproduces step 0's loss and gradients exactly, and that a
second full 20-step run from the reloaded init reproduces weights_step20 exactly.

Usage (from the repository root): /work/venv-gold/bin/python scripts/goldens/make_training_goldens.py
  (needs torch and safetensors: pip install torch safetensors)
"""
import json
import math
import pathlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXT = ROOT / "Tests/TesseraEngineTests/Resources/hamlet-excerpt.txt"
OUT = ROOT / "Tests/TesseraTrainingTests/Goldens/gpt-tiny"

N_LAYER, N_HEAD, N_EMBD, BLOCK_SIZE = 2, 4, 32, 16
BATCH, STEPS = 4, 20
MAX_LR, MIN_LR, WARMUP, DECAY_ITERS = 1e-3, 1e-4, 5, 20
BETAS, EPS, WEIGHT_DECAY, CLIP = (0.9, 0.95), 1e-8, 0.1, 1.0
LN_EPS = 1e-5


class CausalSelfAttention(nn.Module):
    def __init__(self, C, n_head):
        super().__init__()
        self.c_attn = nn.Linear(C, 3 * C, bias=True)
        self.c_proj = nn.Linear(C, C, bias=True)
        self.n_head = n_head

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        hd = C // self.n_head
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C, bias=True)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * C, C, bias=True)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, C, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=LN_EPS, bias=True)
        self.attn = CausalSelfAttention(C, n_head)
        self.ln_2 = nn.LayerNorm(C, eps=LN_EPS, bias=True)
        self.mlp = MLP(C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, N_EMBD),
            wpe=nn.Embedding(BLOCK_SIZE, N_EMBD),
            h=nn.ModuleList([Block(N_EMBD, N_HEAD) for _ in range(N_LAYER)]),
            ln_f=nn.LayerNorm(N_EMBD, eps=LN_EPS, bias=True),
        ))
        self.lm_head = nn.Linear(N_EMBD, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying, as nanoGPT
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * N_LAYER))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        B, T = idx.shape
        pos = torch.arange(0, T, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def param_dict(model):
    # named_parameters() de-duplicates the tied weight: only transformer.wte.weight appears.
    return {n: p for n, p in model.named_parameters()}


def lr_at(it):
    if it < WARMUP:
        return MAX_LR * (it + 1) / WARMUP
    ratio = (it - WARMUP) / (DECAY_ITERS - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (MAX_LR - MIN_LR)


def make_optimizer(model):
    params = param_dict(model)
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=MAX_LR, betas=BETAS, eps=EPS, foreach=False, fused=False)


def snapshot(model):
    return {n: p.detach().clone().contiguous() for n, p in param_dict(model).items()}


def train(model, batches, on_step=None):
    """Runs len(batches) steps from step 0; returns [(loss, lr, grad_norm)]. on_step("grads", it, model) is
    called after backward (before clipping), on_step("weights", it, model) after the optimizer step."""
    opt = make_optimizer(model)
    params = list(param_dict(model).values())
    records = []
    for it, (x, y) in enumerate(batches):
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        if on_step is not None:
            on_step("grads", it, model)
        norm = torch.nn.utils.clip_grad_norm_(params, CLIP)
        lr = lr_at(it)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        records.append((loss.item(), lr, norm.item()))
        if on_step is not None:
            on_step("weights", it, model)
    return records


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    text = TEXT.read_text(encoding="utf-8")
    vocab = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(vocab)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    V = len(vocab)

    # Model and init.
    torch.manual_seed(1337)
    model = GPT(V)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".ln_" in n or n.startswith("transformer.ln_f"):
                if n.endswith(".weight"):
                    p.add_(torch.randn_like(p) * 0.1)
            if n.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.02)
    init = snapshot(model)

    # Batches.
    g = torch.Generator().manual_seed(42)
    batches = []
    for it in range(STEPS):
        offs = torch.randint(len(ids) - BLOCK_SIZE, (BATCH,), generator=g)
        x = torch.stack([ids[o:o + BLOCK_SIZE] for o in offs])
        y = torch.stack([ids[o + 1:o + 1 + BLOCK_SIZE] for o in offs])
        if it == 3:
            y[0, -3:] = -1
        batches.append((x, y))

    saved = {}

    def hook(kind, it, m):
        if kind == "grads" and it == 0:
            saved["grads0"] = {n: p.grad.detach().clone().contiguous() for n, p in param_dict(m).items()}
        if kind == "weights" and it == 0:
            saved["w1"] = snapshot(m)

    records = train(model, batches, hook)
    w20 = snapshot(model)

    OUT.mkdir(parents=True, exist_ok=True)
    save_file(init, str(OUT / "init.safetensors"))
    save_file(saved["grads0"], str(OUT / "grads_step0.safetensors"))
    save_file(saved["w1"], str(OUT / "weights_step1.safetensors"))
    save_file(w20, str(OUT / "weights_step20.safetensors"))

    golden = {
        "config": {
            "n_layer": N_LAYER, "n_head": N_HEAD, "n_embd": N_EMBD, "block_size": BLOCK_SIZE,
            "vocab_size": V, "bias": True, "dropout": 0.0, "tied_embeddings": True, "ln_eps": LN_EPS,
            "gelu": "erf", "batch_size": BATCH, "steps": STEPS,
            "optimizer": "AdamW", "beta1": BETAS[0], "beta2": BETAS[1], "adam_eps": EPS,
            "weight_decay": WEIGHT_DECAY, "weight_decay_applies_to": "params with dim >= 2",
            "max_lr": MAX_LR, "min_lr": MIN_LR, "warmup_iters": WARMUP, "lr_decay_iters": DECAY_ITERS,
            "grad_clip": CLIP, "clip_eps": 1e-6, "ignore_index": -1,
            "init_seed": 1337, "batch_seed": 42, "text": "Tests/TesseraEngineTests/Resources/hamlet-excerpt.txt",
        },
        "vocab": "".join(vocab),
        "steps": [
            {"it": it, "x": x.tolist(), "y": y.tolist(), "loss": loss, "lr": lr, "grad_norm": norm}
            for it, ((x, y), (loss, lr, norm)) in enumerate(zip(batches, records))
        ],
        "tolerances_note": (
            "PyTorch f32 CPU, single thread. Suggested: step-0 loss to ~1e-5 relative; grads_step0 to "
            "~1e-4 relative to each tensor's max |value| (plus ~1e-7 absolute); weights_step1 to ~1e-6 "
            "absolute (the first Adam step moves each weight by about lr*sign(g), so tiny gradients near "
            "zero can flip: compare with atol ~ 2*lr = 4e-4 for elements whose step-0 gradient is below "
            "~1e-6 in magnitude, or check the max |diff| and the fraction over tolerance); losses over 20 "
            "steps to ~1e-4 relative; weights_step20 to ~1e-4 absolute. grad_norm is the pre-clip norm. "
            "Step 3 has 3 ignored targets (-1) in row 0."
        ),
    }
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")

    # Verification: reload init, step 0 loss and grads reproduce exactly; full rerun reproduces step 20.
    def fresh_from(path):
        torch.manual_seed(0)
        m = GPT(V)
        sd = load_file(str(path))
        assert set(sd) == set(param_dict(m)), (sorted(sd), sorted(param_dict(m)))
        with torch.no_grad():
            for n, p in param_dict(m).items():
                assert p.shape == sd[n].shape and sd[n].dtype == torch.float32
                p.copy_(sd[n])
        assert m.lm_head.weight is m.transformer.wte.weight
        return m

    m = fresh_from(OUT / "init.safetensors")
    x0, y0 = batches[0]
    loss0 = m(x0, y0)
    loss0.backward()
    assert loss0.item() == records[0][0], (loss0.item(), records[0][0])
    g0 = load_file(str(OUT / "grads_step0.safetensors"))
    for n, p in param_dict(m).items():
        assert torch.equal(p.grad, g0[n]), n

    m = fresh_from(OUT / "init.safetensors")
    rerun = train(m, batches)
    assert rerun == records, (rerun, records)
    w20r = load_file(str(OUT / "weights_step20.safetensors"))
    for n, p in param_dict(m).items():
        assert torch.equal(p.detach(), w20r[n]), n
    # The step-3 batch's loss really ignores the 3 targets.
    assert (batches[3][1] == -1).sum().item() == 3

    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"vocab_size {V}, params {sum(p.numel() for p in param_dict(model).values())}, wrote {total} bytes to {OUT}")
    print(f"initial loss {records[0][0]:.6f} (ln V = {math.log(V):.6f})")
    for it, (loss, lr, norm) in enumerate(records):
        print(f"it {it:2d}  loss {loss:.6f}  lr {lr:.6e}  grad_norm {norm:.6f}")


if __name__ == "__main__":
    main()
