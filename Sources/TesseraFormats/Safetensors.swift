// safetensors reader and writer: Hugging Face's tensor file format.
//
// Layout: an 8-byte little-endian header size N, N bytes of JSON — for each tensor {"dtype", "shape",
// "data_offsets": [begin, end]} relative to the data section, plus an optional "__metadata__" object of
// strings — then the data. The file is memory-mapped and every offset and size is checked, so a bad
// file gives a typed SafetensorsError rather than a crash.
import Foundation
import TesseraCore

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case truncated(path: String, detail: String)
    case invalidHeader(path: String, detail: String)
    case unsupportedDType(tensor: String, dtype: String)
    case tensorOutOfBounds(tensor: String, detail: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open \(path): \(reason)"
        case .truncated(let path, let detail): "truncated safetensors file \(path): \(detail)"
        case .invalidHeader(let path, let detail): "invalid safetensors header in \(path): \(detail)"
        case .unsupportedDType(let tensor, let dtype): "tensor '\(tensor)' has dtype \(dtype), which Tessera cannot load"
        case .tensorOutOfBounds(let tensor, let detail): "tensor '\(tensor)': \(detail)"
        }
    }
}

public struct SafetensorsFile: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        /// The file's dtype name ("F32", "BF16", ...).
        public let dtype: String
        public let shape: [Int]
        /// Byte range in the data section.
        public let begin: Int, end: Int
    }

    public let path: String
    public let entries: [Entry]
    public let metadata: [String: String]
    public let dataOffset: Int
    public let storage: Storage
    private let index: [String: Int]

    /// Bytes per element of each dtype name in the format.
    public static let elementBytes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
    ]

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The tensor as a view of the mapping for F32, F16, BF16, I32, I8 and U8 data.
    public func tensor(_ name: String) throws(SafetensorsError) -> Tensor? {
        guard let e = entry(name) else { return nil }
        let dtypes: [String: DType] = ["F32": .f32, "F16": .f16, "BF16": .bf16, "I32": .i32, "I8": .i8, "U8": .u8]
        guard let dtype = dtypes[e.dtype] else { throw .unsupportedDType(tensor: name, dtype: e.dtype) }
        let start = dataOffset + e.begin
        guard start % dtype.byteSize == 0 else {
            // Unaligned data (legal in the format): copy it out.
            let copy = Tensor(zeros: e.shape, dtype: dtype)
            copy.rawPointer.copyMemory(from: storage.bytes + start, byteCount: e.end - e.begin)
            return copy
        }
        return Tensor(storage: storage, dtype: dtype, shape: e.shape, offset: start / dtype.byteSize)
    }

    public init(path: String) throws(SafetensorsError) {
        let storage: Storage
        do { storage = try Storage(mapping: path) } catch { throw .cannotOpen(path: path, reason: error.reason) }
        guard storage.byteCount >= 8 else { throw .truncated(path: path, detail: "\(storage.byteCount) bytes, no header size") }
        let headerSize = UInt64(littleEndian: storage.bytes.loadUnaligned(as: UInt64.self))
        guard headerSize <= UInt64(storage.byteCount - 8) else {
            throw .truncated(path: path, detail: "header of \(headerSize) bytes, but only \(storage.byteCount - 8) follow")
        }
        let headerData = Data(bytes: storage.bytes + 8, count: Int(headerSize))
        let json: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
                throw SafetensorsError.invalidHeader(path: path, detail: "the header is not a JSON object")
            }
            json = object
        } catch let error as SafetensorsError {
            throw error
        } catch {
            throw .invalidHeader(path: path, detail: "not valid JSON")
        }
        let dataOffset = 8 + Int(headerSize), dataBytes = storage.byteCount - dataOffset
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        for (name, value) in json.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw .invalidHeader(path: path, detail: "__metadata__ is not an object") }
                for (k, v) in m { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                  let shape = (fields["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (fields["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  offsets.count == 2, shape.count == (fields["shape"] as? [Any])?.count
            else { throw .invalidHeader(path: path, detail: "tensor '\(name)' lacks dtype, shape or data_offsets") }
            guard let size = SafetensorsFile.elementBytes[dtype] else { throw .unsupportedDType(tensor: name, dtype: dtype) }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw .invalidHeader(path: path, detail: "tensor '\(name)' has shape \(shape)") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataBytes else {
                throw .tensorOutOfBounds(tensor: name, detail: "bytes \(begin)..<\(end) lie outside the data section (\(dataBytes) bytes)")
            }
            let (expected, overflow) = shape.reduce((size, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, end - begin == expected else {
                throw .tensorOutOfBounds(tensor: name, detail: "\(end - begin) bytes for shape \(shape) of \(dtype) (\(expected) expected)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        self.path = path
        self.entries = entries
        self.metadata = metadata
        self.dataOffset = dataOffset
        self.storage = storage
        self.index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }
}

/// Writes f32 / f16 / bf16 / integer tensors as a safetensors file.
public struct SafetensorsWriter {
    public var tensors: [(name: String, tensor: Tensor)] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, _ tensor: Tensor) { tensors.append((name, tensor.contiguous())) }

    public func encoded() throws -> [UInt8] {
        let names: [DType: String] = [.f32: "F32", .f16: "F16", .bf16: "BF16", .i32: "I32", .i8: "I8", .u8: "U8"]
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": names[t.dtype]!, "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]]
            offset += t.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }  // keep the data 8-byte aligned
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for (_, t) in tensors { out.append(contentsOf: UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount)) }
        return out
    }

    public func write(to path: String) throws {
        try Data(try encoded()).write(to: URL(fileURLWithPath: path))
    }
}
