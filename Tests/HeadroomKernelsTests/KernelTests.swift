import CKernels
import XCTest
@testable import HeadroomKernels

final class MatmulTests: XCTestCase {
    func testSgemmMatchesNaiveTripleLoop() {
        for (m, n, k) in [(1, 7, 5), (3, 4, 2), (13, 17, 31), (8, 64, 48)] {
            let inp = FloatBuffer(count: m * k), w = FloatBuffer(count: n * k), out = FloatBuffer(count: m * n)
            inp.fillUniform(seed: UInt64(m * 100 + k))
            w.fillUniform(seed: UInt64(n * 100 + k))
            Matmul.forward(out: out.pointer, inp: inp.pointer, weight: w.pointer, M: m, N: n, K: k)
            let ref = Matmul.naiveForward(inp: inp.array, weight: w.array, M: m, N: n, K: k)
            for i in 0..<(m * n) { XCTAssertEqual(out[i], ref[i], accuracy: 1e-4, "M=\(m) N=\(n) K=\(k) at \(i)") }
            // accumulate adds to what is there
            Matmul.forward(out: out.pointer, inp: inp.pointer, weight: w.pointer, M: m, N: n, K: k, accumulate: true)
            for i in 0..<(m * n) { XCTAssertEqual(out[i], 2 * ref[i], accuracy: 2e-4) }
        }
    }

    func testFlopCount() {
        XCTAssertEqual(Matmul.flops(M: 2, N: 3, K: 4), 48)
    }

    func testSeededFillIsDeterministicAndInRange() {
        let a = FloatBuffer(count: 1000), b = FloatBuffer(count: 1000)
        a.fillUniform(seed: 42, scale: 0.5)
        b.fillUniform(seed: 42, scale: 0.5)
        XCTAssertEqual(a.array, b.array)
        XCTAssertTrue(a.array.allSatisfy { $0 >= -0.5 && $0 < 0.5 })
        XCTAssertGreaterThan(Set(a.array).count, 900)
    }
}

final class BandwidthTests: XCTestCase {
    func testReadKernelsSumEveryElement() {
        // Sizes that are not multiples of any vector width exercise the tails.
        for n in [1, 31, 1000, 4099, 65_537] {
            let b = FloatBuffer(count: n)
            for i in 0..<n { b[i] = Float(i % 7) }
            let expected = (0..<n).reduce(0.0) { $0 + Double($1 % 7) }
            for threads in [1, 2] {
                for pattern in [Bandwidth.ReadPattern.stream, .rows(1), .rows(3), .rows(8), .rows(16)] {
                    let r = Bandwidth.timeRead(b, threads: threads, pattern: pattern)
                    XCTAssertEqual(Double(r.checksum), expected, accuracy: expected * 1e-5 + 1e-3, "n=\(n) \(pattern) ×\(threads)")
                    XCTAssertGreaterThan(r.seconds, 0)
                }
            }
        }
    }

    func testPrefetchedReadSumsEveryElementOnEveryPath() {
        // The decode kernels' walk on every instruction-set path they have (AVX-512, AVX2, scalar: as far as
        // this CPU goes), with row widths that leave column tails (7, 33, 100), rows short of a group of four,
        // several 64-row chunks (n = 65_537 at width 7: 9362 rows), and a row wider than the whole buffer.
        defer { hr_set_isa_limit(-1) }
        let best = hr_set_isa_limit(-1)
        for n in [1, 31, 1000, 4099, 65_537] {
            let b = FloatBuffer(count: n)
            for i in 0..<n { b[i] = Float(i % 7) }
            let expected = (0..<n).reduce(0.0) { $0 + Double($1 % 7) }
            for level in 0...best {
                hr_set_isa_limit(level)
                for row in [1, 7, 32, 33, 100, 2048, 100_000] {
                    for threads in [1, 2, 3] {
                        let r = Bandwidth.timeRead(b, threads: threads, pattern: .prefetched(rowFloats: row))
                        XCTAssertEqual(Double(r.checksum), expected, accuracy: expected * 1e-5 + 1e-3,
                                       "n=\(n) row=\(row) ×\(threads) level \(level)")
                        XCTAssertGreaterThan(r.seconds, 0)
                    }
                }
            }
        }
    }

    func testPrefetchedReadFollowsTheDecodeKernelsISA() {
        defer { hr_set_isa_limit(-1) }
        hr_set_isa_limit(0)
        XCTAssertEqual(Bandwidth.isa(of: .prefetched(rowFloats: 64)), "scalar")
        XCTAssertEqual(Bandwidth.isa(of: .stream), Bandwidth.isa, "the plain patterns keep the probe's own choice")
    }

    func testTriadComputesBPlusThreeC() {
        let n = 1037
        let a = FloatBuffer(count: n), b = FloatBuffer(count: n), c = FloatBuffer(count: n)
        b.fillUniform(seed: 1); c.fillUniform(seed: 2)
        for threads in [1, 2] {
            _ = Bandwidth.timeTriad(a: a, b: b, c: c, threads: threads)
            for i in 0..<n { XCTAssertEqual(a[i], b[i] + 3 * c[i], accuracy: 1e-6) }
        }
    }

    func testParallelRunsEveryIndexOnce() {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        hits.initialize(repeating: 0, count: 4)
        defer { hits.deallocate() }
        parallel(4) { t in hits[t] += 1 }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: hits, count: 4)), [1, 1, 1, 1])
    }

    func testOpenBLASThreadControl() {
        BLASThreads.set(1)
        XCTAssertEqual(BLASThreads.current, 1)
        XCTAssertFalse(BLASThreads.coreName.isEmpty)
    }
}
