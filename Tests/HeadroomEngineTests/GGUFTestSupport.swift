// Helpers for the GGUF tests: a scratch directory, a hand-assembler for raw GGUF bytes that does
// not share code with the writer (so the writer's layout is checked against an independent one),
// and a small valid file with every metadata value type and every supported tensor type.
import Foundation
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

/// A directory under the system temporary directory, removed by `remove()`.
struct GGUFScratchDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "headroom-gguf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Appends GGUF fields by hand, little-endian, recording nothing but bytes.
struct RawGGUF {
    var bytes: [UInt8] = []
    var count: Int { bytes.count }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, metadata: UInt64, magic: String = "GGUF") {
        bytes.append(contentsOf: magic.utf8)
        u32(version)
        u64(tensors)
        u64(metadata)
    }
    mutating func stringKV(_ key: String, _ value: String) { string(key); u32(8); string(value) }
    mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        string(name)
        u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type)
        u64(offset)
    }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
    mutating func data(_ n: Int, seed: UInt64 = 1) {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<n { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
    }
}

enum GGUFSamples {
    /// Deterministic pseudo-random bytes.
    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// Metadata using every value type, including arrays of each, a nested array and an empty one.
    static var everyValueType: GGUFMetadata {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("llama")
        m["test.uint8"] = .uint8(200)
        m["test.int8"] = .int8(-100)
        m["test.uint16"] = .uint16(60000)
        m["test.int16"] = .int16(-30000)
        m["test.uint32"] = .uint32(4_000_000_000)
        m["test.int32"] = .int32(-2_000_000_000)
        m["test.uint64"] = .uint64(UInt64.max - 1)
        m["test.int64"] = .int64(Int64.min + 1)
        m["test.float32"] = .float32(-1.5e-7)
        m["test.float64"] = .float64(3.141592653589793)
        m["test.bool.true"] = .bool(true)
        m["test.bool.false"] = .bool(false)
        m["test.string"] = .string("héllo, wörld ✓")
        m["test.string.empty"] = .string("")
        m["test.array.uint8"] = .array(.uint8, [.uint8(1), .uint8(255)])
        m["test.array.int8"] = .array(.int8, [.int8(-1), .int8(127)])
        m["test.array.uint16"] = .array(.uint16, [.uint16(7)])
        m["test.array.int16"] = .array(.int16, [.int16(-7), .int16(7)])
        m["test.array.uint32"] = .array(.uint32, [.uint32(1), .uint32(2), .uint32(3)])
        m["test.array.int32"] = .array(.int32, [.int32(-3)])
        m["test.array.uint64"] = .array(.uint64, [.uint64(1 << 40)])
        m["test.array.int64"] = .array(.int64, [.int64(-(1 << 40))])
        m["test.array.float32"] = .array(.float32, [.float32(0.5), .float32(-0.25)])
        m["test.array.float64"] = .array(.float64, [.float64(1e300)])
        m["test.array.bool"] = .array(.bool, [.bool(true), .bool(false)])
        m["test.array.string"] = .array(.string, [.string("<s>"), .string(""), .string("▁the")])
        m["test.array.nested"] = .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.string, [.string("x")])])
        m["test.array.empty"] = .array(.float32, [])
        return m
    }

    /// One tensor of each supported type (and an odd-sized one that needs padding after it).
    static let tensorSpecs: [(name: String, type: GGMLType, dims: [Int])] = [
        ("t.f32", .f32, [8, 3]),
        ("t.norm", .f32, [7]),
        ("t.f16", .f16, [16, 2]),
        ("t.q4_0", .q4_0, [64, 3]),
        ("t.q8_0", .q8_0, [32, 2, 2]),
        ("t.4d", .f16, [2, 3, 4, 5]),
    ]

    /// A writer holding `everyValueType` and one tensor of each spec, filled with seeded bytes.
    static func writer() throws -> (GGUFWriter, [String: [UInt8]]) {
        var writer = GGUFWriter(metadata: everyValueType)
        var data: [String: [UInt8]] = [:]
        for (i, spec) in tensorSpecs.enumerated() {
            let n = spec.type.byteCount(dims: spec.dims)!
            let bytes = self.bytes(n, seed: UInt64(i + 1))
            data[spec.name] = bytes
            try writer.addTensor(name: spec.name, type: spec.type, dims: spec.dims, bytes: bytes)
        }
        return (writer, data)
    }

    /// The bytes of the sample file, written through the writer into `directory`.
    static func fileBytes(in directory: GGUFScratchDirectory) throws -> [UInt8] {
        let path = directory.file("sample.gguf")
        try writer().0.write(to: path)
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// Asserts that `body` throws a `GGUFError` whose full message is `message`.
func assertGGUFError(_ message: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected the error \"\(message)\", but nothing was thrown", file: file, line: line)
    } catch let error as GGUFError {
        XCTAssertEqual(error.description, message, file: file, line: line)
    } catch {
        XCTFail("expected a GGUFError, got \(error)", file: file, line: line)
    }
}

/// Writes `bytes` to `name` in `directory` and opens it as a GGUF file.
@discardableResult
func openRawGGUF(_ bytes: [UInt8], _ name: String, in directory: GGUFScratchDirectory) throws -> GGUFFile {
    let path = directory.file(name)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return try GGUFFile(path: path)
}
