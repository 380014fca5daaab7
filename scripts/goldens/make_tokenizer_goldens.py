#!/usr/bin/env python3
"""Token-id goldens for Tessera's byte-level BPE tokenizer, from Hugging Face `tokenizers`.

Builds SmolLM2's tokenizer the way its tokenizer.json defines it — BPE over GPT-2 byte-level symbols,
pre-tokenised by Digits(individual_digits) then ByteLevel(add_prefix_space=False, GPT-2 regex), the
control tokens as special tokens — from the vocabulary and merges stored in the GGUF file, encodes a set
of test strings, and writes Tests/TesseraTokenizersTests/Goldens/smollm2.json with the strings, their
ids, and the vocabulary/merges the Swift test needs (so tests need neither Python nor the model).

Usage: pip install gguf tokenizers; python3 scripts/goldens/make_tokenizer_goldens.py SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import pathlib
import sys

from gguf import GGUFReader
from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE

TEXTS = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "  leading and trailing spaces  ",
    "numbers: 12345 and 3.14159, 2026-11-27", "tabs\tand\nnewlines\n\n  indented", "Ünïcödé façade naïve café",
    "日本語のテキスト", "emoji 🤖🚀 and symbols ∑∫√", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "def f(x):\n    return x ** 2  # square", "don't won't I'm we've they'll it's", "a" * 40, "",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json", "   ", "Mixed CASE and snake_case_identifiers",
]

def main():
    reader = GGUFReader(sys.argv[1])
    def field(name):
        f = reader.fields[name]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    tokens = field("tokenizer.ggml.tokens")
    merges = field("tokenizer.ggml.merges")
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [t for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    cases = [{"text": t, "ids": tok.encode(t).ids} for t in TEXTS]
    out = {"tokens": tokens, "merges": merges, "special": specials, "cases": cases}
    path = pathlib.Path(__file__).resolve().parents[2] / "Tests/TesseraTokenizersTests/Goldens/smollm2.json"
    path.write_text(json.dumps(out, ensure_ascii=False))
    print(f"wrote {path}: {len(cases)} cases, {len(tokens)} tokens, {len(merges)} merges, {len(specials)} special")
    for c in cases[:3]:
        print(c)

if __name__ == "__main__":
    main()
