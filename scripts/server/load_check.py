#!/usr/bin/env python3
"""Load check of `tessera serve`: N concurrent streaming chat clients (the official openai package)
for a fixed time. Every request must complete or be refused with a clear HTTP status; the server must
stay up with bounded memory. Prints request counts by outcome, TTFT and inter-token latency
percentiles, output tokens/s and the server's resident memory over the run.

    python3 scripts/server/load_check.py [--clients 32] [--seconds 60] [--max-tokens 32]
"""
import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

import httpx
import openai

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_openai import Server  # noqa: E402

PROMPTS = ["Tell me about the sea.", "What is a good name for a cat?", "Explain rain to a child.", "Write a haiku about autumn.",
           "What is the capital of Italy?", "Give me three colours.", "How do birds fly?", "Describe a city at night."]


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def client_loop(index, client, model, deadline, max_tokens, stats):
    i = index
    while time.time() < deadline:
        prompt = PROMPTS[i % len(PROMPTS)]
        i += 1
        start = time.perf_counter()
        first, last, tokens = None, None, 0
        try:
            stream = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                          max_tokens=max_tokens, temperature=0.7, stream=True,
                                                          stream_options={"include_usage": True})
            async for chunk in stream:
                now = time.perf_counter()
                if chunk.choices and chunk.choices[0].delta.content:
                    if first is None:
                        first = now
                        stats["ttft"].append(now - start)
                    else:
                        stats["itl"].append(now - last)
                    last = now
                if chunk.usage:
                    tokens = chunk.usage.completion_tokens
            stats["completed"] += 1
            stats["tokens"] += tokens
            stats["e2e"].append(time.perf_counter() - start)
        except openai.APIStatusError as e:
            # A clear refusal is "too many requests" or "unavailable" (the queue is full); any other
            # status (a 500, a 400 for a valid request) is a failure.
            if e.status_code in (429, 503):
                stats["refused"][e.status_code] = stats["refused"].get(e.status_code, 0) + 1
                await asyncio.sleep(0.5)
            else:
                stats["errors"].append(f"HTTP {e.status_code}: {e.message}")
        except Exception as e:  # a dropped connection or a malformed stream is a failure
            stats["errors"].append(f"{type(e).__name__}: {e}")


async def run(args, base, model):
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=args.clients + 8), timeout=httpx.Timeout(600))
    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", http_client=http, max_retries=0)
    stats = {"ttft": [], "itl": [], "e2e": [], "completed": 0, "tokens": 0, "refused": {}, "errors": []}
    deadline = time.time() + args.seconds
    started = time.time()
    await asyncio.gather(*(client_loop(i, client, model, deadline, args.max_tokens, stats) for i in range(args.clients)))
    stats["wall"] = time.time() - started
    await http.aclose()
    return stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", default=".build/release/tessera")
    parser.add_argument("--model", default=None)
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--kv-cache-memory", type=int, default=128,
                        help="MiB of paged KV cache: small enough that the run fills it and recycles its blocks early")
    args = parser.parse_args()

    server = Server(args.tessera, args.port, model=args.model, extra=["--kv-cache-memory", str(args.kv_cache_memory)])
    model = httpx.get(server.base + "/v1/models").json()["data"][0]["id"]
    pid = server.process.pid
    memory = [rss_mb(pid)]
    sampling = True

    def sample():
        while sampling:
            memory.append(rss_mb(pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stats = asyncio.run(run(args, server.base, model))
    sampling = False
    sampler.join()
    healthy = httpx.get(server.base + "/health").status_code == 200
    code = server.stop()

    ms = lambda v: f"{v * 1000:.0f} ms"  # noqa: E731
    print(f"{args.clients} streaming clients for {args.seconds:.0f} s (ran {stats['wall']:.1f} s), max_tokens {args.max_tokens}")
    print(f"  completed {stats['completed']}, refused {stats['refused'] or 0}, failed {len(stats['errors'])}")
    print(f"  output tokens/s      {stats['tokens'] / stats['wall']:.1f}")
    for name in ("ttft", "itl", "e2e"):
        values = stats[name]
        print(f"  {name:<5} p50 {ms(percentile(values, 50)):>9}  p90 {ms(percentile(values, 90)):>9}  p99 {ms(percentile(values, 99)):>9}"
              f"  mean {ms(statistics.mean(values)) if values else 'nan':>9}  (n={len(values)})")
    # Bounded memory: the KV-cache pool (small here) is filled and recycled in the first seconds, and
    # the allocator's arenas reach their size soon after; from then on the server's memory is flat. So
    # the most it holds in the last quarter of the run may not pass the most it held in the first
    # half by more than 10% or 64 MB; a leak per request grows through the run and fails this.
    print("  RSS MB every 5 s:", [round(m) for m in memory[::10]])
    half, quarter = max(1, len(memory) // 2), max(1, len(memory) // 4)
    early, late = max(memory[:half]), max(memory[-quarter:])
    bounded = late <= early + max(64, 0.1 * early)
    print(f"  server RSS MB: start {memory[0]:.0f}, max {max(memory):.0f}, end {memory[-1]:.0f}; "
          f"first half max {early:.0f}, last quarter max {late:.0f}: {'bounded' if bounded else 'GROWING'}")
    print(f"  healthy after the run: {healthy}; exit code after SIGTERM: {code}")
    for e in stats["errors"][:5]:
        print("  error:", e)
    ok = not stats["errors"] and healthy and code == 0 and stats["completed"] > 0 and bounded
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
