// Memory-bandwidth kernels for the probe: read-only (one stream and several rows per thread, and the
// decode kernels' own walk on their thread pool) and the STREAM triad, timed as one wall-clock interval.
import CKernels
import Dispatch
import Foundation

public enum Bandwidth {
    /// How each thread walks its slice when reading.
    public enum ReadPattern: Sendable, Equatable {
        /// One sequential stream per thread.
        case stream
        /// `rows` rows side by side per thread, the way a matrix-vector product reads weights.
        case rows(Int)
        /// As the decode kernels read a weight matrix of rows `rowFloats` wide: four rows at a time with
        /// software prefetch, chunks of 64 rows shared by the kernels' thread pool (not one slice per thread).
        case prefetched(rowFloats: Int)
    }

    /// The instruction set the C kernels chose on this CPU.
    public static var isa: String { String(cString: hr_isa()) }

    /// The instruction set `pattern` runs on: the prefetched walk follows the decode kernels' choice.
    public static func isa(of pattern: ReadPattern) -> String {
        if case .prefetched = pattern { return String(cString: hr_quant_isa()) }
        return isa
    }

    /// Reads all of `buffer` once, split evenly across `threads`; returns seconds of wall time.
    /// The sum is returned too so the reads cannot be optimised away.
    public static func timeRead(_ buffer: FloatBuffer, threads: Int, pattern: ReadPattern) -> (seconds: Double, checksum: Float) {
        let n = buffer.count
        let per = n / threads
        let base = UnsafePointer(buffer.pointer)
        if case .prefetched(let row) = pattern {
            // The pool shares the work out itself: one call, on the calling thread and the pool's workers.
            let start = DispatchTime.now().uptimeNanoseconds
            let sum = hr_read_prefetch(base, n, max(row, 1), Int32(threads))
            return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, sum)
        }
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: threads)
        defer { sums.deallocate() }
        let start = DispatchTime.now().uptimeNanoseconds
        parallel(threads) { t in
            let count = t == threads - 1 ? n - t * per : per
            let p = base + t * per
            switch pattern {
            case .stream: sums[t] = hr_read_stream(p, count)
            case .rows(let r): sums[t] = hr_read_rows(p, count, r)
            case .prefetched: preconditionFailure("handled above")
            }
        }
        let end = DispatchTime.now().uptimeNanoseconds
        var total: Float = 0
        for t in 0..<threads { total += sums[t] }
        return (Double(end - start) / 1e9, total)
    }

    /// a = b + s·c over the whole arrays, split across `threads`; returns seconds of wall time.
    public static func timeTriad(a: FloatBuffer, b: FloatBuffer, c: FloatBuffer, threads: Int) -> Double {
        precondition(a.count == b.count && b.count == c.count, "triad arrays differ in length")
        let n = a.count
        // Slices on 16-float boundaries keep every thread's stores aligned for non-temporal writes.
        let per = (n / threads) & ~15
        let pa = a.pointer, pb = UnsafePointer(b.pointer), pc = UnsafePointer(c.pointer)
        let start = DispatchTime.now().uptimeNanoseconds
        parallel(threads) { t in
            let lo = t * per
            let count = t == threads - 1 ? n - lo : per
            hr_triad(pa + lo, pb + lo, pc + lo, 3, count)
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}

/// Runs `body(t)` for t in 0..<n on n threads at once, returning when all have exited.
/// The calling thread takes t = 0, so one thread costs no hand-off. Threads are joined, so `body`
/// never outlives the call.
public func parallel(_ n: Int, _ body: (Int) -> Void) {
    if n <= 1 { body(0); return }
    withoutActuallyEscaping(body) { body in
        final class Job {
            let body: (Int) -> Void
            let index: Int
            init(_ body: @escaping (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
        }
        var threads: [pthread_t] = []
        var jobs: [Job] = []
        for t in 1..<n {
            let job = Job(body, t)
            jobs.append(job)
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeUnretainedValue()
                job.body(job.index)
                return nil
            }, Unmanaged.passUnretained(job).toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(tid)
        }
        body(0)
        for tid in threads { pthread_join(tid, nil) }
        jobs.removeAll()
    }
}
