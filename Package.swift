// swift-tools-version:6.1
// Tessera: an LLM inference engine and toolkit for CPUs, in Swift.
//
// Module layout (see ../shared/DESIGN.md); dependencies point left:
//   TesseraCore <- TesseraKernels{Generic,AVX2,AVX512} <- TesseraKernels <- (NN, Models, ...) <- tessera
//   TesseraCore <- TesseraFormats <- tessera
// The three ISA kernel targets compile the *same* sources (TesseraKernelsAVX2/ and TesseraKernelsAVX512/
// hold symbolic links to TesseraKernelsGeneric/) with different -march flags; TesseraKernels picks one
// at start-up from the CPU's features.
import PackageDescription

/// Kernels run ~100x slower unoptimised; keep them fast in debug builds too so tests stay quick.
let kernelOptimisation: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraKernels", targets: ["TesseraKernels"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // A private C shim: CPU feature detection, futex, atomics and intrinsics Swift cannot spell.
        .target(name: "CTesseraCPU"),
        .target(name: "TesseraCore", dependencies: ["CTesseraCPU"], swiftSettings: kernelOptimisation),
        .target(
            name: "TesseraKernelsGeneric", dependencies: ["TesseraCore", "CTesseraCPU"],
            swiftSettings: kernelOptimisation + [.unsafeFlags(["-Xcc", "-march=x86-64"])]),
        .target(
            name: "TesseraKernelsAVX2", dependencies: ["TesseraCore", "CTesseraCPU"],
            swiftSettings: kernelOptimisation + [
                .define("TESSERA_AVX2"), .unsafeFlags(["-Xcc", "-march=x86-64-v3"]),
            ]),
        .target(
            name: "TesseraKernelsAVX512", dependencies: ["TesseraCore", "CTesseraCPU"],
            swiftSettings: kernelOptimisation + [
                .define("TESSERA_AVX512"),
                .unsafeFlags(["-Xcc", "-march=x86-64-v4", "-Xcc", "-mavx512vnni", "-Xcc", "-mprefer-vector-width=512"]),
            ]),
        .target(
            name: "TesseraKernels",
            dependencies: ["TesseraCore", "CTesseraCPU", "TesseraKernelsGeneric", "TesseraKernelsAVX2", "TesseraKernelsAVX512"],
            swiftSettings: kernelOptimisation),
        // Model file formats (GGUF, later safetensors); knows nothing about models.
        .target(name: "TesseraFormats", dependencies: ["TesseraCore"]),
        .executableTarget(
            name: "tessera",
            dependencies: ["TesseraKernels", "TesseraFormats", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "TesseraCoreTests", dependencies: ["TesseraCore"]),
        .testTarget(name: "TesseraKernelsTests", dependencies: ["TesseraKernels"]),
        .testTarget(name: "TesseraFormatsTests", dependencies: ["TesseraFormats"]),
    ],
    swiftLanguageModes: [.v6]
)
