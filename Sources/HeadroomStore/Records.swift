// The rows of the results store: runs, the measurements (cases) each run made, and every raw sample.
import Foundation
import GRDB

/// How a run ended. Only `complete` runs feed summaries, baselines and trends.
public enum RunStatus: String, Codable, Sendable, DatabaseValueConvertible {
    case running, complete, failed, interrupted
}

public struct RunRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "run"
    /// Assigned by the store that holds the run: unique within it (a sequence in PostgreSQL, so also across
    /// the machines writing to it), not across stores.
    public var id: Int64?
    /// The run's name in every store: a random UUID given when the run is made and kept when it is copied
    /// (`headroom history push`), which is how a store knows it has a run already.
    public var uid: String
    /// The host that ran it: only that host's processes can be checked for being alive (`reapAbandonedRuns`).
    public var host: String
    /// The git branch the run measured ("" when unknown): with the machine class, what `gate --baseline
    /// BRANCH@CLASS` selects runs by.
    public var branch: String
    public var scenarioName: String
    public var scenarioFile: String
    public var scenarioHash: String
    public var scenarioText: String
    public var gitRevision: String
    public var machineFingerprint: String
    public var machineJson: String
    public var headroomVersion: String
    public var pid: Int
    public var startedAt: Date
    public var endedAt: Date?
    public var status: RunStatus
    public var note: String
    /// The sweep this run is one shard of (`headroom run --shard I/N --sweep ID`), its shard index (0..<count) and
    /// the sweep's shard count; all nil for a run that is not a shard. `report --sweep` merges a sweep's shards.
    public var sweep: String?
    public var shardIndex: Int?
    public var shardCount: Int?

    public init(id: Int64? = nil, scenarioName: String, scenarioFile: String, scenarioHash: String, scenarioText: String,
                gitRevision: String, machineFingerprint: String, machineJson: String, headroomVersion: String,
                pid: Int, startedAt: Date, endedAt: Date? = nil, status: RunStatus = .running, note: String = "",
                uid: String = RunRecord.newUID(), host: String = RunRecord.thisHost, branch: String = "",
                shard: SweepShard? = nil) {
        self.sweep = shard?.sweep; self.shardIndex = shard?.index; self.shardCount = shard?.count
        self.id = id; self.uid = uid; self.host = host; self.branch = branch; self.scenarioName = scenarioName; self.scenarioFile = scenarioFile
        self.scenarioHash = scenarioHash; self.scenarioText = scenarioText; self.gitRevision = gitRevision
        self.machineFingerprint = machineFingerprint; self.machineJson = machineJson
        self.headroomVersion = headroomVersion; self.pid = pid; self.startedAt = startedAt
        self.endedAt = endedAt; self.status = status; self.note = note
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    /// The shard this run is, when it is one (all three columns set).
    public var shard: SweepShard? {
        guard let sweep, let shardIndex, let shardCount else { return nil }
        return SweepShard(sweep: sweep, index: shardIndex, count: shardCount)
    }

    /// A fresh run uid: a random UUID, lower case.
    public static func newUID() -> String { UUID().uuidString.lowercased() }
    /// This machine's host name, as `MachineInfo` records it.
    /// Where a run's process lives, as far as its pid means anything: the host name and, on Linux, the pid
    /// namespace (containers on one CI runner often share a host name, not their process ids), so that a
    /// store only marks `interrupted` the running runs whose process it can see is gone.
    public static let thisHost: String = {
        let name = ProcessInfo.processInfo.hostName
        guard let ns = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid") else { return name }
        let digits = ns.filter(\.isNumber)
        return digits.isEmpty ? name : "\(name)/pidns:\(digits)"
    }()

    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
}

/// One measured case: a kind ("probe", "gemm", …), a name within it, the thread count and its parameters.
public struct MeasurementRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "measurement"
    public var id: Int64?
    public var runId: Int64
    public var kind: String
    public var name: String
    public var threads: Int
    /// Workload parameters as a JSON object with sorted keys (model, M, N, K, …).
    public var paramsJson: String
    /// What the measurement recorded about itself (isa, weights_bytes, …), a JSON object with sorted keys.
    public var factsJson: String

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
}

/// One raw observation: a metric's value at one repetition.
public struct SampleRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "sample"
    public var id: Int64?
    public var measurementId: Int64
    public var metric: String
    public var unit: String
    public var repetition: Int
    public var value: Double

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
}
