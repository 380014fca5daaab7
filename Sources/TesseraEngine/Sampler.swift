// The Sampler, which takes logits and returns a token.
//
// Order of operations (as in llama.cpp's default chain and vLLM): logit bias -> penalties (repetition
// over the prompt and the output; presence and frequency over the output only, as OpenAI and vLLM
// define them) -> (temperature 0: argmax) -> temperature -> top-k ->
// softmax -> top-p (nucleus) -> min-p -> draw with a seeded generator. Same seed, same parameters,
// same logits: same token, on every machine (the generator is a fixed xoshiro256**, not the system's).
import CTesseraCPU
import Foundation
import TesseraKernels

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

    /// `sample` on a row of a larger buffer (a batch's logits): greedy without bias or penalties reads
    /// it in place; anything else samples a copy.
    public mutating func sample(_ logits: ArraySlice<Float>, history: TokenHistory = TokenHistory()) -> Int32 {
        let p = parameters
        if p.temperature == 0, p.logitBias.isEmpty, p.repetitionPenalty == 1, p.presencePenalty == 0, p.frequencyPenalty == 0 {
            return Sampler.argmax(logits)
        }
        return sample(Array(logits), history: history)
    }

    /// Picks the next token from `logits` (vocab), given the prompt and the tokens produced so far for
    /// the penalties.
    public mutating func sample(_ logits: [Float], history: TokenHistory = TokenHistory()) -> Int32 {
        var logits = logits
        applyBiasAndPenalties(&logits, history: history)
        if parameters.temperature == 0 || logits.isEmpty { return Sampler.argmax(logits) }
        let d = distribution(logits)
        let total = Sampler.sum(d.probabilities)
        // Non-finite logits (a broken model) leave nothing to draw from: the largest, as greedy would.
        guard total.isFinite, total > 0 else { return Sampler.argmax(logits) }
        return draw(d, total: total)
    }

    /// The tokens a draw may pick and their probabilities (not renormalised after the cuts: a draw
    /// scales by their sum): `tokens` in the order a draw walks them, or nil for the whole vocabulary in
    /// id order (`probabilities` then has one per token).
    public struct Distribution: Sendable {
        public var tokens: [Int]?
        public var probabilities: [Float]
    }

    /// Temperature, top-k, softmax, top-p and min-p over logits (bias and penalties applied). Never a
    /// sort of the vocabulary: a decode step samples every running sequence on the engine's thread, and
    /// sorting 49k ids per token (what this did first) cost ~2.5 ms a sequence, three times a batch-16
    /// step's forward pass. The softmax runs on the kernels' vectorised exp; top-k sorts only the values
    /// above a threshold that at least k reach; top-p sorts only the band of probability where the
    /// cumulative mass crosses p (`nucleus`), so the nucleus is the full sort's set (up to rounding at
    /// its edge), listed band by band. Without top-p or min-p
    /// the draw walks the vocabulary in id order — the same distribution as walking it sorted, though a
    /// given seed picks other tokens than the full-sort sampler did.
    public func distribution(_ logits: [Float]) -> Distribution {
        let p = parameters, vocabulary = logits.count
        let k = p.topK > 0 ? min(p.topK, vocabulary) : vocabulary
        if k < vocabulary {
            // The k most likely, largest first (ties: lower id first); a softmax over them alone.
            let tokens = Sampler.topIndices(logits, k)
            let probabilities = Sampler.softmax(tokens.map { logits[$0] }, temperature: p.temperature)
            return Sampler.cut(Distribution(tokens: tokens, probabilities: probabilities), topP: p.topP, minP: p.minP,
                               total: Sampler.sum(probabilities))
        }
        let probabilities = Sampler.softmax(logits, temperature: p.temperature)
        var tokens: [Int]?
        if p.topP < 1 { tokens = Sampler.nucleus(probabilities, mass: Double(p.topP) * Sampler.sum(probabilities)) }
        if p.minP > 0 {
            let threshold = probabilities[Int(Sampler.argmax(probabilities))] * p.minP
            tokens = tokens.map { $0.filter { probabilities[$0] >= threshold } }
                ?? Sampler.indices(of: probabilities, in: threshold, .infinity)
        }
        guard let tokens else { return Distribution(tokens: nil, probabilities: probabilities) }
        return Distribution(tokens: tokens, probabilities: tokens.map { probabilities[$0] })
    }

    /// A draw from `d`: the first token whose cumulative probability passes u · total (u uniform in [0, 1)).
    mutating func draw(_ d: Distribution, total: Double) -> Int32 {
        let target = Double(generator.nextUnit()) * total
        let i = d.probabilities.withUnsafeBufferPointer { tessera_cumulative_find_f32($0.baseAddress!, $0.count, target) }
        return Int32(d.tokens?[i] ?? i)
    }

    /// The sorted head of a distribution cut to top-p (the shortest prefix whose mass reaches p of
    /// `total`, the whole distribution's) and min-p (tokens at least min-p times as likely as the first).
    static func cut(_ d: Distribution, topP: Float, minP: Float, total: Double) -> Distribution {
        guard let tokens = d.tokens, !tokens.isEmpty else { return d }
        var keep = tokens.count
        if topP < 1 {
            var cumulative = 0.0
            for (i, q) in d.probabilities.enumerated() {
                cumulative += Double(q)
                if cumulative >= Double(topP) * total { keep = i + 1; break }
            }
        }
        if minP > 0 {
            let threshold = d.probabilities[0] * minP
            keep = min(keep, d.probabilities.firstIndex { $0 < threshold } ?? keep)
        }
        return Distribution(tokens: Array(tokens.prefix(keep)), probabilities: Array(d.probabilities.prefix(keep)))
    }

    /// The textbook sampler's distribution, the oracle of the tests and of `tessera bench sampler`: every
    /// token sorted by logit (ties: lower id first), top-k, softmax in Double at the temperature, top-p's
    /// shortest prefix, min-p; probabilities renormalised, in the sorted order.
    public static func referenceDistribution(_ logits: [Float], _ p: SamplingParameters) -> (tokens: [Int], probabilities: [Double]) {
        var order = Array(logits.indices).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if p.topK > 0 { order = Array(order.prefix(p.topK)) }
        let top = Double(logits[order[0]])
        var probabilities = order.map { exp((Double(logits[$0]) - top) / Double(p.temperature)) }
        if p.topP < 1 {
            let total = probabilities.reduce(0, +)
            var cumulative = 0.0, keep = probabilities.count
            for (i, q) in probabilities.enumerated() {
                cumulative += q / total
                if cumulative >= Double(p.topP) { keep = i + 1; break }
            }
            order = Array(order.prefix(keep)); probabilities = Array(probabilities.prefix(keep))
        }
        if p.minP > 0 {
            let keep = probabilities.firstIndex { $0 < probabilities[0] * Double(p.minP) } ?? probabilities.count
            order = Array(order.prefix(keep)); probabilities = Array(probabilities.prefix(keep))
        }
        let total = probabilities.reduce(0, +)
        return (order, probabilities.map { $0 / total })
    }

    /// softmax(x / temperature) on the kernels' vectorised exp; the largest is taken off before the
    /// division, so that a tiny temperature gives 0 and -inf, not inf - inf.
    static func softmax(_ x: [Float], temperature: Float) -> [Float] {
        guard !x.isEmpty else { return [] }
        let top = x[Int(argmax(x))]
        // Scaled into the result and normalised there (the kernel reads each value before writing it):
        // one vocabulary-sized buffer a token, not two.
        return [Float](unsafeUninitializedCapacity: x.count) { y, count in
            x.withUnsafeBufferPointer { x in
                for i in 0..<x.count { y[i] = (x[i] - top) / temperature }
            }
            Kernels.active.softmax(y.baseAddress!, y.baseAddress!, rows: 1, cols: x.count)
            count = x.count
        }
    }

    /// The top-p nucleus: the fewest most likely tokens whose probabilities sum to `mass` (ties: lower
    /// ids first). Bands of probability, each half the last, join whole while the mass stays
    /// short; only the band that crosses it is sorted, and cut there. (Every token of a band is more
    /// likely than any of the next, so the result is the head of the whole vocabulary's sorted order.)
    /// The first `headBands` bands come from one scan of the vocabulary — the tokens at least
    /// 2^-headBands as likely as the first, split into their bands in id order — which is where the
    /// nucleus ends unless the tail below them holds more than 1 - p of the mass; then the scans take
    /// over. The result is the same as `nucleusByScans`' (the same bands, sums and order).
    public static func nucleus(_ probabilities: [Float], mass: Double) -> [Int] {
        guard !probabilities.isEmpty else { return [] }
        // The scans' thresholds: band k holds [thresholds[k], thresholds[k - 1]) (band 0 up to +inf).
        let top = probabilities[Int(argmax(probabilities))]
        var thresholds: [Float] = [], threshold = top / 2
        while thresholds.count < headBands {
            guard threshold > 1e-30 else { return nucleusByScans(probabilities, mass: mass) }
            thresholds.append(threshold)
            threshold /= 2
        }
        let head = indices(of: probabilities, in: thresholds[headBands - 1], .infinity)
        // Counting sort of the head by band, stable: each band's ids stay ascending. Thresholds are the
        // top probability times powers of two (halving is exact here), so a token's band follows from
        // its exponent and whether its significand reaches the top's: the first k with p >= top·2^-(k+1).
        let topBits = top.bitPattern, topExponent = Int(topBits >> 23 & 0xFF), topSignificand = topBits & 0x7F_FFFF
        var bandOf = [UInt8](repeating: 0, count: head.count), bandStart = [Int](repeating: 0, count: headBands + 1)
        probabilities.withUnsafeBufferPointer { p in
            for (n, id) in head.enumerated() {
                let bits = p[id].bitPattern
                let k = max(0, topExponent - Int(bits >> 23 & 0xFF) - (bits & 0x7F_FFFF >= topSignificand ? 1 : 0))
                bandOf[n] = UInt8(k)
                bandStart[k + 1] += 1
            }
        }
        for k in 0..<headBands { bandStart[k + 1] += bandStart[k] }
        var byBand = [Int](repeating: 0, count: head.count), next = bandStart
        for (n, id) in head.enumerated() {
            byBand[next[Int(bandOf[n])]] = id
            next[Int(bandOf[n])] += 1
        }
        var chosen: [Int] = [], chosenMass = 0.0
        for k in 0..<headBands {
            let band = Array(byBand[bandStart[k]..<bandStart[k + 1]])
            if join(band, probabilities, mass: mass, last: false, chosen: &chosen, chosenMass: &chosenMass) { return chosen }
        }
        return nucleusByScans(probabilities, mass: mass)
    }

    /// Bands whose tokens one scan gathers before the band-by-band scans are needed (down to 2^-16 of
    /// the most likely token's probability).
    static let headBands = 16

    /// The nucleus by one scan of the vocabulary per band (the reference of `nucleus`, and its way on
    /// when the head's bands do not reach the mass).
    public static func nucleusByScans(_ probabilities: [Float], mass: Double) -> [Int] {
        guard !probabilities.isEmpty else { return [] }
        var chosen: [Int] = [], chosenMass = 0.0
        var upper = Float.infinity, threshold = probabilities[Int(argmax(probabilities))] / 2
        while true {
            let band = indices(of: probabilities, in: threshold, upper)
            if join(band, probabilities, mass: mass, last: threshold == 0, chosen: &chosen, chosenMass: &chosenMass)
                || threshold == 0 { return chosen }
            upper = threshold
            threshold = threshold > 1e-30 ? threshold / 2 : 0
        }
    }

    /// Adds the next band (ids ascending) to the nucleus: whole while the mass stays short of `mass`;
    /// otherwise — or when it is the `last` — its tokens largest first until the mass is reached.
    /// True once reached. (A crossing band may leave it short by a hair, its sum and the running one
    /// rounding differently: the bands below go on.)
    private static func join(_ band: [Int], _ probabilities: [Float], mass: Double, last: Bool, chosen: inout [Int],
                             chosenMass: inout Double) -> Bool {
        if chosenMass + sum(band.map { probabilities[$0] }) >= mass || last {
            for token in sortedLargestFirst(band, by: probabilities) {
                chosen.append(token)
                chosenMass += Double(probabilities[token])
                if chosenMass >= mass { return true }
            }
            return false
        }
        chosen += band
        chosenMass += band.reduce(0.0) { $0 + Double(probabilities[$1]) }
        return false
    }

    /// The ids (ascending) whose value lies in [lo, hi) ([lo, +inf] for hi = +inf).
    static func indices(of x: [Float], in lo: Float, _ hi: Float) -> [Int] {
        guard !x.isEmpty else { return [] }
        return [Int](unsafeUninitializedCapacity: x.count) { out, count in
            count = x.withUnsafeBufferPointer { p in
                out.withMemoryRebound(to: Int64.self) { tessera_select_range_f32(p.baseAddress!, p.count, lo, hi, $0.baseAddress!) }
            }
        }
    }

    /// Σ x in Double.
    static func sum(_ x: [Float]) -> Double { x.isEmpty ? 0 : x.withUnsafeBufferPointer { tessera_sum_f32($0.baseAddress!, $0.count) } }

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

    /// The first index of the largest value (NaNs never win).
    public static func argmax(_ x: [Float]) -> Int32 { argmax(x[...]) }

    /// The same within a slice (the index counts from the slice's start).
    public static func argmax(_ x: ArraySlice<Float>) -> Int32 {
        x.isEmpty ? 0 : x.withUnsafeBufferPointer { Int32(tessera_argmax_f32($0.baseAddress!, $0.count)) }
    }

    /// Indices of the k largest values, largest first (ties: lower index first). At least k values
    /// reach the smallest of k blocks' maxima; those are sorted and cut (typically a few times k of
    /// them). Keeping a sorted buffer of k over the whole vocabulary took ~50 µs a token.
    static func topIndices(_ x: [Float], _ k: Int) -> [Int] {
        let k = min(k, x.count)
        guard k > 0 else { return [] }
        let threshold = x.withUnsafeBufferPointer { tessera_min_block_max_f32($0.baseAddress!, $0.count, k) }
        return Array(sortedLargestFirst(indices(of: x, in: threshold, .infinity), by: x).prefix(k))
    }

    /// `ids` sorted by their values in `x`, largest first, lower ids first among equals: one sort of
    /// integer keys, each value's bits made to order as an unsigned integer (negatives flipped whole,
    /// positives' sign bit set) above its inverted id.
    static func sortedLargestFirst(_ ids: [Int], by x: [Float]) -> [Int] {
        ids.map { i -> UInt64 in
            let bits = x[i].bitPattern
            return UInt64(bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000) << 32 | UInt64(UInt32.max - UInt32(i))
        }.sorted(by: >).map { Int(UInt32.max - UInt32(truncatingIfNeeded: $0)) }
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
