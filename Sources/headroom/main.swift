// Entry point. Before anything else: make sure OpenBLAS runs the kernels this CPU deserves. Then parse
// and run, mapping every error — the argument parser's included — to the documented exit codes.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomKernels

/// OpenBLAS picks its kernels when the library loads, from the CPU model. Debian's 0.3.21 does not
/// know recent Xeons and falls back to SSE3 "Prescott" kernels, measured here at a fifth of the
/// AVX-512 ones' speed. Its only switch is the OPENBLAS_CORETYPE variable, read at load time, so when
/// the user has not set it and OpenBLAS chose a generic core, we set it and start again once.
func relaunchWithFastBLASIfNeeded() {
    let env = ProcessInfo.processInfo.environment
    guard env["OPENBLAS_CORETYPE"] == nil, env["HEADROOM_BLAS_RELAUNCHED"] == nil,
          let hint = BLASThreads.preferredCoreType, BLASThreads.isGenericCore(BLASThreads.coreName) else { return }
    setenv("OPENBLAS_CORETYPE", hint, 1)
    setenv("HEADROOM_BLAS_RELAUNCHED", "1", 1)
    let args = CommandLine.arguments
    var cargs = args.map { strdup($0) } + [nil]
    execv("/proc/self/exe", &cargs)
    // execv only returns on failure: carry on with the generic kernels, and say so.
    FileHandle.standardError.write(Data("headroom: warning: could not restart with OPENBLAS_CORETYPE=\(hint); OpenBLAS runs its generic \(BLASThreads.coreName) kernels\n".utf8))
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
