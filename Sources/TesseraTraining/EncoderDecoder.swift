// The encoder-decoder transformer of "Attention Is All You Need" (Vaswani et al. 2017): sinusoidal
// positions, post-LayerNorm blocks, an encoder of bidirectional self-attention, a decoder of causal
// self-attention then cross-attention over the encoder's output, one embedding shared by source,
// target and the output projection. (The paper's feed-forward uses ReLU; this one uses GELU, which the
// kernels provide.)
//
//   encoder:  x = E[src]·√d + PE;  per layer: x = LN(x + SelfAttn(x)); x = LN(x + FFN(x))
//   decoder:  y = E[tgt]·√d + PE;  per layer: y = LN(y + CausalSelfAttn(y)); y = LN(y + CrossAttn(y, x));
//             y = LN(y + FFN(y))
//   logits = y · Eᵀ
//
// The task used to show that it learns (SequenceReversal): reverse a string of digits. It needs every
// part — the encoder to see the digits, cross-attention to fetch source position n-1-i for output i,
// the decoder's causal attention to know where it is — and its metric is exact-match accuracy of
// greedy decoding on fresh strings.
import Foundation
import TesseraKernels
import TesseraNN

public struct EncoderDecoderConfig: Codable, Sendable, Equatable {
    public var vocabularySize: Int
    public var layers: Int, heads: Int, model: Int, feedForward: Int
    public var maxPositions: Int

    public init(vocabularySize: Int, layers: Int, heads: Int, model: Int, feedForward: Int? = nil, maxPositions: Int) {
        self.vocabularySize = vocabularySize; self.layers = layers; self.heads = heads; self.model = model
        self.feedForward = feedForward ?? 4 * model; self.maxPositions = maxPositions
    }
}

public final class EncoderDecoder: Module {
    public let config: EncoderDecoderConfig
    public let parameters: [Variable]
    private let table: [String: Variable]
    private let positions: Variable   // (maxPositions, model), fixed

    public init(config: EncoderDecoderConfig, seed: UInt64 = 1) throws(TrainingError) {
        guard config.model % config.heads == 0, config.layers > 0, config.vocabularySize > 0 else {
            throw .invalidConfig("encoder-decoder: model width \(config.model) must be a multiple of heads \(config.heads)")
        }
        self.config = config
        var rng = GaussianGenerator(seed: seed)
        let d = config.model
        var list: [Variable] = []
        func add(_ name: String, _ shape: [Int], _ fill: (inout GaussianGenerator) -> Float) {
            list.append(Variable((0..<shape.reduce(1, *)).map { _ in fill(&rng) }, shape: shape, requiresGrad: true, name: name))
        }
        func dense(_ name: String, _ outputs: Int, _ inputs: Int) {
            let std = (1 / Float(inputs)).squareRoot()
            add(name + ".weight", [outputs, inputs]) { std * $0.next() }
            add(name + ".bias", [outputs]) { _ in 0 }
        }
        func norm(_ name: String) { add(name + ".weight", [d]) { _ in 1 }; add(name + ".bias", [d]) { _ in 0 } }
        func attention(_ name: String) { for part in ["q", "k", "v", "out"] { dense("\(name).\(part)", d, d) } }
        add("embedding.weight", [config.vocabularySize, d]) { (1 / Float(d).squareRoot()) * $0.next() }
        for l in 0..<config.layers {
            attention("encoder.\(l).self_attn"); norm("encoder.\(l).norm1")
            dense("encoder.\(l).ffn.1", config.feedForward, d); dense("encoder.\(l).ffn.2", d, config.feedForward); norm("encoder.\(l).norm2")
        }
        for l in 0..<config.layers {
            attention("decoder.\(l).self_attn"); norm("decoder.\(l).norm1")
            attention("decoder.\(l).cross_attn"); norm("decoder.\(l).norm2")
            dense("decoder.\(l).ffn.1", config.feedForward, d); dense("decoder.\(l).ffn.2", d, config.feedForward); norm("decoder.\(l).norm3")
        }
        parameters = list
        table = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
        // PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...)
        var pe = [Float](repeating: 0, count: config.maxPositions * d)
        for p in 0..<config.maxPositions {
            for i in stride(from: 0, to: d, by: 2) {
                let angle = Double(p) / pow(10000, Double(i) / Double(d))
                pe[p * d + i] = Float(sin(angle))
                if i + 1 < d { pe[p * d + i + 1] = Float(cos(angle)) }
            }
        }
        positions = Variable(pe, shape: [config.maxPositions, d])
    }

    func p(_ name: String) -> Variable { table[name]! }

    private func dense(_ x: Variable, _ name: String) -> Variable { linear(x, p(name + ".weight"), p(name + ".bias")) }
    private func norm(_ x: Variable, _ name: String) -> Variable { layerNorm(x, weight: p(name + ".weight"), bias: p(name + ".bias")) }

