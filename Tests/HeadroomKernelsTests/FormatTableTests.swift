// The table of formats against ggml's definitions, every format's dequantization against gguf-py's
// (bit for bit, on random blocks: Fixtures/dequant-*.bin, written by scripts/gguf-dequant-fixtures.py), and
// every dot-product kernel on every instruction-set path against the naive reference on those random blocks.
import CKernels
import Foundation
import XCTest
@testable import HeadroomKernels

/// One fixture: random blocks of a format and gguf-py's dequantization of them.
private struct DequantFixture {
    let type: QuantType
    let blocks: [UInt8]
    let values: [Float]

    init(_ name: String) throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "dequant-\(name)", withExtension: "bin", subdirectory: "Fixtures"),
                                "no fixture for \(name)")
        let data = try Data(contentsOf: url)
        func u32(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 | Int(data[at + 2]) << 16 | Int(data[at + 3]) << 24 }
        XCTAssertEqual(String(decoding: data.prefix(4), as: UTF8.self), "HRQF")
        type = try XCTUnwrap(QuantType(rawValue: Int32(u32(4))))
        let n = u32(8), block = u32(12), bytes = u32(16)
        XCTAssertEqual(block, type.blockSize, "\(name): block size")
        XCTAssertEqual(bytes, type.blockBytes, "\(name): bytes per block")
        XCTAssertEqual(data.count, 20 + n * bytes + 4 * n * block, "\(name): file size")
        blocks = Array(data[20..<20 + n * bytes])
        values = (0..<n * block).map { i in Float(bitPattern: UInt32(u32(20 + n * bytes + 4 * i))) }
    }

    var elements: Int { values.count }

    /// The blocks as a matrix of `rows` rows (it owns a copy of the bytes).
    func matrix(rows: Int) -> WeightMatrix {
        let storage = RawBuffer(bytes: blocks.count)
        blocks.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: blocks.count) }
        return WeightMatrix(type: type, rows: rows, cols: elements / rows, data: UnsafeRawPointer(storage.pointer), owner: storage)
    }
}

private func levels() -> [Int32] { Array(0...hr_set_isa_limit(-1)) }

final class FormatTableTests: XCTestCase {
    override func tearDown() { hr_set_isa_limit(-1) }

