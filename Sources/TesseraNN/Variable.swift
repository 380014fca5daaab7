// Reverse-mode automatic differentiation on coarse operations (a matrix product, a LayerNorm, an
// attention call), as in micrograd but on buffers of floats: every operation returns a `Variable`
// holding its value and, when gradients are being recorded, its inputs and a closure that turns the
// gradient of its output into gradients of its inputs. `backward()` on a scalar loss visits the graph
// in reverse topological order and runs those closures. The graph is the tape: it lives exactly as long
// as the loss that references it.
//
// No cost when not training: under `GradMode.disabled { ... }`, or when no input requires a gradient,
// an operation records nothing (no parents, no closure) and its value buffer is all it allocates.
// Gradients accumulate (+=) into `grad`, so calling backward on several micro-batches before an
// optimiser step is gradient accumulation; the optimiser's `zeroGrad()` clears them.
import Synchronization
import TesseraCore
import TesseraKernels

/// A 64-byte-aligned buffer of floats. Buffers come from and return to `BufferPool`.
public final class FloatStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = BufferPool.take(count: max(1, count))
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
        if zeroed { pointer.update(repeating: 0, count: count) }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        pointer.update(from: values, count: values.count)
    }

    deinit { BufferPool.give(UnsafeMutableRawPointer(pointer), count: max(1, count)) }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Freed buffers kept by size for the next allocation of that size: a training step allocates the
/// same activation and gradient buffers as the step before, and fresh memory costs a page fault and a
/// page clear per 4 KB (measured: ~4% of a nanoGPT step). Small buffers go straight to malloc.
public enum BufferPool {
    /// Addresses (as integers, which are Sendable) of free buffers, by float count.
    private static let free = Mutex<(buffers: [Int: [UInt]], bytes: Int)>(([:], 0))
    /// Keep at most this many bytes of freed buffers.
    public static let limit = 1 << 30
    static let smallest = 4096

    static func take(count: Int) -> UnsafeMutableRawPointer {
        if count >= smallest, let address = free.withLock({ state -> UInt? in
            guard let a = state.buffers[count]?.popLast() else { return nil }
            state.bytes -= count * 4
            return a
        }) { return UnsafeMutableRawPointer(bitPattern: address)! }
        return UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
    }

    static func give(_ p: UnsafeMutableRawPointer, count: Int) {
        let address = UInt(bitPattern: p)
        let kept = count >= smallest && free.withLock { state -> Bool in
            guard state.bytes + count * 4 <= limit else { return false }
            state.buffers[count, default: []].append(address)
            state.bytes += count * 4
            return true
        }
        if !kept { p.deallocate() }
    }

    /// Frees every pooled buffer.
    public static func drain() {
        let all = free.withLock { state -> [UInt] in
            defer { state = ([:], 0) }
            return state.buffers.values.flatMap { $0 }
        }
        for a in all { UnsafeMutableRawPointer(bitPattern: a)!.deallocate() }
    }
}

/// Whether operations record the graph (per thread of control; training code runs on one thread).
public enum GradMode {
    nonisolated(unsafe) static var enabled = true

    /// Runs `body` without recording gradients (evaluation, generation).
    public static func disabled<T>(_ body: () throws -> T) rethrows -> T {
        let saved = enabled
        enabled = false
        defer { enabled = saved }
        return try body()
    }
}

public final class Variable {
    public let shape: [Int]
    public let value: FloatStorage
    /// dLoss/dValue, allocated when first needed.
    public var grad: FloatStorage? {
        if gradPendingZero, let gradStorage {
            gradStorage.pointer.update(repeating: 0, count: count)
            gradPendingZero = false
        }
        return gradStorage
    }
    private var gradStorage: FloatStorage?
    /// `zeroGrad()` was called and nothing has written the buffer since: it holds stale values that
    /// read as zeros. The first writer may overwrite instead of adding (`gradientForWriting()`), which
    /// spares a pass of zeroing and the read of the old values in a GEMM that would add to them.
    private var gradPendingZero = false
    /// A leaf that an optimiser updates (a parameter), or an intermediate that leads to one.
    public let requiresGrad: Bool
    /// A name for parameters (checkpoint keys) and error messages.
    public var name: String

    let parents: [Variable]
    let backwardFunction: ((Variable) -> Void)?

    /// A leaf: data or a parameter.
    public init(_ value: FloatStorage, shape: [Int], requiresGrad: Bool = false, name: String = "") {
        precondition(shape.reduce(1, *) == value.count, "shape \(shape) does not hold \(value.count) values")
        self.shape = shape
        self.value = value
        self.requiresGrad = requiresGrad
        self.name = name
        parents = []
        backwardFunction = nil
    }

    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false, name: String = "") {
        self.init(FloatStorage(values), shape: shape, requiresGrad: requiresGrad, name: name)
    }

    /// An operation's result. Records `parents` and `backward` only if gradients are on and needed.
    init(_ value: FloatStorage, shape: [Int], parents: [Variable], backward: @escaping (Variable) -> Void) {
        let record = GradMode.enabled && parents.contains { $0.requiresGrad }
        self.shape = shape
        self.value = value
        self.requiresGrad = record
        self.name = ""
        self.parents = record ? parents : []
        self.backwardFunction = record ? backward : nil
    }

    public var count: Int { value.count }
    public var array: [Float] { value.array }
    /// The value of a one-element variable (a loss).
    public var scalar: Float { value.pointer[0] }

    /// The gradient buffer, allocated (zeroed) on first use.
    public func gradient() -> UnsafeMutablePointer<Float> {
        if gradStorage == nil { gradStorage = FloatStorage(count: count) }
        return grad!.pointer
    }

    /// The gradient buffer for a writer that can either add to it or overwrite it (a GEMM with or
    /// without `accumulate`): `accumulate` is false when the buffer holds no gradient yet.
    public func gradientForWriting() -> (pointer: UnsafeMutablePointer<Float>, accumulate: Bool) {
        guard let gradStorage else {
            let fresh = FloatStorage(count: count, zeroed: false)
            self.gradStorage = fresh
            return (fresh.pointer, false)
        }
        if gradPendingZero {
            gradPendingZero = false
            return (gradStorage.pointer, false)
        }
        return (gradStorage.pointer, true)
    }

    /// Clears the gradient (parameters, before a new accumulation). The buffer is zeroed lazily: by the
    /// next reader or adder, or not at all when the next writer overwrites it.
    public func zeroGrad() { if gradStorage != nil { gradPendingZero = true } }

    /// Back-propagates from this scalar: dSelf = 1, then every recorded operation in reverse order.
    public func backward() {
        precondition(count == 1, "backward() starts from a scalar loss; this variable has shape \(shape)")
        // Topological order by depth-first search (iterative: deep graphs must not overflow the stack).
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for parent in node.parents where parent.requiresGrad && !visited.contains(ObjectIdentifier(parent)) {
                stack.append((parent, false))
            }
        }
        gradient()[0] += 1
        for node in order.reversed() {
            guard let function = node.backwardFunction, node.grad != nil else { continue }
            function(node)
        }
    }
}
