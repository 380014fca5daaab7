#!/usr/bin/env python3
"""Token-id goldens for Tessera's tokenizers, from Hugging Face `tokenizers` / `transformers`.

Four sources, each optional (pass the ones you have):

  --smollm2 FILE.gguf   SmolLM2's byte-level BPE built by hand the way its tokenizer.json defines it
                        (Digits(individual_digits) then ByteLevel with the GPT-2 regex, control tokens
                        special); writes Goldens/smollm2.json with the vocabulary and merges, so that
                        test needs neither Python nor the model.
  --gemma3 FILE.gguf    Gemma 3 (SentencePiece BPE, byte fallback, no dummy prefix) and
  --qwen25 FILE.gguf    Qwen2.5 (byte-level BPE, the Qwen2 regex), both built by transformers' own GGUF
                        conversion (AutoTokenizer.from_pretrained(dir, gguf_file=...)); writes
                        Goldens/gemma3.json and Goldens/qwen25.json with the ids only (the vocabularies
                        are 262k and 152k tokens; the tests read the GGUF from the model cache), and the
                        converted tokenizer.json to $TESSERA_CACHE/tokenizers/NAME/ for the tokenizer.json
                        loader's test.
  --llama-cpp DIR       llama.cpp's vocabulary test cases (vendor/llama.cpp/models of the
                        llama-cpp-python sdist): ggml-vocab-NAME.gguf.inp/.out go to Goldens/llama-cpp/,
                        the GGUF too when under 5 MB, else to $TESSERA_CACHE/llama-vocab/ (the test skips
                        a vocabulary it cannot find). Also writes Goldens/llama-spm-tokenizer.json: the
                        llama-spm vocabulary converted by transformers (Metaspace + byte fallback), with
                        ids for the corpus, to hold the tokenizer.json loader to HF on a SentencePiece model.

$TESSERA_CACHE defaults to ~/.cache/tessera.

Usage: pip install transformers tokenizers gguf sentencepiece protobuf
       python3 scripts/goldens/make_tokenizer_goldens.py --smollm2 ... --gemma3 ... --qwen25 ... --llama-cpp ...
"""
import argparse
import json
import os
import pathlib
import shutil

GOLDENS = pathlib.Path(__file__).resolve().parents[2] / "Tests/TesseraTokenizersTests/Goldens"
CACHE = pathlib.Path(os.environ.get("TESSERA_CACHE", pathlib.Path.home() / ".cache/tessera"))

# The corpus every tokenizer is held to: prose, code, whitespace runs, numbers, accents (precomposed and
# combining), scripts (CJK, Cyrillic, Arabic, Devanagari, Thai, Korean), emoji (ZWJ sequences, skin
# tones, flags, keycaps), URLs, contractions in both cases, and each family's special tokens.
TEXTS = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "  leading and trailing spaces  ",
    "numbers: 12345 and 3.14159, 2026-11-27", "tabs\tand\nnewlines\n\n  indented", "Ünïcödé façade naïve café",
    "日本語のテキスト", "emoji 🤖🚀 and symbols ∑∫√", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "def f(x):\n    return x ** 2  # square", "don't won't I'm we've they'll it's", "a" * 40, "",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json", "   ", "Mixed CASE and snake_case_identifiers",
    # Added with the SentencePiece and Llama 3 / Qwen2 tokenizers.
    "Hello world", " Hello world", "Hello  world   with    runs     of spaces", "\n\n\n", "\t\t\tdeep tabs",
    "DON'T WON'T I'M WE'VE THEY'LL IT'S 'RE 'd", "1234567890 1,000,000 3.14e-10 0x1F ½ ² ٣ 一二三",
    "combining: e\u0301 a\u0308 n\u0303 vs é ä ñ", "Ελληνικά, русский текст, العربية, हिन्दी, ไทย, 한국어",
    "中文：你好，世界！这是一个测试。", "family 👨\u200d👩\u200d👧\u200d👦, rainbow 🏳️\u200d🌈, thumbs 👍🏽, flags 🇫🇷🇯🇵🇺🇸, keycap 1️⃣",
    "https://example.com/path/to/page?q=tokenizer&lang=en#section-2 and mailto:someone@example.org",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n", "    if x:\n        pass\n    else:\n        return None",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n", "<bos>text after bos",
    "<|fim_prefix|>def add(a, b):<|fim_suffix|>\n<|fim_middle|>", "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<table><tr><td>cell</td></tr></table>", "literal <0x41> and <unk> and [multimodal]",
    "non\u00a0breaking\u2003em\u3000ideographic spaces", "zero\u200bwidth\u200cjoiners\u200d", "x" * 300 + " " + "ab" * 50,
    "A\r\n\r\nB\n\r\nC", "!!!!!!???...,,,;;;", "$1.99 €2,50 £3 ¥400 ₿0.001",
]


