// The GGUF reader as a fuzz target: a file in memory is opened (`GGUFFile(bytes:path:)`), listed as
// `headroom model` lists it, and loaded as llama weights. Seeds are small llama models and a file with every
// metadata type; mutations know where the header counts, lengths, types, dims and offsets sit.
import Foundation
import HeadroomEngine

enum GGUFFuzzTarget {
    /// The name errors must carry: the reader is handed the input under this path.
    static let fileName = "fuzz-input.gguf"

    static func make() throws -> FuzzTarget {
        FuzzTarget(name: "gguf", summary: "GGUF reader: GGUFFile(bytes:path:), the metadata and tensor listing, ModelWeights(gguf:)",
                   fileExtension: "gguf", maxInputBytes: 64 << 10, seeds: try seeds(),
                   mutate: { input, r in mutate(&input, &r) }, check: check)
    }

    static func check(_ input: [UInt8]) -> FuzzVerdict {
        do {
            let file = try input.withUnsafeBytes { try GGUFFile(bytes: $0, path: fileName) }
            // What `headroom model` prints of a file before it loads it.
            var listing = 0
            for (key, value) in file.metadata.entries { listing &+= key.count &+ value.description.count }
            for t in file.tensors { listing &+= t.elementCount &+ t.rowCount &+ t.rowLength &+ t.bytes.count }
            _ = file.architecture
            _ = file.tensorBytes
            let weights = try ModelWeights(gguf: file)
            _ = weights.config.weightBytes(weights.type)
            return .accepted
        } catch {
            return FuzzTarget.verdict(for: error, expected: { $0 is GGUFError }, file: fileName, check: { check(of: $0 as! GGUFError) })
        }
    }

    /// The check that refused a file: the problem's kind, and for the llama checks (whose keys and tensor names
    /// are the reader's own, not the file's) the message with numbers blanked.
    static func check(of error: GGUFError) -> String {
        switch error.problem {
        case .missingKey, .wrongValueType, .invalidConfig, .missingTensor, .wrongTensorShape:
            return FuzzVerdict.blank(error.problem.description)
        default:
            return Mirror(reflecting: error.problem).children.first?.label ?? "\(error.problem)"
        }
    }

    // MARK: - Seeds

    /// A llama shape small enough to fuzz quickly: 32-wide, 2 heads over 1 KV head, 8 tokens.
    static let dim = 32, heads = 2, kvHeads = 1, ffn = 32, vocab = 8, context = 64

    static func seeds() throws -> [[UInt8]] {
        [
            try llama(layers: 1, type: .q4_0, tiedOutput: true, tokens: false),
            try llama(layers: 2, type: .q8_0, tiedOutput: false, tokens: true),
            try everyValueType(),
        ]
    }

    /// A llama model whose matrices are all `type` (norms F32), with the metadata `ModelWeights(gguf:)` reads.
    static func llama(layers: Int, type: GGMLType, tiedOutput: Bool, tokens: Bool) throws -> [UInt8] {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("llama")
        m["general.name"] = .string("fuzz seed")
        m["general.alignment"] = .uint32(32)
        m["llama.context_length"] = .uint32(UInt32(context))
        m["llama.embedding_length"] = .uint32(UInt32(dim))
        m["llama.block_count"] = .uint32(UInt32(layers))
        m["llama.feed_forward_length"] = .uint32(UInt32(ffn))
        m["llama.rope.dimension_count"] = .uint32(UInt32(dim / heads))
        m["llama.attention.head_count"] = .uint32(UInt32(heads))
        m["llama.attention.head_count_kv"] = .uint32(UInt32(kvHeads))
        m["llama.attention.layer_norm_rms_epsilon"] = .float32(1e-5)
        m["llama.rope.freq_base"] = .float32(10000)
        m["llama.vocab_size"] = .uint64(UInt64(vocab))
        if tokens { m["tokenizer.ggml.tokens"] = .array(.string, (0..<vocab).map { .string("<t\($0)>") }) }
        let g = GGUFLlamaConfig(blockCount: layers, embeddingLength: dim, headCount: heads, headCountKV: kvHeads,
                                feedForwardLength: ffn, contextLength: context, vocabSize: vocab)
        var writer = GGUFWriter(metadata: m)
        var random = FuzzRandom(seed: UInt64(layers))
        for spec in g.tensorSpecs(tiedOutput: tiedOutput) {
            if spec.isNorm {
                try writer.addTensor(name: spec.name, dims: spec.dims, float32: [Float](repeating: 1, count: spec.dims[0]))
            } else {
                let n = type.byteCount(dims: spec.dims)!
                try writer.addTensor(name: spec.name, type: type, dims: spec.dims, bytes: blocks(type, bytes: n, &random))
            }
        }
        return try bytes(of: writer)
    }

