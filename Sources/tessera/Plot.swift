// `tessera plot`: line charts as SVG from CSV files (a header row, then x,y rows) — the perplexity
// curves of docs/kv-cache.md, loss curves — with axes, ticks, a legend and an optional log y axis.
// Plain SVG text, no dependencies, so any browser or docs page shows it.
import ArgumentParser
import Foundation

struct LinePlot {
    struct Series { var label: String; var points: [(Double, Double)] }
    var title: String, xLabel: String, yLabel: String
    var logY = false
    var series: [Series] = []

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    /// Round tick values covering [low, high].
    static func ticks(_ low: Double, _ high: Double, count: Int = 6) -> [Double] {
        guard high > low else { return [low] }
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var t = (low / step).rounded(.up) * step, result: [Double] = []
        while t <= high + step * 1e-9 { result.append(t); t += step }
        return result
    }

    func svg(width: Double = 760, height: Double = 420) -> String {
        let left = 70.0, right = 20.0, top = 40.0, bottom = 55.0
        let all = series.flatMap(\.points)
        let xs = all.map(\.0), ys = all.map { logY ? log10($0.1) : $0.1 }
        let xMin = xs.min() ?? 0, xMax = max(xs.max() ?? 1, (xs.min() ?? 0) + 1e-9)
        var yMin = ys.min() ?? 0, yMax = ys.max() ?? 1
        if !logY { yMin = min(yMin, 0) }
        let pad = (yMax - yMin) * 0.05
        yMax += pad
        if logY { yMin -= pad }
        if yMax <= yMin { yMax = yMin + 1 }
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (yMax - y) / (yMax - yMin) * (height - top - bottom) }
        func label(_ v: Double) -> String { abs(v) >= 1000 ? String(format: "%.0fk", v / 1000) : String(format: v == v.rounded() ? "%.0f" : "%.2g", v) }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>"]
        for t in Self.ticks(xMin, xMax) {
            out.append("<line x1=\"\(px(t))\" y1=\"\(top)\" x2=\"\(px(t))\" y2=\"\(height - bottom)\" stroke=\"#eee\"/>")
            out.append("<text x=\"\(px(t))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(label(t))</text>")
        }
        let yTicks: [Double] = logY
            ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 1e5].map(log10).filter { $0 >= yMin && $0 <= yMax }
            : Self.ticks(yMin, yMax)
        for t in yTicks {
            out.append("<line x1=\"\(left)\" y1=\"\(py(t))\" x2=\"\(width - right)\" y2=\"\(py(t))\" stroke=\"#eee\"/>")
            out.append("<text x=\"\(left - 6)\" y=\"\(py(t) + 4)\" text-anchor=\"end\">\(label(logY ? pow(10, t) : t))</text>")
        }
        out.append("<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"none\" stroke=\"#444\"/>")
        out.append("<text x=\"\((left + width - right) / 2)\" y=\"\(height - 12)\" text-anchor=\"middle\">\(escape(xLabel))</text>")
        out.append("<text transform=\"translate(18,\((top + height - bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel + (logY ? " (log scale)" : "")))</text>")
        for (i, s) in series.enumerated() {
            let color = Self.colors[i % Self.colors.count]
            let path = s.points.map { String(format: "%.1f,%.1f", px($0.0), py(logY ? log10($0.1) : $0.1)) }.joined(separator: " ")
            out.append("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>")
            let ly = top + 16 + Double(i) * 18
            out.append("<line x1=\"\(left + 12)\" y1=\"\(ly - 4)\" x2=\"\(left + 36)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\"/>")
            out.append("<text x=\"\(left + 42)\" y=\"\(ly)\">\(escape(s.label))</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Draw CSV files (header, then x,y rows) as an SVG line chart.")

    @Argument(help: "CSV files, each as PATH or PATH=LABEL.") var inputs: [String]
    @Option(name: .shortAndLong, help: "The SVG file to write.") var output: String
    @Option var title = ""
    @Option var xLabel = "x"
    @Option var yLabel = "y"
    @Flag(help: "Logarithmic y axis.") var logY = false

    func run() throws {
        var plot = LinePlot(title: title, xLabel: xLabel, yLabel: yLabel, logY: logY)
        for input in inputs {
            let parts = input.split(separator: "=", maxSplits: 1).map(String.init)
            let path = parts[0], name = parts.count > 1 ? parts[1] : URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
            var points: [(Double, Double)] = []
            for (n, line) in text.split(separator: "\n").enumerated().dropFirst() {
                let cells = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard cells.count >= 2, let x = Double(cells[0]), let y = Double(cells[1]), x.isFinite, y.isFinite, !logY || y > 0 else {
                    throw ValidationError("\(path) line \(n + 1): expected 'x,y' numbers, got '\(line)'")
                }
                points.append((x, y))
            }
            plot.series.append(.init(label: name, points: points))
        }
        try plot.svg().write(toFile: output, atomically: true, encoding: .utf8)
        printErr("wrote \(output)")
    }
}
