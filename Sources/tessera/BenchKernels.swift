// `tessera bench kernels`: the hot kernels against the hardware's limits and OpenBLAS, in one run.
//
// Figures: the FMA peak (measured with the active kernel set's vector width on every thread), a
// STREAM-like read bandwidth, f32 GEMM (default 512x4096x4096) as a fraction of that peak and against
// numpy/OpenBLAS run on the same machine in the same invocation, GEMV on a matrix larger than L3 as a
// fraction of the read bandwidth (f32, f16, bf16), the quantised matrix product (Q4_1 with 16- and 8-bit
// activations, Q8_0) against the cores' VNNI multiply-add peak, the thread pool's per-call overhead,
// and the bandwidth of the row-wise and element-wise kernels.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraFormats
import TesseraKernels
import TesseraModels

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, printed as a table (or JSON with --json).", subcommands: [BenchModel.self, BenchBatch.self, BenchKVCache.self, BenchKernels.self, BenchAttention.self, BenchTokenizer.self, BenchTrain.self, BenchServe.self, BenchSampler.self])
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kernels", abstract: "Kernel speed vs FMA peak, memory bandwidth and OpenBLAS.")

    @OptionGroup var compute: ComputeOptions
    @Flag(help: "Print one JSON object instead of the table.") var json = false
    @Flag(help: "Small sizes and few repeats (a smoke test, not a measurement).") var quick = false
    @Option(help: "GEMM size as MxNxK.") var gemm = "512x4096x4096"
    @Option(help: "Timed repeats per figure (the median is reported).") var repeats = 5
    @Flag(help: "Skip the numpy/OpenBLAS comparison.") var noNumpy = false
    @Option(help: "Run only these sections (comma-separated): gemm, gemv, quantized, pool, rows (the hardware limits always run).")
    var only: String?

    func wants(_ section: String) -> Bool { only.map { $0.split(separator: ",").contains { $0 == section } } ?? true }

    func run() throws {
        try compute.apply()
        let dims = gemm.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else { throw ValidationError("--gemm must be MxNxK, got \(gemm)") }
        let (m, n, k) = quick ? (96, 256, 256) : (dims[0], dims[1], dims[2])
        let repeats = quick ? 2 : max(1, self.repeats)
        let kernels = Kernels.active
        let threads = ThreadPool.shared.threadCount
        var report = BenchReport(benchmark: "kernels", environment: [
            "cpu": CPUFeatures.current.brand, "kernels": Kernels.activeID.rawValue, "threads": "\(threads)",
        ])

        // Hardware limits first.
        progress("measuring FMA peak ...")
        let fmaIterations = quick ? 200_000 : 20_000_000
        var flops = 0.0
        let peakTimes = Timing.measure(repeats: repeats) { flops = kernels.fmaPeakProbe(iterations: fmaIterations) }
        let peak = flops / Timing.median(peakTimes) / 1e9
        report.add(BenchRow(name: "FMA peak f32", value: peak, unit: "GFLOP/s", note: "\(threads) threads, \(Kernels.activeID) vectors"))

        progress("measuring read bandwidth ...")
        let streamCount = quick ? 1 << 20 : 64 << 20  // 256 MiB, far past L3
        let big = UnsafeMutablePointer<Float>.allocate(capacity: streamCount)
        defer { big.deallocate() }
        big.initialize(repeating: 0.5, count: streamCount)
        let streamTimes = Timing.measure(repeats: repeats) { Timing.keep(kernels.streamRead(big, count: streamCount)) }
        let bandwidth = Double(streamCount * 4) / Timing.median(streamTimes) / 1e9
        report.add(BenchRow(name: "STREAM-like read", value: bandwidth, unit: "GB/s", note: "\((streamCount * 4) >> 20) MiB"))

        // GEMM.
        if wants("gemm") {
        progress("GEMM \(m)x\(n)x\(k) ...")
        let a = randomMatrix(m * k), b = randomMatrix(n * k), c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        let microCalls = quick ? 2_000 : 100_000
        var microFlops = 0.0
        // The machine's speed drifts between runs (it is shared), so each GEMM figure is timed in
        // alternation with the FMA-peak probe and its ratio is the median of the per-pair ratios.
        let pairIterations = quick ? 100_000 : 5_000_000
        var pairFlops = 0.0
        let micro = Timing.measurePaired(repeats: repeats * 2, { microFlops = kernels.microKernelProbe(calls: microCalls) },
                                         { pairFlops = kernels.fmaPeakProbe(iterations: pairIterations) })
        report.add(BenchRow(name: "GEMM micro-kernel (L1, 1 thread)", value: microFlops / micro.first / 1e9, unit: "GFLOP/s",
                            reference: peak / Double(threads), referenceName: "FMA peak / thread",
                            pairedRatio: micro.speedRatio * microFlops / (pairFlops / Double(threads)),
                            note: "the register-blocked inner loop alone; ratio: median of paired runs"))
        let gemmArgs = GEMMArguments(m: m, n: n, k: k, a: a, b: b, transposeB: true, c: c)
        let gemmWork = 2.0 * Double(m) * Double(n) * Double(k)
        let paired = Timing.measurePaired(repeats: repeats * 2, { kernels.gemm(gemmArgs) },
                                          { pairFlops = kernels.fmaPeakProbe(iterations: pairIterations) })
        let gemmTime = paired.first
        let gemmFlops = gemmWork / gemmTime / 1e9
        report.add(BenchRow(name: "GEMM f32 \(m)x\(n)x\(k)", value: gemmFlops, unit: "GFLOP/s", reference: peak,
                            referenceName: "FMA peak", pairedRatio: paired.speedRatio * gemmWork / pairFlops,
                            note: "C = A·Bᵀ (weight layout); ratio: median of paired runs"))
        if !noNumpy {
            progress("numpy/OpenBLAS GEMM (OPENBLAS_CORETYPE unset for this run only) ...")
            if let blas = numpyGEMM(m: m, n: n, k: k, threads: threads, repeats: repeats) {
                report.add(BenchRow(name: "GEMM f32 \(m)x\(n)x\(k)", value: gemmFlops, unit: "GFLOP/s", reference: blas.gflops,
                                    referenceName: "numpy/OpenBLAS", note: blas.note))
            } else {
                report.add(BenchRow(name: "GEMM f32 numpy/OpenBLAS", value: .nan, unit: "GFLOP/s", note: "python3 with numpy not found"))
            }
        }

        }

        // GEMV on a matrix larger than L3, in f32, f16 and bf16.
        if wants("gemv") {
        let (gn, gk) = quick ? (512, 1024) : (16384, 4096)
        let x = randomMatrix(gk), y = UnsafeMutablePointer<Float>.allocate(capacity: gn)
        defer { x.deallocate(); y.deallocate() }
        let w32 = randomMatrix(gn * gk)
        // Each GEMV is timed alternately with a STREAM-like read of the same number of bytes, and the
        // ratio is the median of the per-pair ratios, so machine noise hits both sides alike.
        func readBaseline(bytes: Int) -> () -> Void { { Timing.keep(kernels.streamRead(big, count: min(streamCount, bytes / 4))) } }
        progress("GEMV f32 \(gn)x\(gk) (\((gn * gk * 4) >> 20) MiB) ...")
        let f32 = Timing.measurePaired(repeats: repeats * 2, {
            kernels.gemv(n: gn, k: gk, w: w32, ldw: gk, x: x, y: y, accumulate: false)
        }, readBaseline(bytes: gn * gk * 4))
        w32.deallocate()
        report.add(BenchRow(name: "GEMV f32 \(gn)x\(gk)", value: Double(gn * gk * 4) / f32.first / 1e9, unit: "GB/s",
                            reference: Double(min(streamCount * 4, gn * gk * 4)) / f32.second / 1e9, referenceName: "read bandwidth",
                            pairedRatio: f32.speedRatio * Double(gn * gk * 4) / Double(min(streamCount * 4, gn * gk * 4)),
                            note: "\((gn * gk * 4) >> 20) MiB of weights; ratio: median of paired runs"))
        let w16 = UnsafeMutableRawPointer.allocate(byteCount: gn * gk * 2, alignment: 64)
        defer { w16.deallocate() }
        for format in [HalfFormat.f16, .bf16] {
            let h = w16.assumingMemoryBound(to: UInt16.self)
            for i in 0..<(gn * gk) {
                let v = Float((i &* 2654435761) & 1023) / 1024 - 0.5
                h[i] = format == .f16 ? halfBitsFromFloat(v) : bfloat16BitsFromFloat(v)
            }
            let args = HalfGEMMArguments(m: 1, n: gn, k: gk, a: x, w: w16, format: format, c: y)
            let t = Timing.measurePaired(repeats: repeats * 2, { kernels.gemmHalf(args) }, readBaseline(bytes: gn * gk * 2))
            report.add(BenchRow(name: "GEMV \(format) \(gn)x\(gk)", value: Double(gn * gk * 2) / t.first / 1e9, unit: "GB/s",
                                reference: Double(gn * gk * 2) / t.second / 1e9, referenceName: "read bandwidth",
                                pairedRatio: t.speedRatio, note: "\((gn * gk * 2) >> 20) MiB, converted in registers"))
        }
        }

        // The quantised matrix product as the model runs it (activation quantisation, the integer kernel,
        // every thread), against the integer multiply-add peak (AVX-512 VNNI: vpdpwssd for 16-bit
        // activations, vpdpbusd for 8-bit), timed in alternation with it.
        if wants("quantized") {
        let (qr, qc, qt) = quick ? (256, 256, 16) : (1536, 576, 64)
        let peakIterations = quick ? 100_000 : 2_000_000
        for (type, int8) in [(GGMLType.q4_1, false), (.q4_1, true), (.q8_0, false), (.q8_0, true)] {
            guard let probe = try QuantizedProbe.matrix(type, rows: qr, cols: qc, tokens: qt, int8Activations: int8) else { continue }
            let activations = int8 ? "8-bit" : "16-bit"
            progress("\(type) x \(activations) activations, \(qr)x\(qc) x \(qt) tokens ...")
            var peakMACs = 0.0
            let t = Timing.measurePaired(repeats: repeats * 2, probe.apply, {
                peakMACs = QuantizedProbe.vnniPeak(iterations: peakIterations, bytes: int8) ?? .nan
            })
            let rate = probe.multiplyAdds / t.first / 1e9
            let layout = probe.path
            if peakMACs.isNaN {
                report.add(BenchRow(name: "\(type) dot, \(activations) activations", value: rate, unit: "GMAC/s",
                                    note: "\(qr)x\(qc) x \(qt) tokens, \(layout); no VNNI peak to compare (not AVX-512 VNNI)"))
            } else {
                report.add(BenchRow(name: "\(type) dot, \(activations) activations", value: rate, unit: "GMAC/s",
                                    reference: peakMACs / t.second / 1e9, referenceName: int8 ? "vpdpbusd peak" : "vpdpwssd peak",
                                    pairedRatio: t.speedRatio * probe.multiplyAdds / peakMACs,
                                    note: "\(qr)x\(qc) x \(qt) tokens, \(layout); ratio: median of paired runs"))
            }
        }
        }

        // Thread pool overhead: empty parallel regions.
        if wants("pool") {
        let calls = quick ? 1000 : 100_000
        let pool = ThreadPool.shared
        // A task a thread, and sixteen small tasks a region (as a batch-16 step's decode attention hands out).
        for (name, tasks) in [("thread pool empty region", pool.threadCount), ("thread pool 16 empty tasks", 16)] {
            let time = Timing.median(Timing.measure(repeats: repeats) {
                for _ in 0..<calls { pool.parallelFor(tasks) { _ in } }
            })
            report.add(BenchRow(name: name, value: time / Double(calls) * 1e6, unit: "µs/call",
                                note: "\(pool.threadCount) threads, workers spinning"))
        }

        }

        // Row-wise and element-wise kernels on (rows x cols) activations.
        if wants("rows") {
        let (rows, cols) = quick ? (16, 1024) : (512, 4096)
        let count = rows * cols
        let u = randomMatrix(count), v = randomMatrix(count), out = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let weight = randomMatrix(cols)
        defer { u.deallocate(); v.deallocate(); out.deallocate(); weight.deallocate() }
        func elementwise(_ name: String, streams: Int, _ body: () -> Void) {
            let t = Timing.median(Timing.measure(repeats: repeats * 4, body))
            report.add(BenchRow(name: "\(name) \(rows)x\(cols)", value: Double(count * 4 * streams) / t / 1e9, unit: "GB/s",
                                note: String(format: "%.1f µs", t * 1e6)))
        }
        elementwise("softmax", streams: 2) { kernels.softmax(u, out, rows: rows, cols: cols) }
        elementwise("rmsnorm", streams: 2) { kernels.rmsNorm(u, weight: weight, out, rows: rows, cols: cols, epsilon: 1e-5) }
        elementwise("layernorm", streams: 2) { kernels.layerNorm(u, weight: weight, bias: weight, out, rows: rows, cols: cols, epsilon: 1e-5) }
        elementwise("silu", streams: 2) { kernels.activation(.silu, u, out, count: count) }
        elementwise("gelu tanh", streams: 2) { kernels.activation(.geluTanh, u, out, count: count) }
        elementwise("gelu erf", streams: 2) { kernels.activation(.geluErf, u, out, count: count) }
        elementwise("swiglu", streams: 3) { kernels.gatedActivation(.silu, gate: u, up: v, out, count: count) }
        elementwise("residual add", streams: 3) { kernels.add(u, v, out, count: count) }
        let table = RoPETable(config: RoPEConfig(rotaryDims: 64), capacity: rows)
        let positions = (0..<rows).map { Int32($0) }
        positions.withUnsafeBufferPointer { pos in
            table.cos.withUnsafeBufferPointer { cosp in
                table.sin.withUnsafeBufferPointer { sinp in
                    elementwise("rope neox (64-dim heads)", streams: 2) {
                        kernels.rope(RoPEArguments(x: out, tokens: rows, heads: cols / 64, headDim: 64, positions: pos.baseAddress!,
                                                   cos: cosp.baseAddress!, sin: sinp.baseAddress!, layout: .neox))
                    }
                }
            }
        }

        }

        print(json ? report.json() : report.table())
    }

    func randomMatrix(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            p[i] = Float(state >> 40) / Float(1 << 24) - 0.5
        }
        return p
    }

    /// Times numpy's float32 matmul (OpenBLAS) with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset, in a child process.
    func numpyGEMM(m: Int, n: Int, k: Int, threads: Int, repeats: Int) -> (gflops: Double, note: String)? {
        let script = """
        import time, numpy as np
        try:
            from threadpoolctl import threadpool_info
            info = [f"{d.get('internal_api')} {d.get('version')} {d.get('architecture')}" for d in threadpool_info()]
        except Exception:
            info = ["numpy " + np.__version__]
        a = np.random.rand(\(m), \(k)).astype(np.float32); b = np.random.rand(\(n), \(k)).astype(np.float32)
        a @ b.T
        ts = []
        for _ in range(\(repeats)):
            t = time.perf_counter(); a @ b.T; ts.append(time.perf_counter() - t)
        ts.sort()
        print(2.0 * \(m) * \(n) * \(k) / ts[len(ts) // 2] / 1e9)
        print("; ".join(info))
        """
        var changes: [String: String?] = ["OPENBLAS_CORETYPE": nil, "OPENBLAS_L2_SIZE": nil]
        for key in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] { changes[key] = "\(threads)" }
        guard let lines = runPythonPeer(script: script, environment: changes) else { return nil }
        guard let first = lines.first, let gflops = Double(first) else { return nil }
        return (gflops, lines.dropFirst().first ?? "")
    }
}
