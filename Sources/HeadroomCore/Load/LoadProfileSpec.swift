// How load is offered to an endpoint, as `--profile` and a scenario's `measure.load.profile` write it: a value,
// separate from the client that sends the requests (GuideLLM's profiles). Foundation only.
import Foundation

/// A load profile. Parse one with `LoadProfileSpec.parse(_:file:path:)`; `normalized` is the text stored as the
/// case's `profile` parameter.
public enum LoadProfileSpec: Hashable, Sendable {
    /// Closed loop: N requests in flight, each sent when one finishes.
    case concurrency(Int)
    /// Open loop at a constant rate (requests/s): request i is due at i / R.
    case rate(Double)
    /// Open loop with exponential gaps of mean 1 / R (seeded).
    case poisson(Double)
    /// Open loop replaying a JSONL trace on its timestamps (`LoadTrace`); the path as written.
    case trace(String)
    /// Synchronous (concurrency 1), then throughput (closed loop at a high concurrency), then `rates` constant
    /// rates evenly spaced strictly between the two measured request rates, as GuideLLM's sweep.
    case sweep(rates: Int)
    /// Synchronous and throughput as in `sweep`, then bisection on a Poisson rate between them for the highest
    /// rate whose SLO attainment is at least `target`, for at most `probes` Poisson points.
    case sloSearch(target: Double, probes: Int)

    /// The default number of in-between rates of `sweep`.
    public static let defaultSweepRates = 5
    /// The default SLO attainment an slo-search rate must reach.
    public static let defaultSLOTarget = 0.9
    /// The default number of Poisson probes of an slo-search.
    public static let defaultSLOProbes = 6

    /// What a profile may be, as the messages quote it.
    public static let expected = "concurrency:N, rate:R, poisson:R, trace:FILE, sweep[:rates=K] or slo-search[:target=F,probes=N]"

    /// Reads `text`. Errors are `InputError`s whose `file` is `file` (a flag, such as `--profile`, or a scenario
    /// file) and whose `path` is `path` (a key path in that file, or "").
    public static func parse(_ text: String, file: String = "--profile", path: String = "") throws -> LoadProfileSpec {
        func fail(_ message: String) -> InputError { InputError(file: file, path: path, message: message) }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let (head, argument): (String, String?) = {
            guard let colon = trimmed.firstIndex(of: ":") else { return (trimmed, nil) }
            return (String(trimmed[..<colon]), String(trimmed[trimmed.index(after: colon)...]))
        }()
        func positiveRate(_ what: String) throws -> Double {
            guard let a = argument, let r = Double(a), r.isFinite, r > 0, r <= 1_000_000 else {
                throw fail("\(what): expected a rate in requests/s, a number above 0 and at most 1000000, got \"\(argument ?? "")\"")
            }
            return r
        }
        switch head {
        case "concurrency":
            // At most the client's connection pool (4096 per host): beyond it requests would wait for a connection
            // inside the client, unseen by the schedule.
            guard let a = argument, let n = Int(a), (1...4096).contains(n) else {
                throw fail("concurrency: expected an integer from 1 to 4096, got \"\(argument ?? "")\"")
            }
            return .concurrency(n)
        case "rate": return .rate(try positiveRate("rate"))
        case "poisson": return .poisson(try positiveRate("poisson"))
        case "trace":
            guard let a = argument, !a.isEmpty else { throw fail("trace: expected trace:FILE, a JSONL file, got no file") }
            return .trace(a)
        case "sweep":
            let options = try parseOptions(argument, allowed: ["rates"], profile: "sweep", fail: fail)
            var rates = defaultSweepRates
            if let v = options["rates"] {
                guard let k = Int(v), (1...100).contains(k) else {
                    throw fail("sweep: rates: expected an integer from 1 to 100, got \"\(v)\"")
                }
                rates = k
            }
            return .sweep(rates: rates)
        case "slo-search":
            let options = try parseOptions(argument, allowed: ["target", "probes"], profile: "slo-search", fail: fail)
            var target = defaultSLOTarget, probes = defaultSLOProbes
            if let v = options["target"] {
                guard let t = Double(v), t > 0, t <= 1 else {
                    throw fail("slo-search: target: expected an attainment above 0 and at most 1, got \"\(v)\"")
                }
                target = t
            }
            if let v = options["probes"] {
                guard let p = Int(v), (1...50).contains(p) else {
                    throw fail("slo-search: probes: expected an integer from 1 to 50, got \"\(v)\"")
                }
                probes = p
            }
            return .sloSearch(target: target, probes: probes)
        default:
            throw fail("expected \(expected), got \"\(text)\"")
        }
    }

    /// `key=value,key=value` after `sweep:` or `slo-search:`; nil or "" is no options.
    private static func parseOptions(_ argument: String?, allowed: [String], profile: String,
                                     fail: (String) -> InputError) throws -> [String: String] {
        guard let argument, !argument.isEmpty else { return [:] }
        var out: [String: String] = [:]
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0]).trimmingCharacters(in: .whitespaces)
            guard kv.count == 2, allowed.contains(key) else {
                throw fail("\(profile): expected options \(allowed.map { "\($0)=…" }.joined(separator: ",")), got \"\(part)\"")
            }
            guard out[key] == nil else { throw fail("\(profile): \(key) is given twice") }
            out[key] = String(kv[1]).trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    /// The profile as stored in the case's `profile` parameter: `concurrency:4`, `rate:2`, `poisson:2.5`,
    /// `trace:<file basename>`, `sweep` (`sweep:rates=K` when K is not the default), `slo-search` (with its
    /// options when they are not the defaults).
    public var normalized: String {
        switch self {
        case .concurrency(let n): return "concurrency:\(n)"
        case .rate(let r): return "rate:\(Self.formatRate(r))"
        case .poisson(let r): return "poisson:\(Self.formatRate(r))"
        case .trace(let path): return "trace:\((path as NSString).lastPathComponent)"
        case .sweep(let k): return k == Self.defaultSweepRates ? "sweep" : "sweep:rates=\(k)"
        case .sloSearch(let target, let probes):
            var options: [String] = []
            if target != Self.defaultSLOTarget { options.append("target=\(Self.formatRate(target))") }
            if probes != Self.defaultSLOProbes { options.append("probes=\(probes)") }
            return options.isEmpty ? "slo-search" : "slo-search:" + options.joined(separator: ",")
        }
    }

    /// True for the profiles that send on a schedule (rate, poisson, trace).
    public var isOpenLoop: Bool {
        switch self {
        case .rate, .poisson, .trace: return true
        default: return false
        }
    }

    /// A rate as the contract writes it in `rate:<R>` and `poisson:<R>`: at most 4 significant digits, no
    /// trailing zeros (`2`, `2.5`, `0.3333`, `1235`; `12350` for 12345).
    public static func formatRate(_ r: Double) -> String {
        guard r.isFinite, r != 0 else { return "\(r)" }
        let digits = 4 - Int(floor(log10(abs(r)))) - 1
        let scale = pow(10, Double(digits))
        let rounded = (r * scale).rounded() / scale
        if digits <= 0 { return String(Int64(rounded)) }
        var s = String(format: "%.\(digits)f", rounded)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}
