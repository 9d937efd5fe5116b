// The format table's quantizers against ggml's own reference quantizer (quantize_row_*_ref), byte for byte, on
// random rows (Fixtures/quant-*.bin, written by scripts/ggml-quant-fixtures.py from ggml-quants.c), and their
// round-trip error on random rows against stated per-format bounds.
import CKernels
import Foundation
import XCTest
@testable import HeadroomKernels

private func fixture(_ name: String) throws -> Data {
    let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures"), "no fixture \(name).bin")
    return try Data(contentsOf: url)
}

private func u32(_ d: Data, _ at: Int) -> Int {
    Int(d[at]) | Int(d[at + 1]) << 8 | Int(d[at + 2]) << 16 | Int(d[at + 3]) << 24
}

final class QuantizerTests: XCTestCase {
    /// Every format ggml quantizes in blocks (the plain floats are conversions, tested with the kernels).
    static let blockFormats: [QuantType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    func testQuantizeEqualsGGMLByteForByte() throws {
        let input = try fixture("quant-input")
        XCTAssertEqual(String(decoding: input.prefix(4), as: UTF8.self), "HRQI")
        let rows = u32(input, 4), k = u32(input, 8)
        XCTAssertEqual(input.count, 12 + 4 * rows * k, "quant-input.bin: file size")
        let x = (0..<rows * k).map { Float(bitPattern: UInt32(u32(input, 12 + 4 * $0))) }
        for type in Self.blockFormats {
            let name = "quant-\(type.description)"
            let f = try fixture(name)
            XCTAssertEqual(String(decoding: f.prefix(4), as: UTF8.self), "HRQQ", name)
            XCTAssertEqual(u32(f, 4), Int(type.rawValue), "\(name): ggml type")
            XCTAssertEqual(u32(f, 8), rows, "\(name): rows")
            XCTAssertEqual(u32(f, 12), k, "\(name): row length")
            let rb = u32(f, 16)
            XCTAssertEqual(rb, type.rowBytes(k), "\(name): bytes per row")
            XCTAssertEqual(f.count, 20 + rows * rb, "\(name): file size")
            let want = [UInt8](f[20...])
            let m = WeightMatrix.quantized(x, type: type, rows: rows, cols: k)
            let got = [UInt8](UnsafeRawBufferPointer(start: m.data, count: m.bytes))
            for r in 0..<rows {
                let a = got[r * rb..<(r + 1) * rb], b = want[r * rb..<(r + 1) * rb]
                if let i = zip(a.indices, zip(a, b)).first(where: { $0.1.0 != $0.1.1 })?.0 {
                    XCTFail("\(type) row \(r): byte \(i - r * rb) of \(rb) is \(got[i]), ggml wrote \(want[i])")
                }
            }
        }
    }

    /// Relative RMSE of the round trip on Gaussian rows, √(Σ(q(x)−x)² / Σx²): ggml's reference quantizers measure
    /// 0.0054, 0.018, 0.036, 0.038, 0.043, 0.071, 0.078, 0.086, 0.151, 0.296 in this order (64 rows of 1024);
    /// the bounds are those plus a quarter.
    static let rmseBounds: [(QuantType, Double)] = [
        (.q8_0, 0.007), (.q6_K, 0.022), (.q5_K, 0.045), (.q5_1, 0.047), (.q5_0, 0.053),
        (.q4_K, 0.09), (.q4_1, 0.097), (.q4_0, 0.107), (.q3_K, 0.19), (.q2_K, 0.37),
    ]

    func testRoundTripErrorOnRandomRows() {
        let rows = 64, k = 1024
        var state: UInt64 = 0x5155_414E
        func uniform() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return (Double((z ^ (z >> 31)) >> 11) + 0.5) / Double(1 << 53)
        }
        let x = (0..<rows * k).map { _ in Float((-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())) }
        let power = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        var measured: [QuantType: Double] = [:]
        for (type, bound) in Self.rmseBounds {
            let y = WeightMatrix.quantized(x, type: type, rows: rows, cols: k).dequantized()
            let err = zip(x, y).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let rel = (err / power).squareRoot()
            measured[type] = rel
            XCTAssertLessThan(rel, bound, "\(type): relative RMSE of the round trip")
        }
        // More bits, less error: the K-quants in order, and each K-quant below the 32-block format of its bits.
        let order: [QuantType] = [.q8_0, .q6_K, .q5_K, .q4_K, .q3_K, .q2_K]
        for (a, b) in zip(order, order.dropFirst()) { XCTAssertLessThan(measured[a]!, measured[b]!, "\(a) vs \(b)") }
        XCTAssertLessThan(measured[.q4_K]!, measured[.q4_1]!)
        XCTAssertLessThan(measured[.q5_K]!, measured[.q5_1]!)
    }

    func testZeroAndConstantRowsRoundTrip() {
        // A row of zeros stays zeros (every scale 0); a constant row comes back within its format's step.
        for type in Self.blockFormats {
            let zeros = WeightMatrix.quantized([Float](repeating: 0, count: 512), type: type, rows: 1, cols: 512).dequantized()
            XCTAssertTrue(zeros.allSatisfy { $0 == 0 }, "\(type): zeros")
            let c = WeightMatrix.quantized([Float](repeating: 0.75, count: 512), type: type, rows: 1, cols: 512).dequantized()
            XCTAssertEqual(c.map { Double($0) }.reduce(0, +) / 512, 0.75, accuracy: 0.75 / 8, "\(type): constant 0.75")
        }
    }
}
