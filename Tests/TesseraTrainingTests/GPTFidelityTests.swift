// Tessera's GPT training step against PyTorch's (Goldens/gpt-tiny, written by
// scripts/goldens/make_training_goldens.py): the same initial weights and batches give the same loss,
// the same gradient for every tensor after the first backward, the same weights after one AdamW step,
// and the same losses, learning rates and gradient norms over 20 steps with warmup, cosine decay,
// clipping and decoupled weight decay.
import Foundation
import TesseraCore
import TesseraFormats
import TesseraNN
import TesseraTraining
import XCTest

struct TrainingGolden: Decodable {
    struct Config: Decodable {
        let n_layer: Int, n_head: Int, n_embd: Int, block_size: Int, vocab_size: Int, batch_size: Int
        let beta1: Float, beta2: Float, adam_eps: Float, weight_decay: Float
        let max_lr: Float, min_lr: Float, warmup_iters: Int, lr_decay_iters: Int, grad_clip: Float
    }
    struct Step: Decodable { let it: Int; let x: [[Int32]]; let y: [[Int32]]; let loss: Float; let lr: Float; let grad_norm: Float }
    let config: Config
    let steps: [Step]
}

final class GPTFidelityTests: XCTestCase {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/gpt-tiny")

    func tensors(_ file: String) throws -> [String: [Float]] {
        let f = try SafetensorsFile(path: directory.appendingPathComponent(file).path)
        var result: [String: [Float]] = [:]
        for e in f.entries { result[e.name] = try f.tensor(e.name)!.toFloats() }
        return result
    }

    func setUpModel() throws -> (GPT, TrainingGolden) {
        let golden = try JSONDecoder().decode(TrainingGolden.self, from: Data(contentsOf: directory.appendingPathComponent("golden.json")))
        let c = golden.config
        let model = try GPT(config: GPTConfig(vocabularySize: c.vocab_size, layers: c.n_layer, heads: c.n_head, embedding: c.n_embd,
                                              blockSize: c.block_size))
        let initial = try tensors("init.safetensors")
        XCTAssertEqual(Set(initial.keys), Set(model.parameters.map(\.name)), "parameter names are nanoGPT's")
        for p in model.parameters { p.value.pointer.update(from: initial[p.name]!, count: p.count) }
        return (model, golden)
    }

    func loss(_ model: GPT, _ step: TrainingGolden.Step) -> Variable {
        var rng = GaussianGenerator(seed: 0)
        return model.loss(inputs: step.x.flatMap { $0 }, targets: step.y.flatMap { $0 }, batch: step.x.count,
                          tokens: step.x[0].count, rng: &rng)
    }

    /// Worst |found - expected| / (max |expected| of the tensor), over all tensors.
    func worstRelative(_ model: GPT, _ expected: [String: [Float]], _ values: (Variable) -> [Float]) -> (Float, String) {
        var worst: Float = 0, name = ""
        for p in model.parameters {
            let e = expected[p.name]!, f = values(p)
            let scale = max(e.map(abs).max()!, 1e-12)
            for i in e.indices where abs(f[i] - e[i]) / scale > worst { worst = abs(f[i] - e[i]) / scale; name = p.name }
        }
        return (worst, name)
    }

    func testFirstStepLossAndGradientsEqualPyTorch() throws {
        let (model, golden) = try setUpModel()
        let l = loss(model, golden.steps[0])
        XCTAssertEqual(l.scalar, golden.steps[0].loss, accuracy: 1e-5 * golden.steps[0].loss)
        l.backward()
        let (worst, name) = worstRelative(model, try tensors("grads_step0.safetensors")) { $0.grad!.array }
        XCTAssertLessThan(worst, 1e-4, "gradient of \(name)")
        print("gpt-tiny step 0: loss \(l.scalar) vs \(golden.steps[0].loss); worst gradient error \(worst) of the tensor's largest (\(name))")
    }

    func testTwentyAdamWStepsFollowPyTorch() throws {
        let (model, golden) = try setUpModel()
        let c = golden.config
        let optimizer = AdamW(parameters: model.parameters, learningRate: c.max_lr, beta1: c.beta1, beta2: c.beta2,
                              epsilon: c.adam_eps, weightDecay: c.weight_decay)
        let schedule = LearningRateSchedule(maxLR: c.max_lr, minLR: c.min_lr, warmup: c.warmup_iters, decayIters: c.lr_decay_iters)
        var worstLoss: Float = 0
        for step in golden.steps {
            model.zeroGrad()
            let l = loss(model, step)
            l.backward()
            let norm = clipGradientNorm(model.parameters, maxNorm: c.grad_clip)
            optimizer.learningRate = schedule.rate(at: step.it)
            XCTAssertEqual(optimizer.learningRate, step.lr, accuracy: 1e-9, "lr at step \(step.it)")
            XCTAssertEqual(norm, step.grad_norm, accuracy: 1e-4 * step.grad_norm, "gradient norm at step \(step.it)")
            worstLoss = max(worstLoss, abs(l.scalar - step.loss) / step.loss)
            optimizer.update()
            if step.it == 0 {
                let expected = try tensors("weights_step1.safetensors")
                var worst: Float = 0
                for p in model.parameters { for (f, e) in zip(p.array, expected[p.name]!) { worst = max(worst, abs(f - e)) } }
                // lr·sign(g) moves: an element whose gradient is ~0 may move the other way (see the golden's note).
                XCTAssertLessThan(worst, 4e-4, "weights after one AdamW step")
            }
        }
        XCTAssertLessThan(worstLoss, 1e-4, "losses over 20 steps (relative)")
        let final = try tensors("weights_step20.safetensors")
        var worst: Float = 0
        for p in model.parameters { for (f, e) in zip(p.array, final[p.name]!) { worst = max(worst, abs(f - e)) } }
        XCTAssertLessThan(worst, 1e-3, "weights after 20 steps")
        print("gpt-tiny 20 steps: worst relative loss error \(worstLoss); worst weight difference after 20 steps \(worst)")
    }
}
