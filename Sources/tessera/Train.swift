// `tessera train CONFIG.json`: trains a GPT on a directory of text files (TesseraTraining.Trainer),
// printing loss, validation loss, tokens/s and the time left; checkpoints resume exactly (--resume);
// the loss curve is drawn to loss.svg beside the checkpoint, and a sample of the model's text ends the run.
// `tessera bench train`: training tokens/s of nanoGPT's shakespeare-char shape beside PyTorch's.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraKernels
import TesseraNN
import TesseraTraining

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a GPT from a JSON config (see docs/training.md).")

    @Argument(help: "The training config (JSON).") var config: String
    @OptionGroup var compute: ComputeOptions
    @Flag(help: "Continue from the checkpoint in the config's output directory.") var resume = false
    @Option(help: "Stop after this step (the schedule still runs to the config's steps).") var until: Int?
    @Option(help: "Characters to sample from the model at the end.") var sample = 400

    func run() throws {
        try compute.apply()
        guard let data = FileManager.default.contents(atPath: config) else { throw ValidationError("cannot read \(config)") }
        var settings: TrainingConfig
        do { settings = try JSONDecoder().decode(TrainingConfig.self, from: data) } catch {
            throw ValidationError("\(config): \(error)")
        }
        settings.dataDirectory = (settings.dataDirectory as NSString).expandingTildeInPath
        let trainer = try Trainer(config: settings)
        printErr("data: \(trainer.data.trainFiles.count) training files (\(trainer.data.train.count) tokens), "
                 + "\(trainer.data.validationFiles.count) validation (\(trainer.data.validation.count)); vocabulary \(trainer.data.encoding.vocabularySize) (\(settings.tokenizer))")
        printErr("model: \(trainer.model.parameterCount) parameters (\(settings.model.layers) layers, \(settings.model.embedding) wide, "
                 + "\(settings.model.heads) heads, block \(settings.model.blockSize)); \(ThreadPool.shared.threadCount) threads")
        if resume {
            try trainer.resume()
            printErr("resumed at step \(trainer.step)")
        }
        let end = min(settings.steps, until ?? settings.steps)
        var recent: [Double] = []
        try trainer.run(until: end) { e in
            recent.append(e.seconds)
            if recent.count > 20 { recent.removeFirst() }
            let eta = Double(end - e.step) * recent.reduce(0, +) / Double(recent.count)
            if e.validationLoss != nil || e.step % 10 == 0 {
                printErr(String(format: "step %d/%d | loss %.4f%@ | lr %.2e | %.0f tokens/s | ETA %dm%02ds", e.step, end, e.trainLoss,
                                e.validationLoss.map { String(format: " | val %.4f", $0) } ?? "", e.learningRate, e.tokensPerSecond,
                                Int(eta) / 60, Int(eta) % 60))
            }
            if e.validationLoss != nil { try? drawCurve(trainer, to: settings.output + "/loss.svg") }
        }
        try drawCurve(trainer, to: settings.output + "/loss.svg")
        if let last = trainer.log.last(where: { $0.validationLoss != nil }) {
            print(String(format: "step %d: validation loss %.4f", last.step, last.validationLoss!))
        }
        if sample > 0 {
            let prompt = try trainer.data.encoding.encode("\n")
            print(trainer.data.encoding.decode(trainer.model.sample(prompt: prompt, count: sample)))
        }
        if case .tokenizer = trainer.data.encoding {
            printErr("exported \(settings.output)/model: tessera generate \"...\" --model \(settings.output)/model")
        }
    }

    func drawCurve(_ trainer: Trainer, to path: String) throws {
        var plot = LinePlot(title: "training loss", xLabel: "step", yLabel: "cross-entropy (nats)")
        plot.series.append(.init(label: "train", points: trainer.log.map { (Double($0.step), Double($0.trainLoss)) }))
        plot.series.append(.init(label: "validation", points: trainer.log.compactMap { e in e.validationLoss.map { (Double(e.step), Double($0)) } }))
        try plot.svg().write(toFile: path, atomically: true, encoding: .utf8)
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Training tokens/s of nanoGPT's shakespeare-char shape (6 x 384, block 256, batch 8), beside PyTorch.")

    @OptionGroup var compute: ComputeOptions
    @Option(help: "Timed steps per round.") var steps = 10
    @Option(help: "Untimed warm-up steps (before the first round).") var warmup = 2
    @Option(help: "Rounds of Tessera's steps, then PyTorch's; the ratio is the median of the rounds' ratios.") var rounds = 3
    @Option(help: "The Python with PyTorch for the peer.") var python = "python3"
    @Option(help: "The peer script.") var peerScript = "scripts/bench/pytorch_train_bench.py"
    @Flag(help: "Skip PyTorch.") var noPytorch = false
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() throws {
        try compute.apply()
        guard steps >= 1, warmup >= 0, rounds >= 1 else { throw ValidationError("--steps >= 1, --warmup >= 0 and --rounds >= 1") }
        var config = GPTConfig(vocabularySize: 65, layers: 6, heads: 6, embedding: 384, blockSize: 256)
        config.dropout = 0
        let model = try GPT(config: config)
        let optimizer = AdamW(parameters: model.parameters, learningRate: 1e-3, beta1: 0.9, beta2: 0.95, weightDecay: 0.1)
        var rng = GaussianGenerator(seed: 0)
        let batch = 8, tokens = 256
        let script = noPytorch ? nil : try? String(contentsOfFile: peerScript, encoding: .utf8)
        if !noPytorch && script == nil { throw ValidationError("cannot read the PyTorch peer script \(peerScript)") }
        // The machine's speed drifts over minutes, so Tessera and PyTorch take turns: each round times
        // Tessera's steps and then PyTorch's, and the ratio is the median of the rounds' ratios.
        var ours: [Double] = [], theirs: [Double] = [], ratios: [Double] = [], allTimes: [Double] = []
        for round in 1...rounds {
            var times: [Double] = []
            let count = (round == 1 ? warmup : 0) + steps
            for s in 0..<count {
                let x = (0..<(batch * tokens)).map { _ in Int32(rng.next() % 65) }
                let y = (0..<(batch * tokens)).map { _ in Int32(rng.next() % 65) }
                let t0 = DispatchTime.now().uptimeNanoseconds
                model.zeroGrad()
                model.loss(inputs: x, targets: y, batch: batch, tokens: tokens, rng: &rng).backward()
                clipGradientNorm(model.parameters, maxNorm: 1)
                optimizer.update()
                if s >= count - steps { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                if !json { progress("round \(round)/\(rounds): tessera step \(s + 1)/\(count)") }
            }
            allTimes += times
            ours.append(Double(batch * tokens) / Timing.median(times))
            guard let script else { continue }
            if !json { progress("round \(round)/\(rounds): PyTorch, \(steps) steps") }
            guard let lines = runPythonPeer(python, script: script, arguments: ["--threads", "\(ThreadPool.shared.threadCount)",
                                                                                "--steps", "\(steps)", "--warmup", "\(warmup)", "--json"],
                                            environment: [:]),
                  let line = lines.last, let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let rate = object["tokens_per_second"] as? Double else {
                throw ValidationError("the PyTorch peer (\(python) \(peerScript)) failed; install torch or pass --no-pytorch")
            }
            theirs.append(rate)
            ratios.append(ours[ours.count - 1] / rate)
        }
        var report = BenchReport(benchmark: "train", environment: [
            "model": "GPT \(model.parameterCount) parameters (6 x 384, 6 heads, block 256, vocab 65), batch 8, AdamW",
            "threads": "\(ThreadPool.shared.threadCount)", "kernels": "\(Kernels.activeID)", "cpu": CPUFeatures.current.brand,
            "steps": "\(rounds) rounds of \(steps) timed steps (after \(warmup) warm-up)"])
        var row = BenchRow(name: "training step (forward, backward, clip, AdamW)", value: Timing.median(ours), unit: "tokens/s",
                           note: String(format: "median step %.2f s", Timing.median(allTimes)))
        if !theirs.isEmpty {
            row.reference = Timing.median(theirs)
            row.referenceName = "PyTorch \(torchVersion(python) ?? "")"
            row.pairedRatio = Timing.median(ratios)
            row.note += "; round ratios " + ratios.map { String(format: "%.2f", $0) }.joined(separator: " ")
        }
        report.rows.append(row)
        print(json ? report.json() : report.table())
    }

    func torchVersion(_ python: String) -> String? {
        runPythonPeer(python, script: "import torch; print(torch.__version__)", environment: [:])?.first
    }
}
