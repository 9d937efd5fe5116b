// Writes GGUF version 3 files: metadata of every value type and tensors of the supported types,
// laid out contiguously with alignment padding as llama.cpp expects, into a temporary file that is
// renamed into place only once complete.
import Foundation

/// Builds a GGUF v3 file. Add metadata and tensors, then `write(to:)`. The alignment is
/// `general.alignment` when the metadata sets it (a uint32 power of two), else 32. Tensors are
/// written in the order added, each at the next aligned offset, and each padded to the alignment
/// (the last one too), which is the layout llama.cpp's loader checks.
public struct GGUFWriter {
    public var metadata: GGUFMetadata

    private var pending: [PendingTensor] = []
    private var names = Set<String>()

    private struct PendingTensor {
        var name: String
        var type: GGMLType
        var dims: [Int]
        var byteCount: Int
        var source: Source
    }

    private enum Source {
        case bytes([UInt8])
        case fill((UnsafeMutableRawBufferPointer) throws -> Void)
    }

    public init(metadata: GGUFMetadata = GGUFMetadata()) {
        self.metadata = metadata
    }

    /// The tensors added so far: name, type, dims and byte size, in file order.
    public var tensorInfos: [(name: String, type: GGMLType, dims: [Int], byteCount: Int)] {
        pending.map { ($0.name, $0.type, $0.dims, $0.byteCount) }
    }

    /// Adds a tensor whose encoded bytes are given. `dims` are in ggml order (`dims[0]` is the row
    /// length); `bytes.count` must equal the type's byte size for those dims.
    public mutating func addTensor(name: String, type: GGMLType, dims: [Int], bytes: [UInt8]) throws {
        let byteCount = try check(name: name, type: type, dims: dims)
        guard bytes.count == byteCount else {
            throw Self.inputError("tensor \(name): \(bytes.count) bytes given, but \(type.name) with dims \(dims) takes \(byteCount)")
        }
        names.insert(name)
        pending.append(PendingTensor(name: name, type: type, dims: dims, byteCount: byteCount, source: .bytes(bytes)))
    }

