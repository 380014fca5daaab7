// GGUF writer: metadata and tensors out to a file llama.cpp and the `gguf` Python package can read.
// Later issues write quantised and trained models with it; the tests use it to build files to read.
import Foundation

public struct GGUFWriter {
    public var metadata: [(key: String, value: GGUFValue)] = []
    public var tensors: [(name: String, dimensions: [Int], type: GGMLType, data: [UInt8])] = []
    public var alignment = 32
    public var version: UInt32 = 3

    public init() {}

    public mutating func add(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }

    /// Adds a tensor; `dimensions` in ggml order (innermost first); `data` must hold exactly its bytes.
    public mutating func addTensor(_ name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) throws(GGUFError) {
        guard let bytes = type.byteCount(values: dimensions.reduce(1, *)) else {
            throw .invalidTensorShape(tensor: name, detail: "\(dimensions) cannot be stored as \(type)")
        }
        guard bytes == data.count else {
            throw .invalidTensorShape(tensor: name, detail: "\(data.count) bytes of data for \(bytes) bytes of \(type)")
        }
        tensors.append((name, dimensions, type, data))
    }

    /// Adds an f32 tensor of the given row-major shape.
    public mutating func addTensor(_ name: String, shape: [Int], values: [Float]) throws(GGUFError) {
        try addTensor(name, dimensions: shape.reversed(), type: .f32, data: values.withUnsafeBytes { Array($0) })
    }

    /// The file's bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .float64(let x): u64(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .array(let items):
                u32(items.first?.typeCode ?? 0)
                u64(UInt64(items.count))
                items.forEach(value)
            }
        }
        var entries = metadata
        if alignment != 32 && !entries.contains(where: { $0.key == "general.alignment" }) {
            entries.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        out.append(contentsOf: "GGUF".utf8)
        u32(version)
        u64(UInt64(tensors.count))
        u64(UInt64(entries.count))
        for (key, v) in entries { string(key); u32(v.typeCode); value(v) }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset = (offset + t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, o) in zip(tensors, offsets) {
            string(t.name)
            u32(UInt32(t.dimensions.count))
            t.dimensions.forEach { u64(UInt64($0)) }
            u32(t.type.rawValue)
            u64(UInt64(o))
        }
        func pad() { while out.count % alignment != 0 { out.append(0) } }
        pad()
        for t in tensors {
            out.append(contentsOf: t.data)
            pad()
        }
        return out
    }

    public func write(to path: String) throws {
        try Data(encoded()).write(to: URL(fileURLWithPath: path))
    }
}
