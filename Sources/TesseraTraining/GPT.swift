// GPT for training: nanoGPT's model (Karpathy, model.py) on Tessera's autograd — token and learned
// position embeddings (or rotary positions on q and k, `positions: "rotary"`), pre-LayerNorm blocks of causal self-attention and a GELU MLP, a final
// LayerNorm, and the output head tied to the token embedding. Parameter names are nanoGPT's, so a
// checkpoint is a key-by-key copy of a PyTorch one (the fidelity test loads PyTorch's initial weights).
//
//   x = wte[idx] + wpe[0..<T]
//   per block:  x += c_proj(attention(split(c_attn(ln_1(x)))))
//               x += mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
//   logits = ln_f(x) · wteᵀ
import Foundation
import TesseraCore
import TesseraKernels
import TesseraNN

public struct GPTConfig: Codable, Sendable, Equatable {
    public var vocabularySize: Int
    public var layers: Int
    public var heads: Int
    public var embedding: Int
    /// The longest sequence (rows of wpe).
    public var blockSize: Int
    public var bias = true
    public var dropout: Float = 0
    public var activation = "gelu"      // "gelu" (erf, nanoGPT) or "gelu_tanh" (GPT-2)
    public var layerNormEpsilon: Float = 1e-5
    /// "learned" (a wpe table, GPT-2) or "rotary" (RoPE on q and k, NeoX layout, base 10000).
    public var positions = "learned"

    public init(vocabularySize: Int, layers: Int, heads: Int, embedding: Int, blockSize: Int) {
        self.vocabularySize = vocabularySize; self.layers = layers; self.heads = heads
        self.embedding = embedding; self.blockSize = blockSize
    }

    var activationKind: Activation { activation == "gelu_tanh" ? .geluTanh : .geluErf }

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size", layers = "n_layer", heads = "n_head", embedding = "n_embd", blockSize = "block_size"
        case bias, dropout, activation, layerNormEpsilon = "ln_eps", positions
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabularySize = try c.decodeIfPresent(Int.self, forKey: .vocabularySize) ?? 0  // the trainer sets it from the data
        layers = try c.decode(Int.self, forKey: .layers)
        heads = try c.decode(Int.self, forKey: .heads)
        embedding = try c.decode(Int.self, forKey: .embedding)
        blockSize = try c.decode(Int.self, forKey: .blockSize)
        bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        activation = try c.decodeIfPresent(String.self, forKey: .activation) ?? "gelu"
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-5
        positions = try c.decodeIfPresent(String.self, forKey: .positions) ?? "learned"
    }

    public func validate() throws(TrainingError) {
        guard vocabularySize > 0, layers > 0, heads > 0, embedding > 0, blockSize > 0 else { throw .invalidConfig("sizes must be positive") }
        guard embedding % heads == 0 else { throw .invalidConfig("n_embd \(embedding) is not a multiple of n_head \(heads)") }
        guard dropout >= 0 && dropout < 1 else { throw .invalidConfig("dropout must be in [0, 1), got \(dropout)") }
        guard ["gelu", "gelu_tanh"].contains(activation) else { throw .invalidConfig("activation must be gelu or gelu_tanh, got \(activation)") }
        guard ["learned", "rotary"].contains(positions) else { throw .invalidConfig("positions must be learned or rotary, got \(positions)") }
        guard positions == "learned" || (embedding / heads) % 2 == 0 else { throw .invalidConfig("rotary positions need an even head dimension") }
    }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case missingParameter(String)
    case wrongShape(name: String, expected: [Int], found: [Int])
    case checkpoint(String)
    case data(String)

    public var description: String {
        switch self {
        case .invalidConfig(let detail): "invalid training configuration: \(detail)"
        case .missingParameter(let name): "the checkpoint has no tensor '\(name)'"
        case .wrongShape(let name, let expected, let found): "tensor '\(name)' has shape \(found), expected \(expected)"
        case .checkpoint(let detail): "checkpoint: \(detail)"
        case .data(let detail): "training data: \(detail)"
        }
    }
}

