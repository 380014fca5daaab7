// The training loop: a config file in, a trained model out. Each step draws `accumulation` micro-
// batches (reproducibly from the seed and the step), back-propagates each (gradients accumulate),
// clips the global gradient norm, sets the scheduled learning rate and takes an AdamW step. Every
// `evalInterval` steps it measures the validation loss (gradients off); every `checkpointInterval`
// steps, and at the end, it writes a checkpoint — weights, optimiser moments, the step, the config and
// the vocabulary, in one safetensors file — from which `resume` continues exactly where it stopped.
// The log (step, train loss, validation loss, lr, tokens/s) goes to log.csv beside it.
import Foundation
import TesseraCore
import TesseraFormats
import TesseraNN

public struct TrainingConfig: Codable, Sendable, Equatable {
    public var model: GPTConfig
    /// A directory of .txt files; `validation` names the files held out.
    public var dataDirectory: String
    public var validation: [String]
    public var batchSize = 8
    public var accumulation = 1
    public var steps = 1000
    public var learningRate: Float = 1e-3
    public var minLearningRate: Float = 1e-4
    public var warmup = 100
    public var weightDecay: Float = 0.1
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var gradientClip: Float = 1.0
    public var evalInterval = 100
    public var evalBatches = 10
    public var checkpointInterval = 500
    public var seed: UInt64 = 1337
    /// "char" (the corpus's characters), "bytes" (byte-level, 257 tokens) or a tokenizer.json path.
    /// With a tokenizer, the trained model is also written as a GPT-2 directory (output/model) that
    /// `tessera generate --model` loads.
    public var tokenizer = "char"
    /// Where checkpoint.safetensors and log.csv go.
    public var output: String

    enum CodingKeys: String, CodingKey {
        case model, dataDirectory = "data_directory", validation, batchSize = "batch_size", accumulation = "gradient_accumulation"
        case steps, learningRate = "learning_rate", minLearningRate = "min_learning_rate", warmup, weightDecay = "weight_decay"
        case beta1, beta2, gradientClip = "grad_clip", evalInterval = "eval_interval", evalBatches = "eval_batches"
        case checkpointInterval = "checkpoint_interval", seed, output, tokenizer
    }

    public init(model: GPTConfig, dataDirectory: String, validation: [String], output: String) {
        self.model = model; self.dataDirectory = dataDirectory; self.validation = validation; self.output = output
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(GPTConfig.self, forKey: .model)
        dataDirectory = try c.decode(String.self, forKey: .dataDirectory)
        validation = try c.decode([String].self, forKey: .validation)
        output = try c.decode(String.self, forKey: .output)
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? 8
        accumulation = try c.decodeIfPresent(Int.self, forKey: .accumulation) ?? 1
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? 1000
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? 1e-3
        minLearningRate = try c.decodeIfPresent(Float.self, forKey: .minLearningRate) ?? learningRate / 10
        warmup = try c.decodeIfPresent(Int.self, forKey: .warmup) ?? 100
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? 0.1
        beta1 = try c.decodeIfPresent(Float.self, forKey: .beta1) ?? 0.9
        beta2 = try c.decodeIfPresent(Float.self, forKey: .beta2) ?? 0.95
        gradientClip = try c.decodeIfPresent(Float.self, forKey: .gradientClip) ?? 1
        evalInterval = try c.decodeIfPresent(Int.self, forKey: .evalInterval) ?? 100
        evalBatches = try c.decodeIfPresent(Int.self, forKey: .evalBatches) ?? 10
        checkpointInterval = try c.decodeIfPresent(Int.self, forKey: .checkpointInterval) ?? 500
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 1337
        tokenizer = try c.decodeIfPresent(String.self, forKey: .tokenizer) ?? "char"
    }

