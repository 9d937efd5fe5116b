// The block formats byte for byte against an independent Swift reference, and every product kernel
// (decode, batched decode, prefill) on every instruction-set path against a naive loop.
import CKernels
import XCTest
@testable import HeadroomKernels

private func seeded(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in (rng.nextUnitFloat() * 2 - 1) * scale }
}

/// x as the integer kernels see it: quantized to q8_0 and back.
private func q8Roundtrip(_ x: [Float]) -> [Float] {
    QuantReference.dequantize(QuantReference.quantize(x, type: .q8_0), type: .q8_0, count: x.count)
}

/// x quantized to Q8_K (256 per block, f32 scale max|x|/127, round half away from zero) and back, as the
/// K-quants' integer kernels see it.
private func q8kRoundtrip(_ x: [Float]) -> [Float] {
    var out: [Float] = []
    for b in stride(from: 0, to: x.count, by: 256) {
        let v = x[b..<b + 256]
        let d = v.map { abs($0) }.max()! / 127, id: Float = d != 0 ? 1 / d : 0
        out += v.map { Float(max(-127, min(127, Int(($0 * id).rounded(.toNearestOrAwayFromZero))))) * d }
    }
    return out
}

/// x as `type`'s dot product reads it.
private func asActivations(_ x: [Float], _ type: QuantType) -> [Float] {
    switch type.activations {
    case .q8_0: return q8Roundtrip(x)
    case .q8_K: return q8kRoundtrip(x)
    case .f32: return x
    }
}

/// A column count of at least `k` that `type`'s blocks divide.
private func width(_ k: Int, _ type: QuantType) -> Int { (k + type.blockSize - 1) / type.blockSize * type.blockSize }

private func levels() -> [Int32] {
    let best = hr_set_isa_limit(-1)
    return Array(0...best)
}

final class QuantFormatTests: XCTestCase {
    func testHalfConversionMatchesSwiftFloat16() {
        var values: [Float] = [0, -0.0, 1, -1, 65504, 1e-8, 6e-5, 3.14159, -2.5e-3, 7e4, .infinity]
        values += seeded(2000, seed: 3, scale: 100)
        for v in values {
            XCTAssertEqual(hr_f32_to_f16(v), Float16(v).bitPattern, "\(v)")
            let h = Float16(v)
            if h.isFinite { XCTAssertEqual(hr_f16_to_f32(h.bitPattern), Float(h)) }
        }
    }

    func testQuantizeMatchesReferenceByteForByte() {
        var x = seeded(32 * 40, seed: 5, scale: 2)
        x.replaceSubrange(0..<32, with: [Float](repeating: 0, count: 32))     // an all-zero block: d = 0
        x[40] = -7.5                                                           // a negative extreme sets q4_0's sign
        for type in [QuantType.f32, .f16, .q8_0, .q4_0] {
            let w = WeightMatrix.quantized(x, type: type, rows: 4, cols: x.count / 4)
            let bytes = Array(UnsafeRawBufferPointer(start: w.data, count: w.bytes))
            XCTAssertEqual(bytes, QuantReference.quantize(x, type: type), "\(type)")
            XCTAssertEqual(w.bytes, type.rowBytes(x.count))
            let back = w.dequantized()
            XCTAssertEqual(back, QuantReference.dequantize(bytes, type: type, count: x.count), "\(type)")
        }
    }

    func testBlockLayoutIsGGML() {
        // q4_0: element j in the low nibble of byte j, element j+16 in the high nibble, value (q-8)·d, d = max/-8.
        var x = [Float](repeating: 0, count: 32)
        x[0] = -8; x[16] = 4; x[1] = 1
        let q4 = QuantReference.quantize(x, type: .q4_0)
        XCTAssertEqual(q4.count, 18)
        XCTAssertEqual(Float(Float16(bitPattern: UInt16(q4[0]) | UInt16(q4[1]) << 8)), 1)   // d = -8 / -8
        XCTAssertEqual(q4[2], 0 | (12 << 4))     // -8 → 0, 4 → 12
        XCTAssertEqual(q4[3] & 0x0F, 9)          // 1 → 9
        let q8 = QuantReference.quantize(x, type: .q8_0)
        XCTAssertEqual(q8.count, 34)
        XCTAssertEqual(Int8(bitPattern: q8[2]), -127)
        XCTAssertEqual(QuantType.q4_0.rowBytes(64), 36)
        XCTAssertEqual(QuantType.q8_0.rowBytes(64), 68)
    }