    /// Block bytes with small finite f16 scales (0x2000–0x2FFF) in front of random quants.
    static func blocks(_ type: GGMLType, bytes n: Int, _ r: inout FuzzRandom) -> [UInt8] {
        var out = (0..<n).map { _ in UInt8(truncatingIfNeeded: r.next()) }
        guard let block = type.blockBytes, type.blockElements == 32 else { return out.map { $0 & 0x3F } }
        for start in stride(from: 0, to: n, by: block) { out[start + 1] = 0x20 | (out[start + 1] & 0x0F) }
        return out
    }

    /// Metadata of every value type (nested and empty arrays included) and one tensor of each supported type.
    static func everyValueType() throws -> [UInt8] {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("fuzz")
        m["u8"] = .uint8(200); m["i8"] = .int8(-100); m["u16"] = .uint16(60000); m["i16"] = .int16(-30000)
        m["u32"] = .uint32(4_000_000_000); m["i32"] = .int32(-2_000_000_000)
        m["u64"] = .uint64(UInt64.max - 1); m["i64"] = .int64(Int64.min + 1)
        m["f32"] = .float32(-1.5e-7); m["f64"] = .float64(1e300); m["b"] = .bool(true); m["s"] = .string("héllo ✓")
        m["a.u32"] = .array(.uint32, [.uint32(1), .uint32(2)])
        m["a.s"] = .array(.string, [.string("<s>"), .string("")])
        m["a.nested"] = .array(.array, [.array(.int32, [.int32(1)]), .array(.string, [.string("x")])])
        m["a.empty"] = .array(.float32, [])
        var writer = GGUFWriter(metadata: m)
        var random = FuzzRandom(seed: 7)
        for (name, type, dims) in [("f32", GGMLType.f32, [8, 3]), ("f16", .f16, [16, 2]), ("q4", .q4_0, [64, 2]),
                                   ("q8", .q8_0, [32, 2, 2]), ("4d", .f16, [2, 3, 4, 5])] {
            try writer.addTensor(name: name, type: type, dims: dims, bytes: blocks(type, bytes: type.byteCount(dims: dims)!, &random))
        }
        return try bytes(of: writer)
    }