    private func attend(_ name: String, queries x: Variable, keys memory: Variable, batch: Int, queryTokens: Int, keyTokens: Int,
                        causal: Bool) -> Variable {
        let a = attention(q: dense(x, name + ".q"), k: dense(memory, name + ".k"), v: dense(memory, name + ".v"),
                          shape: AttentionShape(batch: batch, queries: queryTokens, keys: keyTokens, queryHeads: config.heads,
                                                headDim: config.model / config.heads, mask: AttentionMask(causal: causal)))
        return dense(a, name + ".out")
    }

    private func embed(_ ids: [Int32], tokens: Int) -> Variable {
        addRows(scale(embedding(p("embedding.weight"), ids), Float(config.model).squareRoot()), positions, period: tokens)
    }

    /// Encoder output (batch · sourceTokens, model).
    public func encode(_ source: [Int32], batch: Int, tokens: Int) -> Variable {
        var x = embed(source, tokens: tokens)
        for l in 0..<config.layers {
            let n = "encoder.\(l)"
            x = norm(add(x, attend(n + ".self_attn", queries: x, keys: x, batch: batch, queryTokens: tokens, keyTokens: tokens, causal: false)), n + ".norm1")
            x = norm(add(x, dense(activation(.geluErf, dense(x, n + ".ffn.1")), n + ".ffn.2")), n + ".norm2")
        }
        return x
    }

    /// Next-token logits (batch · targetTokens, vocab) for the decoder inputs `target`.
    public func decode(_ target: [Int32], memory: Variable, batch: Int, targetTokens: Int, sourceTokens: Int) -> Variable {
        var y = embed(target, tokens: targetTokens)
        for l in 0..<config.layers {
            let n = "decoder.\(l)"
            y = norm(add(y, attend(n + ".self_attn", queries: y, keys: y, batch: batch, queryTokens: targetTokens, keyTokens: targetTokens,
                                   causal: true)), n + ".norm1")
            y = norm(add(y, attend(n + ".cross_attn", queries: y, keys: memory, batch: batch, queryTokens: targetTokens,
                                   keyTokens: sourceTokens, causal: false)), n + ".norm2")
            y = norm(add(y, dense(activation(.geluErf, dense(y, n + ".ffn.1")), n + ".ffn.2")), n + ".norm3")
        }
        return linear(y, p("embedding.weight"))
    }

    /// Teacher-forced loss: decoder inputs `target` (starting with BOS), labels `labels` (shifted by one).
    public func loss(source: [Int32], target: [Int32], labels: [Int32], batch: Int) -> Variable {
        let s = source.count / batch, t = target.count / batch
        let memory = encode(source, batch: batch, tokens: s)
        return crossEntropy(decode(target, memory: memory, batch: batch, targetTokens: t, sourceTokens: s), targets: labels, ignoreIndex: -1)
    }

    /// Greedy decoding of `length` tokens after BOS for one source sequence.
    public func greedy(source: [Int32], bos: Int32, length: Int) -> [Int32] {
        GradMode.disabled {
            let memory = encode(source, batch: 1, tokens: source.count)
            var output: [Int32] = [bos]
            for _ in 0..<length {
                let z = decode(output, memory: memory, batch: 1, targetTokens: output.count, sourceTokens: source.count)
                let row = z.value.pointer + (output.count - 1) * config.vocabularySize
                var best = 0
                for v in 1..<config.vocabularySize where row[v] > row[best] { best = v }
                output.append(Int32(best))
            }
            return Array(output.dropFirst())
        }
    }
}

/// The sequence-reversal task: source n random digits (ids 0-9), target the same digits reversed;
/// BOS is id 10.
public enum SequenceReversal {
    public static let bos: Int32 = 10
    public static let vocabularySize = 11

    /// A batch: sources, decoder inputs (BOS + reversed[..<n-1]) and labels (reversed).
    public static func batch(size: Int, length: Int, rng: inout GaussianGenerator) -> (source: [Int32], target: [Int32], labels: [Int32]) {
        var source: [Int32] = [], target: [Int32] = [], labels: [Int32] = []
        for _ in 0..<size {
            let digits = (0..<length).map { _ in Int32(rng.next() % 10) }
            let reversed = Array(digits.reversed())
            source += digits
            target += [bos] + reversed.dropLast()
            labels += reversed
        }
        return (source, target, labels)
    }

    /// Exact-match accuracy of greedy decoding on `count` fresh sequences.
    public static func accuracy(_ model: EncoderDecoder, count: Int, length: Int, seed: UInt64) -> Double {
        var rng = GaussianGenerator(seed: seed)
        var correct = 0
        for _ in 0..<count {
            let digits = (0..<length).map { _ in Int32(rng.next() % 10) }
            if model.greedy(source: digits, bos: bos, length: length) == Array(digits.reversed()) { correct += 1 }
        }
        return Double(correct) / Double(count)
    }
}
