// The Sampler, which takes logits and returns a token.
//
// Order of operations (as in llama.cpp's default chain and vLLM): logit bias -> penalties (repetition
// over the prompt and the output; presence and frequency over the output only, as OpenAI and vLLM
// define them) -> (temperature 0: argmax) -> temperature -> top-k ->
// softmax -> top-p (nucleus) -> min-p -> draw with a seeded generator. Same seed, same parameters,
// same logits: same token, on every machine (the generator is a fixed xoshiro256**, not the system's).
import Foundation

public struct SamplingParameters: Sendable, Equatable, Codable {
    /// 0 means greedy (argmax).
    public var temperature: Float = 1
    /// Keep the k most likely tokens; 0 or less keeps all.
    public var topK: Int = 0
    /// Keep the smallest set of tokens whose probability sums to at least p; 1 keeps all.
    public var topP: Float = 1
    /// Drop tokens less likely than minP times the most likely one; 0 keeps all.
    public var minP: Float = 0
    /// Divides positive logits (multiplies negative ones) of tokens in the prompt or the output so far;
    /// 1 is off (the HF/vLLM rule).
    public var repetitionPenalty: Float = 1
    /// Subtracted once from the logit of every token generated so far (OpenAI presence_penalty; prompt
    /// tokens do not count).
    public var presencePenalty: Float = 0
    /// Subtracted per occurrence in the output so far (OpenAI frequency_penalty).
    public var frequencyPenalty: Float = 0
    /// Added to a token's logit before anything else (OpenAI logit_bias).
    public var logitBias: [Int32: Float] = [:]
    /// Fixes the random draws; nil draws a seed from the system.
    public var seed: UInt64?

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0, repetitionPenalty: Float = 1,
                presencePenalty: Float = 0, frequencyPenalty: Float = 0, logitBias: [Int32: Float] = [:], seed: UInt64? = nil) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP
        self.repetitionPenalty = repetitionPenalty; self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty; self.logitBias = logitBias; self.seed = seed
    }

    public static let greedy = SamplingParameters(temperature: 0)

    /// Checks the ranges; a bad value is an error naming the parameter, never silently clamped.
    public func validate(vocabularySize: Int) throws(SamplingError) {
        guard temperature.isFinite, temperature >= 0, temperature <= 100 else { throw .invalid("temperature", "\(temperature)", "0...100") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw .invalid("top_p", "\(topP)", "(0, 1]") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw .invalid("min_p", "\(minP)", "[0, 1]") }
        guard topK >= -1 else { throw .invalid("top_k", "\(topK)", "-1, 0 (off) or a positive count") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else { throw .invalid("repetition_penalty", "\(repetitionPenalty)", "> 0") }
        guard presencePenalty.isFinite, abs(presencePenalty) <= 2 else { throw .invalid("presence_penalty", "\(presencePenalty)", "[-2, 2]") }
        guard frequencyPenalty.isFinite, abs(frequencyPenalty) <= 2 else { throw .invalid("frequency_penalty", "\(frequencyPenalty)", "[-2, 2]") }
        for (id, bias) in logitBias {
            guard id >= 0, Int(id) < vocabularySize else { throw .invalid("logit_bias", "token \(id)", "ids in 0..<\(vocabularySize)") }
            guard bias.isFinite, abs(bias) <= 100 else { throw .invalid("logit_bias", "\(bias)", "[-100, 100]") }
        }
    }
}

public enum SamplingError: Error, CustomStringConvertible, Equatable {
    case invalid(_ parameter: String, _ value: String, _ allowed: String)
    public var description: String {
        switch self {
        case .invalid(let p, let v, let allowed): "invalid \(p) \(v): allowed \(allowed)"
        }
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast, and the same everywhere.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitMix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUnit() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }
}

