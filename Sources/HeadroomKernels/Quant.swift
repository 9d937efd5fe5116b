// The weight formats Headroom runs (GGUF/ggml's blocks, byte for byte), as the kernels' one table of
// formats lists them (CKernels' formats.h); a weight matrix that points at such bytes wherever they live
// (our allocation or a memory-mapped file), and the products that read them: decode (matrix-vector),
// batched decode, prefill (matrix-matrix).
import CBLAS
import CKernels
import Foundation

/// A weight format: an entry of the kernels' table of formats, with GGUF's type id as its raw value.
/// Everything about a format (name, block layout, activation form, kernels) is read from the table, so a
/// format added there appears here, in `allCases`, in the GGUF type map and in `--precision`, unedited.
public struct QuantType: RawRepresentable, Hashable, CaseIterable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    /// The format with GGUF type id `rawValue`, or nil when the kernels' table has none.
    public init?(rawValue: Int32) {
        guard hr_format_of(rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    private init<I: BinaryInteger>(_ id: I) { rawValue = Int32(id) }

    public static let f32 = QuantType(HR_TYPE_F32), f16 = QuantType(HR_TYPE_F16), bf16 = QuantType(HR_TYPE_BF16)
    public static let q8_0 = QuantType(HR_TYPE_Q8_0), q4_0 = QuantType(HR_TYPE_Q4_0), q4_1 = QuantType(HR_TYPE_Q4_1)
    public static let q5_0 = QuantType(HR_TYPE_Q5_0), q5_1 = QuantType(HR_TYPE_Q5_1)
    public static let q2_K = QuantType(HR_TYPE_Q2_K), q3_K = QuantType(HR_TYPE_Q3_K), q4_K = QuantType(HR_TYPE_Q4_K)
    public static let q5_K = QuantType(HR_TYPE_Q5_K), q6_K = QuantType(HR_TYPE_Q6_K)

    /// Every format of the table, in its order (f32, f16, q4_0, q8_0 first).
    public static let allCases: [QuantType] = (0..<hr_format_count()).map { QuantType(Int(hr_format_at($0)!.pointee.type)) }

    private var entry: hr_format { hr_format_of(rawValue)!.pointee }

    /// Parses a table name ("f32", "q8_0", "q4_k", "bf16"), case-insensitively.
    public init?(name: String) {
        guard let t = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = t
    }

    /// The table's lower-case name ("q4_k").
    public var description: String { String(cString: entry.name) }

    /// Elements per block (1 for the float formats, 32, or 256 for K-quants): a row's length is a multiple of it.
    public var blockSize: Int { Int(entry.block) }

    /// Bytes per block.
    public var blockBytes: Int { Int(entry.block_bytes) }

    /// Bytes of a row of `k` elements (`k` a multiple of `blockSize`).
    public func rowBytes(_ k: Int) -> Int { Int(hr_row_bytes(rawValue, k)) }

    /// Bytes per weight, averaged over a block (f32 4, q8_0 1.0625, q4_K 0.5625, q6_K 0.8203125).
    public var bytesPerWeight: Double { Double(blockBytes) / Double(blockSize) }

    /// llama.cpp's `general.file_type` for a file whose matrices are all of this format.
    public var llamaFileType: UInt32 { UInt32(entry.llama_ftype) }

    /// The form decode's dot products read the activations in.
    public enum Activations: Sendable { case f32, q8_0, q8_K }
    public var activations: Activations {
        switch Int(entry.act) {
        case Int(HR_ACT_Q8_0): return .q8_0
        case Int(HR_ACT_Q8_K): return .q8_K
        default: return .f32
        }
    }

    /// Whether decode has a dot-product kernel of this format's own (otherwise it dequantizes each row and dots floats).
    public var hasDotKernel: Bool { entry.dot.0 != nil }
}

/// A row-major (rows, cols) weight matrix in one of the formats, one row per output feature.
/// It does not own its bytes unless `owner` does: keep `owner` (an allocation, a mapped file) alive.
public struct WeightMatrix: @unchecked Sendable {
    public let type: QuantType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    /// Whatever keeps `data` valid.
    public let owner: AnyObject?

    public init(type: QuantType, rows: Int, cols: Int, data: UnsafeRawPointer, owner: AnyObject?) {
        precondition(cols % type.blockSize == 0, "\(type) needs a column count that is a multiple of \(type.blockSize), got \(cols)")
        self.type = type; self.rows = rows; self.cols = cols; self.data = data; self.owner = owner
    }

    /// Allocates a (rows, cols) matrix of `type` filled with seeded uniform values in [-scale, scale),
    /// quantized row by row (deterministic whatever the thread count).
    public static func synthetic(type: QuantType, rows: Int, cols: Int, seed: UInt64, scale: Float, threads: Int) -> WeightMatrix {
        let storage = RawBuffer(bytes: type.rowBytes(cols) * rows)
        hr_synthetic_fill(type.rawValue, storage.pointer, rows, cols, seed, scale, Int32(threads))
        return WeightMatrix(type: type, rows: rows, cols: cols, data: UnsafeRawPointer(storage.pointer), owner: storage)
    }

    /// Writes the same bytes as `synthetic` into `out` (at least `type.rowBytes(cols) * rows` bytes), for writers
    /// that stream a model tensor by tensor.
    public static func fillSynthetic(type: QuantType, rows: Int, cols: Int, seed: UInt64, scale: Float, threads: Int,
                                     into out: UnsafeMutableRawPointer) {
        hr_synthetic_fill(type.rawValue, out, rows, cols, seed, scale, Int32(threads))
    }

    /// Quantizes `values` (rows × cols floats) into a new allocation.
    public static func quantized(_ values: [Float], type: QuantType, rows: Int, cols: Int) -> WeightMatrix {
        precondition(values.count == rows * cols, "expected \(rows * cols) values, got \(values.count)")
        let storage = RawBuffer(bytes: type.rowBytes(cols) * rows)
        values.withUnsafeBufferPointer { hr_quantize_rows(type.rawValue, $0.baseAddress, rows, cols, storage.pointer) }
        return WeightMatrix(type: type, rows: rows, cols: cols, data: UnsafeRawPointer(storage.pointer), owner: storage)
    }

    public var bytes: Int { type.rowBytes(cols) * rows }

    /// Rows [r0, r0+count) as floats into `out` (count × cols).
    public func dequantize(rows r0: Int, count: Int, into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        precondition(r0 >= 0 && r0 + count <= rows, "rows \(r0)..<\(r0 + count) outside 0..<\(rows)")
        hr_dequantize_rows(type.rawValue, data, cols, r0, count, out, Int32(threads))
    }

    /// The whole matrix as floats (tests and small tensors).
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        out.withUnsafeMutableBufferPointer { dequantize(rows: 0, count: rows, into: $0.baseAddress!) }
        return out
    }
}

