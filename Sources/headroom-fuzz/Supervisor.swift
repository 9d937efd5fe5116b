// The supervisor: starts workers (this same executable with --worker-state), watches the shared page for an
// input that runs past its time limit, and when a worker dies saves the input it was running, names the crash by
// its first frame in Headroom's sources, prints how to reproduce it, and starts a new worker until time is up.
import Foundation
import HeadroomFuzz

struct Supervisor {
    let target: FuzzTarget
    let options: FuzzOptions

    /// Keeps at most this many saved inputs per crash site, and stops after this many crashes in all.
    static let inputsPerSite = 2
    static let crashLimit = 50

    func run() throws -> Int32 {
        try FileManager.default.createDirectory(atPath: options.findingsDirectory, withIntermediateDirectories: true)
        let statePath = (options.findingsDirectory as NSString).appendingPathComponent(".state-\(target.name)-\(getpid())")
        let state = try SharedState(path: statePath, maxInputBytes: target.maxInputBytes, create: true)
        defer {
            for suffix in ["", ".maps", ".stderr"] { unlink(statePath + suffix) }
        }
        let started = monotonicNanos()
        let end = started + UInt64(options.seconds * 1e9)
        var iterations: UInt64 = 0
        var crashes = 0
        var sites: [String: Int] = [:]
        var failed = false
        var restart: UInt64 = 0
        print("\(target.name): \(target.summary); \(options.seconds) s, seed \(options.seed), corpus \(options.corpusDirectory)")
        while monotonicNanos() + 200_000_000 < end && crashes < Self.crashLimit {
            let seconds = Double(end - monotonicNanos()) / 1e9
            let seed = options.seed &+ restart &* 0x9E37_79B9_7F4A_7C15
            restart += 1
            for slot in [SharedState.Slot.phase, .iterations, .signal, .frameCount] { state[slot] = 0 }
            let worker = Process()
            worker.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            worker.arguments = options.workerArguments(target: target.name, state: statePath, seed: seed, seconds: seconds)
            var environment = ProcessInfo.processInfo.environment
            environment["SWIFT_BACKTRACE"] = "enable=no"  // the handler records the stack; the runtime's backtracer is slow
            worker.environment = environment
            _ = FileManager.default.createFile(atPath: statePath + ".stderr", contents: nil)
            worker.standardError = FileHandle(forWritingAtPath: statePath + ".stderr")
            try worker.run()

            var hung = false
            while worker.isRunning {
                usleep(20_000)
                if state[.phase] == 1, monotonicNanos() &- state[.startedNanos] > UInt64(options.inputMilliseconds) * 1_000_000 {
                    hung = true
                    kill(worker.processIdentifier, SIGKILL)
                    worker.waitUntilExit()
                }
            }
            iterations += state[.iterations]
            FuzzScratch.removeLeftovers(of: worker.processIdentifier)
            let stderr = (try? String(contentsOfFile: statePath + ".stderr", encoding: .utf8)) ?? ""
            if worker.terminationReason == .exit && !hung {  // it ran to its deadline
                if !stderr.isEmpty { FileHandle.standardError.write(Data(stderr.utf8)) }
                if worker.terminationStatus == 2 { return 2 }  // the worker could not start
                if worker.terminationStatus != 0 { failed = true }
                break
            }
            crashes += 1
            failed = true
            let input = state.input
            let report = hung ? nil : CrashReport.make(signal: Int32(state[.signal]), addresses: state.frames,
                                                       maps: (try? String(contentsOfFile: statePath + ".maps", encoding: .utf8)) ?? "")
            let site = hung ? "hang" : report?.site ?? "signal \(worker.terminationStatus)"
            let count = sites[site, default: 0]
            sites[site] = count + 1
            guard count < Self.inputsPerSite else { continue }
            let kind = hung ? "hang" : "crash"
            let path = try FuzzFiles.save(input, in: options.findingsDirectory, prefix: kind, extension: target.fileExtension)
            var text = "\(target.name): FINDING (\(kind)"
            if hung { text += " over \(options.inputMilliseconds) ms" } else { text += ", signal \(worker.terminationStatus), at \(site)" }
            text += ") on a \(input.count)-byte input\n"
            if let failure = report?.failure {
                text += "  \(failure)\n"
            } else if let message = stderr.split(separator: "\n").last(where: { $0.contains("Fatal error") || $0.contains("error:") }) {
                text += "  \(message)\n"
            }
            for frame in report?.frames.prefix(8) ?? [] { text += "    \(frame.location)  \(frame.function.prefix(120))\n" }
            text += "  input: \(path)\n  reproduce: \(options.replayCommand(path))\n"
            print(text, terminator: "")
        }
        let elapsed = Double(monotonicNanos() - started) / 1e9
        let rate = Double(iterations) / max(elapsed, 1e-9)
        print(String(format: "%@: %llu inputs in %.1f s (%.0f/s), %d worker restart(s)", target.name, iterations, elapsed, rate, Int(restart) - 1)
              + (sites.isEmpty ? "" : "; crashes by site: " + sites.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")))
        if failed { print("\(target.name): findings saved in \(options.findingsDirectory)") }
        return failed ? 1 : 0
    }
}