    /// Adds a tensor whose bytes are produced when the file is written: `fill` receives a zeroed
    /// buffer of exactly the tensor's byte size and writes the encoded data into it. Large models are
    /// written this way one tensor at a time, never held whole in memory.
    public mutating func addTensor(name: String, type: GGMLType, dims: [Int],
                                   fill: @escaping (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let byteCount = try check(name: name, type: type, dims: dims)
        names.insert(name)
        pending.append(PendingTensor(name: name, type: type, dims: dims, byteCount: byteCount, source: .fill(fill)))
    }

    /// Adds an F32 tensor from floats (norm weights, by the llama convention); `values.count` must
    /// be the product of `dims`.
    public mutating func addTensor(name: String, dims: [Int], float32 values: [Float]) throws {
        let bytes = values.withUnsafeBytes { raw in
            // Stored little-endian; this is the host order on every platform Headroom builds for.
            Array(raw)
        }
        try addTensor(name: name, type: .f32, dims: dims, bytes: bytes)
    }

    private func check(name: String, type: GGMLType, dims: [Int]) throws -> Int {
        guard !name.isEmpty, name.utf8.count <= GGUFLimits.maxTensorNameBytes else {
            throw Self.inputError("tensor name \"\(name)\" must be 1 to \(GGUFLimits.maxTensorNameBytes) bytes")
        }
        guard !names.contains(name) else { throw Self.inputError("tensor \(name) added twice") }
        guard (1...GGUFLimits.maxDims).contains(dims.count), dims.allSatisfy({ $0 >= 1 && UInt64($0) <= GGUFLimits.maxDimension }) else {
            throw Self.inputError("tensor \(name): dims \(dims) must be 1 to 4 sizes, each at least 1")
        }
        guard type.isSupported else {
            throw GGUFError(path: "(writer)", problem: .unsupportedTensorType(tensor: name, type: type))
        }
        if let block = type.blockElements, dims[0] % block != 0 {
            throw GGUFError(path: "(writer)", problem: .rowNotWholeBlocks(tensor: name, type: type, rowLength: dims[0]))
        }
        guard let byteCount = type.byteCount(dims: dims) else {
            throw GGUFError(path: "(writer)", problem: .tensorTooLarge(tensor: name))
        }
        return byteCount
    }

    private static func inputError(_ message: String) -> GGUFError {
        GGUFError(path: "(writer)", problem: .invalidInput(message))
    }

    // MARK: - Encoding

    /// The header, metadata, tensor infos and padding up to the data section.
    func encodeHead(path: String) throws -> [UInt8] {
        let alignment = try GGUFParser.alignment(in: metadata, path: path)
        var out: [UInt8] = []
        out.append(contentsOf: Array("GGUF".utf8))
        Self.append(UInt32(3), to: &out)
        Self.append(UInt64(pending.count), to: &out)
        Self.append(UInt64(metadata.count), to: &out)
        for (key, value) in metadata.entries {
            guard !key.isEmpty else { throw GGUFError(path: path, problem: .invalidInput("metadata key must not be empty")) }
            Self.append(string: key, to: &out)
            Self.append(value.type.rawValue, to: &out)
            try Self.append(value: value, key: key, depth: 0, path: path, to: &out)
        }
        var offset: UInt64 = 0
        for t in pending {
            Self.append(string: t.name, to: &out)
            Self.append(UInt32(t.dims.count), to: &out)
            for d in t.dims { Self.append(UInt64(d), to: &out) }
            Self.append(t.type.rawValue, to: &out)
            Self.append(offset, to: &out)
            offset = GGUFParser.alignUp(offset + UInt64(t.byteCount), to: UInt64(alignment))
        }
        let dataStart = GGUFParser.alignUp(UInt64(out.count), to: UInt64(alignment))
        out.append(contentsOf: repeatElement(0, count: Int(dataStart) - out.count))
        return out
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func append(string: String, to out: inout [UInt8]) {
        append(UInt64(string.utf8.count), to: &out)
        out.append(contentsOf: string.utf8)
    }

    private static func append(value: GGUFValue, key: String, depth: Int, path: String, to out: inout [UInt8]) throws {
        switch value {
        case .uint8(let v): append(v, to: &out)
        case .int8(let v): append(v, to: &out)
        case .uint16(let v): append(v, to: &out)
        case .int16(let v): append(v, to: &out)
        case .uint32(let v): append(v, to: &out)
        case .int32(let v): append(v, to: &out)
        case .uint64(let v): append(v, to: &out)
        case .int64(let v): append(v, to: &out)
        case .float32(let v): append(v.bitPattern, to: &out)
        case .float64(let v): append(v.bitPattern, to: &out)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let s): append(string: s, to: &out)
        case .array(let elementType, let elements):
            guard depth < GGUFLimits.maxArrayDepth else { throw GGUFError(path: path, problem: .arrayTooDeep(key: key)) }
            append(elementType.rawValue, to: &out)
            append(UInt64(elements.count), to: &out)
            for (i, element) in elements.enumerated() {
                guard element.type == elementType else {
                    throw GGUFError(path: path, problem: .invalidInput(
                        "metadata \(key)[\(i)] is a \(element.type) in an array of \(elementType)"))
                }
                try append(value: element, key: key, depth: depth + 1, path: path, to: &out)
            }
        }
    }

    // MARK: - Writing

    /// Writes the file to `path`: first to a temporary file beside it, then renamed over `path`, so a
    /// failure (a throwing `fill`, a full disk) leaves no half-written file and any old file intact.
    /// Returns the number of bytes written.
    @discardableResult
    public func write(to path: String) throws -> Int {
        let head = try encodeHead(path: path)
        let alignment = try GGUFParser.alignment(in: metadata, path: path)
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        // The rename below would replace whatever `path` names: refuse a device node, FIFO, socket or folder.
        var existing = stat()
        if stat(path, &existing) == 0, (existing.st_mode & S_IFMT) != S_IFREG {
            throw GGUFError(path: path, problem: .notRegularFile)
        }

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw GGUFError(path: path, problem: .io(operation: "create \(temporary)", reason: GGUFFile.errnoText()))
        }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporary) }
        }

        var written = 0
        func emit(_ buffer: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw GGUFError(path: path, problem: .io(operation: "write", reason: GGUFFile.errnoText()))
                }
                done += n
            }
            written += done
        }

        try head.withUnsafeBytes { try emit($0) }
        let zeros = [UInt8](repeating: 0, count: alignment)
        // One reused scratch buffer for produced tensors, sized for the largest.
        let scratchSize = pending.map { if case .fill = $0.source { return $0.byteCount } else { return 0 } }.max() ?? 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(scratchSize, 1), alignment: 64)
        defer { scratch.deallocate() }
        for t in pending {
            switch t.source {
            case .bytes(let bytes):
                try bytes.withUnsafeBytes { try emit($0) }
            case .fill(let fill):
                let buffer = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<t.byteCount])
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                try fill(buffer)
                try emit(UnsafeRawBufferPointer(buffer))
            }
            let padding = Int(GGUFParser.alignUp(UInt64(t.byteCount), to: UInt64(alignment))) - t.byteCount
            try zeros.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<padding])) }
        }
        guard fsync(fd) == 0 else { throw GGUFError(path: path, problem: .io(operation: "fsync", reason: GGUFFile.errnoText())) }
        closed = true
        guard close(fd) == 0 else { throw GGUFError(path: path, problem: .io(operation: "close", reason: GGUFFile.errnoText())) }
        guard rename(temporary, path) == 0 else {
            throw GGUFError(path: path, problem: .io(operation: "rename", reason: GGUFFile.errnoText()))
        }
        renamed = true
        return written
    }
}
