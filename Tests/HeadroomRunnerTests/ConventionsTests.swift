// The command-line contract (docs/cli.md) as a user meets it: every command explains itself, exit codes
// are the documented ones, the binary works from any folder, list options take commas, and every
// `headroom` command in the README and docs parses.
import Foundation
import XCTest

final class ConventionsTests: XCTestCase {
    func run(_ args: [String], cwd: URL? = nil, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        try HeadroomCLI.run(args, cwd: cwd ?? HeadroomCLI.repo, environment: environment)
    }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("conv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Every command and subcommand, as `headroom --help` and its subcommands' help list them.
    static let commands = ["run", "probe", "history", "history list", "history push", "report", "plan", "whatif", "models", "hardware", "gate",
                           "baseline record", "baseline save", "baseline list", "baseline export",
                           "bench infer", "bench finetune", "bench summary", "bench matvec", "bench serve", "bench steps", "bench sim", "model export", "model logits",
                           "serve", "load", "simulate", "calibrate", "sweep"]

    func testEveryCommandsHelpRendersOnStandardOutput() throws {
        let top = try run(["--help"])
        XCTAssertEqual(top.status, 0)
        for cmd in Self.commands {
            let r = try run(cmd.split(separator: " ").map(String.init) + ["--help"])
            XCTAssertEqual(r.status, 0, cmd)
            XCTAssertTrue(r.stdout.contains("OVERVIEW:") && r.stdout.contains("USAGE: headroom \(cmd)"), "\(cmd): \(r.stdout)")
            XCTAssertEqual(r.stderr, "", cmd)
            if let first = cmd.split(separator: " ").first, cmd.contains(" ") {
                XCTAssertTrue(try run([String(first), "--help"]).stdout.contains(String(cmd.split(separator: " ")[1])), cmd)
            } else {
                XCTAssertTrue(top.stdout.contains("  \(cmd)"), "headroom --help lists \(cmd)")
            }
        }
    }

    func testOptionErrorsExitTwoWithTheOptionNamed() throws {
        let cases: [([String], String)] = [
            (["hardware", "--bogus"], "Unknown option '--bogus'"),
            (["whatif", "--users", "-5"], "plan.demand.users: expected an integer from 1 to 1000000000000, got \"-5\""),
            (["bench", "infer", "--precision", "q4_k_m"], "--precision: expected one of f32 (fp32), f16 (fp16), bf16, q8_0 (int8), q4_0 (int4), q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k; q4_k_m is a GGUF format"),
            (["bench", "infer", "--threads", "0"], "--threads: expected a thread count from 1 to 256, got 0"),
            (["bench", "finetune", "--method", "qlora"], "qlora"),
            (["probe", "--threads", "1,x"], "--threads: expected thread counts from 1 to 256, got \"x\""),
            (["run", "--threads", "1,,2"], "--threads: expected a comma-separated list without blanks"),
            (["whatif", "--precision", "fp4"], "--precision: expected one of fp32 (f32), bf16, fp16 (f16), fp8, int8 (q8_0), int4 (q4_0), got \"fp4\""),
            (["baseline", "save", "bad name"], "NAME: expected letters, digits"),
            (["serve", "--kv-memory", "2XB"], "--kv-memory: expected bytes with a unit (512MiB, 2GiB) or a token count (65536), got '2XB'"),
            (["serve", "--request-timeout", "0s"], "--request-timeout: expected a duration such as 300s"),
            (["serve", "--idle-timeout", "soon"], "--idle-timeout: expected a duration such as 300s"),
            (["serve", "--port", "70000"], "--port: expected 0 to 65535"),
            (["serve", "--api-key-env", "HEADROOM_TEST_UNSET_KEY"], "--api-key-env: the environment variable HEADROOM_TEST_UNSET_KEY is not set or empty"),
            (["serve", "--served-model-name", "bad name"], "--served-model-name: expected letters, digits"),
            (["serve", "--log-level", "loud"], "--log-level: expected trace, debug"),
            (["serve", "--step-log", "/nonexistent/steps.csv"], "--step-log: cannot write /nonexistent/steps.csv: check that its folder exists"),
            (["bench", "serve", "--streams", "1"], "--streams: expected 2 to 256"),
            (["bench", "steps", "--repetitions", "0"], "--repetitions: expected 1 to 1000, got 0"),
            (["simulate", "--rate", "0"], "--rate: expected a positive number of requests per second"),
            (["simulate", "--arrivals", "gamma:x"], "--arrivals: expected gamma:CV with a number, got gamma:x"),
            (["simulate", "--arrivals", "weibull"], "--arrivals: expected poisson, gamma:CV, constant, burst or trace:FILE"),
            (["simulate", "--prompt-tokens", "uniform:9-3"], "--prompt-tokens"),
            (["simulate", "--output-tokens", "lots"], "--output-tokens: expected N, uniform:MIN-MAX or lognormal:MEDIAN,SIGMA, got lots"),
            (["simulate", "--router", "random"], "--router: expected round-robin or least-outstanding, got random"),
            (["simulate", "--replications", "0"], "--replications: expected 1 to 1000"),
            (["whatif", "--serving-model", "oracle"], "--serving-model"),
            (["bench", "sim", "--fractions", "0"], "--fractions: expected numbers in (0, 4], got 0"),
            (["bench", "sim", "--prefill", "lazy"], "--prefill: expected chunked or whole, got lazy"),
            (["bench", "steps", "--model", "nope"], "--model: expected a model of the catalog"),
            (["load", "--endpoint", "ftp://x", "--profile", "rate:1"], "--endpoint: expected an http:// or https:// URL with a host"),
            (["load", "--endpoint", "prod", "--profile", "rate:1"], "--endpoint: 'prod' is not a URL (http://host:port); an endpoint name needs the scenario"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "warp:1"], "--profile: "),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "slo-search"], "--profile: slo-search needs --slo"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--slo", "ttft=fast"], "--slo: "),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--duration", "soon"], "--duration: expected a duration such as 300s"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--duration", "5s", "--requests", "3"], "--duration and --requests: give one, not both"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "trace:/nonexistent/t.jsonl"], "/nonexistent/t.jsonl"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--hardware", "tpu-v9"], "--hardware: expected a hardware id of the catalog"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "sweep", "--max-concurrency", "0"], "--max-concurrency: expected an integer from 1 to 4096"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--timeout", "0s"], "--timeout: expected a duration such as 300s"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--name", "a b"], "--name: expected letters, digits"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--prompt-kind", "ids"], "--prompt-kind: expected one of auto, token-ids, text, got 'ids'"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--api", "grpc"], "--api: expected completions or chat, got 'grpc'"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--precision", "fp4"], "--precision: expected one of fp32"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--model-shape", "nope"], "--model-shape: expected a model of the catalog"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--devices", "0"], "--devices: expected an integer from 1 to 4096"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--dataset", "/nonexistent/d.jsonl"], "/nonexistent/d.jsonl"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--dataset", "d.jsonl", "--prompt-tokens", "8"], "--prompt-tokens and --dataset: give one, not both"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1000", "--duration", "2h"], "--profile: rate:1000 for 7200.0 s would send 7200000 requests in one point; at most 1000000"),
            (["load", "--endpoint", "http://127.0.0.1:9", "--profile", "rate:1", "--api-key-env", "HEADROOM_TEST_UNSET_KEY"],
             "--api-key-env: the environment variable HEADROOM_TEST_UNSET_KEY (the API key of endpoint 127.0.0.1:9) is not set or empty"),
        ]
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (args, message) in cases {
            let r = try run(args + (["whatif", "baseline", "load"].contains(args.first!) ? ["--db", dir.appendingPathComponent("h.sqlite").path] : []), cwd: dir)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(args)")
        }
    }

    /// From a folder with no Scenarios/ in sight: the catalog and default scenario travel with the binary.
    func testRunsFromAnyFolderWithTheBuiltInCatalog() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let hw = try run(["hardware", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(hw.status, 0, hw.stderr)
        XCTAssertTrue(hw.stdout.contains("h100-sxm") && hw.stdout.contains("built-in hardware.yaml"), hw.stdout)
        let w = try run(["whatif", "--model", "llama-3.1-8b", "--users", "5000", "--db", "h.sqlite", "--serving-model", "queueing"], cwd: dir)
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertTrue(w.stdout.contains("5,000 users"), w.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("h.sqlite").path), "whatif only reads the store")

        // A catalog folder overrides the built-in one entry by entry: one new model, the rest still there.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("mine"), withIntermediateDirectories: true)
        try """
            schema: 1
            models:
              - { id: my-model, layers: 2, dim: 64, heads: 4, ffn_dim: 128, vocab: 256, context: 64, source: "test" }
            """.write(to: dir.appendingPathComponent("mine/models.yaml"), atomically: true, encoding: .utf8)
        let m = try run(["models", "--catalog", "mine", "--json"], cwd: dir)
        XCTAssertEqual(m.status, 0, m.stderr)
        let ids = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(m.stdout.utf8)) as? [[String: Any]]).compactMap { $0["id"] as? String }
        XCTAssertTrue(ids.contains("my-model") && ids.contains("llama-3.1-8b"), "\(ids)")
        let missing = try run(["models", "--catalog", "nowhere"], cwd: dir)
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderr, "headroom: nowhere: the catalog folder does not exist\n")
    }

    func testListOptionsTakeCommasAndRepeats() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func configurations(_ args: [String]) throws -> Set<String> {
            let r = try run(["whatif", "--json", "--db", "h.sqlite", "--serving-model", "queueing"] + args, cwd: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let rows = (obj["candidates"] as? [[String: Any]] ?? []) + (obj["rejected"] as? [[String: Any]] ?? [])
            return Set(rows.compactMap { r in (r["hardware"] as? String).flatMap { h in (r["precision"] as? String).map { "\(h)/\($0)" } } })
        }
        let commas = try configurations(["--hardware", "h100-sxm,l40s", "--precision", "int4,q8_0"])
        let repeats = try configurations(["--hardware", "h100-sxm", "--hardware", "l40s", "--precision", "q4_0", "int8"])
        XCTAssertEqual(commas, repeats)
        XCTAssertEqual(Set(commas.map { String($0.split(separator: "/")[0]) }), ["h100-sxm", "l40s"])
        XCTAssertEqual(Set(commas.map { String($0.split(separator: "/")[1]) }), ["int4", "int8"])
    }

    /// Special files: an output that is a device is refused (and left alone); an input FIFO does not hang.
    func testSpecialFilesAreRefusedAtInputsAndOutputs() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let export = try run(["model", "export", "--model", "tiny", "/dev/null"], cwd: dir)
        XCTAssertEqual(export.status, 2, export.stderr)
        XCTAssertTrue(export.stderr.contains("/dev/null is a character device"), export.stderr)
        var st = stat()
        XCTAssertEqual(stat("/dev/null", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR, "/dev/null is still a device")

        let fifo = dir.appendingPathComponent("model.gguf").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let logits = try run(["model", "logits", "--model", fifo, "--tokens", "1,2"], cwd: dir)
        XCTAssertEqual(logits.status, 2, logits.stderr)
        XCTAssertTrue(logits.stderr.contains("not a regular file"), logits.stderr)
        let scenario = dir.appendingPathComponent("s.yaml").path
        XCTAssertEqual(mkfifo(scenario, 0o600), 0)
        let plan = try run(["plan", scenario, "--db", "h.sqlite", "--serving-model", "queueing"], cwd: dir)
        XCTAssertEqual(plan.status, 2, plan.stderr)
        XCTAssertTrue(plan.stderr.contains("expected a regular file as the scenario file, got a FIFO"), plan.stderr)

        // gate checks its report paths before measuring: a missing folder is bad input, not a regression.
        let gate = try run(["gate", "--baseline", "b.json", "--junit", "no/such/dir/j.xml", "--db", "h.sqlite"], cwd: dir)
        XCTAssertEqual(gate.status, 2, gate.stderr)
        XCTAssertTrue(gate.stderr.contains("--junit: cannot write no/such/dir/j.xml: the folder no/such/dir does not exist"), gate.stderr)
    }

    /// Every `headroom …` line in a fenced code block of the README and docs/ parses and validates.
    func testDocumentedCommandsParse() throws {
        var files = [HeadroomCLI.repo.appendingPathComponent("README.md")]
        let docs = HeadroomCLI.repo.appendingPathComponent("docs")
        files += (try? FileManager.default.contentsOfDirectory(at: docs, includingPropertiesForKeys: nil))?.filter { $0.pathExtension == "md" } ?? []
        var checked = 0
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            var inBlock = false, pending = ""
            for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
                var line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("```") { inBlock.toggle(); pending = ""; continue }
                guard inBlock else { continue }
                if line.hasSuffix("\\") { pending += line.dropLast() + " "; continue }  // a continued line
                line = pending + line
                pending = ""
                let command = line.hasPrefix("$ ") ? String(line.dropFirst(2)) : line
                guard command.hasPrefix("headroom ") else { continue }
                let words = Self.shellWords(String(command.split(separator: "#", maxSplits: 1)[0]))
                let r = try run(Array(words.dropFirst()), environment: ["HEADROOM_PARSE_ONLY": "1"])
                XCTAssertEqual(r.status, 0, "\(file.lastPathComponent): \(command)\n\(r.stderr)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "the README shows at least one headroom command")
    }

    /// Splits a shell command line into words: spaces separate, single and double quotes group.
    static func shellWords(_ s: String) -> [String] {
        var words: [String] = [], current = "", quote: Character? = nil, inWord = false
        for ch in s {
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
            } else if ch == "'" || ch == "\"" {
                quote = ch; inWord = true
            } else if ch == " " || ch == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(ch); inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }
}