/// Owned, 64-byte-aligned raw bytes (quantized weights), zero-filled, freed with the last reference.
public final class RawBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutableRawPointer
    public init(bytes: Int) {
        count = bytes
        var raw: UnsafeMutableRawPointer?
        let size = max(bytes, 1)
        guard posix_memalign(&raw, 64, size) == 0, let raw else { fatalError("RawBuffer: could not allocate \(size) bytes") }
        memset(raw, 0, size)
        pointer = raw
    }
    deinit { free(pointer) }
}

/// The products of activations with a `WeightMatrix`, for each phase of inference.
public enum QMatmul {
    /// The instruction set the quantized kernels use on this CPU ("avx512-vnni", "avx2", "scalar").
    public static var isa: String { String(cString: hr_quant_isa()) }

    /// Decode: y (rows) = W (rows, cols) · x (cols), rows split across `threads` of the pool.
    /// For q8_0 and q4_0, x is quantized to q8_0 blocks first, for q4_K, q5_K and q6_K to Q8_K blocks, as llama.cpp
    /// does (`activations`), and accumulation is f32. Formats without a dot kernel dequantize each row and dot floats.
    public static func matvec(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, threads: Int) {
        hr_matvec(w.type.rawValue, w.data, w.rows, w.cols, x, y, Int32(threads))
    }

    /// Decode of several matrices that read the same x (q, k, v; gate, up) as one job: x is quantized once and
    /// the threads share out the stacked rows. `outputs[i]` receives `matrices[i].rows` values.
    public static func matvec(_ matrices: [WeightMatrix], x: UnsafePointer<Float>, outputs: [UnsafeMutablePointer<Float>], threads: Int) {
        precondition(matrices.count == outputs.count && (1...4).contains(matrices.count), "1 to 4 matrices, one output each")
        let k = matrices[0].cols
        precondition(matrices.allSatisfy { $0.cols == k }, "matrices of one product must share their width")
        let types = matrices.map { $0.type.rawValue }, ns = matrices.map(\.rows)
        let ws: [UnsafeRawPointer?] = matrices.map { $0.data }
        let ys: [UnsafeMutablePointer<Float>?] = outputs
        withExtendedLifetime(matrices) { hr_matvec_multi(Int32(matrices.count), types, ws, ns, k, x, ys, Int32(threads)) }
    }

    /// Batched decode: y (b, rows) = x (b, cols) · Wᵀ, each weight row read once for all b sequences.
    public static func matvecBatch(_ w: WeightMatrix, x: UnsafePointer<Float>, batch b: Int, y: UnsafeMutablePointer<Float>, threads: Int) {
        hr_matvec_batch(w.type.rawValue, w.data, w.rows, w.cols, x, b, y, Int32(threads))
    }

