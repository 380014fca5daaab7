// `tessera bench kv-cache`: decode speed at long context with each KV cache kind, side by side with
// the full f32 cache (the ratio column), and the memory each holds. Every kind is filled with the same
// -d tokens (untimed, in chunks of 512), then decodes -n tokens one at a time per repeat, after one
// warm-up round, each round continuing where the last stopped; mean ± sd over the rounds.
// A window or sink cache attends to its window however long the sequence, so its decode speed stays
// that of a short context; int8 rows read a quarter of the bytes.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraEngine
import TesseraKVCache
import TesseraKernels
import TesseraModels

struct BenchKVCache: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv-cache", abstract: "Decode tokens/s at long context with each KV cache kind, beside the full f32 cache.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var compute: ComputeOptions
    @Option(name: .customShort("d"), help: "Tokens in the cache before decoding.") var depth = 4096
    @Option(name: .customShort("n"), help: "Tokens decoded per repeat.") var generate = 64
    @Option(name: .customShort("r"), help: "Repeats.") var repeats = 3
    @Option(help: "Window of the window and sink kinds.") var kvWindow = 512
    @Option(help: "Sinks of the sink kind.") var kvSinks = 4
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() throws {
        try compute.apply()
        guard depth >= 0, generate >= 1, repeats >= 1, kvWindow >= 1, kvSinks >= 1 else {
            throw ValidationError("-d >= 0, -n >= 1, -r >= 1, --kv-window >= 1 and --kv-sinks >= 1")
        }
        let loaded = try modelOptions.load()
        let model = loaded.model
        let layers = model.config.layerCount
        var rng = SeededGenerator(seed: 42)
        let vocab = UInt64(min(model.config.vocabularySize, loaded.tokenizer.vocabularySize))
        let tokens = (0..<(depth + generate * (repeats + 1))).map { _ in Int32(rng.next() % vocab) }
        let kinds: [(String, KVCacheOptions)] = [KVElementType.float32, .float16, .int8].flatMap { type in
            [("full \(type.rawValue)", KVCacheOptions(policy: .full, elementType: type, maxTokens: depth + generate * (repeats + 1))),
             ("window \(kvWindow) \(type.rawValue)", KVCacheOptions(policy: .window(kvWindow), elementType: type)),
             ("sinks \(kvSinks)+\(kvWindow - kvSinks) \(type.rawValue)",
              KVCacheOptions(policy: .sinks(kvSinks, window: kvWindow - kvSinks), elementType: type))]
        }
        guard depth + generate * (repeats + 1) <= model.config.contextLength else {
            throw ValidationError("-d \(depth) + -n \(generate) x \(repeats + 1) rounds exceeds the model's context (\(model.config.contextLength))")
        }
        var report = BenchReport(benchmark: "kv-cache", environment: [
            "model": loaded.path, "precision": model.precision.rawValue, "threads": "\(ThreadPool.shared.threadCount)",
            "kernels": "\(Kernels.activeID)", "cpu": CPUFeatures.current.brand, "depth": "\(depth)", "decoded": "\(generate)",
            "repeats": "\(repeats)"])
        var baseline: [Double] = []
        for (index, (name, options)) in kinds.enumerated() {
            // One fill per kind (long prefills dominate the run), then a warm-up and the timed repeats,
            // each decoding on from where the last stopped (the depth grows by -n per repeat).
            progress("\(name): filling \(depth) tokens")
            let cache = try model.makeCache(options)
            for start in stride(from: 0, to: depth, by: 512) {
                _ = try model.forward(Array(tokens[start..<min(depth, start + 512)]), cache: cache)
            }
            var speeds: [Double] = []
            var next = depth
            for r in 0...repeats {  // round 0 warms up
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<generate { _ = try model.forward([tokens[next % tokens.count]], cache: cache); next += 1 }
                if r > 0 { speeds.append(Double(generate) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)) }
            }
            let held = cache.bytes(forTokens: cache.length)
            if index == 0 { baseline = speeds }
            var row = BenchRow(name: "tg\(generate) @ d\(depth), \(name)", value: mean(speeds), unit: "tokens/s",
                               note: "± \(format(stddev(speeds))); KV \(String(format: "%.1f", Double(held) / 1e6)) MB "
                                   + "(\(held / max(1, layers)) B/layer)")
            if index > 0 {
                row.reference = mean(baseline)
                row.referenceName = "full f32"
                row.pairedRatio = Timing.median(zip(speeds, baseline).map { $0 / $1 })
            }
            report.rows.append(row)
        }
        print(json ? report.json() : report.table())
    }
}
