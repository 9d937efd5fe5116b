// Entry point. Before anything else: make sure OpenBLAS runs the kernels this CPU deserves. Then parse
// and run, mapping every error — the argument parser's included — to the documented exit codes.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomKernels

/// OpenBLAS reads two settings only when the library loads, from the environment, so when one needs
/// changing we set it and start again once (execv: same process id, same arguments):
/// - its kernels, chosen from the CPU model: Debian's 0.3.21 does not know recent Xeons and falls back to
///   SSE3 "Prescott" kernels, measured here at a fifth of the AVX-512 ones' speed (`OPENBLAS_CORETYPE`,
///   when the user has not set it and OpenBLAS chose a generic core);
/// - how long its worker threads spin after a call before they sleep (`OPENBLAS_THREAD_TIMEOUT`, by default
///   2^28 cycles, about 0.1 s). The serving engine alternates OpenBLAS's sgemm (prompt chunks) with its own
///   thread pool (decodes) on the same cores, and the spinning threads take those cores: on `small` q4_0 at 2
///   threads, a decode step right after a prefill step took 54 ms instead of 37 (docs/engine.md); in `run`'s
///   inference cases, a 2-token decode right after the prompt's sgemm ran up to 1.6× slower than the same
///   decode after another prompt length. So every command that measures (`serve`, `bench`, `run`, `gate`,
///   `probe`) sets it to 4 (2^4 cycles: sleep at once) unless the user set it: the engine is measured as it
///   serves. (The gate's scenario runs one thread, where OpenBLAS starts no worker to spin.)
func relaunchWithFastBLASIfNeeded() {
    let env = ProcessInfo.processInfo.environment
    guard env["HEADROOM_BLAS_RELAUNCHED"] == nil else { return }
    var settings: [(name: String, value: String)] = []
    if env["OPENBLAS_CORETYPE"] == nil, let hint = BLASThreads.preferredCoreType, BLASThreads.isGenericCore(BLASThreads.coreName) {
        settings.append(("OPENBLAS_CORETYPE", hint))
    }
    let command = CommandLine.arguments.dropFirst().first
    if env["OPENBLAS_THREAD_TIMEOUT"] == nil, ["serve", "bench", "run", "gate", "probe"].contains(command ?? "") {
        settings.append(("OPENBLAS_THREAD_TIMEOUT", BLASThreads.servingThreadTimeout))
    }
    guard !settings.isEmpty else { return }
    for s in settings { setenv(s.name, s.value, 1) }
    setenv("HEADROOM_BLAS_RELAUNCHED", "1", 1)
    let args = CommandLine.arguments
    var cargs = args.map { strdup($0) } + [nil]
    execv("/proc/self/exe", &cargs)
    // execv only returns on failure: carry on with OpenBLAS as it loaded, and say so.
    let what = settings.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    FileHandle.standardError.write(Data("headroom: warning: could not restart with \(what); OpenBLAS runs as it loaded (\(BLASThreads.coreName) kernels)\n".utf8))
}

relaunchWithFastBLASIfNeeded()
do {
    var command = try Headroom.parseAsRoot()
    // HEADROOM_PARSE_ONLY=1: parse and validate the command line, run nothing (the documentation's
    // examples are checked this way).
    if ProcessInfo.processInfo.environment["HEADROOM_PARSE_ONLY"] == "1" { exit(Exit.ok) }
    try command.run()
} catch {
    // --help and --version: their text on standard output, exit 0.
    if Headroom.exitCode(for: error) == .success { Headroom.exit(withError: error) }
    if let message = Exit.message(for: error) {
        // The parser's messages start "Error: "; ours are prefixed by warn().
        if message.hasPrefix("Error: ") {
            FileHandle.standardError.write(Data((TerminalText.escape(message) + "\n").utf8))
        } else {
            warn(message)
        }
    }
    exit(Exit.code(for: error))
}
