// WeightStore: a model's tensors by checkpoint name.
//
// Loaders (GGUF, safetensors) fill it; model code asks for each tensor by the name the checkpoint uses
// and the shape it expects, and gets a typed error naming the tensor when it is missing or misshapen.

public enum WeightError: Error, CustomStringConvertible, Equatable {
    case missing(name: String)
    case wrongShape(name: String, expected: [Int], found: [Int])
    case wrongDType(name: String, allowed: [DType], found: DType)

    public var description: String {
        switch self {
        case .missing(let name): "weight '\(name)' is missing from the model file"
        case .wrongShape(let name, let expected, let found): "weight '\(name)': expected shape \(expected), found \(found)"
        case .wrongDType(let name, let allowed, let found):
            "weight '\(name)': dtype \(found) is not supported here (expected one of \(allowed.map(\.rawValue).joined(separator: ", ")))"
        }
    }
}

public struct WeightStore: Sendable {
    public private(set) var tensors: [String: Tensor] = [:]

    public init(_ tensors: [String: Tensor] = [:]) { self.tensors = tensors }

    public var names: [String] { tensors.keys.sorted() }
    public var totalBytes: Int { tensors.values.reduce(0) { $0 + $1.byteCount } }

    public mutating func insert(_ tensor: Tensor, named name: String) { tensors[name] = tensor }
    public func contains(_ name: String) -> Bool { tensors[name] != nil }

    /// The tensor `name`, checked against `shape` and the allowed dtypes when given.
    public func tensor(_ name: String, shape: [Int]? = nil, dtypes: [DType]? = nil) throws(WeightError) -> Tensor {
        guard let tensor = tensors[name] else { throw .missing(name: name) }
        if let shape, tensor.shape != shape { throw .wrongShape(name: name, expected: shape, found: tensor.shape) }
        if let dtypes, !dtypes.contains(tensor.dtype) { throw .wrongDType(name: name, allowed: dtypes, found: tensor.dtype) }
        return tensor
    }
}
