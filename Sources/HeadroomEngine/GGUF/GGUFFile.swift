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

/// A validated, memory-mapped GGUF file (version 2 or 3, little-endian). Opening checks the
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

    private let mapping: UnsafeMutableRawPointer?
    private let index: [String: Int]

    /// Opens and validates `path`. Throws `GGUFError` naming the file and what was wrong.
    public init(path: String) throws {
        self.path = path
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
        let layout: GGUFLayout
        do {
            layout = try GGUFParser.parse(base: base.map { UnsafeRawPointer($0) }, size: size, path: path)
        } catch {
            if let base { munmap(base, size) }
            throw error
        }
        mapping = base
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

    deinit {
        if let mapping { munmap(mapping, fileSize) }
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
        guard let mapping else { return 0 }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        _ = madvise(mapping, fileSize, Int32(MADV_WILLNEED))
        let bytes = UnsafeRawPointer(mapping)
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