/// Named trainable tensors, in a fixed order.
public protocol Module: AnyObject {
    var parameters: [Variable] { get }
}

extension Module {
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
    public func parameter(named name: String) -> Variable? { parameters.first { $0.name == name } }
}

public final class GPT: Module {
    public let config: GPTConfig
    public let parameters: [Variable]
    private let table: [String: Variable]
    private let rope: RoPETable?

    /// nanoGPT's initialisation: N(0, 0.02) weights, residual projections N(0, 0.02/sqrt(2·layers)),
    /// zero biases, unit LayerNorms, from a seeded generator.
    public init(config: GPTConfig, seed: UInt64 = 1337) throws(TrainingError) {
        try config.validate()
        self.config = config
        var rng = GaussianGenerator(seed: seed)
        let c = config.embedding, std: Float = 0.02, residual = 0.02 / Float(2 * config.layers).squareRoot()
        var list: [Variable] = []
        func add(_ name: String, _ shape: [Int], _ fill: (inout GaussianGenerator) -> Float) {
            let values = (0..<shape.reduce(1, *)).map { _ in fill(&rng) }
            list.append(Variable(values, shape: shape, requiresGrad: true, name: name))
        }
        add("transformer.wte.weight", [config.vocabularySize, c]) { std * $0.next() }
        if config.positions == "learned" { add("transformer.wpe.weight", [config.blockSize, c]) { std * $0.next() } }
        for l in 0..<config.layers {
            let p = "transformer.h.\(l)."
            add(p + "ln_1.weight", [c]) { _ in 1 }
            if config.bias { add(p + "ln_1.bias", [c]) { _ in 0 } }
            add(p + "attn.c_attn.weight", [3 * c, c]) { std * $0.next() }
            if config.bias { add(p + "attn.c_attn.bias", [3 * c]) { _ in 0 } }
            add(p + "attn.c_proj.weight", [c, c]) { residual * $0.next() }
            if config.bias { add(p + "attn.c_proj.bias", [c]) { _ in 0 } }
            add(p + "ln_2.weight", [c]) { _ in 1 }
            if config.bias { add(p + "ln_2.bias", [c]) { _ in 0 } }
            add(p + "mlp.c_fc.weight", [4 * c, c]) { std * $0.next() }
            if config.bias { add(p + "mlp.c_fc.bias", [4 * c]) { _ in 0 } }
            add(p + "mlp.c_proj.weight", [c, 4 * c]) { residual * $0.next() }
            if config.bias { add(p + "mlp.c_proj.bias", [c]) { _ in 0 } }
        }
        add("transformer.ln_f.weight", [c]) { _ in 1 }
        if config.bias { add("transformer.ln_f.bias", [c]) { _ in 0 } }
        parameters = list
        table = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
        rope = config.positions == "rotary" ? RoPETable(config: RoPEConfig(rotaryDims: c / config.heads, layout: .neox), capacity: config.blockSize) : nil
    }

    func p(_ name: String) -> Variable { table[name]! }
    func optional(_ name: String) -> Variable? { table[name] }