    public func validate() throws(TrainingError) {
        guard batchSize >= 1, accumulation >= 1, steps >= 1, evalInterval >= 1, evalBatches >= 1, checkpointInterval >= 1 else {
            throw .invalidConfig("batch_size, gradient_accumulation, steps, eval_interval, eval_batches and checkpoint_interval must be >= 1")
        }
        guard learningRate > 0, minLearningRate >= 0, warmup >= 0, gradientClip > 0 else {
            throw .invalidConfig("learning rates and grad_clip must be positive, warmup >= 0")
        }
    }
}

/// One line of the training log.
public struct TrainingLogEntry: Sendable {
    public var step: Int
    public var trainLoss: Float
    public var validationLoss: Float?
    public var learningRate: Float
    public var tokensPerSecond: Double
    public var seconds: Double
}

public final class Trainer {
    public let config: TrainingConfig
    public let data: TextDataset
    public let model: GPT
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public private(set) var step = 0
    public private(set) var log: [TrainingLogEntry] = []

    public init(config: TrainingConfig) throws(TrainingError) {
        try config.validate()
        self.config = config
        data = try TextDataset(directory: config.dataDirectory, validation: config.validation, tokenizer: config.tokenizer)
        var modelConfig = config.model
        modelConfig.vocabularySize = data.encoding.vocabularySize
        model = try GPT(config: modelConfig, seed: config.seed)
        optimizer = AdamW(parameters: model.parameters, learningRate: config.learningRate, beta1: config.beta1, beta2: config.beta2,
                          weightDecay: config.weightDecay)
        schedule = LearningRateSchedule(maxLR: config.learningRate, minLR: config.minLearningRate, warmup: config.warmup,
                                        decayIters: config.steps)
    }

    var checkpointPath: String { config.output + "/checkpoint.safetensors" }
    /// What identifies the token ids: the characters, or the tokenizer setting and size.
    var vocabularyKey: String {
        if case .characters(let v) = data.encoding { return String(v.characters) }
        return "tokenizer \(config.tokenizer) \(data.encoding.vocabularySize)"
    }
    var logPath: String { config.output + "/log.csv" }

    /// One optimiser step; returns the mean training loss of its micro-batches.
    public func trainStep() -> Float {
        model.zeroGrad()
        var total: Float = 0
        let tokens = config.model.blockSize
        for micro in 0..<config.accumulation {
            let (x, y) = TextDataset.batch(from: data.train, batch: config.batchSize, tokens: tokens, seed: config.seed,
                                           step: step * config.accumulation + micro)
            var rng = GaussianGenerator(seed: config.seed ^ UInt64(step * config.accumulation + micro + 1) &* 0x2545_F491_4F6C_DD1D)
            let l = model.loss(inputs: x, targets: y, batch: config.batchSize, tokens: tokens, rng: &rng)
            let scaled = config.accumulation > 1 ? scale(l, 1 / Float(config.accumulation)) : l
            scaled.backward()
            total += l.scalar
        }
        clipGradientNorm(model.parameters, maxNorm: config.gradientClip)
        optimizer.learningRate = schedule.rate(at: step)
        optimizer.update()
        step += 1
        return total / Float(config.accumulation)
    }

    /// Mean loss over `evalBatches` fixed validation batches, gradients off.
    public func validationLoss() -> Float {
        GradMode.disabled {
            var total: Float = 0
            for b in 0..<config.evalBatches {
                let (x, y) = TextDataset.batch(from: data.validation, batch: config.batchSize, tokens: config.model.blockSize,
                                               seed: config.seed ^ 0xE7A1, step: b)
                var rng = GaussianGenerator(seed: 0)
                total += model.loss(inputs: x, targets: y, batch: config.batchSize, tokens: config.model.blockSize, rng: &rng).scalar
            }
            return total / Float(config.evalBatches)
        }
    }

