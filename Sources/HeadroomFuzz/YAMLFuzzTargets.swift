// The scenario and catalog loaders as fuzz targets. Each input is written to a scratch folder and loaded
// through the same entry the command line uses (`Scenario.load`, `Catalog.load`), so the file reading and
// UTF-8 check are covered too. Only loading and validation run: nothing is planned or measured.
import Foundation
import HeadroomCore

enum YAMLFuzzTargets {
    /// A scenario, checked against the repository's catalog (Scenarios/catalog). Seeds: Scenarios/*.yaml.
    static func scenario(repository: String) throws -> FuzzTarget {
        let scenarios = (repository as NSString).appendingPathComponent("Scenarios")
        let catalog = try Catalog.load(directory: (scenarios as NSString).appendingPathComponent("catalog"))
        let scratch = try ScratchFolder()
        let path = scratch.file("fuzz-input.yaml")
        let seeds = try yamlFiles(in: scenarios)
        return FuzzTarget(
            name: "scenario", summary: "Scenario.load against Scenarios/catalog (loading and validation, no planning)",
            fileExtension: "yaml", maxInputBytes: 16 << 10, seeds: seeds, byteMutationShare: 0.1,
            mutate: { input, r in YAMLMutations.mutate(&input, &r) },
            check: { input in
                do {
                    try Data(input).write(to: URL(fileURLWithPath: path))
                    _ = try Scenario.load(path, catalog: catalog)
                    return .accepted
                } catch {
                    return FuzzTarget.verdict(for: error, expected: { $0 is InputError }, file: path, check: check)
                }
            },
            cleanup: scratch.remove)
    }

    /// One catalog file (`models.yaml`, `hardware.yaml` or `prices.yaml`) mutated, the other two as in the
    /// repository, loaded with `Catalog.load(directory:)`. Seed: the repository's copy of the file.
    static func catalog(file: String, name: String, repository: String) throws -> FuzzTarget {
        let original = ((repository as NSString).appendingPathComponent("Scenarios/catalog") as NSString)
        let scratch = try ScratchFolder()
        for other in ["models.yaml", "hardware.yaml", "prices.yaml"] where other != file {
            try FileManager.default.copyItem(atPath: original.appendingPathComponent(other), toPath: scratch.file(other))
        }
        guard let seed = FileManager.default.contents(atPath: original.appendingPathComponent(file)) else {
            throw FuzzSetupError("cannot read the seed \(original.appendingPathComponent(file))")
        }
        let path = scratch.file(file)
        return FuzzTarget(
            name: name, summary: "Catalog.load with \(file) mutated (the catalog's other files as in Scenarios/catalog)",
            fileExtension: "yaml", maxInputBytes: 32 << 10, seeds: [[UInt8](seed)], byteMutationShare: 0.1,
            mutate: { input, r in YAMLMutations.mutate(&input, &r) },
            check: { input in
                do {
                    try Data(input).write(to: URL(fileURLWithPath: path))
                    _ = try Catalog.load(directory: scratch.path)
                    return .accepted
                } catch {
                    // A mutated hardware.yaml may be reported through prices.yaml, which names its hardware.
                    return FuzzTarget.verdict(for: error, expected: { $0 is InputError }, file: scratch.path, check: check)
                }
            },
            cleanup: scratch.remove)
    }

    /// The check that refused an input: the key path with keys the schema does not know blanked to `?`, and the
    /// message with numbers and quoted text blanked.
    static func check(_ error: Error) -> String {
        guard let e = error as? InputError else { return FuzzVerdict.blank("\(error)") }
        let known = Set(YAMLMutations.keys)
        let path = e.path.split(separator: ".").map { segment -> String in
            let key = segment.split(separator: "[").first.map(String.init) ?? ""
            return known.contains(key) ? String(segment) : "?"
        }.joined(separator: ".")
        return FuzzVerdict.blank((e.file as NSString).lastPathComponent + ": " + path + ": " + e.message)
    }

    static func yamlFiles(in directory: String) throws -> [[UInt8]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        return names.compactMap { FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent($0)).map { [UInt8]($0) } }
    }
}