    /// Logits (batch · tokens, vocab) for `ids`, `batch` rows of `tokens` each.
    public func forward<R: RandomNumberGenerator>(_ ids: [Int32], batch: Int, tokens: Int, rng: inout R) -> Variable {
        precondition(ids.count == batch * tokens && tokens <= config.blockSize, "GPT: \(ids.count) ids for \(batch) x \(tokens) (block \(config.blockSize))")
        let c = config.embedding, eps = config.layerNormEpsilon, headDim = c / config.heads
        var x = embedding(p("transformer.wte.weight"), ids)
        if let wpe = optional("transformer.wpe.weight") { x = addRows(x, wpe, period: tokens) }
        let positions = (0..<(batch * tokens)).map { Int32($0 % tokens) }
        x = dropout(x, p: config.dropout, using: &rng)
        for l in 0..<config.layers {
            let n = "transformer.h.\(l)."
            let h = layerNorm(x, weight: p(n + "ln_1.weight"), bias: optional(n + "ln_1.bias"), epsilon: eps)
            let qkv = linear(h, p(n + "attn.c_attn.weight"), optional(n + "attn.c_attn.bias"))
            var q = columns(qkv, 0..<c), k = columns(qkv, c..<(2 * c))
            if let rope {
                q = rotary(q, heads: config.heads, headDim: headDim, positions: positions, table: rope)
                k = rotary(k, heads: config.heads, headDim: headDim, positions: positions, table: rope)
            }
            let a = causalSelfAttention(q: q, k: k, v: columns(qkv, (2 * c)..<(3 * c)),
                                        batch: batch, tokens: tokens, heads: config.heads, headDim: headDim)
            x = add(x, dropout(linear(a, p(n + "attn.c_proj.weight"), optional(n + "attn.c_proj.bias")), p: config.dropout, using: &rng))
            let h2 = layerNorm(x, weight: p(n + "ln_2.weight"), bias: optional(n + "ln_2.bias"), epsilon: eps)
            let f = activation(config.activationKind, linear(h2, p(n + "mlp.c_fc.weight"), optional(n + "mlp.c_fc.bias")))
            x = add(x, dropout(linear(f, p(n + "mlp.c_proj.weight"), optional(n + "mlp.c_proj.bias")), p: config.dropout, using: &rng))
        }
        let final = layerNorm(x, weight: p("transformer.ln_f.weight"), bias: optional("transformer.ln_f.bias"), epsilon: eps)
        return linear(final, p("transformer.wte.weight"))
    }

    /// Mean cross-entropy of next-token prediction (targets -1 are ignored).
    public func loss<R: RandomNumberGenerator>(inputs: [Int32], targets: [Int32], batch: Int, tokens: Int, rng: inout R) -> Variable {
        crossEntropy(forward(inputs, batch: batch, tokens: tokens, rng: &rng), targets: targets, ignoreIndex: -1)
    }
}

/// Standard normal samples from a seeded xoshiro-style generator (Box-Muller), and uniform draws.
public struct GaussianGenerator: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)
    private var spare: Float?

    public init(seed: UInt64) {
        var s = seed &+ 0x9E37_79B9_7F4A_7C15
        func mix() -> UInt64 {
            s = s &+ 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (mix(), mix(), mix(), mix())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0; state.3 ^= state.1; state.1 ^= state.2; state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// One N(0, 1) sample.
    public mutating func next() -> Float {
        if let s = spare { spare = nil; return s }
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(next() >> 11) / Double(1 << 53)
        let r = (-2 * log(u1)).squareRoot()
        spare = Float(r * sin(2 * .pi * u2))
        return Float(r * cos(2 * .pi * u2))
    }
}

extension GPT {
    /// Samples `count` tokens after `prompt` (at least one id): the whole context (cropped to the block
    /// size) runs each step, gradients off — a check of what the model learned, not a fast path.
    public func sample(prompt: [Int32], count: Int, temperature: Float = 0.8, seed: UInt64 = 1) -> [Int32] {
        precondition(!prompt.isEmpty, "sampling needs at least one prompt token")
        var ids = prompt, rng = GaussianGenerator(seed: seed)
        GradMode.disabled {
            for _ in 0..<count {
                let context = Array(ids.suffix(config.blockSize))
                let logits = forward(context, batch: 1, tokens: context.count, rng: &rng)
                let vocab = config.vocabularySize, row = logits.value.pointer + (context.count - 1) * vocab
                var maximum = -Float.infinity
                for v in 0..<vocab { maximum = max(maximum, row[v]) }
                var weights = (0..<vocab).map { exp(Double((row[$0] - maximum) / max(temperature, 1e-4))) }
                let total = weights.reduce(0, +)
                var u = Double(rng.next() >> 11) / Double(1 << 53) * total, chosen = vocab - 1
                for v in 0..<vocab { u -= weights[v]; if u <= 0 { chosen = v; break } }
                weights.removeAll()
                ids.append(Int32(chosen))
            }
        }
        return Array(ids.dropFirst(prompt.count))
    }
}
