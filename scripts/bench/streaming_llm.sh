#!/usr/bin/env bash
# StreamingLLM's experiment on SmolLM2-135M and the shakespeare corpus, plus int8 KV perplexity:
#   1. a 512-token cache as a plain window (no sinks), streaming the text token chunk by chunk;
#   2. the same 512 tokens as 4 attention sinks + a 508-token window;
#   3. recomputation: a 512-token window every 128 tokens, each from an empty cache;
#   4. llama.cpp's perplexity method (chunks of 512) with f32 and int8 KV caches.
# Writes per-1000-token perplexity curves to $OUT (default docs/data/kv-cache) and prints the figures.
# Usage: scripts/bench/streaming_llm.sh [TOKENS]   (needs scripts/bench/make_shakespeare_corpus.sh first)
set -euo pipefail
tokens="${1:-20481}"
out="${OUT:-docs/data/kv-cache}"
corpus="${HOME}/.cache/tessera/corpora/shakespeare.txt"
[ -f "$corpus" ] || scripts/bench/make_shakespeare_corpus.sh
swift build -c release --product tessera >/dev/null
t=.build/release/tessera
mkdir -p "$out"
run() { echo "== $*" >&2; "$t" perplexity "$corpus" --limit-tokens "$tokens" "$@"; }
run --stream --kv-cache window --kv-window 512 --curve "$out/window.csv"
run --stream --kv-cache sinks --kv-sinks 4 --kv-window 508 --curve "$out/sinks.csv"
run --stride 128 --ctx 512 --curve "$out/recompute.csv"
run --stream --kv-cache sinks --kv-sinks 4 --kv-window 508 --kv-type int8 --curve "$out/sinks-int8.csv"
run --ctx 512 --kv-type f32
run --ctx 512 --kv-type int8
