// headroom-fuzz: runs one of HeadroomFuzz's targets (the GGUF reader, the scenario loader, a catalog file, the
// request-body parser) under seeded mutation for a bounded time, in a supervised child process, and saves every
// input that crashes, hangs or is refused without a clear error. `--replay` runs saved inputs once in this
// process, to reproduce.
import ArgumentParser
import Foundation
import HeadroomFuzz

/// What the supervisor passes on to its workers.
struct FuzzOptions {
    var seconds: Double
    var seed: UInt64
    var corpusDirectory: String
    var findingsDirectory: String
    var newInputsDirectory: String?
    var inputMilliseconds: Int
    var memoryMiB: Int
    var repository: String
    var target: String
    var showVerdicts: Bool

    func workerArguments(target: String, state: String, seed: UInt64, seconds: Double) -> [String] {
        var a = [target, "--seconds", String(seconds), "--seed", String(seed), "--corpus", corpusDirectory,
                 "--findings", findingsDirectory, "--input-ms", String(inputMilliseconds), "--memory-mib", String(memoryMiB),
                 "--repository", repository, "--worker-state", state]
        if let newInputsDirectory { a += ["--save-new", newInputsDirectory] }
        if showVerdicts { a.append("--show-verdicts") }
        return a
    }

    func replayCommand(_ path: String) -> String {
        "swift run headroom-fuzz \(target) --repository \(repository) --replay \(path)"
    }
}

struct HeadroomFuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "headroom-fuzz",
        abstract: "Fuzzes Headroom's file readers with seeded mutations and saves the inputs that break them.",
        discussion: """
            Targets: \(FuzzTargets.names.joined(separator: ", ")). A finding is an input that crashes the reader, runs \
            longer than --input-ms, or is refused with an error that does not name the file; each is saved in \
            --findings with the command that reproduces it. Exit status: 0 no findings, 1 findings, 2 usage.
            """)

    @Argument(help: ArgumentHelp("The readers to fuzz, one after the other (default: all).", valueName: "target"))
    var targets: [String] = []

    @Option(help: "How long to fuzz each target, in seconds.")
    var seconds: Double = 30

    @Option(help: "The seed of the mutation sequence (the same seed and corpus give the same inputs).")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Saved inputs to start from: DIR/TARGET for each target.", valueName: "dir"))
    var corpus = "Tests/Fuzz/corpus"

    @Option(help: ArgumentHelp("Where findings are saved: DIR/TARGET for each target.", valueName: "dir"))
    var findings = ".build/fuzz/findings"

    @Option(name: .customLong("save-new"), help: ArgumentHelp("Also save every input that reached a verdict not seen before, in DIR/TARGET.", valueName: "dir"))
    var saveNew: String?

    @Flag(name: .customLong("show-verdicts"), help: "At the end, list the verdicts reached (which checks refused how many inputs).")
    var showVerdicts = false

    @Option(name: .customLong("input-ms"), help: "An input that runs longer than this is a hang.")
    var inputMilliseconds: Int = 3000

    @Option(name: .customLong("memory-mib"), help: "The worker's address-space limit: an allocation past it is a crash, not a swap storm.")
    var memoryMiB: Int = 4096

    @Option(help: ArgumentHelp("The checkout's root (seeds come from its Scenarios/).", valueName: "dir"))
    var repository: String = "."

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Run these saved inputs once, in this process, and print each verdict.", valueName: "file"))
    var replay: [String] = []

    @Option(name: .customLong("minimize-into"), help: ArgumentHelp("With --replay: shrink each input while its verdict stays the same, and save the result in DIR (for inputs that do not crash).", valueName: "dir"))
    var minimizeInto: String?

    @Option(name: .customLong("worker-state"), help: .hidden)
    var workerState: String?

    /// The targets named, `all` (or none) meaning every one.
    var selected: [String] { targets.isEmpty || targets == ["all"] ? FuzzTargets.names : targets }

    func validate() throws {
        for target in selected where !FuzzTargets.names.contains(target) {
            throw ValidationError("unknown target \"\(target)\"; the targets are \(FuzzTargets.names.joined(separator: ", ")) (or all)")
        }
        guard seconds > 0, inputMilliseconds > 0, memoryMiB >= 256 else {
            throw ValidationError("--seconds and --input-ms must be positive, --memory-mib at least 256")
        }
        if (!replay.isEmpty || workerState != nil) && selected.count != 1 {
            throw ValidationError("--replay takes exactly one target")
        }
    }

    func run() throws {
        var status: Int32 = 0
        for target in selected {
            func folder(_ root: String) -> String { workerState == nil ? (root as NSString).appendingPathComponent(target) : root }
            let options = FuzzOptions(seconds: seconds, seed: seed, corpusDirectory: folder(corpus), findingsDirectory: folder(findings),
                                      newInputsDirectory: saveNew.map(folder),
                                      inputMilliseconds: inputMilliseconds, memoryMiB: memoryMiB, repository: repository,
                                      target: target, showVerdicts: showVerdicts)
            let fuzzTarget: FuzzTarget
            do { fuzzTarget = try FuzzTargets.make(target, repository: repository) } catch {
                FileHandle.standardError.write(Data("headroom-fuzz: \(error)\n".utf8))
                throw ExitCode(2)
            }
            if !replay.isEmpty {
                status = try Self.replay(replay, on: fuzzTarget, minimizeInto: minimizeInto)
            } else if let workerState {
                let state = try SharedState(path: workerState, maxInputBytes: fuzzTarget.maxInputBytes, create: false)
                status = try Worker(target: fuzzTarget, state: state, options: options).run()
            } else {
                let result = try Supervisor(target: fuzzTarget, options: options).run()
                if result == 2 { throw ExitCode(2) }
                status = max(status, result)
            }
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// Runs each file once and prints its verdict; 1 when any is a finding. A crash here is the reproduction.
    /// With `minimizeInto`, each input is also shrunk while its verdict stays the same and saved there.
    static func replay(_ files: [String], on target: FuzzTarget, minimizeInto: String?) throws -> Int32 {
        var status: Int32 = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): cannot read")
                status = 2
                continue
            }
            let input = [UInt8](data)
            let verdict = target.run(input)
            switch verdict {
            case .accepted: print("\(file): accepted")
            case .refused(let message, _): print("\(file): refused: \(message)")
            case .unclear(let message):
                print("\(file): FINDING: \(message)")
                status = max(status, 1)
            }
            if let minimizeInto {
                let small = FuzzMinimizer.minimize(input, target: target)
                let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
                let path = (minimizeInto as NSString).appendingPathComponent("\(name).\(target.fileExtension)")
                try FileManager.default.createDirectory(atPath: minimizeInto, withIntermediateDirectories: true)
                try Data(small).write(to: URL(fileURLWithPath: path))
                print("  minimized: \(input.count) -> \(small.count) bytes, \(path)")
            }
        }
        return status
    }
}

// Line-buffered even into a pipe, so the supervisor's and the workers' lines stay in order and a crashing
// worker's last lines are not lost.
setvbuf(stdout, nil, _IOLBF, 0)
HeadroomFuzzCommand.main()
