// `tessera attention-map`: draws the attention weights of one head as an SVG heat map, with the mask
// (causal, sliding window, sinks) visible. Until a model runs, the queries and keys are random vectors
// rotated by RoPE, so that — as in trained models — scores depend on relative position and the map
// shows a band along the diagonal; the mask options shape it like a real layer's.
import ArgumentParser
import Foundation
import TesseraCore
import TesseraKernels

struct AttentionMap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention-map", abstract: "Write an SVG heat map of attention weights (random RoPE inputs until a model runs).")

    @Option(help: "Tokens (queries = keys), at most 256.") var length = 48
    @Option(help: "Head dimension.") var headDim = 64
    @Option(help: "Heads.") var heads = 4
    @Option(help: "Which head to draw.") var head = 0
    @Flag(inversion: .prefixedNo, help: "Causal mask.") var causal = true
    @Option(help: "Sliding window (tokens).") var window: Int?
    @Option(help: "Attention sinks: first positions kept visible.") var sinks = 0
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(name: .shortAndLong, help: "Output SVG file.") var output = "attention.svg"

    func validate() throws {
        guard (1...256).contains(length) else { throw ValidationError("--length must be 1...256, got \(length)") }
        guard heads >= 1, (0..<heads).contains(head) else { throw ValidationError("--head must be in 0..<\(heads)") }
        guard headDim >= 2, headDim % 2 == 0 else { throw ValidationError("--head-dim must be even, got \(headDim)") }
        if let window, window < 1 { throw ValidationError("--window must be at least 1") }
    }

    func run() throws {
        let mask = AttentionMask(causal: causal, window: window, sinks: sinks)
        let shape = AttentionShape(queries: length, keys: length, queryHeads: heads, headDim: headDim, mask: mask)
        try shape.validate()
        // Per head, one random query and key direction with small per-token noise, then RoPE by position.
        let table = RoPETable(config: RoPEConfig(rotaryDims: headDim, base: 100), capacity: length)
        func tokens(_ seed: UInt64) throws -> Tensor {
            let direction = KernelConformance.randomFloats(heads * headDim, seed: seed, scale: 1.5)
            let noise = KernelConformance.randomFloats(length * heads * headDim, seed: seed + 7, scale: 0.3)
            let values = (0..<(length * heads * headDim)).map { direction[$0 % (heads * headDim)] + noise[$0] }
            let t = Tensor(shape: [length, heads, headDim], values: values)
            try Kernels.applyRoPE(t, positions: (0..<length).map { Int32($0) }, table: table)
            return t
        }
        let q = try tokens(seed), k = try tokens(seed + 1)
        let v = Tensor(shape: [length, heads, headDim], values: KernelConformance.randomFloats(length * heads * headDim, seed: seed + 2))
        let result = Tensor(zeros: [length, heads, headDim])
        var weights = [Float](repeating: 0, count: heads * length * length)
        weights.withUnsafeMutableBufferPointer { w in
            StandardAttention.forward(shape, AttentionBuffers(q: try! q.floatPointer(), k: try! k.floatPointer(),
                                                              v: try! v.floatPointer(), output: try! result.floatPointer()),
                                      weights: w.baseAddress!)
        }
        let map = Array(weights[(head * length * length)..<((head + 1) * length * length)])
        var title = "head \(head) of \(heads), \(length) tokens, d=\(headDim)"
        title += causal ? ", causal" : ", bidirectional"
        if let window { title += ", window \(window)" }
        if sinks > 0 { title += ", \(sinks) sinks" }
        try svg(map, size: length, title: title).write(toFile: output, atomically: true, encoding: .utf8)
        print("wrote \(output) (\(title))")
    }

    /// Rows are queries (top to bottom), columns keys; darker = more weight; hidden cells are grey.
    func svg(_ weights: [Float], size n: Int, title: String) -> String {
        let cell = max(4, 480 / n), margin = 40, side = n * cell
        let maximum = max(weights.max() ?? 1, 1e-9)
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(side + 2 * margin)" height="\(side + 2 * margin + 20)" font-family="sans-serif" font-size="12">
        <text x="\(margin)" y="20">\(title)</text>
        <text x="\(margin)" y="\(side + margin + 30)">keys →   (rows: queries ↓; darker = more weight; grey = masked)</text>
        <g transform="translate(\(margin),\(margin))">

        """
        let mask = AttentionMask(causal: causal, window: window, sinks: sinks)
        for i in 0..<n {
            for j in 0..<n {
                let x = j * cell, y = i * cell
                if !mask.isVisible(batch: 0, query: i, key: j, queries: n, keys: n) {
                    out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"#e4e4e4\"/>"
                    continue
                }
                let t = Double(weights[i * n + j] / maximum).squareRoot()  // sqrt: small weights stay visible
                let r = Int(255 - 230 * t), g = Int(255 - 200 * t), b = Int(255 - 90 * t)
                out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"rgb(\(r),\(g),\(b))\"/>"
            }
            out += "\n"
        }
        out += "<rect x=\"0\" y=\"0\" width=\"\(side)\" height=\"\(side)\" fill=\"none\" stroke=\"#333\"/>\n</g>\n</svg>\n"
        return out
    }
}
