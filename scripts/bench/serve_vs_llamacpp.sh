#!/usr/bin/env bash
# Continuous batching side by side: `tessera serve` and llama.cpp's server (-np 32, continuous
# batching on; 2048 tokens of context per slot) on the same model, 2 threads each, driven by `tessera bench serve` with the same
# prompts at concurrency 1, 4, 8, 16, 32; then the prefix-heavy scenario (a shared 1k-token system
# prompt) with Tessera's prefix caching on and off. Writes CSVs, tables and plots to OUT.
#
#   scripts/bench/serve_vs_llamacpp.sh PATH/TO/llama-server [OUT=runs/serve-bench]
#
# PRECISION=int8 serves Tessera with 8-bit activations (llama.cpp's arithmetic; default: fast, 16-bit).
set -euo pipefail
LLAMA_SERVER=${1:?usage: $0 PATH/TO/llama-server [OUT]}
OUT=${2:-runs/serve-bench}
TESSERA=${TESSERA:-.build/release/tessera}
MODEL=${MODEL:-${TESSERA_CACHE:-$HOME/.cache/tessera}/models/SmolLM2-135M-Instruct.Q4_1.gguf}
PROMPTS=${PROMPTS:-32}
INPUT=${INPUT:-128}
OUTPUT=${OUTPUT:-64}
PRECISION=${PRECISION:-fast}
mkdir -p "$OUT"
source "$(dirname "$0")/servers.sh"

"$TESSERA" serve --model "$MODEL" --port 8090 --threads 2 --precision "$PRECISION" --log-level warning > "$OUT/tessera.log" 2>&1 &
pids+=($!)
"$LLAMA_SERVER" -m "$MODEL" --port 8091 -t 2 -tb 2 -np 32 -c 65536 -cb --log-disable > "$OUT/llama-server.log" 2>&1 &
pids+=($!)
wait_healthy http://127.0.0.1:8090
wait_healthy http://127.0.0.1:8091

"$TESSERA" bench serve --target tessera=http://127.0.0.1:8090 --target llama.cpp=http://127.0.0.1:8091 \
    --num-prompts "$PROMPTS" --input-len "$INPUT" --output-len "$OUTPUT" --concurrency 1,4,8,16,32 \
    --csv "$OUT/concurrency.csv" | tee "$OUT/concurrency.txt"

# Prefix-heavy: every prompt starts with the same 1024 tokens.
"$TESSERA" bench serve --target tessera=http://127.0.0.1:8090 --target llama.cpp=http://127.0.0.1:8091 \
    --num-prompts 16 --input-len 1088 --prefix-len 1024 --output-len 16 --concurrency 4 --seed 7 \
    --csv "$OUT/prefix.csv" | tee "$OUT/prefix.txt"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
"$TESSERA" serve --model "$MODEL" --port 8092 --threads 2 --precision "$PRECISION" --log-level warning --no-prefix-caching > "$OUT/tessera-nocache.log" 2>&1 &
pids+=($!)
wait_healthy http://127.0.0.1:8092
"$TESSERA" bench serve --target "tessera-no-prefix-cache=http://127.0.0.1:8092" \
    --num-prompts 16 --input-len 1088 --prefix-len 1024 --output-len 16 --concurrency 4 --seed 7 \
    --csv "$OUT/prefix-off.csv" | tee "$OUT/prefix-off.txt"

# Plots: output tokens/s and TTFT p50 against concurrency.
for target in tessera llama.cpp; do
    awk -F, -v t="$target" 'NR == 1 { print "concurrency,value" } $1 == t { print $2 "," $4 }' "$OUT/concurrency.csv" > "$OUT/throughput-$target.csv"
    awk -F, -v t="$target" 'NR == 1 { print "concurrency,value" } $1 == t { print $2 "," $6 }' "$OUT/concurrency.csv" > "$OUT/ttft-$target.csv"
done
"$TESSERA" plot "$OUT/throughput-tessera.csv=Tessera" "$OUT/throughput-llama.cpp.csv=llama.cpp server" -o "$OUT/throughput.svg" \
    --x-label "concurrent clients" --y-label "output tokens/s"
"$TESSERA" plot "$OUT/ttft-tessera.csv=Tessera" "$OUT/ttft-llama.cpp.csv=llama.cpp server" -o "$OUT/ttft.svg" \
    --x-label "concurrent clients" --y-label "TTFT p50 (ms)" --log-y
echo "wrote $OUT"