    /// Batched decode of several matrices that read the same x (q, k, v; gate, up): x quantized once, the
    /// threads share out the stacked rows. `outputs[i]` receives (b, `matrices[i].rows`) values.
    public static func matvecBatch(_ matrices: [WeightMatrix], x: UnsafePointer<Float>, batch b: Int, outputs: [UnsafeMutablePointer<Float>],
                                   threads: Int) {
        precondition(matrices.count == outputs.count && !matrices.isEmpty, "one output per matrix")
        let k = matrices[0].cols
        precondition(matrices.allSatisfy { $0.cols == k }, "matrices of one product must share their width")
        let types = matrices.map { $0.type.rawValue }, ns = matrices.map(\.rows)
        let ws: [UnsafeRawPointer?] = matrices.map { $0.data }
        let ys: [UnsafeMutablePointer<Float>?] = outputs
        withExtendedLifetime(matrices) { hr_matvec_batch_multi(Int32(matrices.count), types, ws, ns, k, x, b, ys, Int32(threads)) }
    }

    /// The reference for both: dequantize each row, accumulate in double. Slow; for tests.
    public static func reference(_ w: WeightMatrix, x: [Float], batch b: Int) -> [Float] {
        precondition(x.count == b * w.cols, "x has \(x.count) values, expected \(b * w.cols)")
        var y = [Float](repeating: 0, count: b * w.rows)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                hr_matvec_reference(w.type.rawValue, w.data, w.rows, w.cols, xp.baseAddress, b, yp.baseAddress)
            }
        }
        return y
    }

    /// Rows are padded to a multiple of this before sgemm (`forward`).
    public static let sgemmRowBlock = 16

    /// Prefill: out (m, rows) = inp (m, cols) · Wᵀ (`accumulate` adds to out). f32 goes straight to
    /// sgemm; the other formats are dequantized a tile of rows at a time into `scratch` and multiplied
    /// by sgemm, which at prompt lengths costs a few percent over f32 (the dequantization is O(rows·cols),
    /// the product O(m·rows·cols)). OpenBLAS must already be set to `threads`.
    ///
    /// m is padded with zero rows to a multiple of `sgemmRowBlock` (copied through `scratch`): OpenBLAS's sgemm
    /// here takes the prompt's rows in blocks of 16 and the rest in smaller blocks that cost nearly a block
    /// each (`headroom bench steps`, `small` q4_0, 2 threads, one step of the whole model: 80 rows 940 ms,
    /// 84 rows 1,117, 88 rows 1,137, 92 rows 1,300, 96 rows 1,008). Padded, a step of 81–96 rows costs 96's.
    /// Each output row is its own input row's product: the zero rows' outputs are dropped. (Which of OpenBLAS's
    /// kernels takes a row, and so its last bits, already depended on the step's other rows.)
    public static func forward(_ w: WeightMatrix, inp: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>,
                               accumulate: Bool = false, scratch: TileScratch, threads: Int) {
        let n = w.rows, k = w.cols
        let padded = paddedRows(m)
        guard padded > m else {
            product(w, inp: inp, m: m, out: out, accumulate: accumulate, scratch: scratch, threads: threads)
            return
        }
        let (pin, pout) = scratch.padding(inputs: padded * k, outputs: padded * n)
        pin.update(from: inp, count: m * k)
        (pin + m * k).initialize(repeating: 0, count: (padded - m) * k)
        if accumulate { pout.update(from: out, count: m * n) }
        product(w, inp: UnsafePointer(pin), m: padded, out: pout, accumulate: accumulate, scratch: scratch, threads: threads)
        out.update(from: pout, count: m * n)
    }

    /// The rows `forward` hands sgemm for `m`: m rounded up to a multiple of `sgemmRowBlock`.
    public static func paddedRows(_ m: Int) -> Int {
        m <= 0 ? 0 : (m + sgemmRowBlock - 1) / sgemmRowBlock * sgemmRowBlock
    }

    private static func product(_ w: WeightMatrix, inp: UnsafePointer<Float>, m: Int, out: UnsafeMutablePointer<Float>,
                                accumulate: Bool, scratch: TileScratch, threads: Int) {
        let n = w.rows, k = w.cols
        if w.type == .f32 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, inp, Int32(k),
                        w.data.assumingMemoryBound(to: Float.self), Int32(k), accumulate ? 1 : 0, out, Int32(n))
            return
        }
        let tile = scratch.tileRows(cols: k)
        var r0 = 0
        while r0 < n {
            let rows = min(tile, n - r0)
            let buf = scratch.buffer(count: rows * k)
            w.dequantize(rows: r0, count: rows, into: buf, threads: threads)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(rows), Int32(k), 1, inp, Int32(k),
                        buf, Int32(k), accumulate ? 1 : 0, out + r0, Int32(n))
            r0 += rows
        }
    }
}

