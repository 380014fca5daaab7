// The baseline x86-64 (SSE2) build of the kernels: runs on any x86-64 CPU.
// This file is the only one of this target's sources that is not shared with the AVX2 and AVX-512
// targets (whose directories link to the other files here).
import TesseraCore

/// The kernels compiled for baseline x86-64.
public enum GenericKernels: KernelSet {
    public static let name = "generic"
}

typealias ISAKernels = GenericKernels
