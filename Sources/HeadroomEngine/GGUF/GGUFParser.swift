// Parses and validates the GGUF header, metadata and tensor infos from bytes in memory, checking
// every length and range against the size before it reads; nothing is exposed until all passes.
import Foundation

/// What a successful parse yields: everything but the mapping itself.
struct GGUFLayout {
    var version: UInt32
    var metadata: GGUFMetadata
    var alignment: Int
    /// Byte offset of the data section (tensor offsets are relative to it).
    var dataOffset: Int
    var tensors: [TensorInfo]

    struct TensorInfo {
        var name: String
        var type: GGMLType
        var dims: [Int]
        var byteCount: Int
        /// Offset from the start of the data section, as stored.
        var offset: UInt64
    }
}

/// A bounds-checked little-endian cursor over `size` bytes at `base`. `pos <= size` always holds,
/// so `size - pos` never wraps.
struct GGUFParser {
    let base: UnsafeRawPointer?
    let size: UInt64
    let path: String
    private(set) var pos: UInt64 = 0

    init(base: UnsafeRawPointer?, size: Int, path: String) {
        self.base = base
        self.size = UInt64(size)
        self.path = path
    }

    private func fail(_ problem: GGUFError.Problem) -> GGUFError { GGUFError(path: path, problem: problem) }

    /// Runs the whole parse and validation.
    static func parse(base: UnsafeRawPointer?, size: Int, path: String) throws -> GGUFLayout {
        var parser = GGUFParser(base: base, size: size, path: path)
        return try parser.parseAll()
    }

    private mutating func parseAll() throws -> GGUFLayout {
        // Header: magic u32, version u32, tensor_count u64, metadata_kv_count u64.
        try need(4, "header (magic)")
        let magic = (0..<4).map { base!.load(fromByteOffset: $0, as: UInt8.self) }
        guard magic == Array("GGUF".utf8) else { throw fail(.badMagic(found: magic)) }
        pos = 4
        let version = try u32("header (version)")
        guard version == 2 || version == 3 else { throw fail(.unsupportedVersion(version)) }
        let tensorCount = try u64("header (tensor count)")
        let kvCount = try u64("header (metadata count)")

        // The smallest tensor info is 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset)
        // bytes, the smallest metadata entry 8 (key length) + 4 (type) + 1 (a uint8): counts that cannot fit
        // are refused before any array is sized from them.
        let (t, o1) = tensorCount.multipliedReportingOverflow(by: 32)
        let (k, o2) = kvCount.multipliedReportingOverflow(by: 13)
        let (both, o3) = t.addingReportingOverflow(k)
        if o1 || o2 || o3 || both > size - pos {
            throw fail(.implausibleCounts(tensors: tensorCount, metadata: kvCount, fileSize: size))
        }

        var metadata = GGUFMetadata()
        for i in 0..<Int(kvCount) {
            let key = try string("metadata key #\(i)")
            if metadata[key] != nil { throw fail(.duplicateKey(key)) }
            let rawType = try u32("type of metadata \(key)")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw fail(.unknownValueType(what: "metadata \(key)", raw: rawType))
            }
            metadata[key] = try value(of: type, key: key, what: "metadata \(key)", depth: 0)
        }

        let alignment = try Self.alignment(in: metadata, path: path)

        var tensors: [GGUFLayout.TensorInfo] = []
        tensors.reserveCapacity(Int(tensorCount))
        var names = Set<String>()
        for i in 0..<Int(tensorCount) {
            let name = try string("name of tensor #\(i)")
            guard names.insert(name).inserted else { throw fail(.duplicateTensor(name)) }
            let nDims = try u32("tensor \(name) (dimension count)")
            guard nDims >= 1, nDims <= UInt32(GGUFLimits.maxDims) else {
                throw fail(.badDimensionCount(tensor: name, nDims: nDims))
            }
            var dims: [Int] = []
            for d in 0..<Int(nDims) {
                let value = try u64("tensor \(name) (dimension \(d))")
                guard value >= 1, value <= GGUFLimits.maxDimension else {
                    throw fail(.badDimension(tensor: name, index: d, value: value))
                }
                dims.append(Int(value))
            }
            let rawType = try u32("tensor \(name) (type)")
            guard let type = GGMLType(rawValue: rawType) else { throw fail(.unknownTensorType(tensor: name, raw: rawType)) }
            guard type.isSupported else { throw fail(.unsupportedTensorType(tensor: name, type: type)) }
            if let block = type.blockElements, dims[0] % block != 0 {
                throw fail(.rowNotWholeBlocks(tensor: name, type: type, rowLength: dims[0]))
            }
            guard let byteCount = type.byteCount(dims: dims) else { throw fail(.tensorTooLarge(tensor: name)) }
            let offset = try u64("tensor \(name) (offset)")
            guard offset % UInt64(alignment) == 0 else {
                throw fail(.misalignedOffset(tensor: name, offset: offset, alignment: UInt64(alignment)))
            }
            tensors.append(.init(name: name, type: type, dims: dims, byteCount: byteCount, offset: offset))
        }

