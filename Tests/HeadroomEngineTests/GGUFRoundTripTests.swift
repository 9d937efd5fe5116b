// GGUF writer and reader together: what is written reads back identical (metadata of every value
// type, byte-identical tensors of every supported type), the layout matches one assembled by hand,
// and the llama helpers produce a configuration that reads back and validates.
import Foundation
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

final class GGUFRoundTripTests: XCTestCase {
    var dir: GGUFScratchDirectory!
    override func setUpWithError() throws { dir = try GGUFScratchDirectory() }
    override func tearDown() { dir.remove() }

    func testWriteThenReadGivesIdenticalMetadataAndTensors() throws {
        let (writer, data) = try GGUFSamples.writer()
        let path = dir.file("roundtrip.gguf")
        let written = try writer.write(to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.fileSize, written)
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.alignment, 32)
        XCTAssertEqual(file.metadata, GGUFSamples.everyValueType)
        XCTAssertEqual(file.metadata.keys, GGUFSamples.everyValueType.keys)
        XCTAssertEqual(file.tensors.map(\.name), GGUFSamples.tensorSpecs.map(\.name))
        for spec in GGUFSamples.tensorSpecs {
            let t = try XCTUnwrap(file.tensor(named: spec.name))
            XCTAssertEqual(t.type, spec.type)
            XCTAssertEqual(t.dims, spec.dims)
            XCTAssertEqual(Array(t.bytes), data[spec.name], "tensor \(spec.name) bytes differ")
            XCTAssertEqual(t.fileOffset % 32, 0, "tensor \(spec.name) is not aligned")
            XCTAssertEqual(Int(bitPattern: t.data) % 32, 0, "tensor \(spec.name) is not aligned in memory")
        }
        // Byte sizes per type: F32 4/elem, F16 2/elem, Q4_0 18 per 32, Q8_0 34 per 32.
        XCTAssertEqual(file.tensor(named: "t.f32")?.byteCount, 8 * 3 * 4)
        XCTAssertEqual(file.tensor(named: "t.norm")?.byteCount, 7 * 4)
        XCTAssertEqual(file.tensor(named: "t.f16")?.byteCount, 16 * 2 * 2)
        XCTAssertEqual(file.tensor(named: "t.q4_0")?.byteCount, 2 * 3 * 18)
        XCTAssertEqual(file.tensor(named: "t.q8_0")?.byteCount, 1 * 2 * 2 * 34)
        XCTAssertEqual(file.tensor(named: "t.4d")?.rowCount, 60)
        XCTAssertNil(file.tensor(named: "missing"))
    }

    func testBytesInMemoryReadAsTheFileDoes() throws {
        let (writer, data) = try GGUFSamples.writer()
        let path = dir.file("memory.gguf")
        try writer.write(to: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let fromFile = try GGUFFile(path: path)
        let inMemory = try bytes.withUnsafeBytes { try GGUFFile(bytes: $0, path: "buffer.gguf") }
        XCTAssertEqual(inMemory.path, "buffer.gguf")
        XCTAssertEqual(inMemory.fileSize, bytes.count)
        XCTAssertEqual(inMemory.metadata, fromFile.metadata)
        XCTAssertEqual(inMemory.tensors.map(\.fileOffset), fromFile.tensors.map(\.fileOffset))
        for spec in GGUFSamples.tensorSpecs {
            let t = try XCTUnwrap(inMemory.tensor(named: spec.name))
            XCTAssertEqual(Array(t.bytes), data[spec.name])
            XCTAssertEqual(Int(bitPattern: t.data) % 32, 0, "tensor \(spec.name) is not aligned in memory")
        }
        XCTAssertGreaterThan(inMemory.prefault(), 0)
        // Refusals name the path given, and an empty buffer is a truncated file.
        assertGGUFError("buffer.gguf: truncated: header (magic) needs bytes 0..4 but the file has 0") {
            _ = try [UInt8]().withUnsafeBytes { try GGUFFile(bytes: $0, path: "buffer.gguf") }
        }
        assertGGUFError("buffer.gguf: GGUF version 7 is not supported; Headroom reads versions 2 and 3") {
            var bad = bytes
            bad[4] = 7
            _ = try bad.withUnsafeBytes { try GGUFFile(bytes: $0, path: "buffer.gguf") }
        }
    }

    func testPrefaultTouchesEveryPage() throws {
        let (writer, _) = try GGUFSamples.writer()
        let path = dir.file("prefault.gguf")
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        XCTAssertEqual(file.prefault(), (file.fileSize + page - 1) / page)
    }

    func testAccessors() throws {
        let (writer, _) = try GGUFSamples.writer()
        let path = dir.file("accessors.gguf")
        try writer.write(to: path)
        let m = try GGUFFile(path: path).metadata
        XCTAssertEqual(m.architecture, "llama")
        XCTAssertEqual(m.string("test.string"), "héllo, wörld ✓")
        XCTAssertEqual(m.int("test.uint8"), 200)
        XCTAssertEqual(m.int("test.int16"), -30000)
        XCTAssertEqual(m.int("test.uint32"), 4_000_000_000)
        XCTAssertEqual(m.int("test.int64"), Int(Int64.min + 1))
        XCTAssertEqual(m.float("test.float32"), Double(Float(-1.5e-7)))
        XCTAssertEqual(m.float("test.float64"), 3.141592653589793)
        XCTAssertNil(m.float("test.uint8"), "integers are not floats")
        XCTAssertNil(m.int("test.string"))
        XCTAssertEqual(m.bool("test.bool.true"), true)
        XCTAssertEqual(m.strings("test.array.string"), ["<s>", "", "▁the"])
        XCTAssertNil(m.strings("test.array.int32"))
        XCTAssertEqual(m.array("test.array.float32"), [.float32(0.5), .float32(-0.25)])
        XCTAssertEqual(m.array("test.array.empty"), [])
    }

    func testRewritingAFileReadBackIsByteIdentical() throws {
        let (writer, _) = try GGUFSamples.writer()
        let first = dir.file("first.gguf"), second = dir.file("second.gguf")
        try writer.write(to: first)
        let file = try GGUFFile(path: first)
        var copy = GGUFWriter(metadata: file.metadata)
        for t in file.tensors { try copy.addTensor(name: t.name, type: t.type, dims: t.dims, bytes: Array(t.bytes)) }
        try copy.write(to: second)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: first)), try Data(contentsOf: URL(fileURLWithPath: second)))
    }

    func testLayoutMatchesHandAssembledFile() throws {
        // One string key and two F32 tensors; the first (5 floats = 20 bytes) is padded to 32.
        var raw = RawGGUF()
        raw.header(tensors: 2, metadata: 1)
        raw.stringKV("general.architecture", "llama")
        raw.tensorInfo("a", dims: [5], type: 0, offset: 0)
        raw.tensorInfo("b", dims: [4, 2], type: 0, offset: 32)
        raw.pad(to: 32)
        let a = GGUFSamples.bytes(20, seed: 7), b = GGUFSamples.bytes(32, seed: 8)
        raw.bytes += a
        raw.pad(to: 32)
        raw.bytes += b
        raw.pad(to: 32)

        var writer = GGUFWriter(metadata: GGUFMetadata([("general.architecture", .string("llama"))]))
        try writer.addTensor(name: "a", type: .f32, dims: [5], bytes: a)
        try writer.addTensor(name: "b", type: .f32, dims: [4, 2]) { buffer in
            buffer.copyBytes(from: b)
        }
        let path = dir.file("layout.gguf")
        try writer.write(to: path)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), raw.bytes)
    }

    func testCustomAlignment() throws {
        var m = GGUFMetadata()
        m["general.alignment"] = .uint32(64)
        var writer = GGUFWriter(metadata: m)
        try writer.addTensor(name: "x", type: .f32, dims: [3], bytes: GGUFSamples.bytes(12, seed: 1))
        try writer.addTensor(name: "y", type: .q8_0, dims: [32], bytes: GGUFSamples.bytes(34, seed: 2))
        let path = dir.file("align64.gguf")
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.dataOffset % 64, 0)
        XCTAssertEqual(file.tensors.map { $0.fileOffset - file.dataOffset }, [0, 64])
        XCTAssertEqual(Array(file.tensors[1].bytes), GGUFSamples.bytes(34, seed: 2))
    }

    func testFloat32Convenience() throws {
        var writer = GGUFWriter()
        try writer.addTensor(name: "norm", dims: [3], float32: [1, -2.5, 0.125])
        assertGGUFError("(writer): tensor bad: 8 bytes given, but F32 with dims [3] takes 12") {
            try writer.addTensor(name: "bad", dims: [3], float32: [1, 2])
        }
        let path = dir.file("floats.gguf")
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        let t = try file.requireTensor("norm")
        XCTAssertEqual(Array(UnsafeBufferPointer(start: t.data.assumingMemoryBound(to: Float.self), count: 3)), [1, -2.5, 0.125])
        XCTAssertEqual(Array(t.bytes.prefix(4)), [0x00, 0x00, 0x80, 0x3F], "1.0 little-endian")
    }

    func testVersion2IsRead() throws {
        var raw = RawGGUF()
        raw.header(version: 2, tensors: 1, metadata: 1)
        raw.stringKV("general.architecture", "llama")
        raw.tensorInfo("w", dims: [8], type: 0, offset: 0)
        raw.pad(to: 32)
        raw.data(32)
        let file = try openRawGGUF(raw.bytes, "v2.gguf", in: dir)
        XCTAssertEqual(file.version, 2)
        XCTAssertEqual(file.tensors.first?.byteCount, 32)
    }

    func testWriterRefusesBadInputAndLeavesNothingBehind() throws {
        var writer = GGUFWriter()
        assertGGUFError("(writer): tensor w: 10 bytes given, but F32 with dims [4] takes 16") {
            try writer.addTensor(name: "w", type: .f32, dims: [4], bytes: [UInt8](repeating: 0, count: 10))
        }
        assertGGUFError("(writer): tensor q has type Q4_0 but its row length 48 is not a multiple of 32") {
            try writer.addTensor(name: "q", type: .q4_0, dims: [48], bytes: [])
        }
        assertGGUFError("(writer): tensor k has type IQ2_XXS (16), which Headroom does not support; supported: F32, F16, Q4_0, Q8_0, BF16, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K") {
            try writer.addTensor(name: "k", type: .iq2_XXS, dims: [256], bytes: [])
        }
        assertGGUFError("(writer): tensor k has type Q6_K but its row length 128 is not a multiple of 256") {
            try writer.addTensor(name: "k", type: .q6_K, dims: [128], bytes: [])
        }
        assertGGUFError("(writer): tensor w: dims [4, 0] must be 1 to 4 sizes, each at least 1") {
            try writer.addTensor(name: "w", type: .f32, dims: [4, 0], bytes: [])
        }
        try writer.addTensor(name: "ok", type: .f32, dims: [1], bytes: [0, 0, 128, 63])
        assertGGUFError("(writer): tensor ok added twice") {
            try writer.addTensor(name: "ok", type: .f32, dims: [1], bytes: [0, 0, 128, 63])
        }

        // A mixed array is refused when writing; a fill that throws leaves no file and no temporary.
        let path = dir.file("never.gguf")
        var mixed = GGUFWriter()
        mixed.metadata["bad"] = .array(.int32, [.int32(1), .float32(2)])
        assertGGUFError("\(path): metadata bad[1] is a float32 in an array of int32") { try mixed.write(to: path) }

        struct Boom: Error {}
        var failing = GGUFWriter()
        try failing.addTensor(name: "w", type: .f32, dims: [4]) { _ in throw Boom() }
        XCTAssertThrowsError(try failing.write(to: path)) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])

        // An existing file survives a failed overwrite untouched.
        try writer.write(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try failing.write(to: path))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["never.gguf"])
    }
}