    func testTableSizesAreGGMLs() {
        // From ggml's block structs (ggml-common.h): elements per block, bytes per block, ggml type id.
        let ggml: [(String, Int32, Int, Int)] = [
            ("f32", 0, 1, 4), ("f16", 1, 1, 2), ("q4_0", 2, 32, 18), ("q8_0", 8, 32, 34), ("bf16", 30, 1, 2),
            ("q4_1", 3, 32, 20), ("q5_0", 6, 32, 22), ("q5_1", 7, 32, 24),
            ("q2_k", 10, 256, 84), ("q3_k", 11, 256, 110), ("q4_k", 12, 256, 144), ("q5_k", 13, 256, 176), ("q6_k", 14, 256, 210),
        ]
        XCTAssertEqual(QuantType.allCases.map(\.description), ggml.map(\.0), "the table's formats, in its order")
        for (name, id, block, bytes) in ggml {
            guard let t = QuantType(name: name) else { XCTFail("\(name) not in the table"); continue }
            XCTAssertEqual(t.rawValue, id, name)
            XCTAssertEqual(QuantType(rawValue: id), t, name)
            XCTAssertEqual(t.blockSize, block, name)
            XCTAssertEqual(t.blockBytes, bytes, name)
            XCTAssertEqual(t.rowBytes(4 * 256), 4 * 256 / block * bytes, name)
            XCTAssertEqual(t.bytesPerWeight, Double(bytes) / Double(block), name)
        }
        // The named constants are the table's entries.
        let named: [QuantType] = [.f32, .f16, .q4_0, .q8_0, .bf16, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
        XCTAssertEqual(named, QuantType.allCases)
        XCTAssertNil(QuantType(rawValue: 15), "Q8_K is an activation format, not a weight format of the table")
        XCTAssertNil(QuantType(name: "q4_k_m"))
        XCTAssertEqual(QuantType(name: "Q6_K"), .q6_K)
        XCTAssertEqual(hr_row_bytes(15, 256), 0)
        // Decode's kernels: integer dot products where the format has them, and which activations they read.
        XCTAssertEqual(QuantType.allCases.filter(\.hasDotKernel), QuantType.allCases)
        XCTAssertEqual(QuantType.allCases.filter { $0.activations == .q8_K }, [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
        XCTAssertEqual(QuantType.allCases.filter { $0.activations == .q8_0 }, [.q4_0, .q8_0, .q4_1, .q5_0, .q5_1])
        // llama.cpp's general.file_type for a file of one type throughout.
        XCTAssertEqual(QuantType.allCases.map(\.llamaFileType), [0, 1, 2, 7, 32, 3, 8, 9, 10, 11, 14, 16, 18])
    }

    func testDequantizeEqualsGGUFPyBitForBit() throws {
        for type in QuantType.allCases where type != .f32 {
            let f = try DequantFixture(type.description)
            XCTAssertEqual(f.type, type)
            let w = f.matrix(rows: 1)
            for level in levels() {
                hr_set_isa_limit(level)
                let got = w.dequantized()
                let bad = (0..<got.count).filter { got[$0].bitPattern != f.values[$0].bitPattern }
                XCTAssertTrue(bad.isEmpty, "\(type) level \(level): \(bad.count) of \(got.count) differ, first at \(bad.first ?? 0): "
                              + "\(bad.first.map { got[$0] } ?? 0) vs gguf-py \(bad.first.map { f.values[$0] } ?? 0)")
                // Rows on two threads, as prefill dequantizes tiles.
                var two = [Float](repeating: .nan, count: got.count)
                let rows = type.blockSize == 1 ? 8 : 2
                let m = f.matrix(rows: rows)
                two.withUnsafeMutableBufferPointer { m.dequantize(rows: 0, count: rows, into: $0.baseAddress!, threads: 2) }
                XCTAssertEqual(two.map(\.bitPattern), got.map(\.bitPattern), "\(type) level \(level) on two threads")
            }
        }
    }

    func testDotKernelsOnRandomBlocks() throws {
        // Random bytes reach every bit of the scales and values (negative q6_K scales, the high bits of the 6-bit
        // q4_K/q5_K scales and minimums) that a quantizer might never write.
        for type in QuantType.allCases where type != .f32 {
            let f = try DequantFixture(type.description)
            guard f.values.allSatisfy(\.isFinite) else { continue }   // random bf16 bits hold NaNs and infinities
            let rows = 2, w = f.matrix(rows: rows), k = w.cols
            let x = (0..<k).map { Float(($0 * 7919) % 201) / 100 - 1 }
            let want = QMatmul.reference(w, x: type.activations == .q8_K ? q8k(x) : type.activations == .q8_0 ? q80(x) : x, batch: 1)
            let scale = want.map { abs($0) }.max()!
            for level in levels() {
                hr_set_isa_limit(level)
                var y = [Float](repeating: .nan, count: rows)
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                    QMatmul.matvec(w, x: xp.baseAddress!, y: $0.baseAddress!, threads: 1) } }
                for r in 0..<rows {
                    XCTAssertEqual(y[r], want[r], accuracy: 1e-4 * scale, "\(type) level \(level) row \(r)")
                }
            }
        }
    }

    // Q8_0 and Q8_K round trips (the same definitions as QuantTests').
    private func q80(_ x: [Float]) -> [Float] { QuantReference.dequantize(QuantReference.quantize(x, type: .q8_0), type: .q8_0, count: x.count) }
    private func q8k(_ x: [Float]) -> [Float] {
        stride(from: 0, to: x.count, by: 256).flatMap { b -> [Float] in
            let v = x[b..<b + 256]
            let d = v.map { abs($0) }.max()! / 127, id: Float = d != 0 ? 1 / d : 0
            return v.map { Float(max(-127, min(127, Int(($0 * id).rounded(.toNearestOrAwayFromZero))))) * d }
        }
    }
}
