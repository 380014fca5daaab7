// The `tessera` command-line tool. Subcommands are thin: each parses its options and calls a library.
import ArgumentParser
import TesseraCore
import TesseraKernels

@main
struct Tessera: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera: run, serve, compress and fine-tune language models on the CPU.",
        subcommands: [Generate.self, Chat.self, Serve.self, PerplexityCommand.self, Fetch.self, Info.self, Bench.self, Check.self, AttentionMap.self, Inspect.self, Tokenize.self, TokenizerCommand.self, Plot.self, Train.self, TrainTask.self])
}

/// Options every compute command shares.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Kernel threads (default: the cores this process may use).")
    var threads: Int?

    @Option(help: "Force a kernel set: generic, avx2 or avx512 (default: the best this CPU supports).")
    var kernels: String?

    func apply() throws {
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            ThreadPool.setSharedThreadCount(threads)
        }
        if let kernels {
            guard let id = KernelSetID(rawValue: kernels) else {
                throw ValidationError("unknown kernel set '\(kernels)'; choose generic, avx2 or avx512")
            }
            do { try Kernels.select(id) } catch { throw ValidationError(error.description) }
        }
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the CPU features found and the kernel set chosen.")
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let cpu = CPUFeatures.current
        print("cpu:            \(cpu.brand.isEmpty ? "unknown" : cpu.brand)")
        print("features:       \(cpu.description)")
        print("kernel sets:    \(cpu.supportedKernelSets.map(\.rawValue).joined(separator: ", ")) (supported, best first)")
        print("active kernels: \(Kernels.activeID) — \(Kernels.activeID.targetDescription)")
        print("threads:        \(ThreadPool.shared.threadCount) (available cores: \(ThreadPool.availableCores))")
    }
}
