#!/usr/bin/env bash
# How much concurrency buys, by request shape: `tessera serve` at concurrency 1 and 16 for prompts and
# outputs of several lengths (random prompt ids, ignore_eos), and the ratio of the two throughputs —
# the second target of the batching issue. With a llama.cpp server binary, each shape's concurrency-16
# level runs against it too (-np 32, continuous batching on), for the first target. Writes CSVs and
# a markdown table to OUT.
#
#   scripts/bench/serve_shapes.sh [PATH/TO/llama-server] [OUT=runs/serve-shapes]
#
# SHAPES="INPUT:OUTPUT ..." (default "128:64 32:256 512:64"), PROMPTS (requests per level, default 32),
# PRECISION=int8 for 8-bit activations (default: fast, 16-bit).
set -euo pipefail
LLAMA_SERVER=${1:-}
OUT=${2:-runs/serve-shapes}
TESSERA=${TESSERA:-.build/release/tessera}
MODEL=${MODEL:-${TESSERA_CACHE:-$HOME/.cache/tessera}/models/SmolLM2-135M-Instruct.Q4_1.gguf}
PROMPTS=${PROMPTS:-32}
SHAPES=${SHAPES:-128:64 32:256 512:64}
PRECISION=${PRECISION:-fast}
mkdir -p "$OUT"
source "$(dirname "$0")/servers.sh"

"$TESSERA" serve --model "$MODEL" --port 8093 --threads 2 --precision "$PRECISION" --log-level warning > "$OUT/tessera.log" 2>&1 &
pids+=($!)
wait_healthy http://127.0.0.1:8093
if [ -n "$LLAMA_SERVER" ]; then
    "$LLAMA_SERVER" -m "$MODEL" --port 8094 -t 2 -tb 2 -np 32 -c 65536 -cb --log-disable > "$OUT/llama-server.log" 2>&1 &
    pids+=($!)
    wait_healthy http://127.0.0.1:8094
fi

{
    echo "| prompt tokens | output tokens | Tessera c1 tok/s | Tessera c16 tok/s | c16 / c1 | llama.cpp c16 tok/s | Tessera / llama.cpp at c16 |"
    echo "|---|---|---|---|---|---|---|"
} > "$OUT/shapes.md"
for shape in $SHAPES; do
    input=${shape%%:*} output=${shape##*:}
    "$TESSERA" bench serve --target tessera=http://127.0.0.1:8093 --num-prompts "$PROMPTS" --input-len "$input" \
        --output-len "$output" --concurrency 1,16 --fail-on-error --csv "$OUT/tessera-$input-$output.csv" | tee "$OUT/tessera-$input-$output.txt"
    c1=$(awk -F, '$2 == 1 { print $4 }' "$OUT/tessera-$input-$output.csv")
    c16=$(awk -F, '$2 == 16 { print $4 }' "$OUT/tessera-$input-$output.csv")
    peer=- versus=-
    if [ -n "$LLAMA_SERVER" ]; then
        "$TESSERA" bench serve --target llama.cpp=http://127.0.0.1:8094 --num-prompts "$PROMPTS" --input-len "$input" \
            --output-len "$output" --concurrency 16 --csv "$OUT/llama-$input-$output.csv" | tee "$OUT/llama-$input-$output.txt"
        peer=$(awk -F, '$2 == 16 { printf "%.1f", $4 }' "$OUT/llama-$input-$output.csv")
        versus=$(awk -v a="$c16" -v b="$peer" 'BEGIN { printf "%.2fx", a / b }')
    fi
    awk -v i="$input" -v o="$output" -v a="$c1" -v b="$c16" -v p="$peer" -v v="$versus" \
        'BEGIN { printf "| %d | %d | %.1f | %.1f | %.2fx | %s | %s |\n", i, o, a, b, b / a, p, v }' >> "$OUT/shapes.md"
done
cat "$OUT/shapes.md"
