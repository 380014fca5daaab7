// Peak memory of a piece of work, measured by the kernel: the process's resident-set high-water mark
// (VmHWM) is reset through /proc/self/clear_refs before the work and read after it, so "extra memory"
// in a benchmark is what the work really touched, allocator and GEMM packing buffers included.
import CTesseraCPU
import Foundation

public enum MemoryProbe {
    /// Resident and peak resident bytes from /proc/self/status; nil where that file does not exist.
    public static func residentBytes() -> (current: Int, peak: Int)? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
            return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
        }
        guard let current = field("VmRSS"), let peak = field("VmHWM") else { return nil }
        return (current, peak)
    }

    /// Makes freed memory leave the resident set at once: a fixed mmap threshold stops glibc from
    /// raising it after large frees (which would keep later large blocks on the heap after free).
    public static func prepare() {
        tessera_malloc_fix_mmap_threshold(64 * 1024)
    }

    /// Runs `body` and returns how far the resident set rose above its level before (bytes), or nil
    /// when the kernel does not offer the measurement.
    public static func peakExtraBytes(_ body: () -> Void) -> Int? {
        // Give freed memory back first, so that a freed-but-resident block does not hide new use.
        tessera_malloc_release()
        // Writing 5 to clear_refs resets the high-water mark to the current resident size.
        guard (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil,
              let before = residentBytes() else { body(); return nil }
        body()
        guard let after = residentBytes() else { return nil }
        return max(0, after.peak - before.current)
    }
}
