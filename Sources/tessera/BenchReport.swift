// A benchmark report: rows of measured figures printed as an aligned table, or as one JSON object
// (`--json`) with the same figures so scripts can compare runs. Every `tessera bench ...` uses it.
import Foundation

struct BenchRow: Encodable {
    var name: String
    var value: Double
    var unit: String
    /// The figure this one is compared with (a peer or a hardware limit), if any.
    var reference: Double?
    var referenceName: String?
    /// The median of per-repeat ratios when measured in pairs (robust to a noisy machine), else value / reference.
    var pairedRatio: Double? = nil
    var ratio: Double? { pairedRatio ?? reference.map { value / $0 } }
    var note: String = ""

    init(name: String, value: Double, unit: String, reference: Double? = nil, referenceName: String? = nil,
         pairedRatio: Double? = nil, note: String = "") {
        self.name = name; self.value = value; self.unit = unit; self.reference = reference
        self.referenceName = referenceName; self.pairedRatio = pairedRatio; self.note = note
    }

    enum CodingKeys: String, CodingKey { case name, value, unit, reference, referenceName = "reference_name", ratio, note }
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(value, forKey: .value)
        try c.encode(unit, forKey: .unit)
        try c.encodeIfPresent(reference, forKey: .reference)
        try c.encodeIfPresent(referenceName, forKey: .referenceName)
        try c.encodeIfPresent(ratio, forKey: .ratio)
        if !note.isEmpty { try c.encode(note, forKey: .note) }
    }
}

struct BenchReport: Encodable {
    var benchmark: String
    var environment: [String: String]
    var rows: [BenchRow] = []

    mutating func add(_ row: BenchRow) { rows.append(row) }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    func table() -> String {
        func format(_ v: Double) -> String {
            if v.isNaN { return "n/a" }
            if abs(v) >= 100 { return String(format: "%.1f", v) }
            if abs(v) >= 1 { return String(format: "%.2f", v) }
            return String(format: "%.3f", v)
        }
        let header = ["benchmark", "value", "unit", "compared with", "reference", "ratio", "note"]
        let body = rows.map { r in
            [r.name, format(r.value), r.unit, r.referenceName ?? "", r.reference.map(format) ?? "",
             r.ratio.map { String(format: "%.2fx", $0) } ?? "", r.note]
        }
        let widths = header.indices.map { c in ([header] + body).map { $0[c].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, cell in
                c == 0 || c == 2 || c == 3 || c == 6 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var out = environment.sorted { $0.key < $1.key }.map { "# \($0.key): \($0.value)" }
        out.append(line(header))
        out.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        out += body.map(line)
        return out.joined(separator: "\n")
    }
}

/// Progress for long benchmarks goes to stderr, so stdout holds only the table or JSON.
func progress(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Runs a Python peer (`python -c script arguments...`) with environment changes (nil removes a
/// variable) and returns its stdout lines, or nil when it cannot start or fails (the peer column then
/// reads n/a). stderr is discarded.
func runPythonPeer(_ python: String = "python3", script: String, arguments: [String] = [],
                   environment changes: [String: String?]) -> [String]? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [python, "-c", script] + arguments
    var environment = ProcessInfo.processInfo.environment
    for (key, value) in changes { environment[key] = value }
    process.environment = environment
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
}
