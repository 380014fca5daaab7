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
        // The server (TesseraServer) only: HTTP, logging, metrics, lifecycle.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `tessera bench serve`'s HTTP client (already built for HummingbirdTesting).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.30.0"),
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
        .target(name: "TesseraFormats", dependencies: ["TesseraCore"], swiftSettings: kernelOptimisation),
        // Tokenizers: byte-level BPE so far; built from GGUF metadata.
        .target(name: "TesseraTokenizers", dependencies: ["TesseraFormats"]),
        // The KV cache kinds (full, sliding-window ring, attention sinks; f32 or int8) behind one protocol.
        .target(name: "TesseraKVCache", dependencies: ["TesseraCore", "TesseraKernels"], swiftSettings: kernelOptimisation),
        // Reverse-mode autograd: differentiable operations on buffers (linear, norms, attention, losses).
        .target(name: "TesseraNN", dependencies: ["TesseraCore", "TesseraKernels"], swiftSettings: kernelOptimisation),
        // Training: GPT/BERT/encoder-decoder on the autograd, optimisers, schedules, data, checkpoints.
        .target(name: "TesseraTraining", dependencies: ["TesseraNN", "TesseraFormats", "TesseraTokenizers"],
                swiftSettings: kernelOptimisation),
        // Model families (Llama, Gemma 3, GPT-2): configs, weight loading, the forward pass.
        .target(name: "TesseraModels", dependencies: ["TesseraKernels", "TesseraFormats", "TesseraKVCache"],
                swiftSettings: kernelOptimisation),
        // Requests: sampler, generation loop, model store.
        .target(name: "TesseraEngine", dependencies: ["CTesseraCPU", "TesseraKernels", "TesseraModels", "TesseraTokenizers"]),
        // The OpenAI-compatible HTTP server over the engine's async interface (Hummingbird 2).
        .target(name: "TesseraServer", dependencies: [
            "TesseraEngine",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(
            name: "tessera",
            dependencies: ["TesseraEngine", "TesseraServer", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), "TesseraKernels", "TesseraFormats", "TesseraTokenizers", "TesseraTraining", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "TesseraCoreTests", dependencies: ["TesseraCore"]),
        .testTarget(name: "TesseraKernelsTests", dependencies: ["TesseraKernels"]),
        .testTarget(name: "TesseraNNTests", dependencies: ["TesseraNN"]),
        .testTarget(name: "TesseraTrainingTests", dependencies: ["TesseraTraining", "TesseraModels"], exclude: ["Goldens"]),
        // Goldens/ holds JSON the tests read by path (regenerated by scripts/goldens/).
        .testTarget(name: "TesseraFormatsTests", dependencies: ["TesseraFormats"], exclude: ["Goldens"]),
        .testTarget(name: "TesseraTokenizersTests", dependencies: ["TesseraTokenizers"], exclude: ["Goldens"]),
        .testTarget(name: "TesseraModelsTests", dependencies: ["TesseraModels", "TesseraEngine"], exclude: ["Goldens"]),
        .testTarget(name: "TesseraEngineTests", dependencies: ["TesseraEngine", "TesseraKVCache"], exclude: ["Resources"]),
        .testTarget(name: "TesseraServerTests", dependencies: [
            "TesseraServer", "TesseraTraining", .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
