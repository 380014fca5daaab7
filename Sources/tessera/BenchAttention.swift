// `tessera bench attention`: standard (materialised N x N) vs flash attention, forward and backward,
// time and peak extra memory, for causal self-attention over a range of lengths and head sizes; and
// the decode path (one query against a long cache) against the memory bandwidth.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraKernels

struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attention", abstract: "Standard vs flash attention: time and memory.")

    @OptionGroup var compute: ComputeOptions
    @Flag(help: "Print one JSON object instead of the table.") var json = false
    @Option(help: "Sequence lengths (comma-separated).") var lengths = "512,1024,2048,4096,8192,16384"
    @Option(help: "Head sizes (comma-separated).") var headDims = "64,128"
    @Option(help: "Heads (query heads = kv heads) per call.") var heads = 1
    @Option(help: "Timed repeats per figure (the median is reported).") var repeats = 3
    @Option(help: "Skip the standard version above this length (its N x N matrices need 12·N² bytes in the backward pass).")
    var standardLimit = 16384
    @Option(help: "Tokens in the KV cache for the decode measurement.") var decodeTokens = 16384
    @Flag(help: "Small sizes (a smoke test, not a measurement).") var quick = false

    func run() throws {
        try compute.apply()
        MemoryProbe.prepare()
        let lengths = quick ? [256] : self.lengths.split(separator: ",").compactMap { Int($0) }
        let dims = self.headDims.split(separator: ",").compactMap { Int($0) }
        guard !lengths.isEmpty, !dims.isEmpty, lengths.allSatisfy({ $0 > 0 }), dims.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--lengths and --head-dims take positive integers, comma-separated")
        }
        var report = BenchReport(benchmark: "attention", environment: [
            "cpu": CPUFeatures.current.brand, "kernels": Kernels.activeID.rawValue, "threads": "\(ThreadPool.shared.threadCount)",
            "shape": "batch 1, \(heads) head(s), causal self-attention",
        ])
        for d in dims {
            for n in lengths {
                progress("attention N=\(n) d=\(d) ...")
                let shape = AttentionShape(queries: n, keys: n, queryHeads: heads, headDim: d)
                let q = random(shape.queryCount, seed: 1), k = random(shape.keyCount, seed: 2), v = random(shape.keyCount, seed: 3)
                let dO = random(shape.queryCount, seed: 4)
                let out = UnsafeMutablePointer<Float>.allocate(capacity: shape.queryCount)
                let lse = UnsafeMutablePointer<Float>.allocate(capacity: heads * n)
                let dq = UnsafeMutablePointer<Float>.allocate(capacity: shape.queryCount)
                let dk = UnsafeMutablePointer<Float>.allocate(capacity: shape.keyCount)
                let dv = UnsafeMutablePointer<Float>.allocate(capacity: shape.keyCount)
                defer { for p in [q, k, v, dO, out, lse, dq, dk, dv] { p.deallocate() } }
                let buffers = AttentionBuffers(q: q, k: k, v: v, output: out, logSumExp: lse)
                let grads = AttentionGradients(outputGradient: dO, dq: dq, dk: dk, dv: dv)
                let label = "N=\(n) d=\(d)"
                let repeats = quick ? 1 : self.repeats

                let flashForward = measure(repeats) { FlashAttention.forward(shape, buffers) }
                let flashBackward = measure(repeats) { FlashAttention.backward(shape, buffers, grads) }
                if n <= standardLimit {
                    let standardForward = measure(repeats) { StandardAttention.forward(shape, buffers) }
                    let standardBackward = measure(repeats) { StandardAttention.backward(shape, buffers, grads) }
                    add(&report, label, "forward", flash: flashForward, standard: standardForward)
                    add(&report, label, "backward", flash: flashBackward, standard: standardBackward)
                } else {
                    add(&report, label, "forward", flash: flashForward, standard: nil)
                    add(&report, label, "backward", flash: flashBackward, standard: nil)
                }
            }
        }
        benchDecode(&report)
        print(json ? report.json() : report.table())
    }

    /// Median seconds and the peak extra resident memory of one run.
    func measure(_ repeats: Int, _ body: () -> Void) -> (seconds: Double, bytes: Int?) {
        let bytes = MemoryProbe.peakExtraBytes(body)
        return (Timing.median(Timing.measure(repeats: repeats, warmup: 0, body)), bytes)
    }

    func add(_ report: inout BenchReport, _ label: String, _ pass: String, flash: (seconds: Double, bytes: Int?),
             standard: (seconds: Double, bytes: Int?)?) {
        func mib(_ b: Int?) -> String { b.map { String(format: "%.1f MiB", Double($0) / 1048576) } ?? "n/a" }
        report.add(BenchRow(name: "\(pass) \(label) flash", value: flash.seconds * 1000, unit: "ms",
                            reference: standard.map { $0.seconds * 1000 }, referenceName: standard == nil ? nil : "standard ms",
                            note: "extra memory: flash \(mib(flash.bytes)), standard \(standard.map { mib($0.bytes) } ?? "skipped")"))
        // The ratio column reads as flash time / standard time: below 1 means flash is faster.
    }

    /// One query per head against a long cache (GQA 4:1, like the 0.5–1.5B models; head-major, as a KV
    /// cache stores it), vs reading the same bytes.
    func benchDecode(_ report: inout BenchReport) {
        let n = quick ? 2048 : decodeTokens
        let shape = AttentionShape(queries: 1, keys: n, queryHeads: 32, kvHeads: 8, headDim: 64, kvLayout: .headMajor)
        progress("decode: 1 query, \(n)-token cache ...")
        let q = random(shape.queryCount, seed: 5), k = random(shape.keyCount, seed: 6), v = random(shape.keyCount, seed: 7)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: shape.queryCount)
        let bytes = 2 * shape.keyCount * 4
        let stream = UnsafeMutablePointer<Float>.allocate(capacity: 2 * shape.keyCount)
        stream.initialize(repeating: 0.25, count: 2 * shape.keyCount)
        defer { for p in [q, k, v, out, stream] { p.deallocate() } }
        let buffers = AttentionBuffers(q: q, k: k, v: v, output: out)
        let kernels = Kernels.active
        let t = Timing.measurePaired(repeats: quick ? 2 : 20, { FlashAttention.decode(shape, buffers) },
                                     { Timing.keep(kernels.streamRead(stream, count: 2 * shape.keyCount)) })
        report.add(BenchRow(name: "decode, \(n)-token cache (32 q / 8 kv heads, d=64)", value: Double(bytes) / t.first / 1e9,
                            unit: "GB/s", reference: Double(bytes) / t.second / 1e9, referenceName: "read bandwidth",
                            pairedRatio: t.speedRatio,
                            note: String(format: "%.0f µs per step, %d MiB of K+V", t.first * 1e6, bytes >> 20)))
    }

    func random(_ count: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        for i in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            p[i] = Float(state >> 40) / Float(1 << 24) - 0.5
        }
        return p
    }
}
