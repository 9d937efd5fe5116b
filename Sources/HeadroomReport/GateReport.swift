// What `headroom gate` writes: the terminal table, a Markdown summary for a CI job page, and JUnit XML
// (one test case per gated figure) for CI test reports. Every figure in them is measured.
import Foundation
import HeadroomCore

public struct GateReport {
    public var outcome: GateOutcome
    /// One line each: what was compared with what ("baseline gate-baseline: run 3, git abc…, machine …").
    public var context: [String]

    public init(outcome: GateOutcome, context: [String]) {
        self.outcome = outcome; self.context = context
    }

    public var passed: Bool { outcome.exitCode == 0 }

    /// "FAIL: 2 regressions" or "PASS" with the other counts.
    public var headline: String {
        let counts = [Verdict.regression, .notSignificant, .improvement, .pass].compactMap { v -> String? in
            let n = outcome.count(v)
            return n == 0 ? nil : "\(n) \(v.rawValue)"
        }.joined(separator: ", ")
        return "\(passed ? "PASS" : "FAIL"): \(outcome.rows.count) figures gated (\(counts))"
    }

    /// Parameters with the same value in every row: said once above the table instead of on every line.
    var common: [String: String] {
        guard let first = outcome.rows.first else { return [:] }
        return first.params.filter { k, v in outcome.rows.allSatisfy { $0.params[k] == v } }
    }

    func caseLabel(_ r: GateRow) -> String {
        let c = common
        var row = r
        row.params = r.params.filter { c[$0.key] == nil }
        return row.caseLabel
    }

    static func ratio(_ e: RatioEstimate) -> String {
        func f(_ v: Double) -> String { v.isFinite ? String(format: "%.3f", v) : "∞" }
        return "\(f(e.ratio)) [\(f(e.lower)), \(f(e.upper))]"
    }

    static func median(_ v: Double, _ r: GateRow) -> String {
        r.normalisation == nil || r.normalisation == Normalisation.machineIndependent.label ? "\(Fmt.sig(v)) \(r.unit)" : Fmt.sig(v)
    }

    public var table: TextTable {
        let confidence = outcome.rows.first.map { Int(($0.decision.estimate.confidence * 100).rounded()) } ?? 95
        var t = TextTable(["case", "metric", "normalised", "baseline median", "current median", "ratio [\(confidence)% CI]",
                           "threshold", "verdict"], rightAligned: [3, 4, 5, 6])
        for r in outcome.rows {
            t.add([caseLabel(r), r.metric, r.normalisation ?? "no", Self.median(r.baselineMedian, r), Self.median(r.currentMedian, r),
                   Self.ratio(r.decision.estimate), String(format: "%.0f%%", r.decision.threshold * 100), r.decision.verdict.rawValue])
        }
        return t
    }

    var commonLine: String {
        let c = common
        return c.isEmpty ? "" : "Every row: " + c.keys.sorted().map { "\($0)=\(c[$0]!)" }.joined(separator: " ")
    }

    static let method = "measured; ratio = current ÷ baseline, Hodges–Lehmann estimate with its Mann–Whitney confidence interval"

    /// The table and notes for the terminal.
    public var text: String {
        var lines = context + ["\(Self.method)."]
        if !commonLine.isEmpty { lines.append(commonLine) }
        lines += ["", table.rendered, ""] + outcome.notes.map { "note: \($0)" } + [headline]
        return lines.joined(separator: "\n")
    }

    /// A Markdown summary fit for a CI job page.
    public var markdown: String {
        var out = "## Headroom gate: \(passed ? "pass" : "**regression**")\n\n\(headline)\n\n"
        out += context.map { "- \(MarkdownText.escape($0))" }.joined(separator: "\n") + "\n"
        out += "- \(Self.method)\n"
        if !commonLine.isEmpty { out += "- \(MarkdownText.escape(commonLine))\n" }
        var t = table
        t.rows = t.rows.map { row in row.enumerated().map { i, cell in i == 7 && cell == Verdict.regression.rawValue ? "**\(cell)**" : cell } }
        out += "\n" + t.markdown + "\n"
        if !outcome.notes.isEmpty { out += "\n" + outcome.notes.map { "- note: \(MarkdownText.escape($0))" }.joined(separator: "\n") + "\n" }
        return out
    }

    /// JUnit XML: one test case per gated figure; a regression is a failure whose message has the figures.
    public func junit(suite: String, seconds: Double) -> String {
        let failures = outcome.regressions.count
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"headroom gate\" tests=\"\(outcome.rows.count)\" failures=\"\(failures)\" errors=\"0\" time=\"\(String(format: "%.3f", seconds))\">\n"
        x += "  <testsuite name=\"\(XML.escape(suite))\" tests=\"\(outcome.rows.count)\" failures=\"\(failures)\" errors=\"0\" skipped=\"0\" time=\"\(String(format: "%.3f", seconds))\">\n"
        x += "    <properties>\n"
        for (i, line) in context.enumerated() { x += "      <property name=\"context\(i + 1)\" value=\"\(XML.escape(line))\"/>\n" }
        x += "      <property name=\"method\" value=\"\(XML.escape(Self.method))\"/>\n    </properties>\n"
        for r in outcome.rows {
            let d = r.decision
            let figures = "\(r.metricLabel): baseline median \(Self.median(r.baselineMedian, r)) (n=\(d.estimate.baselineCount)\(r.baselineThreads == 0 ? "" : ", ×\(r.baselineThreads)t")), "
                + "current median \(Self.median(r.currentMedian, r)) (n=\(d.estimate.currentCount)\(r.threads == 0 ? "" : ", ×\(r.threads)t")), "
                + "ratio \(Self.ratio(d.estimate)) at \(Int((d.estimate.confidence * 100).rounded()))%, change \(d.changeDescription), "
                + "\(d.direction == .higherIsBetter ? "higher" : "lower") is better, threshold \(String(format: "%.1f", d.threshold * 100))%"
            let name = "\(caseLabel(r)) \(r.metricLabel)"
            x += "    <testcase classname=\"headroom.gate.\(XML.escape(r.kind.rawValue))\" name=\"\(XML.escape(name))\" time=\"0\">\n"
            if d.verdict == .regression {
                x += "      <failure type=\"regression\" message=\"\(XML.escape("regression: " + figures))\">\(XML.escape(figures))</failure>\n"
            } else {
                x += "      <system-out>\(XML.escape("\(d.verdict.rawValue): " + figures))</system-out>\n"
            }
            x += "    </testcase>\n"
        }
        x += "  </testsuite>\n</testsuites>\n"
        return x
    }
}

public enum XML {
    /// Escapes text for XML content and attribute values; drops characters XML 1.0 cannot hold.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out += "&#\(u.value);"
            default:
                if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { continue }
                out.unicodeScalars.append(u)
            }
        }
        return out
    }
}

enum MarkdownText {
    /// Keeps user text from turning into Markdown or HTML.
    static func escape(_ s: String) -> String {
        HTML.escape(s).replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "*", with: "\\*")
            .replacingOccurrences(of: "_", with: "\\_")
    }
}
