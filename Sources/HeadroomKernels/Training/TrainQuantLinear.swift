// The input gradient of y = x·Wᵀ for a quantized frozen weight (LoRA's base, QLoRA-style): the same
// dequantize-a-tile-of-rows-then-sgemm scheme as quantized prefill (QMatmul.forward), using its TileScratch.
import CBLAS

extension QMatmul {
    /// dinp (m, cols) += dout (m, rows) · W, W (rows, cols) in any format. f32 goes straight to sgemm; the
    /// other formats are dequantized `scratch.tileRows` rows at a time, each tile contributing
    /// dout[:, r0..<r0+rows] · W[r0..<r0+rows, :]. OpenBLAS must already be set to `threads`.
    public static func backwardInput(_ w: WeightMatrix, dout: UnsafePointer<Float>, m: Int, dinp: UnsafeMutablePointer<Float>,
                                     scratch: TileScratch, threads: Int) {
        let n = w.rows, k = w.cols
        if w.type == .f32 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(k), Int32(n), 1, dout, Int32(n),
                        w.data.assumingMemoryBound(to: Float.self), Int32(k), 1, dinp, Int32(k))
            return
        }
        let tile = scratch.tileRows(cols: k)
        var r0 = 0
        while r0 < n {
            let rows = min(tile, n - r0)
            let buf = scratch.buffer(count: rows * k)
            w.dequantize(rows: r0, count: rows, into: buf, threads: threads)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(k), Int32(rows), 1, dout + r0, Int32(n),
                        buf, Int32(k), 1, dinp, Int32(k))
            r0 += rows
        }
    }

    /// Bytes the tile buffer grows to for a matrix of `rows` × `cols` (what `TileScratch` allocates for it).
    public static func tileBytes(scratch: TileScratch, rows: Int, cols: Int) -> Int {
        min(scratch.tileRows(cols: cols), rows) * cols * MemoryLayout<Float>.stride
    }

    /// Bytes the padded-rows buffers grow to when `forward` takes `m` rows through matrices of these shapes:
    /// none when m is already a multiple of `sgemmRowBlock`, else the padded input of the widest and the
    /// padded output of the tallest (each buffer grows on its own).
    public static func paddingBytes(m: Int, shapes: [(rows: Int, cols: Int)]) -> Int {
        let padded = paddedRows(m)
        guard padded > m else { return 0 }
        return padded * ((shapes.map(\.cols).max() ?? 0) + (shapes.map(\.rows).max() ?? 0)) * MemoryLayout<Float>.stride
    }
}
