// GGUF reader: llama.cpp's model file format — a header, typed metadata (key/value), a tensor table,
// then the tensor data, aligned. The file is memory-mapped; parsing checks every length and offset
// against the file's size, so a truncated or corrupt file gives a typed GGUFError, never a crash.
//
// Layout (little-endian; GGUF v2 and v3):
//   magic "GGUF" | version u32 | tensor count u64 | metadata count u64
//   metadata:  key (u64 length + UTF-8) | value type u32 | value   (arrays: element type u32, count u64, items)
//   tensors:   name | dimension count u32 | dimensions u64… (innermost first) | ggml type u32 | offset u64
//   padding to `general.alignment` (default 32), then the data; each tensor's offset is relative to it.
import Foundation
import TesseraCore

public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case notGGUF(path: String, found: String)
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int, needed: Int, fileSize: Int)
    case invalidValueType(key: String, type: UInt32)
    case invalidString(what: String, offset: Int)
    case unknownTensorType(tensor: String, type: UInt32)
    case unsupportedTensorType(tensor: String, type: GGMLType)
    case invalidTensorShape(tensor: String, detail: String)
    case tensorOutOfBounds(tensor: String, offset: Int, bytes: Int, dataBytes: Int)
    case duplicateTensor(String)
    case invalidAlignment(Int)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open \(path): \(reason)"
        case .notGGUF(let path, let found): "\(path) is not a GGUF file (magic \(found), expected \"GGUF\")"
        case .unsupportedVersion(let v): "GGUF version \(v) is not supported (2 and 3 are)"
        case .truncated(let what, let offset, let needed, let size):
            "truncated GGUF file: \(what) needs \(needed) bytes at offset \(offset), but the file has \(size) bytes"
        case .invalidValueType(let key, let type): "metadata '\(key)' has unknown value type \(type)"
        case .invalidString(let what, let offset): "\(what) at offset \(offset) is not valid UTF-8"
        case .unknownTensorType(let tensor, let type): "tensor '\(tensor)' has unknown ggml type \(type)"
        case .unsupportedTensorType(let tensor, let type): "tensor '\(tensor)' has type \(type), which Tessera cannot read"
        case .invalidTensorShape(let tensor, let detail): "tensor '\(tensor)': \(detail)"
        case .tensorOutOfBounds(let tensor, let offset, let bytes, let dataBytes):
            "tensor '\(tensor)' (\(bytes) bytes at data offset \(offset)) lies outside the data section (\(dataBytes) bytes)"
        case .duplicateTensor(let name): "tensor '\(name)' appears twice"
        case .invalidAlignment(let a): "general.alignment \(a) is not a positive power of two"
        }
    }
}

/// A metadata value.
public indirect enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// The GGUF type code.
    public var typeCode: UInt32 {
        switch self {
        case .uint8: 0; case .int8: 1; case .uint16: 2; case .int16: 3; case .uint32: 4; case .int32: 5
        case .float32: 6; case .bool: 7; case .string: 8; case .array: 9; case .uint64: 10; case .int64: 11; case .float64: 12
        }
    }

    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v); case .int8(let v): Int(v); case .uint16(let v): Int(v); case .int16(let v): Int(v)
        case .uint32(let v): Int(v); case .int32(let v): Int(v); case .uint64(let v): Int(exactly: v); case .int64(let v): Int(v)
        case .bool(let v): v ? 1 : 0
        default: nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var arrayValue: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }

    /// Short, human-readable; long arrays are summarised.
    public var description: String {
        switch self {
        case .string(let s): return "\"\(s.count > 80 ? String(s.prefix(77)) + "..." : s)\""
        case .array(let items):
            let kind = items.first.map { "\($0.typeName)" } ?? "values"
            if items.count > 8 { return "[\(items.count) \(kind): \(items.prefix(4).map(\.description).joined(separator: ", ")), ...]" }
            return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .bool(let b): return "\(b)"
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        default: return "\(intValue ?? 0)"
        }
    }

    var typeName: String {
        switch self {
        case .string: "strings"; case .array: "arrays"; case .float32, .float64: "floats"; case .bool: "bools"
        default: "integers"
        }
    }
}

