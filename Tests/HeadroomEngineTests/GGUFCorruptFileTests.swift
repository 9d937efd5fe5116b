// Bad GGUF files: truncated at every point, wrong magic and version, unknown and unsupported types,
// misaligned or out-of-file tensors, absurd lengths — each refused with its exact message. Parsing
// runs against bytes that end at a PROT_NONE guard page, so any read past the end crashes the test.
import Foundation
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

/// Bytes placed so the last one sits just before an inaccessible page.
final class GGUFGuardedBuffer {
    private let base: UnsafeMutableRawPointer
    private let mappedBytes: Int
    private let usable: Int

    init(capacity: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        usable = (capacity + page - 1) / page * page
        mappedBytes = usable + page
        base = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        precondition(base != UnsafeMutableRawPointer(bitPattern: -1), "mmap failed")
        precondition(mprotect(base + usable, page, PROT_NONE) == 0, "mprotect failed")
    }

    deinit { munmap(base, mappedBytes) }

    /// Parses `bytes` (a prefix of length `count` when given) as a GGUF file laid against the guard page.
    func parse(_ bytes: [UInt8], count: Int? = nil, path: String = "guarded.gguf") throws -> GGUFLayout {
        let n = count ?? bytes.count
        precondition(n <= usable)
        let start = base + (usable - n)
        bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: n) }
        return try GGUFParser.parse(base: n == 0 ? nil : UnsafeRawPointer(start), size: n, path: path)
    }
}

final class GGUFCorruptFileTests: XCTestCase {
    var dir: GGUFScratchDirectory!
    override func setUpWithError() throws { dir = try GGUFScratchDirectory() }
    override func tearDown() { dir.remove() }

    /// A small valid file whose byte positions the tests below name:
    /// header 0..24; general.architecture 24..69; general.name: key length 69..77, key 77..89,
    /// type 89..93, value length 93..101, value 101..128; tensor w: name length 128..136, name 136..137,
    /// n_dims 137..141, dim 141..149, type 149..153, offset 153..161; padding to 192; data 192..224.
    func base(magic: String = "GGUF", version: UInt32 = 3, name: String = "w", dims: [UInt64] = [8], type: UInt32 = 0,
              offset: UInt64 = 0, data: Int = 32) -> [UInt8] {
        var raw = RawGGUF()
        raw.header(version: version, tensors: 1, metadata: 2, magic: magic)
        raw.stringKV("general.architecture", "llama")
        raw.stringKV("general.name", "a file for truncation tests")
        raw.tensorInfo(name, dims: dims, type: type, offset: offset)
        raw.pad(to: 32)
        raw.data(data)
        return raw.bytes
    }

    func path(_ name: String) -> String { dir.file(name) }

    func testBaseFileIsValid() throws {
        let bytes = base()
        XCTAssertEqual(bytes.count, 224)
        let file = try openRawGGUF(bytes, "base.gguf", in: dir)
        XCTAssertEqual(file.metadata.string("general.name"), "a file for truncation tests")
        XCTAssertEqual(file.tensors.first?.fileOffset, 192)
    }

    func testTruncatedAtNamedPointsIsRefusedWithItsMessage() throws {
        let bytes = base()
        let cases: [(Int, String)] = [
            (0, "truncated: header (magic) needs bytes 0..4 but the file has 0"),
            (2, "truncated: header (magic) needs bytes 0..4 but the file has 2"),
            (10, "truncated: header (tensor count) needs bytes 8..16 but the file has 10"),
            (20, "truncated: header (metadata count) needs bytes 16..24 but the file has 20"),
            (60, "truncated or corrupt: the header claims 1 tensor(s) and 2 metadata entries, more than a file of 60 bytes can hold"),
            (91, "truncated: type of metadata general.name needs bytes 89..93 but the file has 91"),
            (110, "string metadata general.name at byte 93 has length 27, which runs past the end of the file (110 bytes)"),
            (145, "truncated: tensor w (dimension 0) needs bytes 141..149 but the file has 145"),
            (160, "truncated: tensor w (offset) needs bytes 153..161 but the file has 160"),
            (170, "truncated: tensor w needs bytes 192..224 but the file has 170"),
            (200, "truncated: tensor w needs bytes 192..224 but the file has 200"),
            (223, "truncated: tensor w needs bytes 192..224 but the file has 223"),
        ]
        for (cut, message) in cases {
            let name = "cut-\(cut).gguf"
            assertGGUFError("\(path(name)): \(message)") { try openRawGGUF(Array(bytes[0..<cut]), name, in: dir) }
        }
    }