    /// Trains until `config.steps` (or `until`), calling `report` after every step.
    public func run(until last: Int? = nil, report: (TrainingLogEntry) -> Void) throws {
        try FileManager.default.createDirectory(atPath: config.output, withIntermediateDirectories: true)
        let end = min(config.steps, last ?? config.steps)
        let tokensPerStep = Double(config.batchSize * config.accumulation * config.model.blockSize)
        while step < end {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let loss = trainStep()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            var entry = TrainingLogEntry(step: step, trainLoss: loss, validationLoss: nil, learningRate: optimizer.learningRate,
                                         tokensPerSecond: tokensPerStep / seconds, seconds: seconds)
            if step % config.evalInterval == 0 || step == end { entry.validationLoss = validationLoss() }
            log.append(entry)
            report(entry)
            if step % config.checkpointInterval == 0 || step == end { try saveCheckpoint() }
        }
    }

    // MARK: - Checkpoints

    public func saveCheckpoint() throws {
        var writer = SafetensorsWriter()
        for p in model.parameters { writer.add(p.name, Tensor(shape: p.shape, values: p.array)) }
        for (name, storage) in optimizer.state { writer.add("optimizer." + name, Tensor(shape: [storage.count], values: storage.array)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        writer.metadata = [
            "step": "\(step)", "optimizer_step": "\(optimizer.step)",
            "config": String(decoding: try encoder.encode(config), as: UTF8.self),
            "vocabulary": vocabularyKey,
            "format": "tessera-gpt",
        ]
        let temporary = checkpointPath + ".tmp"
        try writer.write(to: temporary)
        _ = try? FileManager.default.removeItem(atPath: checkpointPath)
        try FileManager.default.moveItem(atPath: temporary, toPath: checkpointPath)  // never a half-written checkpoint
        let lines = ["step,train_loss,validation_loss,learning_rate,tokens_per_second"] + log.map {
            "\($0.step),\($0.trainLoss),\($0.validationLoss.map { "\($0)" } ?? ""),\($0.learningRate),\(String(format: "%.1f", $0.tokensPerSecond))"
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: logPath, atomically: true, encoding: .utf8)
        if case .tokenizer(_, let json) = data.encoding, model.config.positions == "learned", model.config.bias {
            try model.exportHuggingFace(to: config.output + "/model", tokenizerJSON: json)
        }
    }

    /// Continues from the checkpoint in `config.output`: weights, moments, step and log.
    public func resume() throws {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: checkpointPath) } catch { throw TrainingError.checkpoint("cannot read \(checkpointPath): \(error)") }
        guard file.metadata["format"] == "tessera-gpt", let saved = file.metadata["step"].flatMap(Int.init),
              let optimizerStep = file.metadata["optimizer_step"].flatMap(Int.init) else {
            throw TrainingError.checkpoint("\(checkpointPath) is not a Tessera GPT checkpoint")
        }
        guard file.metadata["vocabulary"] == vocabularyKey else {
            throw TrainingError.checkpoint("the checkpoint's vocabulary differs from this data's")
        }
        for p in model.parameters {
            guard let t = try file.tensor(p.name) else { throw TrainingError.missingParameter(p.name) }
            guard t.shape == p.shape else { throw TrainingError.wrongShape(name: p.name, expected: p.shape, found: t.shape) }
            p.value.pointer.update(from: t.toFloats(), count: p.count)
        }
        var moments: [String: [Float]] = [:]
        for (name, _) in optimizer.state {
            guard let t = try file.tensor("optimizer." + name) else { throw TrainingError.missingParameter("optimizer." + name) }
            moments[name] = t.toFloats()
        }
        try optimizer.restore(step: optimizerStep, moments: moments)
        step = saved
        if let text = try? String(contentsOfFile: logPath, encoding: .utf8) {
            log = text.split(separator: "\n").dropFirst().compactMap { line in
                let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard cells.count == 5, let s = Int(cells[0]), s <= saved, let t = Float(cells[1]), let lr = Float(cells[3]),
                      let tps = Double(cells[4]) else { return nil }
                return TrainingLogEntry(step: s, trainLoss: t, validationLoss: Float(cells[2]), learningRate: lr, tokensPerSecond: tps, seconds: 0)
            }
        }
    }
}
