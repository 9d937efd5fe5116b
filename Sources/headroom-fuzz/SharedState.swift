// The page the worker and the supervisor share: which input the worker is running and since when, how far it
// got, and — written by the worker's crash handler — the signal and the return addresses at the crash. A file
// mapped by both, so it outlives the worker.
import Foundation

/// A state file mapped shared. The header is `UInt64` slots; the input being run follows at `inputOffset`.
final class SharedState {
    enum Slot: Int {
        case phase = 0        // 0 between inputs, 1 while one runs
        case startedNanos     // CLOCK_MONOTONIC when the current input started
        case inputLength
        case iterations
        case signal           // set by the crash handler
        case frameCount
        case corpusSize
        case signatures
        case frames = 16      // frameLimit return addresses from here on
    }

    static let frameLimit = 48
    static let inputOffset = 4096

    let path: String
    let size: Int
    private let base: UnsafeMutableRawPointer

    /// Creates (`create`) or opens the file at `path`, sized for inputs of up to `maxInputBytes`.
    init(path: String, maxInputBytes: Int, create: Bool) throws {
        self.path = path
        size = Self.inputOffset + maxInputBytes
        let fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0o600)
        guard fd >= 0 else { throw FuzzToolError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if create, ftruncate(fd, off_t(size)) != 0 { throw FuzzToolError("cannot size \(path): \(String(cString: strerror(errno)))") }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw FuzzToolError("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        base = p
    }

    deinit { munmap(base, size) }

    var slots: UnsafeMutablePointer<UInt64> { base.assumingMemoryBound(to: UInt64.self) }

    subscript(slot: Slot) -> UInt64 {
        get { slots[slot.rawValue] }
        set { slots[slot.rawValue] = newValue }
    }

    /// Marks `input` as running (copied here first, so a crash leaves it behind).
    func begin(_ input: [UInt8]) {
        input.withUnsafeBytes { (base + Self.inputOffset).copyMemory(from: $0.baseAddress!, byteCount: min($0.count, size - Self.inputOffset)) }
        self[.inputLength] = UInt64(input.count)
        self[.startedNanos] = monotonicNanos()
        self[.phase] = 1
    }

    func end() { self[.phase] = 0 }

    /// The input that was running.
    var input: [UInt8] {
        let n = min(Int(self[.inputLength]), size - Self.inputOffset)
        return [UInt8](UnsafeRawBufferPointer(start: base + Self.inputOffset, count: n))
    }

    /// Return addresses the crash handler recorded, innermost first.
    var frames: [UInt] {
        (0..<min(Int(self[.frameCount]), Self.frameLimit)).map { UInt(slots[Slot.frames.rawValue + $0]) }
    }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A usage or setup problem of the tool itself; exits 2.
struct FuzzToolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