    func testSyntheticFillIsDeterministicAcrossThreadCounts() {
        for type in QuantType.allCases {
            let a = WeightMatrix.synthetic(type: type, rows: 37, cols: width(64, type), seed: 9, scale: 0.5, threads: 1)
            let b = WeightMatrix.synthetic(type: type, rows: 37, cols: width(64, type), seed: 9, scale: 0.5, threads: 2)
            XCTAssertEqual(a.dequantized(), b.dequantized())
            // The first four round within the range; the others' scales are rounded to integers of a few bits too.
            let bound: Float = [.f32, .f16, .q8_0, .q4_0].contains(type) ? 0.5 + 1e-3 : 0.5 * 1.25
            XCTAssertTrue(a.dequantized().allSatisfy { abs($0) <= bound }, "\(type)")
        }
    }
}

final class QuantKernelTests: XCTestCase {
    override func tearDown() { hr_set_isa_limit(-1) }

    func check(_ got: [Float], _ want: [Float], tol: Float, _ what: String) {
        XCTAssertEqual(got.count, want.count)
        let scale = max(want.map { abs($0) }.max() ?? 1, 1e-3)
        for i in 0..<got.count where abs(got[i] - want[i]) > tol * scale {
            XCTFail("\(what): at \(i) got \(got[i]), want \(want[i])"); return
        }
    }

