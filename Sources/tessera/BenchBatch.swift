// `tessera bench batch`: the hot path of continuous batching in isolation — one decode step of N
// sequences through the paged forward pass (`forward(batch:cache:)`), no scheduler, no HTTP. For
// each batch size it reports the step time and the tokens/s of the whole batch, and beside it the
// single-sequence step: the ratio is how much batching multiplies decode throughput, the figure the
// server's concurrency speed-up is built from. Each sequence first has `-d` prompt tokens in its
// pages (filled untimed), so attention reads a realistic context.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraEngine
import TesseraKVCache
import TesseraKernels
import TesseraModels

struct BenchBatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch", abstract: "Decode-step tokens/s of N sequences batched through the paged forward pass, beside N = 1.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var compute: ComputeOptions
    @Option(name: .customShort("b"), parsing: .upToNextOption, help: "Batch sizes (sequences decoding together).")
    var batchSizes: [Int] = [1, 2, 4, 8, 16, 32]
    @Option(name: .customShort("d"), help: "Tokens already in each sequence's pages.") var depth = 128
    @Option(name: .customShort("n"), help: "Decode steps timed per repeat.") var steps = 16
    @Option(name: .customShort("r"), help: "Repeats (the median is reported).") var repeats = 3
    @Option(help: "KV cache element type of the pages: f16 (the default, as serve's), f32 or int8.") var kvType = "f16"
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() throws {
        try compute.apply()
        guard !batchSizes.isEmpty, batchSizes.allSatisfy({ $0 >= 1 }), depth >= 1, steps >= 1, repeats >= 1 else {
            throw ValidationError("batch sizes, -d, -n and -r must be at least 1")
        }
        let elementType = try parseKVType(kvType)
        let loaded = try modelOptions.load()
        let model = loaded.model
        guard depth + steps < model.config.contextLength else {
            throw ValidationError("-d \(depth) plus -n \(steps) exceed the model's context (\(model.config.contextLength))")
        }
        let blockSize = 16, perSequence = (depth + steps + blockSize - 1) / blockSize
        let largest = batchSizes.max()!
        let cache = PagedKVStorage(layers: model.config.layerCount, blockCount: largest * perSequence, blockSize: blockSize,
                                   kvHeads: model.config.kvHeadCount, headDim: model.config.headDim, elementType: elementType)
        var rng = SeededGenerator(seed: 7)
        let vocab = UInt64(min(model.config.vocabularySize, loaded.tokenizer.vocabularySize))
        let tables = (0..<largest).map { s in Array((s * perSequence)..<((s + 1) * perSequence)) }
        // Every sequence's context, filled once (one prefill per sequence); each repeat decodes over it
        // again from position `depth`, overwriting the same slots.
        for s in 0..<largest {
            let prompt = (0..<depth).map { _ in Int32(rng.next() % vocab) }
            _ = try model.forward(batch: [BatchSequence(tokens: prompt, start: 0, blockTable: tables[s], wantsLogits: false,
                                                         promptLength: prompt.count)], cache: cache)
            if !json { FileHandle.standardError.write("\rfilling \(s + 1)/\(largest)".data(using: .utf8)!) }
        }
        let next = (0..<largest).map { _ in (0..<steps).map { _ in Int32(rng.next() % vocab) } }

        /// Seconds per decode step of the first n sequences (median over repeats).
        func stepSeconds(_ n: Int) throws -> Double {
            var times: [Double] = []
            for _ in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for step in 0..<steps {
                    let batch = (0..<n).map { s in
                        BatchSequence(tokens: [next[s][step]], start: depth + step, blockTable: tables[s], wantsLogits: true, isDecode: true)
                    }
                    _ = try model.forward(batch: batch, cache: cache)
                }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(steps))
            }
            return Timing.median(times)
        }
        _ = try stepSeconds(min(2, largest))  // warm-up
        let single = try stepSeconds(1)
        var report = BenchReport(benchmark: "batch", environment: [
            "model": loaded.path, "precision": model.precision.rawValue, "threads": "\(ThreadPool.shared.threadCount)",
            "kernels": "\(Kernels.activeID)", "cpu": CPUFeatures.current.brand, "depth": "\(depth)", "steps": "\(steps)",
            "repeats": "\(repeats)", "kv type": kvType])
        for n in batchSizes {
            let seconds = n == 1 ? single : try stepSeconds(n)
            report.add(BenchRow(name: "decode step, batch \(n)", value: Double(n) / seconds, unit: "tokens/s",
                                reference: 1 / single, referenceName: "batch 1",
                                note: String(format: "%.2f ms/step, %.2f ms/token", seconds * 1e3, seconds * 1e3 / Double(n))))
            if !json { FileHandle.standardError.write("\r\u{1B}[Kbatch \(n): \(String(format: "%.1f", Double(n) / seconds)) tokens/s".data(using: .utf8)!) }
        }
        if !json { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
        print(json ? report.json() : report.table())
    }
}
