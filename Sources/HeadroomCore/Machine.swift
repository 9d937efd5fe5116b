// What machine this is: the facts that decide whether two runs are comparable.
import Foundation

public struct MachineInfo: Codable, Equatable, Sendable {
    public var cpuModel: String
    public var cores: Int
    public var memoryBytes: Int64
    public var kernel: String
    public var hostname: String
    /// A short hash of cpu model, cores and memory: equal fingerprints mean the same kind of machine.
    public var fingerprint: String

    public init(cpuModel: String, cores: Int, memoryBytes: Int64, kernel: String, hostname: String) {
        self.cpuModel = cpuModel; self.cores = cores; self.memoryBytes = memoryBytes
        self.kernel = kernel; self.hostname = hostname
        fingerprint = String(fnv1a64Hex("\(cpuModel)|\(cores)|\(memoryBytes / (1 << 30))").prefix(12))
    }

    /// Reads /proc and uname; falls back to what Foundation knows where /proc is absent.
    public static func current() -> MachineInfo {
        let info = ProcessInfo.processInfo
        var model = "unknown CPU"
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return MachineInfo(cpuModel: model, cores: info.activeProcessorCount,
                           memoryBytes: Int64(info.physicalMemory), kernel: release, hostname: info.hostName)
    }
}
