#!/usr/bin/env python3
"""Time to first token of a short prompt tail after a prefix-cache hit, against the same number of
fresh tokens and against the whole prompt uncached (docs/batching.md, "Batch invariance").

Starts `tessera serve` on the default model; each trial sends a fresh 200-token prompt (random ids),
then that prompt plus 5 tokens (192 cached, 13 computed), then a fresh 13-token prompt; max_tokens 1.

    python3 scripts/bench/prefix_tail_ttft.py [--tessera .build/release/tessera] [--trials 5]
"""
import argparse
import os
import random
import sys
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from e2e_openai import Server  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", default=".build/release/tessera")
    parser.add_argument("--port", type=int, default=18111)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    server = Server(args.tessera, args.port)

    def first_token(prompt):
        start = time.perf_counter()
        r = httpx.post(server.base + "/v1/completions", json={"prompt": prompt, "max_tokens": 1, "temperature": 0}, timeout=120)
        r.raise_for_status()
        return (time.perf_counter() - start) * 1000, r.json()["usage"]["prompt_tokens_details"]["cached_tokens"]

    rng = random.Random(1)
    ids = lambda n: [rng.randrange(1000, 40000) for _ in range(n)]  # noqa: E731
    try:
        for _ in range(args.trials):
            prompt = ids(200)
            whole, _ = first_token(prompt)
            tail, cached = first_token(prompt + ids(5))
            fresh, _ = first_token(ids(13))
            print(f"200 tokens uncached {whole:.0f} ms | 205 tokens, {cached} cached, {205 - cached} computed {tail:.0f} ms"
                  f" | 13 fresh tokens {fresh:.0f} ms", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
