// The AVX-512 (x86-64-v4 + VNNI) build of the kernels: Skylake-X, Ice Lake, Sapphire Rapids, Zen 4/5.
// Every other source file of this target is a link to the same file in TesseraKernelsGeneric/.
import TesseraCore

/// The kernels compiled for x86-64-v4 with AVX-512 VNNI (16-lane vectors).
public enum AVX512Kernels: KernelSet {
    public static let name = "avx512"
}

typealias ISAKernels = AVX512Kernels
