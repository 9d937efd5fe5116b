// Reads a GGUF file written by an independent implementation (the `gguf` Python package that
// ships with llama.cpp, version 0.19.0), embedded here as base64, so the reader is checked against
// someone else's writer and not only against our own. The expected tensor hashes were computed
// by that package's reader from the same bytes.
import Foundation
import XCTest
@testable import HeadroomEngine

final class GGUFInteropTests: XCTestCase {
    /// Written by gguf-py's GGUFWriter: every scalar value type, three arrays, and one tensor each of
    /// F32 (numpy (3, 8)), F16 ((2, 16)), Q8_0 (2 rows of 32) and Q4_0 (3 rows of 64), random contents.
    static let fileBase64 = """
        R0dVRgMAAAAEAAAAAAAAABAAAAAAAAAAFAAAAAAAAABnZW5lcmFsLmFyY2hpdGVjdHVyZQgAAAAFAAAAAAAAAGxsYW1hBAAAAAAA
        AAB0LnU4AAAAAMgEAAAAAAAAAHQuaTgBAAAAnAUAAAAAAAAAdC51MTYCAAAAYOoFAAAAAAAAAHQuaTE2AwAAANCKBQAAAAAAAAB0
        LnUzMgQAAAAAKGvuBQAAAAAAAAB0LmkzMgUAAAAAbMqIBQAAAAAAAAB0LnU2NAoAAAD+/////////wUAAAAAAAAAdC5pNjQLAAAA
        AQAAAAAAAIAFAAAAAAAAAHQuZjMyBgAAALAPIbQFAAAAAAAAAHQuZjY0DAAAABgtRFT7IQlAAwAAAAAAAAB0LmIHAAAAAQMAAAAA
        AAAAdC5zCAAAAAoAAAAAAAAAaMOpbGxvIOKckwQAAAAAAAAAdC5hcwkAAAAIAAAAAwAAAAAAAAADAAAAAAAAADxzPgAAAAAAAAAA
        BgAAAAAAAADiloF0aGUEAAAAAAAAAHQuYWkJAAAABQAAAAMAAAAAAAAAAQAAAAIAAAADAAAABAAAAAAAAAB0LmFmCQAAAAYAAAAC
        AAAAAAAAAAAAAD8AAIC+BQAAAAAAAAB4LmYzMgIAAAAIAAAAAAAAAAMAAAAAAAAAAAAAAAAAAAAAAAAABQAAAAAAAAB4LmYxNgIA
        AAAQAAAAAAAAAAIAAAAAAAAAAQAAAGAAAAAAAAAABAAAAAAAAAB4LnE4AgAAACAAAAAAAAAAAgAAAAAAAAAIAAAAoAAAAAAAAAAE
        AAAAAAAAAHgucTQCAAAAQAAAAAAAAAADAAAAAAAAAAIAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAafCw
        PpFVUj8ML6k+282mv2fFZz81i+Q+xHUJvyjEFD88qbo+iZiWPsPV6Dxi9Qs/QYg8v97RJr5Y2Pa+/E0ZP6azIj3kvJW+JytIv7Su
        g77IZgU80xuNvuKjpT9Y3IA/bMGOv5ixwbbWMvQyPEBzvAu2FkAsOU45HbiYvlwx+i7pvHe5nKyPu0quHC6OKA24wDghOyI1jLra
        OQO4CTtKvDea6apAE33cjg0L1zK8ZOCLs39PSxPPeI4pD54CCShGLjJg6yPF0AGQYJbW8PZNpVwZ3EA6+0u4jMO7aTrd59Uc0oz/
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADElKUgRF1R4rYkYN8NgSrGoOKujm6402NMSGM7bvxf6YiKz9lVkGOWXy4gmcBDO
        CmVFcnuwcVJYRxkM5cqFA8zaLDdsOiBXk22b6ZZcnhDkYgVFBtqEXn3+3WesMS37c0tkSevhiVbzJdOq0wAAAAAAAAAAAAAAAAAA
        AAAAAAAA
        """

    /// FNV-1a, 64-bit: a checksum both sides can compute without a crypto library.
    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    func testReadsAFileWrittenByGGUFPy() throws {
        let dir = try GGUFScratchDirectory()
        defer { dir.remove() }
        let bytes = try XCTUnwrap(Data(base64Encoded: Self.fileBase64, options: .ignoreUnknownCharacters))
        XCTAssertEqual(bytes.count, 1056)
        let file = try openRawGGUF(Array(bytes), "from-python.gguf", in: dir)
        let m = file.metadata
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(m.architecture, "llama")
        XCTAssertEqual(m["t.u8"], .uint8(200))
        XCTAssertEqual(m["t.i8"], .int8(-100))
        XCTAssertEqual(m["t.u16"], .uint16(60000))
        XCTAssertEqual(m["t.i16"], .int16(-30000))
        XCTAssertEqual(m["t.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(m["t.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(m["t.u64"], .uint64(UInt64.max - 1))
        XCTAssertEqual(m["t.i64"], .int64(Int64.min + 1))
        XCTAssertEqual(m["t.f32"], .float32(-1.5e-7))
        XCTAssertEqual(m["t.f64"], .float64(3.141592653589793))
        XCTAssertEqual(m["t.b"], .bool(true))
        XCTAssertEqual(m["t.s"], .string("héllo ✓"))
        XCTAssertEqual(m.strings("t.as"), ["<s>", "", "▁the"])
        XCTAssertEqual(m.array("t.ai")?.compactMap(\.intValue), [1, 2, 3])
        XCTAssertEqual(m.array("t.af")?.compactMap(\.floatValue), [0.5, -0.25])

        let expected: [(String, GGMLType, [Int], Int, UInt64)] = [
            ("x.f32", .f32, [8, 3], 96, 0x24a1_46ff_e5dd_76d6),
            ("x.f16", .f16, [16, 2], 64, 0xc0e6_a279_f761_2ecc),
            ("x.q8", .q8_0, [32, 2], 68, 0xf678_c8ab_d1f7_054a),
            ("x.q4", .q4_0, [64, 3], 108, 0xcac4_7fab_11d4_f054),
        ]
        XCTAssertEqual(file.tensors.map(\.name), expected.map(\.0))
        for (name, type, dims, byteCount, hash) in expected {
            let t = try file.requireTensor(name)
            XCTAssertEqual(t.type, type, name)
            XCTAssertEqual(t.dims, dims, name)
            XCTAssertEqual(t.byteCount, byteCount, name)
            XCTAssertEqual(Self.fnv1a(t.bytes), hash, name)
        }
        // gguf-py's reader printed the first F32 values as 0.34558418 0.82161814 0.33043706.
        let f32 = try file.requireTensor("x.f32").data.assumingMemoryBound(to: Float.self)
        XCTAssertEqual(f32[0], 0.34558418, accuracy: 1e-7)
        XCTAssertEqual(f32[1], 0.82161814, accuracy: 1e-7)
        XCTAssertEqual(f32[2], 0.33043706, accuracy: 1e-7)
    }
}
