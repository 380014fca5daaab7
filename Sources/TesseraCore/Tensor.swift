// Tensor: a typed, shaped, strided view into a Storage.
//
// Shapes are row-major by default (the last dimension is contiguous), matching GGUF/safetensors/PyTorch
// checkpoints read the natural way round: a linear layer's weight is (out, in). Views (reshape,
// transpose, slice) share storage; `contiguous()` copies. Kernels take raw pointers to contiguous
// data; this type is what the layers above pass around and check shapes on.

/// A shape or dtype mismatch, thrown by the Tensor-level APIs.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(operation: String, expected: String, found: String)
    case dtypeMismatch(operation: String, expected: DType, found: DType)
    case notContiguous(operation: String)
    case outOfBounds(operation: String, detail: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let op, let expected, let found): "\(op): expected shape \(expected), found \(found)"
        case .dtypeMismatch(let op, let expected, let found): "\(op): expected dtype \(expected), found \(found)"
        case .notContiguous(let op): "\(op): the tensor must be contiguous (call contiguous() first)"
        case .outOfBounds(let op, let detail): "\(op): \(detail)"
        }
    }
}

public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: Storage
    public let dtype: DType
    public private(set) var shape: [Int]
    /// Strides in elements.
    public private(set) var strides: [Int]
    /// Offset of element (0, ..., 0) from the start of the storage, in elements.
    public private(set) var offset: Int

    /// A zero-filled f32/f16/... tensor on the heap.
    public init(zeros shape: [Int], dtype: DType = .f32) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape must not be negative: \(shape)")
        let count = shape.reduce(1, *)
        self.init(storage: Storage(byteCount: count * dtype.byteSize), dtype: dtype, shape: shape)
    }

    /// An f32 tensor holding `values` (row-major).
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "Tensor(shape: \(shape)) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.init(zeros: shape, dtype: .f32)
        values.withUnsafeBufferPointer { source in
            storage.bytes.copyMemory(from: source.baseAddress!, byteCount: values.count * 4)
        }
    }

    /// A view of existing storage, contiguous row-major from `offset` (elements).
    public init(storage: Storage, dtype: DType, shape: [Int], offset: Int = 0) {
        let count = shape.reduce(1, *)
        precondition((offset + count) * dtype.byteSize <= storage.byteCount,
                     "Tensor of \(shape) \(dtype) at offset \(offset) does not fit in \(storage.byteCount) bytes")
        self.storage = storage
        self.dtype = dtype
        self.shape = shape
        self.strides = Tensor.contiguousStrides(for: shape)
        self.offset = offset
    }

    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = running
            running *= shape[d]
        }
        return strides
    }

    // MARK: - Properties

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.byteSize }
    public var isContiguous: Bool { strides == Tensor.contiguousStrides(for: shape) || count <= 1 }
    public var description: String { "Tensor(\(dtype), \(shape))" }

    /// Address of the first element.
    public var rawPointer: UnsafeMutableRawPointer { storage.bytes + offset * dtype.byteSize }

    /// The f32 data of a contiguous f32 tensor.
    public func floatPointer() throws(TensorError) -> UnsafeMutablePointer<Float> {
        guard dtype == .f32 else { throw .dtypeMismatch(operation: "floatPointer", expected: .f32, found: dtype) }
        guard isContiguous else { throw .notContiguous(operation: "floatPointer") }
        return rawPointer.assumingMemoryBound(to: Float.self)
    }

    // MARK: - Views

    /// The same elements under another shape; one dimension may be -1 (inferred). Needs contiguity.
    public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
        var resolved = newShape
        let known = newShape.filter { $0 != -1 }.reduce(1, *)
        if let inferred = newShape.firstIndex(of: -1) {
            guard known > 0, count % known == 0 else {
                throw .shapeMismatch(operation: "reshape", expected: "a shape with \(count) elements", found: "\(newShape)")
            }
            resolved[inferred] = count / known
        }
        guard resolved.reduce(1, *) == count else {
            throw .shapeMismatch(operation: "reshape", expected: "a shape with \(count) elements", found: "\(newShape)")
        }
        guard isContiguous else { throw .notContiguous(operation: "reshape") }
        var view = self
        view.shape = resolved
        view.strides = Tensor.contiguousStrides(for: resolved)
        return view
    }

    /// Swaps two dimensions (a strided view; no copy).
    public func transposed(_ a: Int = 0, _ b: Int = 1) -> Tensor {
        precondition(a < rank && b < rank, "transposed(\(a), \(b)) on a rank-\(rank) tensor")
        var view = self
        view.shape.swapAt(a, b)
        view.strides.swapAt(a, b)
        return view
    }

    /// Elements `range` along dimension `dim` (a view; no copy).
    public func slice(dim: Int, _ range: Range<Int>) throws(TensorError) -> Tensor {
        guard dim < rank, range.lowerBound >= 0, range.upperBound <= shape[dim] else {
            throw .outOfBounds(operation: "slice", detail: "range \(range) of dimension \(dim) in shape \(shape)")
        }
        var view = self
        view.offset += range.lowerBound * strides[dim]
        view.shape[dim] = range.count
        return view
    }

    /// A contiguous copy (or `self` when already contiguous).
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let result = Tensor(zeros: shape, dtype: dtype)
        let size = dtype.byteSize
        var index = [Int](repeating: 0, count: rank)
        let destination = result.rawPointer
        for linear in 0..<count {
            var source = offset
            for d in 0..<rank { source += index[d] * strides[d] }
            (destination + linear * size).copyMemory(from: storage.bytes + source * size, byteCount: size)
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return result
    }

    // MARK: - Element access (for tests and tools, not hot loops)

    /// The elements as floats, converted from f16/bf16/integers, in row-major order.
    public func toFloats() -> [Float] {
        let dense = contiguous()
        let base = dense.rawPointer
        return (0..<count).map { i in
            switch dtype {
            case .f32: base.load(fromByteOffset: i * 4, as: Float.self)
            case .f16: floatFromHalfBits(base.load(fromByteOffset: i * 2, as: UInt16.self))
            case .bf16: floatFromBFloat16Bits(base.load(fromByteOffset: i * 2, as: UInt16.self))
            case .i32: Float(base.load(fromByteOffset: i * 4, as: Int32.self))
            case .i8: Float(base.load(fromByteOffset: i, as: Int8.self))
            case .u8: Float(base.load(fromByteOffset: i, as: UInt8.self))
            }
        }
    }

    /// A copy converted to another floating-point dtype (round to nearest even).
    public func converted(to target: DType) -> Tensor {
        precondition(target.isFloatingPoint && dtype.isFloatingPoint, "converted(to:) handles f32/f16/bf16 only")
        let values = toFloats()
        let result = Tensor(zeros: shape, dtype: target)
        let base = result.rawPointer
        for (i, v) in values.enumerated() {
            switch target {
            case .f32: base.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
            case .f16: base.storeBytes(of: halfBitsFromFloat(v), toByteOffset: i * 2, as: UInt16.self)
            case .bf16: base.storeBytes(of: bfloat16BitsFromFloat(v), toByteOffset: i * 2, as: UInt16.self)
            default: break
            }
        }
        return result
    }

    /// Reads one element as a Float.
    public subscript(index: Int...) -> Float {
        precondition(index.count == rank, "subscript with \(index.count) indices on a rank-\(rank) tensor")
        var position = offset
        for d in 0..<rank {
            precondition(index[d] >= 0 && index[d] < shape[d], "index \(index) out of bounds for shape \(shape)")
            position += index[d] * strides[d]
        }
        let base = storage.bytes
        switch dtype {
        case .f32: return base.load(fromByteOffset: position * 4, as: Float.self)
        case .f16: return floatFromHalfBits(base.load(fromByteOffset: position * 2, as: UInt16.self))
        case .bf16: return floatFromBFloat16Bits(base.load(fromByteOffset: position * 2, as: UInt16.self))
        case .i32: return Float(base.load(fromByteOffset: position * 4, as: Int32.self))
        case .i8: return Float(base.load(fromByteOffset: position, as: Int8.self))
        case .u8: return Float(base.load(fromByteOffset: position, as: UInt8.self))
        }
    }
}
