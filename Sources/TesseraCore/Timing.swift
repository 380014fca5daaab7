// Timing helpers for benchmarks and progress reports: a monotonic clock and repeated measurement with
// the median (these machines are shared and noisy; the median of several runs is what we report).
import CTesseraCPU

public enum Timing {
    /// Monotonic time in seconds.
    public static func now() -> Double { Double(tessera_now_ns()) * 1e-9 }

    /// Runs `body` once to warm up, then `repeats` times; returns the seconds each run took.
    public static func measure(repeats: Int, warmup: Int = 1, _ body: () -> Void) -> [Double] {
        for _ in 0..<warmup { body() }
        return (0..<max(1, repeats)).map { _ in
            let start = now()
            body()
            return now() - start
        }
    }

    /// Times `first` and `second` alternately, `repeats` times each (after a warm-up of each), so that
    /// both see the same machine load; returns their median times and the median of the per-pair
    /// ratios time(second) / time(first) — i.e. how fast `first` runs relative to `second`.
    public static func measurePaired(repeats: Int, _ first: () -> Void, _ second: () -> Void)
        -> (first: Double, second: Double, speedRatio: Double) {
        first()
        second()
        var a: [Double] = [], b: [Double] = [], ratios: [Double] = []
        for _ in 0..<max(1, repeats) {
            var start = now()
            first()
            a.append(now() - start)
            start = now()
            second()
            b.append(now() - start)
            ratios.append(b.last! / a.last!)
        }
        return (median(a), median(b), median(ratios))
    }

    public static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        if sorted.isEmpty { return .nan }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// Keeps `value` alive so the optimiser cannot delete the work that produced it.
    public static func keep<T>(_ value: T) {
        withUnsafePointer(to: value) { tessera_do_not_optimize($0) }
    }
}
