// BERT for masked-language-model pre-training (Devlin et al. 2018; HF BertForMaskedLM's parameter
// names): token + learned position embeddings and a LayerNorm; post-LayerNorm encoder blocks of
// bidirectional self-attention and a GELU feed-forward; the MLM head (dense, GELU, LayerNorm, then the
// word embeddings transposed plus a bias). Masking follows the paper: 15% of positions are chosen; of
// those 80% become [MASK], 10% a random token, 10% stay; only chosen positions are scored.
//
//   x = LN(E[ids] + P[0..<T])
//   per layer:  x = LN(x + O(attention(Qx, Kx, Vx)));  x = LN(x + W₂ gelu(W₁ x))
//   logits = LN(gelu(D x)) · Eᵀ + b
import Foundation
import TesseraKernels
import TesseraNN

public struct BERTConfig: Codable, Sendable, Equatable {
    public var vocabularySize: Int   // including [MASK]
    public var layers: Int, heads: Int, hidden: Int, intermediate: Int
    public var maxPositions: Int
    public var layerNormEpsilon: Float = 1e-12

    public init(vocabularySize: Int, layers: Int, heads: Int, hidden: Int, intermediate: Int? = nil, maxPositions: Int) {
        self.vocabularySize = vocabularySize; self.layers = layers; self.heads = heads; self.hidden = hidden
        self.intermediate = intermediate ?? 4 * hidden; self.maxPositions = maxPositions
    }

    public func validate() throws(TrainingError) {
        guard vocabularySize > 1, layers > 0, heads > 0, hidden > 0, intermediate > 0, maxPositions > 0 else {
            throw .invalidConfig("BERT sizes must be positive")
        }
        guard hidden % heads == 0 else { throw .invalidConfig("hidden \(hidden) is not a multiple of heads \(heads)") }
    }
}

public final class BERT: Module {
    public let config: BERTConfig
    public let parameters: [Variable]
    private let table: [String: Variable]
    /// The [MASK] token: the last id of the vocabulary.
    public var maskID: Int32 { Int32(config.vocabularySize - 1) }

    public init(config: BERTConfig, seed: UInt64 = 1) throws(TrainingError) {
        try config.validate()
        self.config = config
        var rng = GaussianGenerator(seed: seed)
        // BERT's initializer_range, 0.02, is sized for 768-wide layers; narrower ones get it scaled by
        // sqrt(768 / hidden) so that query-key scores are not ~100x too small to learn from (with 0.02 at
        // width 32, attention stays uniform: masked-token accuracy 0.2 where neighbours decide the answer).
        let c = config.hidden, std: Float = 0.02 * (768 / Float(config.hidden)).squareRoot()
        var list: [Variable] = []
        func add(_ name: String, _ shape: [Int], _ fill: (inout GaussianGenerator) -> Float) {
            list.append(Variable((0..<shape.reduce(1, *)).map { _ in fill(&rng) }, shape: shape, requiresGrad: true, name: name))
        }
        func dense(_ name: String, _ outputs: Int, _ inputs: Int) {
            add(name + ".weight", [outputs, inputs]) { std * $0.next() }
            add(name + ".bias", [outputs]) { _ in 0 }
        }
        func norm(_ name: String) {
            add(name + ".weight", [c]) { _ in 1 }
            add(name + ".bias", [c]) { _ in 0 }
        }
        add("bert.embeddings.word_embeddings.weight", [config.vocabularySize, c]) { std * $0.next() }
        // Position embeddings start as sinusoids (Vaswani et al.), scaled to the word embeddings' size,
        // and are learned from there: from N(0, 0.02) a small BERT needs thousands of steps before it
        // can tell its neighbours apart (masked-token accuracy stayed at the unigram level, 0.22, for
        // 500 steps on Shakespeare).
        let sinusoids = (0..<(config.maxPositions * c)).map { index -> Float in
            let position = Double(index / c), i = index % c
            let angle = position / pow(10000, Double(i - i % 2) / Double(c))
            return Float(i % 2 == 0 ? sin(angle) : cos(angle)) * 0.1
        }
        list.append(Variable(sinusoids, shape: [config.maxPositions, c], requiresGrad: true, name: "bert.embeddings.position_embeddings.weight"))
        norm("bert.embeddings.LayerNorm")
        for l in 0..<config.layers {
            let p = "bert.encoder.layer.\(l)."
            dense(p + "attention.self.query", c, c)
            dense(p + "attention.self.key", c, c)
            dense(p + "attention.self.value", c, c)
            dense(p + "attention.output.dense", c, c)
            norm(p + "attention.output.LayerNorm")
            dense(p + "intermediate.dense", config.intermediate, c)
            dense(p + "output.dense", c, config.intermediate)
            norm(p + "output.LayerNorm")
        }
        dense("cls.predictions.transform.dense", c, c)
        norm("cls.predictions.transform.LayerNorm")
        add("cls.predictions.bias", [config.vocabularySize]) { _ in 0 }
        parameters = list
        table = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }

    func p(_ name: String) -> Variable { table[name]! }

    /// The final hidden states (batch · tokens, hidden).
    public func encode(_ ids: [Int32], batch: Int, tokens: Int) -> Variable {
        precondition(ids.count == batch * tokens && tokens <= config.maxPositions, "BERT: \(ids.count) ids for \(batch) x \(tokens)")
        let c = config.hidden, eps = config.layerNormEpsilon
        func ln(_ x: Variable, _ name: String) -> Variable { layerNorm(x, weight: p(name + ".weight"), bias: p(name + ".bias"), epsilon: eps) }
        func dense(_ x: Variable, _ name: String) -> Variable { linear(x, p(name + ".weight"), p(name + ".bias")) }
        var x = ln(addRows(embedding(p("bert.embeddings.word_embeddings.weight"), ids), p("bert.embeddings.position_embeddings.weight"),
                           period: tokens), "bert.embeddings.LayerNorm")
        for l in 0..<config.layers {
            let n = "bert.encoder.layer.\(l)."
            let a = attention(q: dense(x, n + "attention.self.query"), k: dense(x, n + "attention.self.key"),
                              v: dense(x, n + "attention.self.value"),
                              shape: AttentionShape(batch: batch, queries: tokens, keys: tokens, queryHeads: config.heads,
                                                    headDim: c / config.heads, mask: AttentionMask(causal: false)))
            x = ln(add(x, dense(a, n + "attention.output.dense")), n + "attention.output.LayerNorm")
            let f = dense(activation(.geluErf, dense(x, n + "intermediate.dense")), n + "output.dense")
            x = ln(add(x, f), n + "output.LayerNorm")
        }
        return x
    }

    /// MLM logits (batch · tokens, vocab).
    public func logits(_ ids: [Int32], batch: Int, tokens: Int) -> Variable {
        let h = encode(ids, batch: batch, tokens: tokens)
        let t = layerNorm(activation(.geluErf, linear(h, p("cls.predictions.transform.dense.weight"), p("cls.predictions.transform.dense.bias"))),
                          weight: p("cls.predictions.transform.LayerNorm.weight"), bias: p("cls.predictions.transform.LayerNorm.bias"),
                          epsilon: config.layerNormEpsilon)
        return linear(t, p("bert.embeddings.word_embeddings.weight"), p("cls.predictions.bias"))
    }

    /// The masked-LM loss: cross-entropy at the chosen positions (targets -100 elsewhere).
    public func loss(inputs: [Int32], targets: [Int32], batch: Int, tokens: Int) -> Variable {
        crossEntropy(logits(inputs, batch: batch, tokens: tokens), targets: targets, ignoreIndex: -100)
    }

    /// The fraction of chosen positions whose most likely token is the original one.
    public func maskedAccuracy(inputs: [Int32], targets: [Int32], batch: Int, tokens: Int) -> (correct: Int, total: Int) {
        GradMode.disabled {
            let z = logits(inputs, batch: batch, tokens: tokens), vocab = config.vocabularySize
            var correct = 0, total = 0
            for (row, target) in targets.enumerated() where target != -100 {
                let r = z.value.pointer + row * vocab
                var best = 0
                for v in 1..<vocab where r[v] > r[best] { best = v }
                if best == Int(target) { correct += 1 }
                total += 1
            }
            return (correct, total)
        }
    }

    /// BERT's masking of `ids`: 15% of positions chosen; of those 80% -> [MASK], 10% -> a random
    /// ordinary token, 10% unchanged. Targets: the original id at chosen positions, -100 elsewhere.
    public static func mask(_ ids: [Int32], maskID: Int32, ordinaryTokens: Int, rng: inout GaussianGenerator,
                            probability: Double = 0.15) -> (inputs: [Int32], targets: [Int32]) {
        var inputs = ids, targets = [Int32](repeating: -100, count: ids.count)
        for i in ids.indices {
            guard Double(rng.next() >> 11) / Double(1 << 53) < probability else { continue }
            targets[i] = ids[i]
            let u = Double(rng.next() >> 11) / Double(1 << 53)
            if u < 0.8 { inputs[i] = maskID } else if u < 0.9 { inputs[i] = Int32(rng.next() % UInt64(ordinaryTokens)) }
        }
        return (inputs, targets)
    }
}
