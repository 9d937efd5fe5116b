// The worker: the mutation loop in a child process, with memory capped and a crash handler installed, telling
// the supervisor through the shared page which input it is on. Findings that return (unclear errors) it saves
// itself; crashes and hangs the supervisor saves from the shared page.
import Foundation
import HeadroomFuzz

struct Worker {
    let target: FuzzTarget
    let state: SharedState
    let options: FuzzOptions

    func run() throws -> Int32 {
        var limit = rlimit(rlim_cur: rlim_t(options.memoryMiB) << 20, rlim_max: rlim_t(options.memoryMiB) << 20)
        if setrlimit(Int32(RLIMIT_AS.rawValue), &limit) != 0 {
            FileHandle.standardError.write(Data("headroom-fuzz: cannot cap memory: \(String(cString: strerror(errno)))\n".utf8))
        }
        if let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) {
            try maps.write(toFile: state.path + ".maps", atomically: false, encoding: .utf8)
        }
        CrashCapture.install(state)

        let corpus = target.corpus(in: options.corpusDirectory).map(\.bytes)
        var session = FuzzSession(target: target, corpus: corpus, seed: options.seed)
        let deadline = monotonicNanos() + UInt64(options.seconds * 1e9)
        var nextReport = monotonicNanos() + 10_000_000_000
        var findings = 0
        var unclearSeen = Set<String>()
        while monotonicNanos() < deadline {
            let input = session.nextInput()
            state.begin(input)
            let verdict = target.run(input)
            state.end()
            let isNew = session.record(input, verdict)
            state[.iterations] = UInt64(session.iterations)
            state[.corpusSize] = UInt64(session.corpus.count)
            state[.signatures] = UInt64(session.signatures.count)
            if isNew, let folder = options.newInputsDirectory, !verdict.isFinding {
                try FuzzFiles.save(input, in: folder, prefix: "new", extension: target.fileExtension)
            }
            if case .unclear(let message) = verdict, unclearSeen.insert(verdict.signature).inserted {
                findings += 1
                let path = try FuzzFiles.save(input, in: options.findingsDirectory, prefix: "unclear", extension: target.fileExtension)
                print("\(target.name): FINDING (unclear error): \(message)\n  input: \(path)\n  reproduce: \(options.replayCommand(path))")
            }
            if monotonicNanos() >= nextReport {
                nextReport += 10_000_000_000
                print("\(target.name): \(session.iterations) inputs, \(session.signatures.count) verdicts, corpus \(session.corpus.count)")
            }
        }
        if options.showVerdicts {
            for (signature, count) in session.signatures.sorted(by: { $0.value > $1.value }) { print("\(target.name): \(count)× \(signature)") }
        }
        return findings > 0 ? 1 : 0
    }
}

enum FuzzFiles {
    /// Saves `input` as `PREFIX-HASH.EXT` in `folder` (created), and returns the path.
    @discardableResult
    static func save(_ input: [UInt8], in folder: String, prefix: String, extension ext: String) throws -> String {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = (folder as NSString).appendingPathComponent("\(prefix)-\(hash(input)).\(ext)")
        try Data(input).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// FNV-1a 64 of the bytes, 16 hex digits.
    static func hash(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
