// `tessera check kernels`: runs every kernel of every kernel set this CPU supports against the plain
// reference and prints the worst error of each, as a fraction of its tolerance. Exits non-zero on a
// failure. Run it on a new machine before trusting its numbers (llama.cpp's test-backend-ops, for us).
import ArgumentParser
import TesseraCore
import TesseraKernels

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Self-checks on this machine.", subcommands: [CheckKernels.self])
}

struct CheckKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels", abstract: "Check every kernel set this CPU supports against the reference kernels.")

    @Option(help: "Kernel threads (default: the cores this process may use).") var threads: Int?
    @Option(help: "Check only this kernel set (generic, avx2, avx512).") var kernels: String?

    func run() throws {
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            ThreadPool.setSharedThreadCount(threads)
        }
        let supported = CPUFeatures.current.supportedKernelSets
        var sets = supported
        if let kernels {
            guard let id = KernelSetID(rawValue: kernels) else { throw ValidationError("unknown kernel set '\(kernels)'") }
            guard supported.contains(id) else { throw ValidationError("this CPU cannot run kernel set '\(kernels)'") }
            sets = [id]
        }
        print("cpu: \(CPUFeatures.current.brand) [\(CPUFeatures.current)]")
        var failures = 0
        for id in sets {
            for result in KernelConformance.checkAll(id.kernels) {
                let status = result.passed ? "ok  " : "FAIL"
                print("\(status) \(id.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(result.kernel.padding(toLength: 22, withPad: " ", startingAt: 0)) \(result.cases) cases, worst error \(String(format: "%.3f", result.worstRatio)) of tolerance\(result.passed ? "" : " at " + result.worstCase)")
                if !result.passed { failures += 1 }
            }
        }
        print(failures == 0 ? "all kernels match the reference" : "\(failures) kernel checks FAILED")
        if failures > 0 { throw ExitCode.failure }
    }
}