    func testMatvecEveryFormatAndPath() {
        for (n, k) in [(1, 32), (7, 64), (37, 96), (64, 256), (5, 512), (37, 768)] {
            let x = seeded(k, seed: UInt64(k))
            for type in QuantType.allCases where k % type.blockSize == 0 {
                let w = WeightMatrix.synthetic(type: type, rows: n, cols: k, seed: UInt64(n), scale: 0.3, threads: 1)
                let want = QMatmul.reference(w, x: asActivations(x, type), batch: 1)
                for level in levels() {
                    hr_set_isa_limit(level)
                    for threads in [1, 2] {
                        var y = [Float](repeating: .nan, count: n)
                        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                            QMatmul.matvec(w, x: xp.baseAddress!, y: $0.baseAddress!, threads: threads) } }
                        check(y, want, tol: 1e-4, "\(type) n=\(n) k=\(k) level \(level) threads \(threads)")
                    }
                }
            }
        }
    }

    func testStackedMatvecEqualsOneByOne() {
        for type in QuantType.allCases {
            let k = width(96, type)
            let x = seeded(k, seed: 21)
            let ms = [70, 13, 130].enumerated().map { i, n in
                WeightMatrix.synthetic(type: type, rows: n, cols: k, seed: UInt64(i + 1), scale: 0.3, threads: 1) }
            var outs = ms.map { [Float](repeating: .nan, count: $0.rows) }
            let ptrs = outs.indices.map { i in UnsafeMutablePointer<Float>.allocate(capacity: ms[i].rows) }
            defer { ptrs.forEach { $0.deallocate() } }
            x.withUnsafeBufferPointer { QMatmul.matvec(ms, x: $0.baseAddress!, outputs: ptrs, threads: 2) }
            for i in ms.indices {
                x.withUnsafeBufferPointer { xp in outs[i].withUnsafeMutableBufferPointer {
                    QMatmul.matvec(ms[i], x: xp.baseAddress!, y: $0.baseAddress!, threads: 1) } }
                XCTAssertEqual(Array(UnsafeBufferPointer(start: ptrs[i], count: ms[i].rows)), outs[i], "\(type) matrix \(i)")
            }
        }
    }

    func testStackedBatchedMatvecEqualsOneByOne() {
        // Mixed formats in one job (a file may hold q/k/v in different types), and a batch past 64.
        let k = 256
        // The second set: the integer batch kernel, both per-sequence activation forms of the kernels' path, bf16.
        for set in [[(QuantType.q4_0, 70), (.q8_0, 13), (.f16, 130), (.q4_K, 33)], [(.q4_0, 21), (.q5_1, 13), (.bf16, 9), (.q3_K, 33)]] {
        let ms = set.enumerated().map { i, tn in
            WeightMatrix.synthetic(type: tn.0, rows: tn.1, cols: k, seed: UInt64(i + 1), scale: 0.3, threads: 1) }
        for b in [2, 16, 67] {
            let x = seeded(b * k, seed: UInt64(b))
            for level in levels() {
                hr_set_isa_limit(level)
                let ptrs = ms.map { UnsafeMutablePointer<Float>.allocate(capacity: b * $0.rows) }
                defer { ptrs.forEach { $0.deallocate() } }
                x.withUnsafeBufferPointer { QMatmul.matvecBatch(ms, x: $0.baseAddress!, batch: b, outputs: ptrs, threads: 2) }
                for (i, w) in ms.enumerated() {
                    var one = [Float](repeating: .nan, count: b * w.rows)
                    x.withUnsafeBufferPointer { xp in one.withUnsafeMutableBufferPointer {
                        QMatmul.matvecBatch(w, x: xp.baseAddress!, batch: b, y: $0.baseAddress!, threads: 1) } }
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: ptrs[i], count: b * w.rows)), one, "b \(b) level \(level) matrix \(i)")
                }
            }
        }
        }
        hr_set_isa_limit(-1)
    }

    func testBatchedMatvecEveryFormatAndPath() {
        let n = 19, k = 256
        for b in [1, 3, 15, 16, 17, 64] {   // 15 = 8 + 4 + 2 + 1: every sub-batch width of the integer kernel
            let x = seeded(b * k, seed: UInt64(b))
            for type in QuantType.allCases {
                let w = WeightMatrix.synthetic(type: type, rows: n, cols: k, seed: 4, scale: 0.3, threads: 1)
                // Every path reads each sequence's activations in the form single decode does (q8_0, Q8_K or floats).
                let want = QMatmul.reference(w, x: (0..<b).flatMap { asActivations(Array(x[$0 * k..<($0 + 1) * k]), type) }, batch: b)
                for level in levels() {
                    hr_set_isa_limit(level)
                    var y = [Float](repeating: .nan, count: b * n)
                    x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                        QMatmul.matvecBatch(w, x: xp.baseAddress!, batch: b, y: $0.baseAddress!, threads: 2) } }
                    check(y, want, tol: 1e-4, "\(type) b=\(b) level \(level)")
                    // Each sequence as single decode computes it.
                    for s in [0, b - 1] {
                        var one = [Float](repeating: .nan, count: n)
                        x.withUnsafeBufferPointer { xp in one.withUnsafeMutableBufferPointer {
                            QMatmul.matvec(w, x: xp.baseAddress! + s * k, y: $0.baseAddress!, threads: 1) } }
                        check(Array(y[s * n..<(s + 1) * n]), one, tol: 1e-4, "\(type) b=\(b) level \(level) sequence \(s) against matvec")
                    }
                }
            }
        }
    }

    func testIntegerBatchKernelIsBatchInvariant() {
        // serve's batch-invariant mode: a sequence's result from the batched kernel is bit for bit its result alone,
        // whatever the batch around it, its place in it (every pass width 16, 8, 4, 2, 1) and the thread count; row
        // counts that end in part of a register's rows (8 on AVX2, 16 on AVX-512), and k of 2 and 8 blocks.
        let total = 33
        for type in [QuantType.q4_0, .q8_0] {
            for (n, k) in [(19, 256), (37, 64), (19, 64), (37, 256)] {
                let w = WeightMatrix.synthetic(type: type, rows: n, cols: k, seed: UInt64(n + k), scale: 0.3, threads: 1)
                let x = seeded(total * k, seed: UInt64(k))
                for level in levels() {
                    hr_set_isa_limit(level)
                    let alone: [[Float]] = (0..<total).map { s in
                        var y = [Float](repeating: .nan, count: n)
                        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                            QMatmul.matvecBatch(w, x: xp.baseAddress! + s * k, batch: 1, y: $0.baseAddress!, threads: 1) } }
                        return y
                    }
                    for b in Array(1...20) + [total] {
                        // Sequences start, start + 1, … (mod total), so a sequence sits at different places in different batches.
                        let start = b * 5 % total
                        let seqs = (0..<b).map { (start + $0) % total }
                        let xb = seqs.flatMap { x[$0 * k..<($0 + 1) * k] }
                        var ys: [[Float]] = []
                        for threads in [1, 2] {
                            var y = [Float](repeating: .nan, count: b * n)
                            xb.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                                QMatmul.matvecBatch(w, x: xp.baseAddress!, batch: b, y: $0.baseAddress!, threads: threads) } }
                            ys.append(y)
                        }
                        XCTAssertEqual(ys[0], ys[1], "\(type) n=\(n) k=\(k) level \(level) b=\(b): threads 1 and 2")
                        for (i, s) in seqs.enumerated() {
                            XCTAssertEqual(Array(ys[0][i * n..<(i + 1) * n]), alone[s], "\(type) n=\(n) k=\(k) level \(level) b=\(b) sequence \(s) at \(i)")
                        }
                    }
                }
            }
        }
        hr_set_isa_limit(-1)
    }

    func testBatchedFloatMatvecWidthsNotInSixteens() {
        // The float batch kernels take widths in 16s (AVX-512) or 8s (AVX2, on an AVX-512 CPU too when k is 8
        // times an odd number), others the dequantize-and-dot loop: 40 and 36 columns, sub-batches 8, 4, 2, 1.
        let n = 11
        for k in [40, 36] {
            for type in [QuantType.f32, .f16, .bf16] {
                let w = WeightMatrix.synthetic(type: type, rows: n, cols: k, seed: 6, scale: 0.3, threads: 1)
                for b in [1, 2, 7, 9, 16] {
                    let x = seeded(b * k, seed: UInt64(b + k))
                    let want = QMatmul.reference(w, x: x, batch: b)
                    for level in levels() {
                        hr_set_isa_limit(level)
                        var y = [Float](repeating: .nan, count: b * n)
                        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                            QMatmul.matvecBatch(w, x: xp.baseAddress!, batch: b, y: $0.baseAddress!, threads: 2) } }
                        check(y, want, tol: 1e-5, "\(type) k=\(k) b=\(b) level \(level)")
                    }
                }
            }
        }
    }

    func testPrefillProductEveryFormat() {
        // 5 and 17 rows go to sgemm padded to 16 and 32 (`QMatmul.sgemmRowBlock`); 16 as they are.
        for m in [5, 16, 17] { prefillProduct(m: m) }
        XCTAssertEqual([0, 1, 2, 15, 16, 17, 96].map(QMatmul.paddedRows), [0, 16, 16, 16, 16, 32, 96])
    }

    private func prefillProduct(m: Int) {
        let n = 70, k = 256
        let x = seeded(m * k, seed: 8)
        let scratch = TileScratch(floats: 16 * k)   // forces several tiles
        for type in QuantType.allCases {
            let w = WeightMatrix.synthetic(type: type, rows: n, cols: k, seed: 2, scale: 0.3, threads: 1)
            let want = QMatmul.reference(w, x: x, batch: m)
            var y = [Float](repeating: 1, count: m * n)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                QMatmul.forward(w, inp: xp.baseAddress!, m: m, out: $0.baseAddress!, scratch: scratch, threads: 1) } }
            check(y, want, tol: 1e-5, "\(type) prefill, \(m) rows")
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer {
                QMatmul.forward(w, inp: xp.baseAddress!, m: m, out: $0.baseAddress!, accumulate: true, scratch: scratch, threads: 2) } }
            check(y, want.map { 2 * $0 }, tol: 1e-5, "\(type) prefill accumulate, \(m) rows")
        }
    }

    func testPoolForCoversEveryItemOnce() {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 1000)
        defer { hits.deallocate() }
        for (threads, chunk) in [(1, 7), (2, 1), (2, 64), (3, 10), (2, 5000)] {
            hits.initialize(repeating: 0, count: 1000)
            for _ in 0..<50 {
                // Chunks never overlap, so threads write disjoint elements.
                hr_pool_for(Int32(threads), 1000, chunk, { ctx, lo, hi in
                    let h = ctx!.assumingMemoryBound(to: Int.self)
                    for i in lo..<hi { h[i] += 1 }
                }, hits)
                // Interleave indexed jobs, as decode does with attention and products.
                ThreadPool.run(threads) { _ in }
            }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: hits, count: 1000)), [Int](repeating: 50, count: 1000), "threads \(threads) chunk \(chunk)")
        }
    }

    func testThreadPoolRunsEveryIndexOnce() {
        for n in [1, 2, 3, 5] {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
            hits.initialize(repeating: 0, count: n)
            for _ in 0..<100 { ThreadPool.run(n) { hits[$0] += 1 } }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: hits, count: n)), [Int](repeating: 100, count: n))
            hits.deallocate()
        }
    }
}