    static func bytes(of writer: GGUFWriter) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "headroom-fuzz-seed-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).gguf"
        defer { unlink(path) }
        try writer.write(to: path)
        guard let data = FileManager.default.contents(atPath: path) else { throw FuzzSetupError("cannot read back \(path)") }
        return [UInt8](data)
    }

    // MARK: - Mutations

    static func mutate(_ input: inout [UInt8], _ r: inout FuzzRandom) {
        let map = GGUFFieldMap(input)
        guard !map.fields.isEmpty else {
            ByteMutations.mutate(&input, other: [], &r)
            return
        }
        switch r.below(8) {
        case 0...3:  // a boundary value in a count, length, type, dim, offset or number field
            let field = r.pick(map.fields)
            ByteMutations.write(value(for: field, fileSize: input.count, &r), width: field.width, at: field.offset, in: &input)
        case 4:  // nudge a field by a little
            let field = r.pick(map.fields)
            let old = map.read(field, in: input)
            let delta = UInt64(1 + r.below(8))
            ByteMutations.write(r.oneIn(2) ? old &+ delta : old &- delta, width: field.width, at: field.offset, in: &input)
        case 5:  // cut the file at a field's start or end
            let field = r.pick(map.fields)
            input.removeSubrange((field.offset + (r.oneIn(2) ? 0 : field.width))...)
        case 6:  // duplicate or drop a whole metadata entry or tensor info, keeping the count in step (or not)
            guard let record = map.records.isEmpty ? nil : r.pick(map.records) else { return }
            let bytes = Array(input[record.range])
            let countField = record.isTensor ? map.tensorCount : map.metadataCount
            let count = map.read(countField, in: input)
            if r.oneIn(2) {
                input.insert(contentsOf: bytes, at: r.oneIn(2) ? record.range.upperBound : record.range.lowerBound)
                if !r.oneIn(4) { ByteMutations.write(count &+ 1, width: 8, at: countField.offset, in: &input) }
            } else {
                input.removeSubrange(record.range)
                if !r.oneIn(4) { ByteMutations.write(count &- 1, width: 8, at: countField.offset, in: &input) }
            }
        default:  // swap the values of two fields of the same width
            let a = r.pick(map.fields), b = r.pick(map.fields)
            guard a.width == b.width else { return }
            let va = map.read(a, in: input), vb = map.read(b, in: input)
            ByteMutations.write(vb, width: a.width, at: a.offset, in: &input)
            ByteMutations.write(va, width: b.width, at: b.offset, in: &input)
        }
    }

    static func value(for field: GGUFFieldMap.Field, fileSize: Int, _ r: inout FuzzRandom) -> UInt64 {
        switch field.kind {
        case .valueType: return UInt64(r.below(15))       // 0...12 are defined, 13 and 14 are not
        case .tensorType: return UInt64(r.pick([0, 1, 2, 3, 6, 8, 10, 15, 30, 42, 43, 1000]))
        case .float32: return UInt64(r.pick([Float.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, 1e38, -1, 0.5]).bitPattern)
        case .float64: return r.pick([Double.nan, .infinity, -.infinity, 0, .leastNonzeroMagnitude, 1e300, -1]).bitPattern
        case .count, .length, .dimension, .offset, .dimensionCount, .integer:
            let near = [fileSize, fileSize - field.offset, fileSize + 1, fileSize / 2].map { UInt64(max($0, 0)) }
            return r.oneIn(4) ? r.pick(near) : r.pick(ByteMutations.boundaryIntegers)
        }
    }
}

/// Where the fields of a GGUF file sit, found by a tolerant walk that stops at the first thing it cannot follow
/// (the mutations need positions, not validity; the reader under test does the validating).
struct GGUFFieldMap {
    enum Kind { case count, length, valueType, integer, float32, float64, dimensionCount, dimension, tensorType, offset }

    struct Field {
        var offset: Int
        var width: Int
        var kind: Kind
    }

    /// A whole metadata entry or tensor info.
    struct Record {
        var range: Range<Int>
        var isTensor: Bool
    }

    private(set) var fields: [Field] = []
    private(set) var records: [Record] = []
    let tensorCount = Field(offset: 8, width: 8, kind: .count)
    let metadataCount = Field(offset: 16, width: 8, kind: .count)

    /// Elements of one array recorded as fields; the rest are skipped over.
    static let arrayFieldLimit = 16
    /// Steps the walk takes at most, so a file that claims huge arrays costs little.
    static let stepLimit = 20_000