/// The reused buffers of prefill's products: the weight tiles quantized formats are dequantized into (about
/// `floats` floats, 8 MiB by default), and the padded rows' input and output (`QMatmul.forward`).
public final class TileScratch: @unchecked Sendable {
    private var storage: FloatBuffer
    private var paddedInput = FloatBuffer(count: 0), paddedOutput = FloatBuffer(count: 0)
    public let floats: Int
    public init(floats: Int = 2 << 20) { self.floats = floats; storage = FloatBuffer(count: 0) }

    /// Buffers of at least `inputs` and `outputs` floats for padded rows, grown as needed and kept.
    func padding(inputs: Int, outputs: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        if paddedInput.count < inputs { paddedInput = FloatBuffer(count: inputs) }
        if paddedOutput.count < outputs { paddedOutput = FloatBuffer(count: outputs) }
        return (paddedInput.pointer, paddedOutput.pointer)
    }

    /// Rows per tile for a matrix of `cols` columns: a multiple of 16, at least 16.
    func tileRows(cols: Int) -> Int { max(16, floats / cols / 16 * 16) }

    func buffer(count: Int) -> UnsafeMutablePointer<Float> {
        if storage.count < count { storage = FloatBuffer(count: count) }
        return storage.pointer
    }

    /// Bytes held now.
    public var bytes: Int { storage.bytes + paddedInput.bytes + paddedOutput.bytes }
}

/// Naive Swift versions of the first four formats, written from the GGUF/ggml layout independently of the C
/// code, so tests can check the C kernels byte for byte (the other formats are checked against gguf-py's output).
public enum QuantReference {
    /// Quantizes one row (count a multiple of 32 for the block types) into its bytes.
    public static func quantize(_ x: [Float], type: QuantType) -> [UInt8] {
        var out: [UInt8] = []
        func f16(_ v: Float) -> [UInt8] { let b = Float16(v).bitPattern; return [UInt8(b & 0xFF), UInt8(b >> 8)] }
        switch type {
        case .f32:
            for v in x { let b = v.bitPattern; out += [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)] }
        case .f16:
            for v in x { out += f16(v) }
        case .q8_0:
            for blk in stride(from: 0, to: x.count, by: 32) {
                let v = Array(x[blk..<blk + 32])
                let amax = v.map { abs($0) }.max()!
                let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
                out += f16(d)
                for e in v { out.append(UInt8(bitPattern: Int8((e * id).rounded(.toNearestOrAwayFromZero)))) }
            }
        case .q4_0:
            for blk in stride(from: 0, to: x.count, by: 32) {
                let v = Array(x[blk..<blk + 32])
                var amax: Float = 0, mx: Float = 0
                for e in v where abs(e) > amax { amax = abs(e); mx = e }
                let d = mx / -8, id: Float = d != 0 ? 1 / d : 0
                out += f16(d)
                for j in 0..<16 {
                    let lo = min(15, Int(Int8(truncatingIfNeeded: Int(v[j] * id + 8.5))))
                    let hi = min(15, Int(Int8(truncatingIfNeeded: Int(v[j + 16] * id + 8.5))))
                    out.append(UInt8(lo) | UInt8(hi) << 4)
                }
            }
        default:
            preconditionFailure("QuantReference covers f32, f16, q8_0 and q4_0; \(type) is checked against gguf-py's fixtures")
        }
        return out
    }

    /// Dequantizes one row of `count` elements from its bytes.
    public static func dequantize(_ bytes: [UInt8], type: QuantType, count: Int) -> [Float] {
        func f16(_ i: Int) -> Float { Float(Float16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)) }
        var out: [Float] = []
        switch type {
        case .f32:
            for i in 0..<count {
                let b = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
                out.append(Float(bitPattern: b))
            }
        case .f16:
            for i in 0..<count { out.append(f16(2 * i)) }
        case .q8_0:
            for b in 0..<count / 32 {
                let base = b * 34, d = f16(base)
                for j in 0..<32 { out.append(Float(Int8(bitPattern: bytes[base + 2 + j])) * d) }
            }
        case .q4_0:
            for b in 0..<count / 32 {
                let base = b * 18, d = f16(base)
                var lo: [Float] = [], hi: [Float] = []
                for j in 0..<16 {
                    let q = bytes[base + 2 + j]
                    lo.append(Float(Int(q & 0x0F) - 8) * d)
                    hi.append(Float(Int(q >> 4) - 8) * d)
                }
                out += lo + hi
            }
        default:
            preconditionFailure("QuantReference covers f32, f16, q8_0 and q4_0; \(type) is checked against gguf-py's fixtures")
        }
        return out
    }
}
