// A GGUF file opened read-only through mmap: validated whole before anything is exposed, then its
// metadata and tensors are available without copying the tensor data.
import Foundation

/// One tensor of an open GGUF file. `data` points into the file's mapping and stays valid only
/// while the `GGUFFile` it came from is alive.
public struct GGUFTensor: @unchecked Sendable {
    public let name: String
    public let type: GGMLType
    /// ggml order: `dims[0]` is the row length (ne[0]), the fastest-varying dimension. A linear
    /// layer with `in` inputs and `out` outputs has dims `[in, out]`.
    public let dims: [Int]
    public let byteCount: Int
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    public let data: UnsafeRawPointer

    /// Number of elements (product of the dims).
    public var elementCount: Int { dims.reduce(1, *) }
    /// `dims[0]`: elements per row.
    public var rowLength: Int { dims[0] }
    /// Number of rows: the product of the dims after the first.
    public var rowCount: Int { dims.dropFirst().reduce(1, *) }
    /// The tensor's bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: data, count: byteCount) }
}

/// A validated, memory-mapped (or in-memory) GGUF file (version 2 or 3, little-endian). Opening checks the
/// magic, version, counts, every string and array length, value types, tensor infos, alignment
/// and that every tensor's bytes lie inside the file; a file that fails any check is refused with
/// a `GGUFError` and nothing is read past its end. The mapping is private and read-only; it lives as
/// long as this object (a class because its identity is the mapping).
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: GGUFMetadata
    /// The alignment of tensor data: `general.alignment`, or 32 when absent.
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    public let fileSize: Int
    /// Tensors in file order.
    public let tensors: [GGUFTensor]

    /// The file's bytes: an mmap of the file, or a copy made by `init(bytes:path:)`.
    private let base: UnsafeMutableRawPointer?
    private let storage: Storage
    private let index: [String: Int]

    private enum Storage { case mapped, copied }

    /// Opens and validates `path`. Throws `GGUFError` naming the file and what was wrong.
    public convenience init(path: String) throws {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses anything not regular.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw GGUFError(path: path, problem: .io(operation: "open", reason: Self.errnoText())) }
        defer { close(fd) }  // the mapping outlives the descriptor
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError(path: path, problem: .io(operation: "stat", reason: Self.errnoText())) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError(path: path, problem: .notRegularFile) }
        let size = Int(st.st_size)

        var base: UnsafeMutableRawPointer? = nil
        if size > 0 {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw GGUFError(path: path, problem: .io(operation: "mmap", reason: Self.errnoText()))
            }
            base = p
        }
        try self.init(path: path, base: base, size: size, storage: .mapped)
    }

    /// Validates a GGUF file held in memory (a download, a test's buffer): `bytes` are copied to a page-aligned
    /// buffer owned by this object, then checked exactly as `init(path:)` checks a file; errors name `path`.
    public convenience init(bytes: UnsafeRawBufferPointer, path: String) throws {
        var base: UnsafeMutableRawPointer? = nil
        if bytes.count > 0 {
            let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: Int(sysconf(Int32(_SC_PAGESIZE))))
            copy.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            base = copy
        }
        try self.init(path: path, base: base, size: bytes.count, storage: .copied)
    }

    /// Takes ownership of `base` (released by `storage`'s rule, also when validation fails) and validates it.
    private init(path: String, base: UnsafeMutableRawPointer?, size: Int, storage: Storage) throws {
        let layout: GGUFLayout
        do {
            layout = try GGUFParser.parse(base: base.map { UnsafeRawPointer($0) }, size: size, path: path)
        } catch {
            Self.release(base, size: size, storage: storage)
            throw error
        }
        self.path = path
        self.base = base
        self.storage = storage
        fileSize = size
        version = layout.version
        metadata = layout.metadata
        alignment = layout.alignment
        dataOffset = layout.dataOffset
        var tensors: [GGUFTensor] = []
        var index: [String: Int] = [:]
        for info in layout.tensors {
            let offset = layout.dataOffset + Int(info.offset)  // checked inside the file by the parser
            index[info.name] = tensors.count
            tensors.append(GGUFTensor(name: info.name, type: info.type, dims: info.dims, byteCount: info.byteCount,
                                      fileOffset: offset, data: UnsafeRawPointer(base!) + offset))
        }
        self.tensors = tensors
        self.index = index
    }

    deinit { Self.release(base, size: fileSize, storage: storage) }

    private static func release(_ base: UnsafeMutableRawPointer?, size: Int, storage: Storage) {
        guard let base else { return }
        switch storage {
        case .mapped: munmap(base, size)
        case .copied: base.deallocate()
        }
    }

    /// The tensor called `name`, or nil.
    public func tensor(named name: String) -> GGUFTensor? { index[name].map { tensors[$0] } }

    /// The tensor called `name`, or a `GGUFError` naming the file and the missing tensor.
    public func requireTensor(_ name: String) throws -> GGUFTensor {
        guard let t = tensor(named: name) else { throw GGUFError(path: path, problem: .missingTensor(name)) }
        return t
    }

    /// `general.architecture`, when present.
    public var architecture: String? { metadata.architecture }

    /// Total bytes of tensor data (what the weights cost in memory once touched).
    public var tensorBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Brings every page of the file into memory now (madvise, then one read per page), so that
    /// page faults on the weights are paid here and not inside a timed prefill or decode. Returns
    /// the number of pages touched.
    @discardableResult
    public func prefault() -> Int {
        guard let base else { return 0 }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        _ = madvise(base, fileSize, Int32(MADV_WILLNEED))
        let bytes = UnsafeRawPointer(base)
        var pages = 0
        var sink: UInt8 = 0
        var offset = 0
        while offset < fileSize {
            sink &+= bytes.load(fromByteOffset: offset, as: UInt8.self)
            pages += 1
            offset += page
        }
        withExtendedLifetime(sink) {}
        return pages
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