/// A scratch folder for one target's inputs, removed with the target.
struct ScratchFolder {
    let path: String

    /// In /dev/shm when there is one: rewriting a file on ext4 many times a second is flushed to disk each time
    /// (auto_da_alloc), which made the YAML targets spend a quarter of their time in the kernel.
    init() throws {
        path = Self.parent + Self.prefix(pid: getpid()) + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    static let parent = access("/dev/shm/", W_OK) == 0 ? "/dev/shm/" : NSTemporaryDirectory()
    static func prefix(pid: Int32) -> String { "headroom-fuzz-\(pid)-" }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Removes the scratch folders of process `pid`, which died before it could (a crashed or killed worker).
    static func removeAll(of pid: Int32) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        for name in names where name.hasPrefix(prefix(pid: pid)) {
            try? FileManager.default.removeItem(atPath: (parent as NSString).appendingPathComponent(name))
        }
    }
}

/// The scratch folders a process that died left behind.
public enum FuzzScratch {
    public static func removeLeftovers(of pid: Int32) { ScratchFolder.removeAll(of: pid) }
}

/// Mutations that know YAML's shape: values replaced by edge cases (huge, tiny, negative, non-finite numbers,
/// nulls, empty and long strings, control characters, anchors and aliases, deep nesting), keys duplicated or
/// misspelled, lines duplicated, dropped, swapped or re-indented.
enum YAMLMutations {
    static let values: [String] = [
        "0", "-0", "1", "-1", "2", "7", "16", "1023", "1024", "65537", "0.5", "-0.5", "1e-300", "4.9e-324", "-1e-300",
        "1e300", "-1e300", "1e309", "1.7976931348623157e308", ".inf", "-.inf", ".nan", "NaN", "inf", "nan", "+.inf",
        "2147483647", "2147483648", "4294967295", "4294967296", "9007199254740993", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551616",
        "1_000_000_000_000", "0x10", "0o17", "1e3", "15.0e12", "1.5", "3%", "5 %", "-5%", "1e300%",
        "~", "null", "\"\"", "''", "[]", "{}", "[1, 2]", "{a: 1}", "true", "false", "yes", "no", "\"1\"", "'x'",
        "\"\\u0000\"", "\"\\t\"", "\"a\\nb\"", "\"\\x1b[31m\"", "é", "✓", "\u{202E}abc", "!!binary aGk=", "!!int 5", "!!str 5",
        "&a 5", "*a", "*undefined", "|\n  text", ">-\n  folded", "? key", "- item", "@", "`", "%TAG", "\"unterminated",
        "[unterminated", "{unterminated", "a: b: c", "--- ", "...", "#", "\t", "\r", "\u{FEFF}x",
    ]

    static let keys: [String] = [
        "schema", "name", "description", "probe", "measure", "plan", "gate", "model", "threads", "prompt_tokens", "batch",
        "precisions", "generate_tokens", "finetune", "repetitions", "warmup", "demand", "slo", "hardware", "users",
        "requests_per_user_per_day", "peak_to_mean", "hourly_profile", "output_tokens", "ttft_p95_ms", "tpot_p95_ms",
        "tensor_parallel", "min_replicas", "pricing", "prefill_chunk_tokens", "training", "tokens", "days", "method",
        "rank", "documents", "tokens_per_document", "epochs", "seq_len", "micro_batch", "checkpointing", "metrics",
        "max_regression", "models", "id", "layers", "dim", "heads", "kv_heads", "ffn_dim", "vocab", "context",
        "rope_theta", "norm_eps", "experts", "experts_per_token", "source", "peak_tflops", "memory_gib",
        "memory_bandwidth_gbps", "interconnect", "devices_per_node", "power_watts", "kind", "default_efficiency",
        "compute", "bandwidth", "offers", "on_prem", "devices", "max_devices", "on_demand_usd_per_hour",
        "spot_usd_per_hour", "purchase_usd_per_device", "currency", "hours_per_month", "amortisation_months",
        "power", "usd_per_kwh", "pue", "unknown_key", "<<",
    ]

