// Softmax and the language-model losses.
//   softmax backward: dx = y ∘ (dy - Σ dy ∘ y)  (per row)
//   cross-entropy:    loss = mean over counted rows of (logsumexp(z) - z[target]); a row whose target
//                     is `ignoreIndex` counts for nothing (padding; the unmasked tokens of masked LM).
//                     dz = (softmax(z) - onehot(target)) / counted rows.
import Foundation
import TesseraCore
import TesseraKernels

/// Row-wise softmax over the last dimension.
public func softmax(_ x: Variable) -> Variable {
    let width = x.shape.last!, rows = x.count / width
    let y = FloatStorage(count: x.count, zeroed: false)
    Kernels.active.softmax(x.value.pointer, y.pointer, rows: rows, cols: width)
    return Variable(y, shape: x.shape, parents: [x]) { out in
        let dy = out.grad!.pointer, dx = x.gradient(), py = y.pointer
        for row in 0..<rows {
            var dot: Float = 0
            for j in 0..<width { dot += dy[row * width + j] * py[row * width + j] }
            for j in 0..<width { dx[row * width + j] += py[row * width + j] * (dy[row * width + j] - dot) }
        }
    }
}

/// Mean cross-entropy of logits (N, V) against `targets` (N), skipping targets equal to `ignoreIndex`.
public func crossEntropy(_ logits: Variable, targets: [Int32], ignoreIndex: Int32 = -1) -> Variable {
    let vocab = logits.shape.last!, rows = logits.count / vocab
    precondition(targets.count == rows, "crossEntropy: \(targets.count) targets for \(rows) rows")
    let probabilities = FloatStorage(count: logits.count, zeroed: false)
    Kernels.active.softmax(logits.value.pointer, probabilities.pointer, rows: rows, cols: vocab)
    var total = 0.0, counted = 0
    for (row, target) in targets.enumerated() where target != ignoreIndex {
        precondition(target >= 0 && Int(target) < vocab, "crossEntropy: target \(target) outside 0..<\(vocab)")
        total -= log(Double(max(probabilities.pointer[row * vocab + Int(target)], .leastNormalMagnitude)))
        counted += 1
    }
    let loss = counted > 0 ? Float(total / Double(counted)) : 0
    return Variable(FloatStorage([loss]), shape: [1], parents: [logits]) { out in
        guard counted > 0 else { return }
        let g = out.grad!.pointer[0] / Float(counted), dz = logits.gradient(), p = probabilities.pointer
        ThreadPool.shared.parallelRanges(rows, grain: 8) { range in
            for row in range where targets[row] != ignoreIndex {
                let base = row * vocab
                for j in 0..<vocab { dz[base + j] += g * p[base + j] }
                dz[base + Int(targets[row])] -= g
            }
        }
    }
}