    func testTruncatedAtEveryByteIsRefused() throws {
        let bytes = try GGUFSamples.fileBytes(in: dir)
        let guarded = GGUFGuardedBuffer(capacity: bytes.count)
        let full = try guarded.parse(bytes)
        // The zero padding after the last tensor is not needed to load it (llama.cpp does not need it
        // either), so cuts inside it are fine; every cut before the end of the last tensor's data is not.
        let dataEnd = full.tensors.map { full.dataOffset + Int($0.offset) + $0.byteCount }.max()!
        XCTAssertLessThan(dataEnd, bytes.count, "the sample should end in padding, to cover that case")
        XCTAssertNoThrow(try guarded.parse(bytes, count: dataEnd))
        for cut in 0..<dataEnd {
            do {
                _ = try guarded.parse(bytes, count: cut)
                XCTFail("a file cut at \(cut) of \(bytes.count) bytes was accepted")
            } catch let error as GGUFError {
                switch error.problem {
                case .truncated, .lengthPastEnd, .implausibleCounts, .tensorPastEnd: break
                default: XCTFail("cut at \(cut): unexpected \(error)")
                }
            }
        }
    }

    func testWrongMagic() {
        assertGGUFError("\(path("magic.gguf")): not a GGUF file: it starts with bytes 47 47 4d 4c, expected \"GGUF\" (47 47 55 46)") {
            try openRawGGUF(base(magic: "GGML"), "magic.gguf", in: dir)
        }
    }

    func testUnsupportedVersions() {
        assertGGUFError("\(path("v4.gguf")): GGUF version 4 is not supported; Headroom reads versions 2 and 3") {
            try openRawGGUF(base(version: 4), "v4.gguf", in: dir)
        }
        assertGGUFError("\(path("v1.gguf")): GGUF version 1 is not supported; Headroom reads versions 2 and 3") {
            try openRawGGUF(base(version: 1), "v1.gguf", in: dir)
        }
        assertGGUFError("\(path("be.gguf")): GGUF version 50331648 is not supported; Headroom reads versions 2 and 3 "
                        + "(it looks like a big-endian GGUF file, which Headroom does not read)") {
            try openRawGGUF(base(version: UInt32(3).byteSwapped), "be.gguf", in: dir)
        }
    }

    func testUnknownAndUnsupportedTensorTypes() {
        assertGGUFError("\(path("t99.gguf")): tensor w has unknown ggml type 99") {
            try openRawGGUF(base(type: 99), "t99.gguf", in: dir)
        }
        assertGGUFError("\(path("t4.gguf")): tensor w has unknown ggml type 4") {
            try openRawGGUF(base(type: 4), "t4.gguf", in: dir)
        }
        assertGGUFError("\(path("iq2.gguf")): tensor blk.0.attn_q.weight has type IQ2_XXS (16), which Headroom does not support; "
                        + "supported: F32, F16, Q4_0, Q8_0, BF16, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K") {
            try openRawGGUF(base(name: "blk.0.attn_q.weight", dims: [256], type: 16), "iq2.gguf", in: dir)
        }
        assertGGUFError("\(path("q8k.gguf")): tensor w has type Q8_K (15), which Headroom does not support; supported: F32, F16, Q4_0, Q8_0, BF16, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K") {
            try openRawGGUF(base(type: 15), "q8k.gguf", in: dir)
        }
        // K-quant rows are whole 256-element super-blocks.
        assertGGUFError("\(path("q4k.gguf")): tensor w has type Q4_K but its row length 32 is not a multiple of 256") {
            try openRawGGUF(base(dims: [32], type: 12), "q4k.gguf", in: dir)
        }
        assertGGUFError("\(path("rows.gguf")): tensor w has type Q8_0 but its row length 48 is not a multiple of 32") {
            try openRawGGUF(base(dims: [48], type: 8), "rows.gguf", in: dir)
        }
    }

