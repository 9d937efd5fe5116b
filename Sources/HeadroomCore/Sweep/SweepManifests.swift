// What `headroom sweep --emit k8s|slurm` writes: a Kubernetes Indexed Job (with the scenario in a ConfigMap)
// or a Slurm array script, each running `headroom run SCENARIO --shard env/N --sweep ID` once per shard. The
// YAML is built as nodes and serialised by Yams, and every user value in the script is single-quoted for bash,
// so no name, path or URL can change what either file does.
import Foundation
import Yams

/// One sweep launch: what both emitters need, already validated by the command line.
public struct SweepJob: Sendable, Equatable {
    /// The job's name: a DNS label (Kubernetes) and the Slurm job name.
    public var name: String
    public var sweep: String
    public var shards: Int
    /// The scenario as the workers read it: for Kubernetes the ConfigMap key (a file name), for Slurm a path.
    public var scenarioFile: String
    public var scenarioText: String
    public var cpus: Int
    public var memoryMiB: Int
    /// The `headroom` the workers run: a name on their PATH or a path.
    public var headroom: String
    /// Kubernetes: the container image and the Secret (name, key) holding the store's URL.
    public var image: String
    public var secretName: String
    public var secretKey: String
    /// Slurm: the store's location, exported as HEADROOM_DB when given (never with a password in it).
    public var database: String?

    public init(name: String, sweep: String, shards: Int, scenarioFile: String, scenarioText: String, cpus: Int, memoryMiB: Int,
                headroom: String = "headroom", image: String = "", secretName: String = "headroom-db", secretKey: String = "url",
                database: String? = nil) {
        self.name = name; self.sweep = sweep; self.shards = shards; self.scenarioFile = scenarioFile; self.scenarioText = scenarioText
        self.cpus = cpus; self.memoryMiB = memoryMiB; self.headroom = headroom; self.image = image
        self.secretName = secretName; self.secretKey = secretKey; self.database = database
    }

    /// The worker's arguments after `headroom`: every shard the same, the index from the scheduler.
    public func runArguments(scenarioPath: String) -> [String] {
        ["run", scenarioPath, "--shard", "env/\(shards)", "--sweep", sweep, "--no-report"]
    }
}

public enum SweepManifests {
    /// Where the ConfigMap holding the scenario is mounted in each pod.
    public static let scenarioMount = "/scenario"

    /// A ConfigMap with the scenario's text, then an Indexed Job of `shards` completions, all running at once. Each
    /// pod's JOB_COMPLETION_INDEX (from the completion-index annotation) is its shard; HEADROOM_DB comes from the
    /// Secret; requests and limits are equal, so every shard gets the CPUs it is measured with.
    public static func kubernetes(_ job: SweepJob) throws -> String {
        let configMap = job.name + "-scenario"
        let labels = map([("app.kubernetes.io/name", str("headroom")), ("app.kubernetes.io/instance", str(job.name))])
        let annotations = map([("headroom/sweep", str(job.sweep))])
        let resources = map([("cpu", str(String(job.cpus))), ("memory", str("\(job.memoryMiB)Mi"))])
        let container = map([
            ("name", str("headroom")),
            ("image", str(job.image)),
            ("command", seq([str(job.headroom)] + job.runArguments(scenarioPath: "\(scenarioMount)/\(job.scenarioFile)").map(str))),
            ("env", seq([
                map([("name", str("JOB_COMPLETION_INDEX")),
                     ("valueFrom", map([("fieldRef", map([("fieldPath", str("metadata.annotations['batch.kubernetes.io/job-completion-index']"))]))]))]),
                map([("name", str("HEADROOM_DB")),
                     ("valueFrom", map([("secretKeyRef", map([("name", str(job.secretName)), ("key", str(job.secretKey))]))]))]),
            ])),
            ("resources", map([("requests", resources), ("limits", resources)])),
            ("volumeMounts", seq([map([("name", str("scenario")), ("mountPath", str(scenarioMount)), ("readOnly", bool(true))])])),
        ])
        let jobNode = map([
            ("apiVersion", str("batch/v1")),
            ("kind", str("Job")),
            ("metadata", map([("name", str(job.name)), ("labels", labels), ("annotations", annotations)])),
            ("spec", map([
                ("completionMode", str("Indexed")),
                ("completions", int(job.shards)),
                ("parallelism", int(job.shards)),
                // A failed pod is retried under the same index; its new run replaces the failed one in the merge.
                ("backoffLimit", int(max(3, job.shards))),
                ("template", map([
                    ("metadata", map([("labels", labels), ("annotations", annotations)])),
                    ("spec", map([
                        ("restartPolicy", str("Never")),
                        ("containers", seq([container])),
                        ("volumes", seq([map([("name", str("scenario")), ("configMap", map([("name", str(configMap))]))])])),
                    ])),
                ])),
            ])),
        ])
        let configMapNode = map([
            ("apiVersion", str("v1")),
            ("kind", str("ConfigMap")),
            ("metadata", map([("name", str(configMap)), ("labels", labels), ("annotations", annotations)])),
            ("data", map([(job.scenarioFile, str(job.scenarioText))])),
        ])
        return try Yams.serialize(nodes: [configMapNode, jobNode], explicitStart: true)
    }

    /// A bash script for `sbatch`: one array task per shard (0 to N-1), each `headroom run … --shard env/N`, which
    /// reads SLURM_ARRAY_TASK_ID. Only validated names reach the #SBATCH lines (sbatch reads them itself, unquoted);
    /// everything else is single-quoted.
    public static func slurm(_ job: SweepJob) -> String {
        var lines = [
            "#!/bin/bash",
            "# headroom sweep \(job.sweep): \(job.shards) shards, one array task each; merge with `headroom report --sweep \(job.sweep)`.",
            "#SBATCH --job-name=\(job.name)",
            "#SBATCH --array=0-\(job.shards - 1)",
            "#SBATCH --cpus-per-task=\(job.cpus)",
            "#SBATCH --mem=\(job.memoryMiB)M",
            "set -euo pipefail",
        ]
        if let db = job.database { lines.append("export HEADROOM_DB=\(shellQuote(db))") }
        lines.append("exec " + ([job.headroom] + job.runArguments(scenarioPath: job.scenarioFile)).map(shellQuote).joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `s` as one bash word: in single quotes, each `'` written as `'\''`.
    public static func shellQuote(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    // Strings are always tagged and quoted as strings (a sweep id "0123" or a name "yes" stays a string); multi-line
    // text as a literal block.
    static func str(_ s: String) -> Node { Node(s, Tag(.str), s.contains("\n") ? .literal : .doubleQuoted) }
    static func int(_ n: Int) -> Node { Node(String(n), Tag(.int), .plain) }
    static func bool(_ b: Bool) -> Node { Node(b ? "true" : "false", Tag(.bool), .plain) }
    static func map(_ pairs: [(String, Node)]) -> Node { Node(pairs.map { (Node($0.0, Tag(.str), .plain), $0.1) }) }
    static func seq(_ nodes: [Node]) -> Node { Node(nodes) }
}
