// Tensor storage: a block of bytes on the heap or memory-mapped from a file.
//
// Model weights are mapped read-only straight from GGUF/safetensors files, so loading a model costs
// no copy and the OS page cache shares it between processes. Activations and trained weights live on
// the heap, 64-byte aligned for the vector units.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Errors from creating storage.
public enum StorageError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case rangeOutsideFile(path: String, offset: Int, length: Int, fileSize: Int)
    case mapFailed(path: String, reason: String)

    /// What went wrong, without the path (for callers that name the file themselves).
    public var reason: String {
        if case .cannotOpen(_, let reason) = self { return reason }
        return description
    }

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open \(path): \(reason)"
        case .rangeOutsideFile(let path, let offset, let length, let fileSize):
            "\(path): bytes \(offset)..<\(offset + length) lie outside the file (\(fileSize) bytes)"
        case .mapFailed(let path, let reason): "cannot memory-map \(path): \(reason)"
        }
    }
}

/// Owns (or maps) the bytes behind one or more tensors. Tensors are views into a storage.
public final class Storage: @unchecked Sendable {
    public enum Kind: Sendable, Equatable { case heap, mapped(path: String) }

    /// Start of the usable bytes.
    public let bytes: UnsafeMutableRawPointer
    public let byteCount: Int
    public let kind: Kind
    private let release: @Sendable () -> Void

    /// Zero-filled heap memory, 64-byte aligned.
    public init(byteCount: Int) {
        let allocation = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        allocation.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        bytes = allocation
        self.byteCount = byteCount
        kind = .heap
        let address = UInt(bitPattern: allocation)
        release = { UnsafeMutableRawPointer(bitPattern: address)!.deallocate() }
    }

    /// Maps `length` bytes of the file at `path` from `offset` (read-only, private copy-on-write).
    /// Pass `length: nil` for the rest of the file.
    public init(mapping path: String, offset: Int = 0, length: Int? = nil) throws(StorageError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        let fileSize = Int(info.st_size)
        let count = length ?? (fileSize - offset)
        guard offset >= 0, count >= 0, offset + count <= fileSize else {
            throw .rangeOutsideFile(path: path, offset: offset, length: count, fileSize: fileSize)
        }
        // mmap needs a page-aligned file offset: map from the page start and skip the remainder.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let alignedOffset = offset / page * page
        let skip = offset - alignedOffset
        let mapLength = max(count + skip, 1)
        guard let base = mmap(nil, mapLength, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, off_t(alignedOffset)),
            base != MAP_FAILED
        else { throw .mapFailed(path: path, reason: String(cString: strerror(errno))) }
        bytes = base + skip
        byteCount = count
        kind = .mapped(path: path)
        let address = UInt(bitPattern: base)
        release = { munmap(UnsafeMutableRawPointer(bitPattern: address), mapLength) }
    }

    deinit { release() }
}
