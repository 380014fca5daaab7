#!/usr/bin/env python3
"""PyTorch CPU training-throughput peer for `tessera bench train`: nanoGPT's shakespeare-char shape.

Model: nanoGPT's GPT (the same architecture as scripts/goldens/make_training_goldens.py): n_layer 6,
n_head 6, n_embd 384, block_size 256, vocab 65 (char level), dropout 0, bias True, f32, tied
wte/lm_head, pre-LN blocks, exact-erf GELU, LayerNorm eps 1e-5. Attention through
F.scaled_dot_product_attention(is_causal=True), as nanoGPT does on torch >= 2.0 (--attention manual:
the explicit softmax(QK^T/sqrt(d)) path instead).
Optimizer: torch.optim.AdamW, betas (0.9, 0.95), eps 1e-8, fixed lr 1e-3, weight decay 0.1 on params
with dim >= 2 and 0 on the rest, foreach=False/fused=False (plain per-parameter loop); gradient clipping
to 1.0. Batches: batch 8 x 256 random token ids (torch.manual_seed(0)).

One step = zero_grad + forward + cross-entropy loss + backward + clip_grad_norm_ + optimizer.step().
--warmup steps are run untimed, then --steps timed steps; reports the median step time and
tokens/s = batch*block_size / median step seconds. "params" counts unique parameters (the tied
embedding once, position embedding included): 10,770,816 for this shape (nanoGPT prints 10.65M: it
  leaves out wpe).

Usage: python3 scripts/bench/pytorch_train_bench.py [--threads 2] [--steps 10] [--warmup 2] [--json]
  With --json, stdout is exactly one line:
  {"tokens_per_second": ..., "step_seconds_median": ..., "threads": ..., "params": ...}
  (everything else goes to stderr).
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N_LAYER, N_HEAD, N_EMBD, BLOCK_SIZE, VOCAB, BATCH = 6, 6, 384, 256, 65, 8


class CausalSelfAttention(nn.Module):
    def __init__(self, C, n_head, sdpa):
        super().__init__()
        self.c_attn = nn.Linear(C, 3 * C, bias=True)
        self.c_proj = nn.Linear(C, C, bias=True)
        self.n_head, self.sdpa = n_head, sdpa

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        hd = C // self.n_head
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
            att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
            y = att @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, C, n_head, sdpa):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = CausalSelfAttention(C, n_head, sdpa)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = nn.Sequential()
        self.mlp.c_fc = nn.Linear(C, 4 * C, bias=True)
        self.mlp.gelu = nn.GELU()
        self.mlp.c_proj = nn.Linear(4 * C, C, bias=True)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, sdpa):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(VOCAB, N_EMBD),
            wpe=nn.Embedding(BLOCK_SIZE, N_EMBD),
            h=nn.ModuleList([Block(N_EMBD, N_HEAD, sdpa) for _ in range(N_LAYER)]),
            ln_f=nn.LayerNorm(N_EMBD, eps=1e-5),
        ))
        self.lm_head = nn.Linear(N_EMBD, VOCAB, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * N_LAYER))

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1), ignore_index=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--attention", choices=["sdpa", "manual"], default="sdpa")
    ap.add_argument("--json", action="store_true", help="print only one JSON line on stdout")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(args.attention == "sdpa")
    model.train()
    params = dict(model.named_parameters())  # tied weight appears once
    n_params = sum(p.numel() for p in params.values())
    groups = [{"params": [p for p in params.values() if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, foreach=False, fused=False)
    plist = list(params.values())

    def step():
        x = torch.randint(VOCAB, (BATCH, BLOCK_SIZE))
        y = torch.randint(VOCAB, (BATCH, BLOCK_SIZE))
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plist, 1.0)
        opt.step()
        return loss.item()

    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, params {n_params:,}, "
        f"batch {BATCH} x {BLOCK_SIZE}, attention {args.attention}")
    for i in range(args.warmup):
        t0 = time.perf_counter()
        loss = step()
        log(f"warmup {i}: {time.perf_counter() - t0:.3f} s  loss {loss:.4f}")
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        log(f"step {i}: {times[-1]:.3f} s  loss {loss:.4f}")
    med = statistics.median(times)
    tps = BATCH * BLOCK_SIZE / med
    if args.json:
        print(json.dumps({"tokens_per_second": tps, "step_seconds_median": med,
                          "threads": args.threads, "params": n_params}), flush=True)
    else:
        print(f"median step {med:.3f} s, {tps:.1f} tokens/s ({args.steps} timed steps, {args.threads} threads)")


if __name__ == "__main__":
    main()