        // The data section starts at the next multiple of the alignment after the tensor infos.
        let dataOffset = Self.alignUp(pos, to: UInt64(alignment))
        for tensor in tensors {
            let (start, o1) = dataOffset.addingReportingOverflow(tensor.offset)
            let (end, o2) = start.addingReportingOverflow(UInt64(tensor.byteCount))
            guard !o1, !o2, end <= size else {
                throw fail(.tensorPastEnd(tensor: tensor.name, start: start, end: end, fileSize: size))
            }
        }
        return GGUFLayout(version: version, metadata: metadata, alignment: alignment,
                          dataOffset: Int(dataOffset), tensors: tensors)
    }

    /// `general.alignment` when present (a uint32 power of two, as llama.cpp requires), else 32.
    static func alignment(in metadata: GGUFMetadata, path: String) throws -> Int {
        guard let value = metadata["general.alignment"] else { return GGUFLimits.defaultAlignment }
        guard case .uint32(let a) = value else {
            throw GGUFError(path: path, problem: .wrongValueType(key: "general.alignment", expected: "uint32", found: value.type))
        }
        guard a > 0, a & (a - 1) == 0, UInt64(a) <= GGUFLimits.maxAlignment else {
            throw GGUFError(path: path, problem: .badAlignment(UInt64(a)))
        }
        return Int(a)
    }

    static func alignUp(_ x: UInt64, to alignment: UInt64) -> UInt64 {
        (x + alignment - 1) / alignment * alignment
    }

    // MARK: - Reading values

    private mutating func value(of type: GGUFValueType, key: String, what: @autoclosure () -> String,
                                depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try fixed(UInt8.self, what()))
        case .int8: return .int8(Int8(bitPattern: try fixed(UInt8.self, what())))
        case .uint16: return .uint16(try fixed(UInt16.self, what()))
        case .int16: return .int16(Int16(bitPattern: try fixed(UInt16.self, what())))
        case .uint32: return .uint32(try fixed(UInt32.self, what()))
        case .int32: return .int32(Int32(bitPattern: try fixed(UInt32.self, what())))
        case .uint64: return .uint64(try fixed(UInt64.self, what()))
        case .int64: return .int64(Int64(bitPattern: try fixed(UInt64.self, what())))
        case .float32: return .float32(Float(bitPattern: try fixed(UInt32.self, what())))
        case .float64: return .float64(Double(bitPattern: try fixed(UInt64.self, what())))
        case .bool:
            let raw = try fixed(UInt8.self, what())
            guard raw <= 1 else { throw fail(.invalidBool(what: what(), raw: raw)) }
            return .bool(raw == 1)
        case .string:
            return .string(try string(what()))
        case .array:
            guard depth < GGUFLimits.maxArrayDepth else { throw fail(.arrayTooDeep(key: key)) }
            let rawType = try u32("element type of \(what())")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw fail(.unknownValueType(what: "elements of \(what())", raw: rawType))
            }
            let countOffset = pos
            let count = try u64("length of \(what())")
            let (needed, overflow) = count.multipliedReportingOverflow(by: UInt64(elementType.minimumEncodedSize))
            guard !overflow, needed <= size - pos else {
                throw fail(.lengthPastEnd(what: "array \(what())", length: count, offset: countOffset, fileSize: size))
            }
            var elements: [GGUFValue] = []
            elements.reserveCapacity(Int(count))
            for i in 0..<Int(count) {
                elements.append(try value(of: elementType, key: key, what: "\(what())[\(i)]", depth: depth + 1))
            }
            return .array(elementType, elements)
        }
    }

    private mutating func need(_ n: UInt64, _ what: @autoclosure () -> String) throws {
        guard n <= size - pos else { throw fail(.truncated(what: what(), start: pos, end: pos + n, fileSize: size)) }
    }

    private mutating func fixed<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let n = UInt64(MemoryLayout<T>.size)
        try need(n, what())
        let v = base!.loadUnaligned(fromByteOffset: Int(pos), as: T.self)
        pos += n
        return T(littleEndian: v)
    }

    private mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try fixed(UInt32.self, what()) }
    private mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try fixed(UInt64.self, what()) }

    /// A GGUF string: u64 byte length, then that many bytes of UTF-8 (no terminator).
    private mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let lengthOffset = pos
        let length = try u64("length of \(what())")
        guard length <= size - pos else {
            throw fail(.lengthPastEnd(what: "string \(what())", length: length, offset: lengthOffset, fileSize: size))
        }
        let bytes = UnsafeRawBufferPointer(start: base! + Int(pos), count: Int(length))
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw fail(.invalidUTF8(what: what(), offset: pos))
        }
        pos += length
        return s
    }
}