/// One entry of the tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml's order: innermost (contiguous) dimension first.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset in the data section.
    public let offset: Int
    public let byteCount: Int

    /// Row-major shape (outermost first), as Tensor and PyTorch write it.
    public var shape: [Int] { dimensions.reversed() }
    public var count: Int { dimensions.reduce(1, *) }
}

/// A parsed, memory-mapped GGUF file.
public struct GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// File offset of the data section.
    public let dataOffset: Int
    public let storage: Storage
    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    public subscript(key: String) -> GGUFValue? { metadataIndex[key].map { metadata[$0].value } }
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The tensor's bytes, inside the mapping.
    public func data(of info: GGUFTensorInfo) -> UnsafeRawPointer { UnsafeRawPointer(storage.bytes + dataOffset + info.offset) }

    /// An F32, F16 or BF16 tensor as a Tensor view of the mapping (no copy).
    public func tensor(_ name: String) throws(GGUFError) -> Tensor? {
        guard let info = tensorInfo(name) else { return nil }
        let dtype: DType
        switch info.type {
        case .f32: dtype = .f32
        case .f16: dtype = .f16
        case .bf16: dtype = .bf16
        default: throw .unsupportedTensorType(tensor: name, type: info.type)
        }
        let start = dataOffset + info.offset
        guard start % dtype.byteSize == 0 else { throw .invalidTensorShape(tensor: name, detail: "data is not aligned to its element size") }
        return Tensor(storage: storage, dtype: dtype, shape: info.shape, offset: start / dtype.byteSize)
    }

    public init(path: String) throws(GGUFError) {
        let storage: Storage
        do { storage = try Storage(mapping: path) } catch { throw .cannotOpen(path: path, reason: error.reason) }
        var reader = ByteReader(base: UnsafeRawPointer(storage.bytes), size: storage.byteCount)
        let magic = try reader.bytes(4, "the magic number")
        guard magic.elementsEqual("GGUF".utf8) else {
            throw .notGGUF(path: path, found: "\"" + String(decoding: magic.map { $0 >= 32 && $0 < 127 ? $0 : 63 }, as: UTF8.self) + "\"")
        }
        let version = try reader.u32("the version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        let tensorCount = try reader.count("the tensor count", minimumItemBytes: 24)
        let metadataCount = try reader.count("the metadata count", minimumItemBytes: 12)

        var metadata: [(key: String, value: GGUFValue)] = []
        var metadataIndex: [String: Int] = [:]
        metadata.reserveCapacity(metadataCount)
        for _ in 0..<metadataCount {
            let key = try reader.string("a metadata key")
            let type = try reader.u32("the type of '\(key)'")
            let value = try reader.value(type: type, key: key, depth: 0)
            metadataIndex[key] = metadata.count
            metadata.append((key, value))
        }
        var alignment = 32
        if let index = metadataIndex["general.alignment"] {
            guard let a = metadata[index].value.intValue, a > 0, a & (a - 1) == 0 else {
                throw .invalidAlignment(metadata[index].value.intValue ?? 0)
            }
            alignment = a
        }

        var infos: [(name: String, dimensions: [Int], type: UInt32, offset: Int)] = []
        for _ in 0..<tensorCount {
            let name = try reader.string("a tensor name")
            let dimensionCount = Int(try reader.u32("the dimension count of '\(name)'"))
            guard (1...8).contains(dimensionCount) else {
                throw .invalidTensorShape(tensor: name, detail: "\(dimensionCount) dimensions (1 to 8 are allowed)")
            }
            var dimensions: [Int] = []
            for _ in 0..<dimensionCount {
                let d = try reader.u64("a dimension of '\(name)'")
                guard d <= UInt64(Int32.max) else { throw .invalidTensorShape(tensor: name, detail: "dimension \(d) is too large") }
                dimensions.append(Int(d))
            }
            let type = try reader.u32("the type of '\(name)'")
            let offset = try reader.u64("the offset of '\(name)'")
            guard offset <= UInt64(Int.max / 2) else {
                throw .tensorOutOfBounds(tensor: name, offset: Int.max, bytes: 0, dataBytes: 0)
            }
            infos.append((name, dimensions, type, Int(offset)))
        }
        let dataOffset = (reader.offset + alignment - 1) / alignment * alignment
        let dataBytes = storage.byteCount - min(dataOffset, storage.byteCount)

        var tensors: [GGUFTensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        for info in infos {
            guard let type = GGMLType(rawValue: info.type) else { throw .unknownTensorType(tensor: info.name, type: info.type) }
            guard let geometry = type.blockGeometry else { throw .unsupportedTensorType(tensor: info.name, type: type) }
            guard info.dimensions[0] % geometry.size == 0 else {
                throw .invalidTensorShape(tensor: info.name, detail: "rows of \(info.dimensions[0]) values are not whole \(type) blocks of \(geometry.size)")
            }
            let (count, overflow) = info.dimensions.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, let bytes = type.byteCount(values: count) else {
                throw .invalidTensorShape(tensor: info.name, detail: "\(info.dimensions) is too large")
            }
            guard info.offset % alignment == 0 else {
                throw .invalidTensorShape(tensor: info.name, detail: "data offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            guard bytes <= dataBytes, info.offset <= dataBytes - bytes else {
                throw .tensorOutOfBounds(tensor: info.name, offset: info.offset, bytes: bytes, dataBytes: dataBytes)
            }
            guard tensorIndex[info.name] == nil else { throw .duplicateTensor(info.name) }
            tensorIndex[info.name] = tensors.count
            tensors.append(GGUFTensorInfo(name: info.name, dimensions: info.dimensions, type: type, offset: info.offset, byteCount: bytes))
        }
        self.path = path
        self.version = version
        self.metadata = metadata
        self.metadataIndex = metadataIndex
        self.tensors = tensors
        self.tensorIndex = tensorIndex
        self.alignment = alignment
        self.dataOffset = dataOffset
        self.storage = storage
    }
}

/// A bounds-checked little-endian cursor over the mapped file.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    var offset = 0

    mutating func need(_ bytes: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
        guard bytes >= 0, bytes <= size - offset else {
            throw .truncated(what: what(), offset: offset, needed: bytes, fileSize: size)
        }
    }
    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> UnsafeRawBufferPointer {
        try need(count, what())
        defer { offset += count }
        return UnsafeRawBufferPointer(start: base + offset, count: count)
    }
    mutating func scalar<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, what())
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
    mutating func u32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 { try scalar(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 { try scalar(UInt64.self, what()) }

    /// A u64 count whose items need at least `minimumItemBytes` each: rejected early if they cannot fit.
    mutating func count(_ what: @autoclosure () -> String, minimumItemBytes: Int) throws(GGUFError) -> Int {
        let start = offset
        let n = try u64(what())
        guard n <= UInt64(max(0, size - offset) / max(1, minimumItemBytes)) else {
            throw .truncated(what: "\(what()) (\(n) items)", offset: start, needed: Int(clamping: n) &* minimumItemBytes, fileSize: size)
        }
        return Int(n)
    }

    mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let length = try u64("the length of \(what())")
        guard length <= UInt64(size - offset) else {
            throw .truncated(what: what(), offset: offset, needed: Int(clamping: length), fileSize: size)
        }
        let start = offset
        let raw = try bytes(Int(length), what())
        guard let s = String(validating: raw, as: UTF8.self) else { throw .invalidString(what: what(), offset: start) }
        return s
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try scalar(UInt8.self, key))
        case 1: return .int8(try scalar(Int8.self, key))
        case 2: return .uint16(try scalar(UInt16.self, key))
        case 3: return .int16(try scalar(Int16.self, key))
        case 4: return .uint32(try scalar(UInt32.self, key))
        case 5: return .int32(try scalar(Int32.self, key))
        case 6: return .float32(Float(bitPattern: try scalar(UInt32.self, key)))
        case 7: return .bool(try scalar(UInt8.self, key) != 0)
        case 8: return .string(try string("the value of '\(key)'"))
        case 10: return .uint64(try scalar(UInt64.self, key))
        case 11: return .int64(try scalar(Int64.self, key))
        case 12: return .float64(Double(bitPattern: try scalar(UInt64.self, key)))
        case 9:
            guard depth < 4 else { throw .invalidValueType(key: key, type: type) }
            let elementType = try u32("the element type of '\(key)'")
            let minimum = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8][Int(elementType)]
            guard let minimum else { throw .invalidValueType(key: key, type: elementType) }
            let n = try count("the array '\(key)'", minimumItemBytes: minimum)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        default:
            throw .invalidValueType(key: key, type: type)
        }
    }
}
