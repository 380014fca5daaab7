// `tessera bench sampler`: the time to pick one token from a real model's logits, per sampling
// setting, beside the textbook sampler (sort the whole vocabulary, softmax in Double, cut) timed in
// alternation. The engine samples every running sequence of a decode step on its one thread, so at
// concurrency 16 a sampler that costs a forward pass's share per token halves the server's throughput.
// The logits are the model's at the end of a few prompts (real distributions: a confident one, a
// flat one); each setting draws from each in turn.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraEngine
import TesseraKVCache
import TesseraModels

struct BenchSampler: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sampler", abstract: "Microseconds per sampled token, per setting, beside the textbook full-sort sampler.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var compute: ComputeOptions
    @Option(name: .customShort("n"), help: "Draws per setting and repeat.") var draws = 200
    @Option(name: .customShort("r"), help: "Repeats (the median is reported).") var repeats = 5
    @Option(help: "Only the settings whose name contains this text (e.g. greedy, top-p).") var only: String?
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() throws {
        try compute.apply()
        guard draws >= 1, repeats >= 1 else { throw ValidationError("-n and -r must be at least 1") }
        let loaded = try modelOptions.load()
        let model = loaded.model
        var rng = SeededGenerator(seed: 3)
        let vocabulary = UInt64(min(model.config.vocabularySize, loaded.tokenizer.vocabularySize))
        // A confident continuation, an open one, and random ids (the serve benchmark's prompts).
        let prompts = [loaded.tokenizer.encode("The capital of France is", addSpecialTokens: true),
                       loaded.tokenizer.encode("Once upon a time", addSpecialTokens: true),
                       (0..<32).map { _ in Int32(rng.next() % vocabulary) }]
        let rows = try prompts.map { try model.forward($0, cache: model.makeCache(), logits: .last) }
        let settings: [(String, SamplingParameters)] = [
            ("greedy", .greedy),
            ("temperature 0.8", SamplingParameters(temperature: 0.8)),
            ("temperature 0.8, top-p 0.95", SamplingParameters(temperature: 0.8, topP: 0.95)),
            ("temperature 1, top-p 0.9, top-k 50", SamplingParameters(temperature: 1, topK: 50, topP: 0.9)),
            ("temperature 0.7, top-k 40", SamplingParameters(temperature: 0.7, topK: 40)),
            ("temperature 1, min-p 0.05", SamplingParameters(temperature: 1, minP: 0.05)),
        ]
        var report = BenchReport(benchmark: "sampler", environment: [
            "model": URL(fileURLWithPath: loaded.path).lastPathComponent, "vocabulary": "\(model.config.vocabularySize)",
            "logits": "last position of 3 prompts (2 texts, 32 random ids)", "draws": "\(draws) per repeat",
        ])
        for (name, parameters) in settings where only.map({ name.contains($0) }) ?? true {
            var seeded = parameters
            seeded.seed = 1
            var sampler = Sampler(seeded)
            var sink = 0
            let (ours, textbook, speedup) = Timing.measurePaired(repeats: repeats, {
                for i in 0..<draws { sink &+= Int(sampler.sample(rows[i % rows.count])) }
            }, {
                for i in 0..<draws {
                    let logits = rows[i % rows.count]
                    if parameters.temperature == 0 {
                        sink &+= logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) } ?? 0
                    } else {
                        sink &+= Sampler.referenceDistribution(logits, parameters).tokens[0]
                    }
                }
            })
            let kept = parameters.temperature == 0 ? "argmax" :
                "candidates " + rows.map { String(Sampler(seeded).distribution($0).probabilities.count) }.joined(separator: " / ")
            report.add(BenchRow(name: name, value: ours / Double(draws) * 1e6, unit: "µs/token", reference: textbook / Double(draws) * 1e6,
                                referenceName: "full sort", pairedRatio: 1 / speedup, note: kept))
            Timing.keep(sink)
            if !json { progress("\(name): \(String(format: "%.1f", ours / Double(draws) * 1e6)) µs/token") }
        }
        print(json ? report.json() : report.table())
    }
}