    init(_ bytes: [UInt8]) {
        var walker = Walker(bytes: bytes)
        guard bytes.count >= 24, bytes[0..<4].elementsEqual("GGUF".utf8) else { return }
        fields = [Field(offset: 4, width: 4, kind: .integer), tensorCount, metadataCount]
        walker.pos = 24
        let tensors = walker.u64(at: 8), entries = walker.u64(at: 16)
        var ok = true
        for _ in 0..<min(entries, 4096) where ok {
            let start = walker.pos
            ok = walker.string(&fields, kind: .length) && walker.value(&fields, depth: 0)
            if ok { records.append(Record(range: start..<walker.pos, isTensor: false)) }
        }
        for _ in 0..<min(tensors, 4096) where ok {
            let start = walker.pos
            ok = walker.string(&fields, kind: .length) && walker.tensorInfo(&fields)
            if ok { records.append(Record(range: start..<walker.pos, isTensor: true)) }
        }
    }

    func read(_ field: Field, in bytes: [UInt8]) -> UInt64 {
        guard field.offset + field.width <= bytes.count else { return 0 }
        var v: UInt64 = 0
        for k in 0..<field.width { v |= UInt64(bytes[field.offset + k]) << (8 * UInt64(k)) }
        return v
    }

    private struct Walker {
        let bytes: [UInt8]
        var pos = 0
        var steps = 0

        func u64(at offset: Int) -> UInt64 { u64Partial(at: offset, width: 8) }

        func u64Partial(at offset: Int, width: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<width { v |= UInt64(bytes[offset + k]) << (8 * UInt64(k)) }
            return v
        }

        mutating func field(_ fields: inout [Field], width: Int, kind: Kind, record: Bool = true) -> UInt64? {
            steps += 1
            guard steps < GGUFFieldMap.stepLimit, width <= bytes.count - pos else { return nil }
            if record { fields.append(Field(offset: pos, width: width, kind: kind)) }
            let v = u64Partial(at: pos, width: width)
            pos += width
            return v
        }

        mutating func string(_ fields: inout [Field], kind: Kind, record: Bool = true) -> Bool {
            guard let n = field(&fields, width: 8, kind: kind, record: record), n <= UInt64(bytes.count - pos) else { return false }
            pos += Int(n)
            return true
        }

        mutating func value(_ fields: inout [Field], depth: Int, record: Bool = true) -> Bool {
            guard let t = field(&fields, width: 4, kind: .valueType, record: record) else { return false }
            return payload(type: t, &fields, depth: depth, record: record)
        }

        mutating func payload(type t: UInt64, _ fields: inout [Field], depth: Int, record: Bool) -> Bool {
            switch t {
            case 0, 1, 7: return field(&fields, width: 1, kind: .integer, record: record) != nil
            case 2, 3: return field(&fields, width: 2, kind: .integer, record: record) != nil
            case 4, 5: return field(&fields, width: 4, kind: .integer, record: record) != nil
            case 6: return field(&fields, width: 4, kind: .float32, record: record) != nil
            case 10, 11: return field(&fields, width: 8, kind: .integer, record: record) != nil
            case 12: return field(&fields, width: 8, kind: .float64, record: record) != nil
            case 8: return string(&fields, kind: .length, record: record)
            case 9:
                guard depth < 4, let element = field(&fields, width: 4, kind: .valueType, record: record),
                      let count = field(&fields, width: 8, kind: .count, record: record) else { return false }
                for i in 0..<min(count, UInt64(GGUFFieldMap.stepLimit)) {
                    if !payload(type: element, &fields, depth: depth + 1, record: record && i < GGUFFieldMap.arrayFieldLimit) {
                        return false
                    }
                }
                return count <= UInt64(GGUFFieldMap.stepLimit)
            default: return false
            }
        }

        mutating func tensorInfo(_ fields: inout [Field]) -> Bool {
            guard let nDims = field(&fields, width: 4, kind: .dimensionCount), nDims <= 8 else { return false }
            for _ in 0..<nDims where field(&fields, width: 8, kind: .dimension) == nil { return false }
            return field(&fields, width: 4, kind: .tensorType) != nil && field(&fields, width: 8, kind: .offset) != nil
        }
    }
}