public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var generator: SeededGenerator

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        generator = SeededGenerator(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
    }

    /// Picks the next token from `logits` (vocab), given the prompt and the tokens produced so far for
    /// the penalties.
    public mutating func sample(_ logits: [Float], history: TokenHistory = TokenHistory()) -> Int32 {
        var logits = logits
        applyBiasAndPenalties(&logits, history: history)
        if parameters.temperature == 0 { return Sampler.argmax(logits) }

        // Candidates sorted by logit, cut by top-k.
        var candidates = Array(0..<logits.count)
        let k = parameters.topK > 0 ? min(parameters.topK, logits.count) : logits.count
        if k < logits.count {
            candidates = Sampler.topIndices(logits, k)
        } else {
            candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        }
        // Softmax at the temperature (in Double for stability of the cumulative sums).
        let maxLogit = Double(logits[candidates[0]])
        var probabilities = candidates.map { exp((Double(logits[$0]) - maxLogit) / Double(parameters.temperature)) }
        var total = probabilities.reduce(0, +)
        // Top-p: the shortest prefix whose mass reaches p.
        if parameters.topP < 1 {
            var cumulative = 0.0, keep = probabilities.count
            for (i, p) in probabilities.enumerated() {
                cumulative += p / total
                if cumulative >= Double(parameters.topP) { keep = i + 1; break }
            }
            probabilities.removeSubrange(keep...)
            candidates.removeSubrange(keep...)
            total = probabilities.reduce(0, +)
        }
        // Min-p: relative to the most likely candidate (probabilities[0] is the largest).
        if parameters.minP > 0 {
            let threshold = probabilities[0] * Double(parameters.minP)
            let keep = probabilities.firstIndex { $0 < threshold } ?? probabilities.count
            probabilities.removeSubrange(keep...)
            candidates.removeSubrange(keep...)
            total = probabilities.reduce(0, +)
        }
        let u = Double(generator.nextUnit()) * total
        var cumulative = 0.0
        for (i, p) in probabilities.enumerated() {
            cumulative += p
            if u < cumulative { return Int32(candidates[i]) }
        }
        return Int32(candidates[candidates.count - 1])
    }

    func applyBiasAndPenalties(_ logits: inout [Float], history: TokenHistory) {
        for (id, bias) in parameters.logitBias where Int(id) < logits.count { logits[Int(id)] += bias }
        let p = parameters
        if p.repetitionPenalty != 1 {
            for id in history.seen where Int(id) < logits.count && id >= 0 {
                let l = logits[Int(id)]
                logits[Int(id)] = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty
            }
        }
        if p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            for (id, n) in history.outputCounts where Int(id) < logits.count && id >= 0 {
                logits[Int(id)] -= p.presencePenalty + Float(n) * p.frequencyPenalty
            }
        }
    }

    /// The first index of the largest value.
    public static func argmax(_ x: [Float]) -> Int32 {
        var best = 0
        for i in 1..<x.count where x[i] > x[best] { best = i }
        return Int32(best)
    }

    /// Indices of the k largest values, largest first (ties: lower index first).
    static func topIndices(_ x: [Float], _ k: Int) -> [Int] {
        // A min-heap of k would be asymptotically better; a partial selection by threshold is simpler
        // and fast for k ≪ vocab: keep a sorted buffer of the best k.
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in 0..<x.count {
            if best.count == k, let last = best.last, x[i] <= x[last] { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if x[best[mid]] >= x[i] { lo = mid + 1 } else { hi = mid }
            }
            best.insert(i, at: lo)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}

/// The tokens the penalties look at: every distinct token of the prompt and the output (repetition
/// penalty) and how often each token occurs in the output (presence and frequency penalties). It grows
/// by one token a step, so a step's penalties cost the number of distinct tokens, not the history's
/// length.
public struct TokenHistory: Sendable, Equatable {
    public private(set) var seen: Set<Int32> = []
    public private(set) var outputCounts: [Int32: Int] = [:]

    public init(prompt: [Int32] = [], output: [Int32] = []) {
        seen = Set(prompt)
        for id in output { append(id) }
    }

    /// Records a generated token.
    public mutating func append(_ id: Int32) {
        seen.insert(id)
        outputCounts[id, default: 0] += 1
    }
}
