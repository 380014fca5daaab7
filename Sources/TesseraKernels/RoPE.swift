// Rotary position embeddings: the frequency schedule and the cos/sin tables the `rope` kernel reads.
//
// θᵢ = base^(-2i/d) for i < d/2 (d = rotary dims); a position p rotates pair i by p·θᵢ. Scaling
// variants stretch the context: linear ("position interpolation": p / factor) and Llama 3's
// frequency-dependent scaling (long wavelengths slowed by `factor`, short ones kept, smooth between).
import Foundation
import TesseraCore

public struct RoPEConfig: Sendable, Equatable {
    public enum Scaling: Sendable, Equatable {
        case none
        /// Positions divided by `factor` (HF rope_type "linear").
        case linear(factor: Double)
        /// HF rope_type "llama3".
        case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContext: Int)
        /// One divisor per rotated pair (GGUF's rope_freqs.weight, how llama.cpp stores Llama 3.1 scaling).
        case frequencyFactors([Double])
    }

    public var rotaryDims: Int
    public var base: Double
    public var scaling: Scaling
    public var layout: RoPELayout

    public init(rotaryDims: Int, base: Double = 10000, scaling: Scaling = .none, layout: RoPELayout = .neox) {
        precondition(rotaryDims > 0 && rotaryDims % 2 == 0, "RoPE rotary dims must be even and positive, got \(rotaryDims)")
        self.rotaryDims = rotaryDims
        self.base = base
        self.scaling = scaling
        self.layout = layout
    }

    /// The angular frequency of each rotated pair, after scaling.
    public var inverseFrequencies: [Double] {
        let d = Double(rotaryDims)
        return (0..<rotaryDims / 2).map { i in
            let theta = pow(base, -2 * Double(i) / d)
            switch scaling {
            case .none: return theta
            case .linear(let factor): return theta / factor
            case .frequencyFactors(let factors): return theta / (i < factors.count ? factors[i] : 1)
            case .llama3(let factor, let low, let high, let original):
                let wavelength = 2 * Double.pi / theta
                let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
                if wavelength < highWavelength { return theta }
                if wavelength > lowWavelength { return theta / factor }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return (1 - smooth) * theta / factor + smooth * theta
            }
        }
    }
}

/// cos/sin of p·θᵢ for positions 0..<capacity, (capacity, rotaryDims / 2) each, computed in Double.
public final class RoPETable: @unchecked Sendable {
    public let config: RoPEConfig
    public private(set) var capacity: Int
    public private(set) var cos: [Float]
    public private(set) var sin: [Float]
    private let inverseFrequencies: [Double]

    public init(config: RoPEConfig, capacity: Int) {
        self.config = config
        self.capacity = 0
        self.cos = []
        self.sin = []
        inverseFrequencies = config.inverseFrequencies
        ensureCapacity(capacity)
    }

    /// Grows the table to cover positions 0..<capacity (doubling, so growth is amortised).
    public func ensureCapacity(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = max(needed, capacity * 2)
        let half = config.rotaryDims / 2
        cos.reserveCapacity(newCapacity * half)
        sin.reserveCapacity(newCapacity * half)
        for p in capacity..<newCapacity {
            for f in inverseFrequencies {
                let angle = Double(p) * f
                cos.append(Float(Foundation.cos(angle)))
                sin.append(Float(Foundation.sin(angle)))
            }
        }
        capacity = newCapacity
    }
}

extension RoPETable {
    /// RoPE in place on `tokens` rows of (heads, headDim), token t rotated to positions[t] (< capacity);
    /// `inverse` rotates by -θ instead (a rotation's inverse, the backward pass of RoPE).
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, tokens: Int, positions: [Int32],
                      inverse: Bool = false) {
        let sines = inverse ? sin.map { -$0 } : sin
        positions.withUnsafeBufferPointer { pos in
            cos.withUnsafeBufferPointer { cosT in
                sines.withUnsafeBufferPointer { sinT in
                    Kernels.active.rope(RoPEArguments(x: x, tokens: tokens, heads: heads, headDim: headDim,
                                                      rotaryDims: config.rotaryDims, positions: pos.baseAddress!,
                                                      cos: cosT.baseAddress!, sin: sinT.baseAddress!, layout: config.layout))
                }
            }
        }
    }
}
