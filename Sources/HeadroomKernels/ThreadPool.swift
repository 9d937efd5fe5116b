// The persistent worker pool the decode kernels run on (CKernels' hr_pool_run), for Swift code too:
// spawning threads per call would cost more than a decode step's small operations.
import CKernels

public enum ThreadPool {
    /// Runs `body(t)` for t in 0..<n, t = 0 on the calling thread, and returns when all are done.
    public static func run(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 { body(0); return }
        withoutActuallyEscaping(body) { body in
            final class Box { let f: (Int) -> Void; init(_ f: @escaping (Int) -> Void) { self.f = f } }
            let box = Box(body)
            withExtendedLifetime(box) {
                hr_pool_run(Int32(n), { ctx, t, _ in
                    Unmanaged<Box>.fromOpaque(ctx!).takeUnretainedValue().f(Int(t))
                }, Unmanaged.passUnretained(box).toOpaque())
            }
        }
    }
}