def gguf_strings(reader, name):
    f = reader.fields[name]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def write(name, payload):
    path = GOLDENS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def smollm2(path):
    from gguf import GGUFReader
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    reader = GGUFReader(path)
    tokens = gguf_strings(reader, "tokenizer.ggml.tokens")
    merges = gguf_strings(reader, "tokenizer.ggml.merges")
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
    write("smollm2.json", {"tokens": tokens, "merges": merges, "special": specials, "cases": cases})


def from_gguf(path, golden_name, cache_name):
    """ids from transformers' GGUF conversion, and its tokenizer.json to the cache."""
    from transformers import AutoTokenizer

    path = pathlib.Path(path)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in TEXTS]
    with_special = tok.encode("Hello", add_special_tokens=True)
    write(golden_name, {
        "model": path.name, "source": f"transformers {__import__('transformers').__version__} AutoTokenizer(gguf_file=)",
        "hello_with_special_tokens": with_special, "cases": cases,
    })
    out = CACHE / "tokenizers" / cache_name
    out.mkdir(parents=True, exist_ok=True)
    tok.backend_tokenizer.save(str(out / "tokenizer.json"))
    print(f"wrote {out / 'tokenizer.json'}")


def llama_cpp(models):
    from transformers import AutoTokenizer

    models = pathlib.Path(models)
    target = GOLDENS / "llama-cpp"
    target.mkdir(parents=True, exist_ok=True)
    large = CACHE / "llama-vocab"
    for name in ["llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2"]:
        gguf = models / f"ggml-vocab-{name}.gguf"
        for suffix in [".inp", ".out"]:
            shutil.copy(str(gguf) + suffix, target / (gguf.name + suffix))
        if gguf.stat().st_size < 5_000_000:
            shutil.copy(gguf, target / gguf.name)
            print(f"copied {gguf.name} into {target}")
        else:
            large.mkdir(parents=True, exist_ok=True)
            shutil.copy(gguf, large / gguf.name)
            print(f"copied {gguf.name} ({gguf.stat().st_size} bytes) to {large}")
    # A SentencePiece tokenizer.json (Metaspace pre-tokenizer, byte fallback, merges from the scores).
    tok = AutoTokenizer.from_pretrained(str(models), gguf_file="ggml-vocab-llama-spm.gguf")
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in TEXTS]
    write("llama-spm-tokenizer.json", {
        "tokenizer": json.loads(tok.backend_tokenizer.to_str()), "cases": cases,
        "hello_with_special_tokens": tok.encode("Hello", add_special_tokens=True),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smollm2")
    parser.add_argument("--gemma3")
    parser.add_argument("--qwen25")
    parser.add_argument("--llama-cpp", dest="llama_cpp")
    args = parser.parse_args()
    if args.smollm2:
        smollm2(args.smollm2)
    if args.gemma3:
        from_gguf(args.gemma3, "gemma3.json", "gemma-3-270m")
    if args.qwen25:
        from_gguf(args.qwen25, "qwen25.json", "qwen2.5-coder-0.5b")
    if args.llama_cpp:
        llama_cpp(args.llama_cpp)


if __name__ == "__main__":
    main()
