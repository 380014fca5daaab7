// Hardware probes for the benchmarks: the FMA peak and a STREAM-like read, measured with the same
// vector width and thread pool as the kernels, so "fraction of peak" compares like with like.
import CTesseraCPU
import TesseraCore

extension ISAKernels {
    public static func fmaPeakProbe(iterations: Int) -> Double {
        let pool = ThreadPool.shared
        let sink = UnsafeMutablePointer<Float>.allocate(capacity: pool.threadCount)
        defer { sink.deallocate() }
        pool.runOnEachThread { thread in
            // 12 independent chains: enough to cover FMA latency x throughput on current cores.
            let m = VF(repeating: 0.999_999), a = VF(repeating: 1e-7)
            var r0 = VF(repeating: 1), r1 = r0, r2 = r0, r3 = r0, r4 = r0, r5 = r0
            var r6 = r0, r7 = r0, r8 = r0, r9 = r0, r10 = r0, r11 = r0
            for _ in 0..<iterations {
                r0 = a.addingProduct(r0, m); r1 = a.addingProduct(r1, m); r2 = a.addingProduct(r2, m)
                r3 = a.addingProduct(r3, m); r4 = a.addingProduct(r4, m); r5 = a.addingProduct(r5, m)
                r6 = a.addingProduct(r6, m); r7 = a.addingProduct(r7, m); r8 = a.addingProduct(r8, m)
                r9 = a.addingProduct(r9, m); r10 = a.addingProduct(r10, m); r11 = a.addingProduct(r11, m)
            }
            let total = r0 + r1 + r2 + r3 + r4 + r5 + r6 + r7 + r8 + r9 + r10 + r11
            sink[thread] = horizontalSum(total)
            tessera_do_not_optimize(sink)
        }
        return Double(pool.threadCount) * Double(iterations) * 12 * Double(vectorWidth) * 2
    }

    public static func streamRead(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let pool = ThreadPool.shared
        let tasks = pool.threadCount
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: tasks)
        defer { partial.deallocate() }
        pool.runOnEachThread { t in
            let lo = count * t / tasks, hi = count * (t + 1) / tasks
            // Four concurrent streams per thread (as GEMV reads four weight rows at once), each with two
            // accumulators: enough independent loads in flight to saturate memory.
            let quarter = (hi - lo) / 4 / (2 * vectorWidth) * (2 * vectorWidth)
            let s0 = x + lo, s1 = s0 + quarter, s2 = s1 + quarter, s3 = s2 + quarter
            var a0 = VF(), a1 = VF(), a2 = VF(), a3 = VF(), a4 = VF(), a5 = VF(), a6 = VF(), a7 = VF()
            var i = 0
            while i < quarter {
                a0 += load(s0 + i); a1 += load(s0 + i + vectorWidth)
                a2 += load(s1 + i); a3 += load(s1 + i + vectorWidth)
                a4 += load(s2 + i); a5 += load(s2 + i + vectorWidth)
                a6 += load(s3 + i); a7 += load(s3 + i + vectorWidth)
                i += 2 * vectorWidth
            }
            var s = horizontalSum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7)
            var j = lo + 4 * quarter
            while j < hi { s += x[j]; j += 1 }
            partial[t] = s
        }
        var sum: Float = 0
        for t in 0..<tasks { sum += partial[t] }
        return sum
    }

    public static func microKernelProbe(calls: Int) -> Double {
        // One A panel, one B panel (both L1-resident) and a C tile with a 4096-float row stride.
        let kc = gemmKC, ldc = 4096
        let a = allocateAligned(gemmMR * kc), b = allocateAligned(gemmNR * kc), c = allocateAligned(gemmMR * ldc)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        a.initialize(repeating: 1e-3, count: gemmMR * kc)
        b.initialize(repeating: 1e-3, count: gemmNR * kc)
        c.initialize(repeating: 0, count: gemmMR * ldc)
        for call in 0..<calls {
            microKernel(kc: kc, a: a, b: b, c: c + (call % 128) * gemmNR % (ldc - gemmNR), ldc: ldc, accumulate: true)
        }
        tessera_do_not_optimize(c)
        return Double(calls) * Double(kc * gemmMR * gemmNR * 2)
    }
}