    func testMisalignedOffsetAndDataPastEnd() {
        assertGGUFError("\(path("misaligned.gguf")): tensor w has offset 16, which is not a multiple of the alignment 32") {
            try openRawGGUF(base(offset: 16), "misaligned.gguf", in: dir)
        }
        assertGGUFError("\(path("past.gguf")): truncated: tensor w needs bytes 256..288 but the file has 224") {
            try openRawGGUF(base(offset: 64), "past.gguf", in: dir)
        }
        assertGGUFError("\(path("huge-offset.gguf")): truncated: tensor w needs bytes 9223372036854775808..9223372036854775840 but the file has 224") {
            try openRawGGUF(base(offset: (1 << 63) - 192), "huge-offset.gguf", in: dir)
        }
        // Q8_0 [64, 4]: 2 blocks × 4 rows × 34 bytes = 272 bytes, but only 32 are there.
        assertGGUFError("\(path("bigger.gguf")): truncated: tensor w needs bytes 192..464 but the file has 224") {
            try openRawGGUF(base(dims: [64, 4], type: 8), "bigger.gguf", in: dir)
        }
    }

    func testBadDimensions() {
        assertGGUFError("\(path("dims5.gguf")): tensor w has 5 dimensions, expected 1 to 4") {
            try openRawGGUF(base(dims: [8, 1, 1, 1, 1]), "dims5.gguf", in: dir)
        }
        assertGGUFError("\(path("dims0.gguf")): tensor w has 0 dimensions, expected 1 to 4") {
            try openRawGGUF(base(dims: []), "dims0.gguf", in: dir)
        }
        assertGGUFError("\(path("zero.gguf")): tensor w has dimension 1 of size 0, expected 1 to 1099511627776") {
            try openRawGGUF(base(dims: [8, 0]), "zero.gguf", in: dir)
        }
        assertGGUFError("\(path("overflow.gguf")): tensor w is too large: its byte size overflows") {
            try openRawGGUF(base(dims: [1 << 40, 1 << 40]), "overflow.gguf", in: dir)
        }
    }

    func testAbsurdLengthsAndCounts() {
        var raw = RawGGUF()
        raw.header(tensors: 0, metadata: 1)
        raw.u64(1 << 60)
        raw.data(64)
        assertGGUFError("\(path("strlen.gguf")): string metadata key #0 at byte 24 has length 1152921504606846976, "
                        + "which runs past the end of the file (96 bytes)") {
            try openRawGGUF(raw.bytes, "strlen.gguf", in: dir)
        }

        raw = RawGGUF()
        raw.header(tensors: 0, metadata: 1)
        raw.string("tokens")
        raw.u32(9)  // array
        raw.u32(8)  // of strings
        raw.u64(1 << 60)
        raw.data(64)
        assertGGUFError("\(path("arrlen.gguf")): array metadata tokens at byte 46 has length 1152921504606846976, "
                        + "which runs past the end of the file (118 bytes)") {
            try openRawGGUF(raw.bytes, "arrlen.gguf", in: dir)
        }

        raw = RawGGUF()
        raw.header(tensors: 1 << 62, metadata: 1 << 62)
        raw.data(100)
        assertGGUFError("\(path("counts.gguf")): truncated or corrupt: the header claims 4611686018427387904 tensor(s) and "
                        + "4611686018427387904 metadata entries, more than a file of 124 bytes can hold") {
            try openRawGGUF(raw.bytes, "counts.gguf", in: dir)
        }
    }

