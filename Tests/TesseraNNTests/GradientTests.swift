// Every differentiable operation's backward pass against central finite differences of its forward
// pass: the loss is Σ (op(inputs) ∘ R) for a fixed random R, so every output element's gradient
// matters; each input element is nudged by ±h (h = 1e-2 in f32) and the difference quotient compared
// with the analytic gradient within 2e-3 + 2e-2·|numeric|.
import TesseraCore
import TesseraKernels
import TesseraNN
import XCTest

func randomValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    KernelConformance.randomFloats(count, seed: seed, scale: scale)
}

final class GradientTests: XCTestCase {
    /// Checks d(Σ f(inputs) ∘ R)/d(input) for every input that requires a gradient.
    func check(_ name: String, inputs: [Variable], h: Float = 1e-2, tolerance: Float = 2e-2,
               file: StaticString = #filePath, line: UInt = #line, _ f: ([Variable]) -> Variable) {
        let probe = f(inputs)
        let weights = Variable(randomValues(probe.count, seed: 99), shape: probe.shape)
        func loss() -> Float { GradMode.disabled { sum(multiply(f(inputs), weights)).scalar } }
        for v in inputs { v.zeroGrad() }
        sum(multiply(f(inputs), weights)).backward()
        var worst: Float = 0, detail = ""
        for (index, v) in inputs.enumerated() where v.requiresGrad {
            let analytic = v.grad.map { $0.array } ?? [Float](repeating: 0, count: v.count)
            for i in 0..<v.count {
                let saved = v.value.pointer[i]
                v.value.pointer[i] = saved + h
                let up = loss()
                v.value.pointer[i] = saved - h
                let down = loss()
                v.value.pointer[i] = saved
                let numeric = (up - down) / (2 * h)
                let ratio = abs(analytic[i] - numeric) / (2e-3 + tolerance * abs(numeric))
                if ratio > worst { worst = ratio; detail = "input \(index)[\(i)]: analytic \(analytic[i]), numeric \(numeric)" }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "\(name): \(detail)", file: file, line: line)
    }

    func parameter(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Variable {
        Variable(randomValues(shape.reduce(1, *), seed: seed, scale: scale), shape: shape, requiresGrad: true)
    }

    func testLinearAndElementwise() {
        let x = parameter([5, 7], seed: 1), w = parameter([3, 7], seed: 2), b = parameter([3], seed: 3)
        check("linear", inputs: [x, w, b]) { linear($0[0], $0[1], $0[2]) }
        check("linear without bias", inputs: [x, w]) { linear($0[0], $0[1]) }
        let y = parameter([5, 7], seed: 4)
        check("add", inputs: [x, y]) { add($0[0], $0[1]) }
        check("multiply", inputs: [x, y]) { multiply($0[0], $0[1]) }
        check("scale", inputs: [x]) { scale($0[0], -1.7) }
        let p = parameter([4, 7], seed: 5)
        check("addRows", inputs: [x, p]) { addRows($0[0], $0[1], period: 2) }
        for kind in Activation.allCases {
            check("\(kind)", inputs: [parameter([6, 9], seed: 6, scale: 3)]) { activation(kind, $0[0]) }
        }
    }

    func testGatherAndReshape() {
        let table = parameter([6, 4], seed: 7)
        check("embedding", inputs: [table]) { embedding($0[0], [3, 0, 3, 5, 1]) }
        let x = parameter([3, 8], seed: 8)
        check("columns", inputs: [x]) { columns($0[0], 2..<7) }
        check("reshape", inputs: [x]) { reshape($0[0], [6, 4]) }
        check("transpose", inputs: [x]) { transpose($0[0]) }
        check("sum", inputs: [x]) { sum($0[0]) }
    }

    func testNormalization() {
        let x = parameter([4, 10], seed: 9, scale: 2), w = parameter([10], seed: 10), b = parameter([10], seed: 11)
        check("layerNorm", inputs: [x, w, b]) { layerNorm($0[0], weight: $0[1], bias: $0[2]) }
        check("layerNorm without affine", inputs: [x]) { layerNorm($0[0], weight: nil, bias: nil) }
        check("rmsNorm", inputs: [x, w]) { rmsNorm($0[0], weight: $0[1]) }
        // Wide enough for the 16-float loops, the 8-float step and a tail.
        let wide = parameter([3, 45], seed: 12, scale: 2), ww = parameter([45], seed: 13), wb = parameter([45], seed: 14)
        check("layerNorm, 45 wide", inputs: [wide, ww, wb]) { layerNorm($0[0], weight: $0[1], bias: $0[2]) }
    }

    func testSoftmaxAndCrossEntropy() {
        let x = parameter([3, 7], seed: 12, scale: 3)
        check("softmax", inputs: [x]) { softmax($0[0]) }
        check("cross-entropy", inputs: [x]) { crossEntropy($0[0], targets: [2, 6, 0]) }
        check("cross-entropy with ignored targets", inputs: [x]) { crossEntropy($0[0], targets: [2, -1, 0]) }
        check("masked-LM loss (-100 ignored)", inputs: [x]) { crossEntropy($0[0], targets: [-100, 4, -100], ignoreIndex: -100) }
        // The value: mean of -log softmax at the targets over counted rows.
        let z = Variable([0, 0, 0, 1, 2, 3], shape: [2, 3])
        XCTAssertEqual(crossEntropy(z, targets: [1, -1]).scalar, Float(log(3.0)), accuracy: 1e-6)
    }

    func testAttention() {
        // 2 sequences of 5 tokens, 4 query heads sharing 2 KV heads of 4 (grouped-query), causal.
        let q = parameter([10, 16], seed: 13), k = parameter([10, 8], seed: 14), v = parameter([10, 8], seed: 15)
        check("causal attention (GQA)", inputs: [q, k, v]) {
            causalSelfAttention(q: $0[0], k: $0[1], v: $0[2], batch: 2, tokens: 5, heads: 4, kvHeads: 2, headDim: 4)
        }
        // Cross-attention: 3 queries over 6 keys, no mask.
        let cq = parameter([3, 8], seed: 16), ck = parameter([6, 8], seed: 17), cv = parameter([6, 8], seed: 18)
        check("cross-attention", inputs: [cq, ck, cv]) {
            attention(q: $0[0], k: $0[1], v: $0[2],
                      shape: AttentionShape(queries: 3, keys: 6, queryHeads: 2, headDim: 4, mask: AttentionMask(causal: false)))
        }
    }

    func testRotaryPositions() {
        let table = RoPETable(config: RoPEConfig(rotaryDims: 8, base: 100, layout: .neox), capacity: 4)
        let x = parameter([5, 16], seed: 21)
        check("rotary (neox, grows its table)", inputs: [x]) { rotary($0[0], heads: 2, headDim: 8, positions: [0, 3, 1, 7, 2], table: table) }
        let interleaved = RoPETable(config: RoPEConfig(rotaryDims: 4, base: 10000, layout: .interleaved), capacity: 16)
        check("rotary (interleaved, partial)", inputs: [x]) { rotary($0[0], heads: 2, headDim: 8, positions: [0, 3, 1, 7, 2], table: interleaved) }
    }

    func testDropoutScalesKeptValuesAndIsOffWithoutGradients() {
        var rng = SystemRandomNumberGenerator()
        let x = Variable([Float](repeating: 1, count: 10_000), shape: [10_000], requiresGrad: true)
        let y = dropout(x, p: 0.25, using: &rng)
        let kept = y.array.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 10_000, 0.75, accuracy: 0.03)
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        sum(y).backward()
        XCTAssertEqual(x.grad!.array, y.array, "the gradient passes exactly where the value did")
        XCTAssertTrue(GradMode.disabled { dropout(x, p: 0.25, using: &rng) } === x)
    }

    func testGradientsAccumulateAndNothingIsRecordedWhenOff() {
        let w = parameter([2, 3], seed: 19), x = Variable(randomValues(3, seed: 20), shape: [1, 3])
        sum(linear(x, w)).backward()
        let once = w.grad!.array
        sum(linear(x, w)).backward()
        XCTAssertEqual(w.grad!.array, once.map { 2 * $0 })
        let y = GradMode.disabled { linear(x, w) }
        XCTAssertFalse(y.requiresGrad)
    }

    /// zeroGrad() clears lazily: a reader sees zeros, the next GEMM overwrites the stale buffer, and the
    /// one after that adds to it again.
    func testZeroGradClearsForReadersAndWriters() {
        let w = parameter([2, 3], seed: 19), x = Variable(randomValues(3, seed: 20), shape: [1, 3])
        sum(linear(x, w)).backward()
        let once = w.grad!.array
        w.zeroGrad()
        XCTAssertEqual(w.grad!.array, [Float](repeating: 0, count: 6), "a reader after zeroGrad sees zeros")
        sum(linear(x, w)).backward()
        XCTAssertEqual(w.grad!.array, once)
        w.zeroGrad()
        sum(linear(x, w)).backward()  // overwrites the stale gradient instead of adding to it
        XCTAssertEqual(w.grad!.array, once)
        sum(linear(x, w)).backward()
        XCTAssertEqual(w.grad!.array, once.map { 2 * $0 })
    }
}
