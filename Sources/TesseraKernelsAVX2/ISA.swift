// The AVX2 + FMA (x86-64-v3) build of the kernels: Haswell, Zen and later.
// Every other source file of this target is a link to the same file in TesseraKernelsGeneric/.
import TesseraCore

/// The kernels compiled for x86-64-v3 (AVX2, FMA, F16C).
public enum AVX2Kernels: KernelSet {
    public static let name = "avx2"
}

typealias ISAKernels = AVX2Kernels
