// Optimisers, learning-rate schedules and gradient clipping, each as PyTorch defines it so a run can
// be held to a PyTorch reference step by step.
//
// AdamW (Loshchilov & Hutter; torch.optim.AdamW, its single-tensor loop), at step t = 1, 2, ...:
//     p ← p · (1 - lr · wd)                         decoupled weight decay (0 for norms and biases)
//     m ← β₁ m + (1 - β₁) g;   v ← β₂ v + (1 - β₂) g²
//     p ← p - lr / (1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)
// SGD with momentum (torch.optim.SGD): b ← μ b + g (b = g at the first step); p ← p - lr · (g or b).
// Clipping by global norm (torch.nn.utils.clip_grad_norm_): n = ‖all gradients‖₂; g ← g · min(1, c / (n + 1e-6)).
// Schedule (nanoGPT's get_lr): linear warmup lr·(it+1)/warmup, then cosine from lr down to minLR at
// decayIters, then minLR.
import Foundation
import TesseraCore
import TesseraNN

/// Which parameters weight decay applies to: nanoGPT's rule, every tensor of rank >= 2 (matrices and
/// embeddings), never biases or normalisation weights.
public func decays(_ p: Variable) -> Bool { p.shape.count >= 2 }

public final class AdamW {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public let parameters: [Variable]
    public private(set) var step = 0
    var m: [FloatStorage], v: [FloatStorage]

    public init(parameters: [Variable], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
        m = parameters.map { FloatStorage(count: $0.count) }
        v = parameters.map { FloatStorage(count: $0.count) }
    }

    /// One update of every parameter from its accumulated gradient.
    public func update() {
        step += 1
        let t = Float(step), lr = learningRate
        let correction1 = 1 - pow(beta1, t), correction2Root = (1 - pow(beta2, t)).squareRoot()
        let stepSize = lr / correction1
        for (index, p) in parameters.enumerated() {
            guard let grad = p.grad?.pointer else { continue }
            let decay = decays(p) ? 1 - lr * weightDecay : 1
            let value = p.value.pointer, mp = m[index].pointer, vp = v[index].pointer
            let (b1, b2, eps) = (beta1, beta2, epsilon)
            ThreadPool.shared.parallelRanges(p.count, grain: 32_768) { range in
                // Eight at a time, the same operations in the same order as the scalar tail (so the
                // same bits): the scalar loop's square root and division per element were ~2% of a step.
                var i = range.lowerBound
                while i + 8 <= range.upperBound {
                    let g = RowMath.load(grad + i)
                    let mv = b1 * RowMath.load(mp + i) + (1 - b1) * g
                    let vv = b2 * RowMath.load(vp + i) + (1 - b2) * g * g
                    RowMath.store(mv, mp + i); RowMath.store(vv, vp + i)
                    RowMath.store(RowMath.load(value + i) * decay - stepSize * mv / (vv.squareRoot() / correction2Root + eps), value + i)
                    i += 8
                }
                while i < range.upperBound {
                    value[i] *= decay
                    let g = grad[i]
                    mp[i] = b1 * mp[i] + (1 - b1) * g
                    vp[i] = b2 * vp[i] + (1 - b2) * g * g
                    value[i] -= stepSize * mp[i] / (vp[i].squareRoot() / correction2Root + eps)
                    i += 1
                }
            }
        }
    }

    /// One plain training step on `loss`: clear the gradients, back-propagate, clip the global norm to
    /// `clip`, take the scheduled rate for step `step` (if a schedule is given) and update.
    public func minimise(_ loss: Variable, step: Int, schedule: LearningRateSchedule? = nil, clip: Float = 1) {
        for p in parameters { p.zeroGrad() }
        loss.backward()
        clipGradientNorm(parameters, maxNorm: clip)
        if let schedule { learningRate = schedule.rate(at: step) }
        update()
    }

    /// The moments, for checkpoints: "m.NAME" and "v.NAME" per parameter.
    public var state: [(String, FloatStorage)] {
        parameters.indices.flatMap { [("m." + parameters[$0].name, m[$0]), ("v." + parameters[$0].name, v[$0])] }
    }

    /// Restores moments and the step count saved by `state`.
    public func restore(step: Int, moments: [String: [Float]]) throws(TrainingError) {
        for (index, p) in parameters.enumerated() {
            for (prefix, storage) in [("m.", m[index]), ("v.", v[index])] {
                guard let values = moments[prefix + p.name] else { throw .missingParameter(prefix + p.name) }
                guard values.count == p.count else { throw .wrongShape(name: prefix + p.name, expected: p.shape, found: [values.count]) }
                storage.pointer.update(from: values, count: values.count)
            }
        }
        self.step = step
    }
}

public final class SGD {
    public var learningRate: Float
    public let momentum: Float, weightDecay: Float
    public let parameters: [Variable]
    private var buffers: [FloatStorage?]

    public init(parameters: [Variable], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public func update() {
        for (index, p) in parameters.enumerated() {
            guard let grad = p.grad?.pointer else { continue }
            let value = p.value.pointer
            let decay = decays(p) ? weightDecay : 0
            if momentum == 0 {
                for i in 0..<p.count { value[i] -= learningRate * (grad[i] + decay * value[i]) }
                continue
            }
            let first = buffers[index] == nil
            if first { buffers[index] = FloatStorage(count: p.count) }
            let b = buffers[index]!.pointer
            for i in 0..<p.count {
                let g = grad[i] + decay * value[i]
                b[i] = first ? g : momentum * b[i] + g
                value[i] -= learningRate * b[i]
            }
        }
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Variable], maxNorm: Float) -> Float {
    var total = 0.0
    for p in parameters {
        guard let g = p.grad?.pointer else { continue }
        var s = 0.0
        for i in 0..<p.count { s += Double(g[i]) * Double(g[i]) }
        total += s
    }
    let norm = Float(total.squareRoot())
    let coefficient = min(1, maxNorm / (norm + 1e-6))
    if coefficient < 1 {
        for p in parameters {
            guard let g = p.grad?.pointer else { continue }
            for i in 0..<p.count { g[i] *= coefficient }
        }
    }
    return norm
}

/// Linear warmup, then cosine decay to a floor.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public var maxLR: Float
    public var minLR: Float
    public var warmup: Int
    public var decayIters: Int

    public init(maxLR: Float, minLR: Float, warmup: Int, decayIters: Int) {
        self.maxLR = maxLR; self.minLR = minLR; self.warmup = warmup; self.decayIters = decayIters
    }

    /// The rate for step `it` (0-based).
    public func rate(at it: Int) -> Float {
        if it < warmup { return maxLR * Float(it + 1) / Float(warmup) }
        if it > decayIters { return minLR }
        let ratio = Double(it - warmup) / Double(max(1, decayIters - warmup))
        return minLR + Float(0.5 * (1 + cos(Double.pi * ratio))) * (maxLR - minLR)
    }
}
