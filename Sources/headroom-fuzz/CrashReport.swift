// Where a worker crashed. The worker's signal handler records the return addresses on the stack (glibc's
// `backtrace`, looked up before any crash) and its memory map at start; the supervisor turns them into
// file:line frames with llvm-symbolizer, and names a crash by its first frame in Headroom's sources.
import Foundation

/// The worker's side: a handler for the signals a trap or a bad access raises, on its own stack so that a stack
/// overflow is caught too. It only stores into the shared page, then lets the signal kill the process.
enum CrashCapture {
    typealias BacktraceFunction = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int32) -> Int32

    nonisolated(unsafe) static var state: UnsafeMutablePointer<UInt64>?
    nonisolated(unsafe) static var backtrace: BacktraceFunction?
    nonisolated(unsafe) static var buffer = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: SharedState.frameLimit)

    static func install(_ shared: SharedState) {
        state = shared.slots
        if let symbol = dlsym(nil, "backtrace") {  // RTLD_DEFAULT: glibc's execinfo is not in Swift's Glibc module
            backtrace = unsafeBitCast(symbol, to: BacktraceFunction.self)
        }
        _ = backtrace?(buffer, Int32(SharedState.frameLimit))  // loads the unwinder now, not inside the handler

        let altSize = 1 << 16
        var stack = stack_t()
        stack.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: altSize, alignment: 16)
        stack.ss_size = altSize
        stack.ss_flags = 0
        sigaltstack(&stack, nil)

        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = { signal, _, _ in
            if let state = CrashCapture.state {
                state[SharedState.Slot.signal.rawValue] = UInt64(signal)
                let n = Int(CrashCapture.backtrace?(CrashCapture.buffer, Int32(SharedState.frameLimit)) ?? 0)
                for i in 0..<n { state[SharedState.Slot.frames.rawValue + i] = UInt64(UInt(bitPattern: CrashCapture.buffer[i])) }
                state[SharedState.Slot.frameCount.rawValue] = UInt64(n)
            }
            // SA_RESETHAND restored the default action: returning re-runs the faulting instruction, which now kills.
        }
        action.sa_flags = SA_SIGINFO | SA_ONSTACK | Int32(bitPattern: UInt32(SA_RESETHAND))
        sigemptyset(&action.sa_mask)
        for s in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGABRT] { sigaction(s, &action, nil) }
    }
}

/// The supervisor's side: the worker's memory map, and symbolized frames.
struct CrashReport {
    struct Frame {
        var function: String
        var location: String  // file:line, or the object and offset when there is no line
        var failure: String? = nil
    }

    var signal: Int32
    var frames: [Frame]

    /// What the runtime said it trapped on, when the trap was one the compiler inserted.
    var failure: String? { frames.first?.failure }

    /// The first frame in Headroom's own sources (`Sources/Headroom…/File.swift:line`), which names the crash.
    var site: String? {
        frames.first { $0.location.contains("/Sources/Headroom") }.map { frame in
            let parts = frame.location.split(separator: "/")
            return parts.suffix(2).joined(separator: "/")
        }
    }

    static func make(signal: Int32, addresses: [UInt], maps: String) -> CrashReport {
        struct Mapping { var start: UInt, end: UInt, base: UInt, path: String }
        var mappings: [Mapping] = []
        var bases: [String: UInt] = [:]
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/") else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                  let offset = UInt(fields[2], radix: 16) else { continue }
            let path = String(fields[5])
            if offset == 0, bases[path] == nil { bases[path] = start }
            mappings.append(Mapping(start: start, end: end, base: 0, path: path))
        }
        var lookups: [(path: String, offset: UInt)] = []
        for address in addresses {
            guard let m = mappings.first(where: { $0.start <= address && address < $0.end }), let base = bases[m.path] else { continue }
            lookups.append((m.path, address - base))
        }
        // The stack starts in the handler, then the signal trampoline, then the faulting instruction itself; the
        // frames after it hold return addresses, which point after their call: those are looked up one byte back.
        let head = symbolize(Array(lookups.prefix(4)))
        let faulting = head.lastIndex { $0.function.contains("CrashCapture") }.map { $0 + 2 } ?? 0
        let frames = faulting < lookups.count
            ? symbolize(lookups.enumerated().filter { $0.offset >= faulting }.map { i, l in (l.path, i > faulting ? l.offset - 1 : l.offset) })
            : []
        return CrashReport(signal: signal, frames: frames)
    }

    /// Runs llvm-symbolizer (then swift-demangle) over the lookups. An address inside inlined code names the function
    /// it was inlined into and the innermost line that is not compiler-generated; a trap the compiler inserted
    /// (`Swift runtime failure: arithmetic overflow`) becomes the frame's `failure`. Frames that cannot be named keep
    /// the object and offset.
    static func symbolize(_ lookups: [(path: String, offset: UInt)]) -> [Frame] {
        guard !lookups.isEmpty else { return [] }
        let query = lookups.map { "\($0.path) 0x\(String($0.offset, radix: 16))" }.joined(separator: "\n") + "\n"
        let raw = runTool(["llvm-symbolizer", "--functions=linkage", "--inlining=true", "--relativenames"], input: query) ?? ""
        let demangled = runTool(["swift-demangle", "--simplified"], input: raw) ?? raw
        let blocks = demangled.components(separatedBy: "\n\n").filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        let unnamed = { (l: (path: String, offset: UInt)) in "\((l.path as NSString).lastPathComponent)+0x\(String(l.offset, radix: 16))" }
        guard blocks.count == lookups.count else { return lookups.map { Frame(function: "?", location: unnamed($0)) } }
        return zip(blocks, lookups).map { block, lookup in
            // Pairs of lines, innermost inlined function first.
            let lines = block.split(separator: "\n").map(String.init)
            let pairs = stride(from: 0, to: lines.count - 1, by: 2).map { (function: lines[$0], location: lines[$0 + 1]) }
            var frame = Frame(function: pairs.last?.function ?? "?", location: unnamed(lookup))
            if let real = pairs.first(where: { !$0.location.hasPrefix("??") && !$0.location.contains("<compiler-generated>") }) {
                let parts = real.location.split(separator: ":")  // file:line:column, without the column
                frame.location = parts.count >= 3 ? parts.dropLast().joined(separator: ":") : real.location
            }
            frame.failure = pairs.first { $0.function.hasPrefix("Swift runtime failure") }?.function
            return frame
        }
    }

    /// Runs a tool found on PATH with `input` on stdin; its stdout, or nil when it cannot run.
    static func runTool(_ arguments: [String], input: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        // Feed stdin from another thread so a large output cannot deadlock against a full input pipe.
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