final class TransformerOpTests: XCTestCase {
    func testRMSNorm() {
        let T = 3, C = 40
        let x = seeded(T * C, seed: 1, scale: 3), w = seeded(C, seed: 2)
        var out = [Float](repeating: 0, count: T * C)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer {
            RMSNorm.forward(out: $0.baseAddress!, inp: xp.baseAddress!, weight: wp.baseAddress!, T: T, C: C, eps: 1e-5) } } }
        let ref = RMSNorm.naiveForward(inp: x, weight: w, T: T, C: C, eps: 1e-5)
        for i in 0..<out.count { XCTAssertEqual(out[i], ref[i], accuracy: 1e-5) }
    }

    func testRoPERotatesAdjacentPairs() {
        let T = 3, heads = 2, hd = 8
        var x = seeded(T * heads * hd, seed: 4)
        let ref = RoPE.naiveForward(x, T: T, heads: heads, headDim: hd, pos0: 5, theta: 10_000)
        x.withUnsafeMutableBufferPointer { RoPE.forward(x: $0.baseAddress!, T: T, heads: heads, headDim: hd, pos0: 5, theta: 10_000) }
        for i in 0..<x.count { XCTAssertEqual(x[i], ref[i], accuracy: 1e-5) }
        // A hand-worked case: position 1, pair 0 rotates by exactly 1 radian.
        var y: [Float] = [1, 0, 1, 0]
        y.withUnsafeMutableBufferPointer { RoPE.forward(x: $0.baseAddress!, T: 1, heads: 1, headDim: 4, pos0: 1, theta: 10_000) }
        XCTAssertEqual(y[0], Float(cos(1.0)), accuracy: 1e-6)
        XCTAssertEqual(y[1], Float(sin(1.0)), accuracy: 1e-6)
        XCTAssertEqual(y[2], Float(cos(0.01)), accuracy: 1e-6)   // theta^(-2/4) = 0.01
    }

    func testSoftmaxAndSwiGLU() {
        var x = seeded(50, seed: 6, scale: 10)
        let ref = Softmax.naiveForward(x)
        x.withUnsafeMutableBufferPointer { Softmax.forward($0.baseAddress!, n: 50) }
        for i in 0..<50 { XCTAssertEqual(x[i], ref[i], accuracy: 1e-6) }
        let g = seeded(30, seed: 7, scale: 4), u = seeded(30, seed: 8)
        var out = [Float](repeating: 0, count: 30)
        g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in out.withUnsafeMutableBufferPointer {
            SwiGLU.forward(out: $0.baseAddress!, gate: gp.baseAddress!, up: up.baseAddress!, n: 30) } } }
        let sref = SwiGLU.naiveForward(gate: g, up: u)
        for i in 0..<30 { XCTAssertEqual(out[i], sref[i], accuracy: 1e-5) }
        // Softmax on every path, with a ragged tail and a wide range.
        for n in [1, 16, 37, 300] {
            let v = seeded(n, seed: UInt64(n), scale: 40), want = Softmax.naiveForward(v)
            for level in levels() {
                hr_set_isa_limit(level)
                var y = v
                y.withUnsafeMutableBufferPointer { Softmax.forward($0.baseAddress!, n: n) }
                for i in 0..<n { XCTAssertEqual(y[i], want[i], accuracy: 1e-6 + 1e-5 * want[i], "softmax n \(n) level \(level) i \(i)") }
            }
        }
        hr_set_isa_limit(-1)
    }

    func testSwiGLUEveryPathAndSize() {
        // A ragged tail, gates far into both saturated ends, and a size that splits across the pool.
        for n in [1, 17, 1000, 40_003] {
            let g = seeded(n, seed: UInt64(n), scale: 120), u = seeded(n, seed: 9, scale: 3)
            let ref = SwiGLU.naiveForward(gate: g, up: u)
            for level in levels() {
                hr_set_isa_limit(level)
                var out = [Float](repeating: .nan, count: n)
                g.withUnsafeBufferPointer { gp in u.withUnsafeBufferPointer { up in out.withUnsafeMutableBufferPointer {
                    SwiGLU.forward(out: $0.baseAddress!, gate: gp.baseAddress!, up: up.baseAddress!, n: n, threads: 2) } } }
                for i in 0..<n where abs(out[i] - ref[i]) > 1e-6 * max(1, abs(ref[i])) {
                    XCTFail("n \(n) level \(level) i \(i): \(out[i]) vs \(ref[i]) (gate \(g[i]))"); break
                }
            }
        }
        hr_set_isa_limit(-1)
    }

    func testAttentionWithAndWithoutCache() {
        // Groups of 2, 8 (one chunk), 6 (chunks of 4 and 2) and 1 query heads per KV head; contexts that leave
        // a tail after the 8 / C positions the grouped kernel takes at a time.
        for (shape, pos0) in [(Attention.Shape(heads: 4, kvHeads: 2, headDim: 16), 3), (Attention.Shape(heads: 8, kvHeads: 1, headDim: 64), 21),
                              (Attention.Shape(heads: 12, kvHeads: 2, headDim: 32), 10), (Attention.Shape(heads: 3, kvHeads: 3, headDim: 16), 12)] {
            checkAttention(shape: shape, pos0: pos0)
        }
    }

    func testAttentionEveryKernelShape() {
        // A group of 4 at head dim 64 from a single cached position (npos 1 to 5, across a block of 4); a group
        // of 8 over 41 to 45 positions (past the prefetch distance, many blocks); a group of 6 (4 + 2) at head
        // dim 24 (the 8-lane kernel on every SIMD level: not a multiple of 16); head dims 20 and 36, not
        // multiples of 8 (the scalar loop on every level); one head per KV head at 64 across the 16-row blocks; a group
        // of 3 (2 + 1) at 64, SmolLM2-135M's shape.
        for (shape, pos0) in [(Attention.Shape(heads: 8, kvHeads: 2, headDim: 64), 0), (Attention.Shape(heads: 16, kvHeads: 2, headDim: 64), 40),
                              (Attention.Shape(heads: 12, kvHeads: 2, headDim: 24), 17), (Attention.Shape(heads: 4, kvHeads: 2, headDim: 20), 6),
                              (Attention.Shape(heads: 2, kvHeads: 1, headDim: 36), 1), (Attention.Shape(heads: 2, kvHeads: 2, headDim: 64), 14),
                              (Attention.Shape(heads: 9, kvHeads: 3, headDim: 64), 60)] {
            checkAttention(shape: shape, pos0: pos0)
        }
    }

    private func checkAttention(shape: Attention.Shape, pos0: Int) {
        let T = 5, L = pos0 + T
        let q = seeded(T * shape.dim, seed: 10), k = seeded(L * shape.kvDim, seed: 11), v = seeded(L * shape.kvDim, seed: 12)
        let ref = Attention.naiveForward(q: q, k: k, v: v, pos0: pos0, T: T, shape: shape)
        // Prefill of T queries on top of pos0 cached positions.
        var out = [Float](repeating: 0, count: T * shape.dim)
        var scores = [Float](repeating: 0, count: T * L)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in scores.withUnsafeMutableBufferPointer { sp in
                Attention.prefill(q: qp.baseAddress!, kCache: kp.baseAddress!, vCache: vp.baseAddress!, pos0: pos0, T: T,
                                  shape: shape, out: op.baseAddress!, scores: sp.baseAddress!, threads: 2) } } } } }
        for i in 0..<out.count { XCTAssertEqual(out[i], ref[i], accuracy: 1e-5, "\(shape) prefill \(i)") }
        // Decode, one query at a time, on every path.
        for level in levels() {
            hr_set_isa_limit(level)
            for t in 0..<T {
                var o = [Float](repeating: 0, count: shape.dim)
                let qt = Array(q[t * shape.dim..<(t + 1) * shape.dim])
                qt.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                    o.withUnsafeMutableBufferPointer {
                        Attention.decode(q: qp.baseAddress!, kCache: kp.baseAddress!, vCache: vp.baseAddress!, npos: pos0 + t + 1,
                                         shape: shape, out: $0.baseAddress!, threads: 2) } } } }
                for i in 0..<shape.dim { XCTAssertEqual(o[i], ref[t * shape.dim + i], accuracy: 1e-5, "\(shape) decode t=\(t) level \(level)") }
            }
            // All T queries as a batch of sequences, query t seeing its own pos0 + t + 1 positions.
            var o = [Float](repeating: 0, count: T * shape.dim)
            k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in q.withUnsafeBufferPointer { qp in
                o.withUnsafeMutableBufferPointer {
                    Attention.decodeBatch(q: qp.baseAddress!, kCaches: [UnsafePointer<Float>](repeating: kp.baseAddress!, count: T),
                                          vCaches: [UnsafePointer<Float>](repeating: vp.baseAddress!, count: T),
                                          npos: (0..<T).map { pos0 + $0 + 1 }, shape: shape, out: $0.baseAddress!, threads: 2) } } } }
            for i in 0..<o.count { XCTAssertEqual(o[i], ref[i], accuracy: 1e-5, "\(shape) batched decode \(i) level \(level)") }
            // The same queries over a paged cache: positions scattered into blocks of a pool in reverse order,
            // blocks of 16 (the server's) and of 4 (shorter than the kernel's prefetch distance and its 8-row groups).
            for bs in [16, 4] {
                let used = (L + bs - 1) / bs, total = used + 3
                let table = (0..<used).map { Int32(total - 1 - $0) }
                var kp = [Float](repeating: .nan, count: total * bs * shape.kvDim), vp = kp
                for p in 0..<L {
                    let row = (Int(table[p / bs]) * bs + p % bs) * shape.kvDim
                    for i in 0..<shape.kvDim { kp[row + i] = k[p * shape.kvDim + i]; vp[row + i] = v[p * shape.kvDim + i] }
                }
                var o = [Float](repeating: 0, count: T * shape.dim)
                table.withUnsafeBufferPointer { tp in kp.withUnsafeBufferPointer { kb in vp.withUnsafeBufferPointer { vb in
                    q.withUnsafeBufferPointer { qp in o.withUnsafeMutableBufferPointer {
                        Attention.paged(q: qp.baseAddress!, kPool: kb.baseAddress!, vPool: vb.baseAddress!,
                                        tables: [UnsafePointer<Int32>](repeating: tp.baseAddress!, count: T), npos: (0..<T).map { pos0 + $0 + 1 },
                                        blockSize: bs, shape: shape, out: $0.baseAddress!, threads: 2) } } } } }
                for i in 0..<o.count { XCTAssertEqual(o[i], ref[i], accuracy: 1e-5, "\(shape) paged (blocks of \(bs)) \(i) level \(level)") }
            }
        }
        hr_set_isa_limit(-1)
    }
}