    static func mutate(_ input: inout [UInt8], _ r: inout FuzzRandom) {
        var lines = String(decoding: input, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return }
        let i = r.below(lines.count)
        switch r.below(12) {
        case 0...3:  // replace a value with an edge case
            lines[i] = replacingScalar(in: lines[i], with: r.pick(values), valuesOnly: true, &r)
        case 4:  // replace a key (typos, duplicates, keys from elsewhere in the schema)
            lines[i] = replacingScalar(in: lines[i], with: r.pick(keys), valuesOnly: false, &r)
        case 5:  // deep nesting
            let depth = r.size(upTo: 4096)
            let nested = r.oneIn(2) ? String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
                : String(repeating: "{a: ", count: depth) + "1" + String(repeating: "}", count: depth)
            lines[i] = replacingScalar(in: lines[i], with: nested, valuesOnly: true, &r)
        case 6:  // a long string or a long list
            let n = r.size(upTo: 8192)
            let long = r.oneIn(2) ? String(repeating: "x", count: n)
                : "[" + (0..<min(n, 2048)).map { _ in r.pick(["1", "2", "f32", "h100-sxm"]) }.joined(separator: ", ") + "]"
            lines[i] = replacingScalar(in: lines[i], with: long, valuesOnly: true, &r)
        case 7:  // duplicate a line (a repeated key, a repeated list item)
            lines.insert(lines[i], at: r.below(lines.count + 1))
        case 8:  // drop a line (a missing required key)
            lines.remove(at: i)
        case 9:  // swap two lines
            lines.swapAt(i, r.below(lines.count))
        case 10:  // re-indent
            lines[i] = lines[i].hasPrefix("  ") && r.oneIn(2) ? String(lines[i].dropFirst(2)) : "  " + lines[i]
        default:  // a control character, tab or invalid UTF-8 somewhere
            var bytes = Array(lines[i].utf8)
            let odd: [[UInt8]] = [[0], [9], [13], [0x1B], [0x7F], [0xC3], [0xFF, 0xFE], [0xE2, 0x80, 0xAE], [0xEF, 0xBB, 0xBF]]
            bytes.insert(contentsOf: r.pick(odd), at: r.below(bytes.count + 1))
            input = Array(lines[..<i].joined(separator: "\n").utf8) + (i > 0 ? [10] : []) + bytes
                + (i + 1 < lines.count ? [10] + Array(lines[(i + 1)...].joined(separator: "\n").utf8) : [])
            return
        }
        input = Array(lines.joined(separator: "\n").utf8)
    }

    /// The line with one scalar replaced: a value (after `:`, `-`, `[`, `,`) or, when not `valuesOnly`, a key
    /// (before `:`). A line without one gets `replacement` appended as a value.
    static func replacingScalar(in line: String, with replacement: String, valuesOnly: Bool, _ r: inout FuzzRandom) -> String {
        let chars = Array(line)
        var spans: [(Range<Int>, isKey: Bool)] = []
        var k = 0
        let special: Set<Character> = [":", "[", "]", "{", "}", ",", "#", "\""]
        while k < chars.count {
            if chars[k] == "#" { break }
            if special.contains(chars[k]) || chars[k] == " " || chars[k] == "-" && (k + 1 == chars.count || chars[k + 1] == " ") {
                k += 1
                continue
            }
            let start = k
            while k < chars.count, !special.contains(chars[k]) || chars[k] == ":" && k + 1 < chars.count && chars[k + 1] != " " {
                k += 1
            }
            var end = k
            while end > start, chars[end - 1] == " " { end -= 1 }
            let isKey = k < chars.count && chars[k] == ":"
            spans.append((start..<end, isKey))
        }
        let candidates = spans.filter { $0.isKey != valuesOnly }
        guard !candidates.isEmpty else { return valuesOnly ? line + " " + replacement : line }
        let span = r.pick(candidates).0
        return String(chars[..<span.lowerBound]) + replacement + String(chars[span.upperBound...])
    }
}
