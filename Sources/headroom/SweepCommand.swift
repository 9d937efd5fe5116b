// `headroom sweep`: the file a cluster's scheduler runs to spread one scenario over N workers — a Kubernetes
// Indexed Job or a Slurm array — each worker `headroom run SCENARIO --shard env/N --sweep ID` into one shared store.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomRunner
import HeadroomStore

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Write a Kubernetes Indexed Job or a Slurm array that measures a scenario as N shards.",
        discussion: """
            The scenario is validated first, as `headroom run` validates it (exit 2 on a bad one). --emit k8s writes \
            a ConfigMap holding the scenario's text and an Indexed Job of N pods (completions and parallelism N), each \
            running `headroom run /scenario/FILE --shard env/N --sweep ID` with HEADROOM_DB from a Secret (--secret, \
            key url). --emit slurm writes a bash script for sbatch: an array 0 to N-1, each task running the same, \
            HEADROOM_DB exported when --db is given (a URL with a password is refused: use PGPASSWORD). Once every \
            shard has completed, `headroom report --sweep ID` merges them (docs/sweeps.md).
            """)

    @Argument(help: ArgumentHelp("The scenario file.", valueName: "scenario"))
    var scenario: String

    @Option(name: .long, help: "The number of shards (workers), 1 to \(ShardOption.maxCount).")
    var shards: Int

    @Option(name: .long, help: ArgumentHelp("What to write: k8s (a ConfigMap and an Indexed Job, YAML) or slurm (an sbatch script).", valueName: "k8s|slurm"))
    var emit: String

    @Option(name: .long, help: ArgumentHelp("The sweep id (default: NAME-Nx-HASH from the scenario's name, N and its text's hash).", valueName: "id"))
    var sweep: String?

    @Option(name: .long, help: ArgumentHelp("k8s: the container image holding headroom (default headroom:\(Headroom.version)).", valueName: "image"))
    var image: String?

    @Option(name: .long, help: ArgumentHelp("slurm: the results store, exported as HEADROOM_DB (no password: use PGPASSWORD). k8s takes it from --secret.", valueName: "path|url"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("k8s: the Secret whose key `url` holds the results store's URL.", valueName: "name"))
    var secret = "headroom-db"

    @Option(name: .long, help: "CPUs per shard (k8s requests and limits; slurm --cpus-per-task), 1 to 1024.")
    var cpus = 4

    @Option(name: .long, help: ArgumentHelp("Memory per shard with its unit, such as 8GiB or 512MiB (k8s requests and limits; slurm --mem).", valueName: "size"))
    var memory = "8GiB"

    @Option(name: .long, help: ArgumentHelp("The job's name: lower-case letters, digits and '-', at most 52 (default: headroom-SCENARIO).", valueName: "name"))
    var name: String?

    @Option(name: .customLong("headroom-path"), help: ArgumentHelp("The headroom each worker runs: a name on its PATH or a path (default headroom).", valueName: "path"))
    var headroomPath = "headroom"

    @Option(name: .long, help: ArgumentHelp("Write here instead of standard output.", valueName: "file"))
    var output: String?

    @OptionGroup var catalog: CatalogOptions

    static let jobNamePattern = "^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$"
    /// An image reference: registry/path:tag@digest, as Docker's grammar allows (lower-case repository).
    static let imagePattern = "^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"

    func validate() throws {
        guard (1...ShardOption.maxCount).contains(shards) else { throw ValidationError("--shards: expected an integer from 1 to \(ShardOption.maxCount), got \(shards)") }
        guard emit == "k8s" || emit == "slurm" else { throw ValidationError("--emit: expected k8s or slurm, got \"\(emit)\"") }
        guard (1...1024).contains(cpus) else { throw ValidationError("--cpus: expected an integer from 1 to 1024, got \(cpus)") }
        _ = try memoryMiB()
        if let sweep, !SweepID.isValid(sweep) {
            throw ValidationError("--sweep: expected letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit), got \"\(sweep)\"")
        }
        if let name, !matches(name, Self.jobNamePattern) {
            throw ValidationError("--name: expected lower-case letters, digits and '-' (at most 52, starting and ending with a letter or digit), got \"\(name)\"")
        }
        if let image, !matches(image, Self.imagePattern) {
            throw ValidationError("--image: expected an image reference such as registry.example.com/team/headroom:0.1.0, got \"\(image)\"")
        }
        if !matches(secret, Self.jobNamePattern) { throw ValidationError("--secret: expected a Secret's name (lower-case letters, digits and '-'), got \"\(secret)\"") }
        if headroomPath.isEmpty || headroomPath.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } == true }) {
            throw ValidationError("--headroom-path: expected a command name or a path without control characters")
        }
        if emit == "k8s" && db != nil {
            throw ValidationError("--db: a Kubernetes job reads the store's URL from the Secret --secret (key url): "
                                  + "kubectl create secret generic \(secret) --from-literal=url=postgres://…")
        }
        if emit == "slurm" && image != nil { throw ValidationError("--image: a Slurm script runs --headroom-path on the nodes; images are for --emit k8s") }
    }

    func matches(_ s: String, _ pattern: String) -> Bool { s.range(of: pattern, options: .regularExpression) != nil }

    /// --memory in MiB: an integer with MiB or GiB.
    func memoryMiB() throws -> Int {
        let units = [("GiB", 1024), ("MiB", 1)]
        for (unit, factor) in units where memory.hasSuffix(unit) {
            if let n = Int(memory.dropLast(unit.count)), n > 0, n * factor <= 16 * 1024 * 1024 { return n * factor }
        }
        throw ValidationError("--memory: expected a size in MiB or GiB such as 8GiB or 512MiB (at most 16384GiB), got \"\(memory)\"")
    }

    func run() throws {
        try reportingErrors {
            let loaded = try catalog.scenario(scenario)
            let job = try sweepJob(loaded)
            // A pod sees the scenario's text only: what it reads beside the file is not there.
            if emit == "k8s" {
                if !Scenario.catalogLayers(forScenario: scenario).isEmpty || catalog.catalog != nil {
                    warn("warning: the pods read the built-in catalog only; the catalog folder this scenario was checked with is not in the ConfigMap")
                }
                if let file = loaded.measure?.modelFile {
                    warn("warning: the scenario measures the model file \(file.path), which the pods need at that path in the image")
                }
            }
            let text = emit == "k8s" ? try SweepManifests.kubernetes(job) : SweepManifests.slurm(job)
            guard let output else { print(text, terminator: ""); return }
            try FileChecks.requireWritableOutput(output, option: "--output")
            try text.write(toFile: output, atomically: true, encoding: .utf8)
            if emit == "slurm" { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: output) }
            warn("wrote \(output): \(shards) shards of \(loaded.name), sweep \(job.sweep); "
                 + (emit == "k8s" ? "kubectl apply -f \(output)" : "sbatch \(output)") + ", then headroom report --sweep \(job.sweep)")
        }
    }

    /// The launch, from the validated scenario and options; a store URL with a password is bad input.
    func sweepJob(_ loaded: Scenario) throws -> SweepJob {
        let sweepID = sweep ?? SweepID.default(for: loaded, count: shards)
        let file = (scenario as NSString).lastPathComponent
        if emit == "k8s", !matches(file, "^[-._A-Za-z0-9]{1,253}$") {
            throw InputError(file: scenario, path: "", message: "expected a file name of letters, digits, '.', '_' or '-' (it becomes the ConfigMap's key)")
        }
        // Read without PGPASSWORD: only a password written in the URL would end up in the script.
        if let db, case .postgres(let url) = try StoreLocation(db, source: "--db", environment: [:]), url.password != nil {
            throw InputError(file: "--db", path: "", message: "\(url.redacted): the URL holds a password, and the script would carry it in clear; "
                             + "leave it out and give the workers PGPASSWORD (or a Secret) instead")
        }
        let path = (scenario as NSString).isAbsolutePath ? scenario
            : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(scenario)
        return SweepJob(name: name ?? Self.defaultName(loaded.name), sweep: sweepID, shards: shards,
                        scenarioFile: emit == "k8s" ? file : (path as NSString).standardizingPath, scenarioText: loaded.text,
                        cpus: cpus, memoryMiB: try memoryMiB(), headroom: headroomPath, image: image ?? "headroom:\(Headroom.version)",
                        secretName: secret, database: db)
    }

    /// headroom-SCENARIO as a DNS label: lower case, other characters as '-', at most 52.
    static func defaultName(_ scenario: String) -> String {
        let mapped = ("headroom-" + scenario.lowercased()).map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" }
        var name = String(String(mapped).prefix(52))
        while name.hasSuffix("-") { name.removeLast() }
        return name
    }
}