    func testBadMetadataValues() {
        func oneKV(_ name: String, _ body: (inout RawGGUF) -> Void) throws -> GGUFFile {
            var raw = RawGGUF()
            raw.header(tensors: 0, metadata: 1)
            body(&raw)
            raw.data(16)
            return try openRawGGUF(raw.bytes, name, in: dir)
        }
        assertGGUFError("\(path("vt.gguf")): metadata general.name has unknown value type 13 (GGUF defines 0...12)") {
            _ = try oneKV("vt.gguf") { $0.string("general.name"); $0.u32(13) }
        }
        assertGGUFError("\(path("bool.gguf")): metadata flag is a bool stored as 2, expected 0 or 1") {
            _ = try oneKV("bool.gguf") { $0.string("flag"); $0.u32(7); $0.u8(2) }
        }
        assertGGUFError("\(path("utf8.gguf")): metadata key #0 at byte 32 is not valid UTF-8") {
            _ = try oneKV("utf8.gguf") { $0.u64(2); $0.u8(0xC3); $0.u8(0x28); $0.u32(0); $0.u8(1) }
        }
        assertGGUFError("\(path("align.gguf")): general.alignment is 48, expected a power of two between 1 and 1048576") {
            _ = try oneKV("align.gguf") { $0.string("general.alignment"); $0.u32(4); $0.u32(48) }
        }
        assertGGUFError("\(path("align-type.gguf")): metadata general.alignment is a uint64, expected uint32") {
            _ = try oneKV("align-type.gguf") { $0.string("general.alignment"); $0.u32(10); $0.u64(32) }
        }
        assertGGUFError("\(path("deep.gguf")): metadata deep: arrays nested more than 4 deep") {
            _ = try oneKV("deep.gguf") { raw in
                raw.string("deep")
                raw.u32(9)
                for _ in 0..<5 { raw.u32(9); raw.u64(1) }
                raw.u32(0); raw.u64(0)
            }
        }

        var raw = RawGGUF()
        raw.header(tensors: 0, metadata: 2)
        raw.stringKV("general.name", "a")
        raw.stringKV("general.name", "b")
        raw.data(16)
        assertGGUFError("\(path("dupkey.gguf")): metadata key general.name appears more than once") {
            try openRawGGUF(raw.bytes, "dupkey.gguf", in: dir)
        }

        raw = RawGGUF()
        raw.header(tensors: 2, metadata: 0)
        raw.tensorInfo("w", dims: [8], type: 0, offset: 0)
        raw.tensorInfo("w", dims: [8], type: 0, offset: 32)
        raw.pad(to: 32)
        raw.data(64)
        assertGGUFError("\(path("duptensor.gguf")): tensor w appears more than once") {
            try openRawGGUF(raw.bytes, "duptensor.gguf", in: dir)
        }
    }

    func testFileSystemProblems() {
        let missing = path("absent.gguf")
        assertGGUFError("\(missing): open failed: No such file or directory") { _ = try GGUFFile(path: missing) }
        assertGGUFError("\(dir.path): not a regular file") { _ = try GGUFFile(path: dir.path) }
    }

    /// Random corruption of a valid file must load or throw a GGUFError, never crash or read out of
    /// bounds (the guard page turns an overread into a crash). Loaded files have every tensor inside.
    func testRandomByteFlipsLoadOrThrowNeverCrash() throws {
        let original = try GGUFSamples.fileBytes(in: dir)
        let guarded = GGUFGuardedBuffer(capacity: original.count)
        var rng = SplitMix64(seed: 0x6767_7566)
        let interesting: [UInt64] = [0, 1, 4, 9, 13, 0xFF, 0xFFFF_FFFF, 1 << 32, 1 << 60, UInt64.max, UInt64.max / 2]
        var loaded = 0, refused = 0
        for iteration in 0..<400 {
            var bytes = original
            let mutations = 1 + Int(rng.next() % 4)
            for _ in 0..<mutations {
                let at = Int(rng.next() % UInt64(bytes.count))
                if rng.next() % 3 == 0, at + 8 <= bytes.count {
                    let v = interesting[Int(rng.next() % UInt64(interesting.count))]
                    withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { bytes[at + i] = b } }
                } else {
                    bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            do {
                let layout = try guarded.parse(bytes)
                for t in layout.tensors {
                    XCTAssertLessThanOrEqual(layout.dataOffset + Int(t.offset) + t.byteCount, bytes.count)
                }
                loaded += 1
            } catch is GGUFError {
                refused += 1
            }
            // Every so often, the same bytes through the real mmap path, touching every tensor byte.
            if iteration % 25 == 0 {
                let name = "fuzz-\(iteration).gguf"
                if let file = try? openRawGGUF(bytes, name, in: dir) {
                    var sum = 0
                    for t in file.tensors { for b in t.bytes { sum &+= Int(b) } }
                    XCTAssertGreaterThanOrEqual(sum, 0)
                }
            }
        }
        XCTAssertEqual(loaded + refused, 400)
        XCTAssertGreaterThan(loaded, 0, "flips in tensor data leave a valid file")
        XCTAssertGreaterThan(refused, 0, "flips in the header and metadata must be caught")
    }
}
