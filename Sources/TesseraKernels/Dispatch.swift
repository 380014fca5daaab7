// Runtime instruction-set dispatch: find the CPU's features once and pick the best kernel build.
//
// The three kernel modules are the same sources compiled for baseline x86-64, AVX2+FMA and
// AVX-512+VNNI. `Kernels.active` is chosen at first use from cpuid; `Kernels.select(_:)` can force a
// lower one (tests, benchmarks, `tessera --kernels generic`), never a higher one than the CPU supports.
import CTesseraCPU
import Foundation
import Synchronization
import TesseraCore
import TesseraKernelsAVX2
import TesseraKernelsAVX512
import TesseraKernelsGeneric

/// What the CPU (and OS) support.
public struct CPUFeatures: Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public let brand: String

    public static let current: CPUFeatures = {
        var buffer = [CChar](repeating: 0, count: 64)
        tessera_cpu_brand(&buffer, buffer.count)
        let brand = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return CPUFeatures(rawValue: tessera_cpu_features(), brand: brand.trimmingCharacters(in: .whitespaces))
    }()

    public init(rawValue: UInt32, brand: String = "") {
        self.rawValue = rawValue
        self.brand = brand
    }

    static let names: [(UInt32, String)] = [
        (UInt32(TESSERA_CPU_SSE42), "sse4.2"), (UInt32(TESSERA_CPU_AVX), "avx"), (UInt32(TESSERA_CPU_AVX2), "avx2"),
        (UInt32(TESSERA_CPU_FMA), "fma"), (UInt32(TESSERA_CPU_F16C), "f16c"), (UInt32(TESSERA_CPU_BMI2), "bmi2"),
        (UInt32(TESSERA_CPU_AVXVNNI), "avx-vnni"), (UInt32(TESSERA_CPU_AVX512F), "avx512f"),
        (UInt32(TESSERA_CPU_AVX512BW), "avx512bw"), (UInt32(TESSERA_CPU_AVX512DQ), "avx512dq"),
        (UInt32(TESSERA_CPU_AVX512VL), "avx512vl"), (UInt32(TESSERA_CPU_AVX512VNNI), "avx512vnni"),
        (UInt32(TESSERA_CPU_AVX512BF16), "avx512bf16"),
    ]

    /// Names of the features present, in a fixed order.
    public var names: [String] { CPUFeatures.names.filter { rawValue & $0.0 != 0 }.map(\.1) }
    public var description: String { names.joined(separator: " ") }

    func has(_ flags: Int...) -> Bool { flags.allSatisfy { rawValue & UInt32($0) != 0 } }

    /// The kernel builds this CPU can run, best first.
    public var supportedKernelSets: [KernelSetID] {
        var result: [KernelSetID] = []
        if has(TESSERA_CPU_AVX512F, TESSERA_CPU_AVX512BW, TESSERA_CPU_AVX512VL, TESSERA_CPU_AVX512DQ,
               TESSERA_CPU_AVX512VNNI, TESSERA_CPU_AVX2, TESSERA_CPU_FMA, TESSERA_CPU_F16C) {
            result.append(.avx512)
        }
        if has(TESSERA_CPU_AVX2, TESSERA_CPU_FMA, TESSERA_CPU_F16C, TESSERA_CPU_BMI2) { result.append(.avx2) }
        result.append(.generic)
        return result
    }
}

/// The kernel builds, by name.
public enum KernelSetID: String, Sendable, CaseIterable, CustomStringConvertible {
    case generic, avx2, avx512

    public var kernels: any KernelSet.Type {
        switch self {
        case .generic: GenericKernels.self
        case .avx2: AVX2Kernels.self
        case .avx512: AVX512Kernels.self
        }
    }

    /// The build flags this set was compiled with.
    public var targetDescription: String {
        switch self {
        case .generic: "x86-64 baseline (SSE2), 8-lane vectors as 2 x xmm"
        case .avx2: "x86-64-v3 (AVX2, FMA, F16C), 8-lane ymm vectors"
        case .avx512: "x86-64-v4 + AVX512-VNNI, 16-lane zmm vectors"
        }
    }

    public var description: String { rawValue }
}

/// Thrown when a kernel set is forced that this CPU cannot run.
public struct UnsupportedKernelSet: Error, CustomStringConvertible {
    public let requested: KernelSetID
    public let supported: [KernelSetID]
    public var description: String {
        "kernel set '\(requested)' needs CPU features this machine lacks; supported here: \(supported.map(\.rawValue).joined(separator: ", "))"
    }
}

/// The entry point to the kernels: the active ISA build, chosen once at start-up.
public enum Kernels {
    private static let selected = Mutex<KernelSetID?>(nil)

    /// The best kernel set this CPU supports, unless `select` chose another.
    public static var activeID: KernelSetID {
        selected.withLock { id in
            if let id { return id }
            let best = CPUFeatures.current.supportedKernelSets[0]
            id = best
            return best
        }
    }

    public static var active: any KernelSet.Type { activeID.kernels }

    /// Forces a kernel set; throws if the CPU cannot run it.
    public static func select(_ id: KernelSetID) throws(UnsupportedKernelSet) {
        let supported = CPUFeatures.current.supportedKernelSets
        guard supported.contains(id) else { throw UnsupportedKernelSet(requested: id, supported: supported) }
        selected.withLock { $0 = id }
    }
}
