// Plain-text tables for the terminal: columns padded to their widest cell, numbers right-aligned.
import HeadroomCore

public struct TextTable {
    public var header: [String]
    public var rows: [[String]] = []
    /// Columns whose cells are right-aligned (numbers).
    public var rightAligned: Set<Int>

    public init(_ header: [String], rightAligned: Set<Int> = []) {
        self.header = header
        self.rightAligned = rightAligned
    }

    /// Cells are escaped here, once, since they may hold names read from files.
    public mutating func add(_ row: [String]) { rows.append(row.map { TerminalText.escape($0, keepNewlines: false) }) }

    public var rendered: String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            header.indices.map { c in
                let cell = c < cells.count ? cells[c] : ""
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return rightAligned.contains(c) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// The same table as GitHub-flavoured Markdown (pipes in cells escaped).
    public var markdown: String {
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        let head = "| " + header.map(esc).joined(separator: " | ") + " |"
        let rule = "|" + header.indices.map { rightAligned.contains($0) ? " ---: |" : " --- |" }.joined()
        let body = rows.map { "| " + $0.map(esc).joined(separator: " | ") + " |" }
        return ([head, rule] + body).joined(separator: "\n")
    }

    /// The same table as HTML, every cell escaped.
    public var html: String {
        var out = "<table>\n<thead><tr>" + header.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for r in rows {
            out += "<tr>" + r.enumerated().map { i, cell in
                rightAligned.contains(i) ? "<td class=\"num\">\(HTML.escape(cell))</td>" : "<td>\(HTML.escape(cell))</td>"
            }.joined() + "</tr>\n"
        }
        return out + "</tbody>\n</table>"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

public enum HTML {
    /// Escapes text for HTML element content and attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// Number formatting shared by tables and reports.
public enum Fmt {
    /// Three significant figures, no exponent for everyday magnitudes.
    public static func sig(_ v: Double) -> String {
        guard v.isFinite else { return "—" }
        let a = abs(v)
        if a == 0 { return "0" }
        // Printed from the Double (never through Int, which traps beyond 9.2e18); an exponent past 1e15.
        if a >= 1e15 { return String(format: "%.3g", v) }
        if a >= 1000 { return String(format: "%.0f", v.rounded()) }
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 10 { return String(format: "%.1f", v) }
        if a >= 1 { return String(format: "%.2f", v) }
        if a >= 0.01 { return String(format: "%.3f", v) }
        return String(format: "%.2e", v)
    }

    public static func percent(_ f: Double) -> String {
        guard f.isFinite else { return "—" }
        return String(format: "%.0f%%", f * 100)
    }

    public static func ms(_ seconds: Double) -> String { sig(seconds * 1000) }

    public static func bytes(_ b: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = b, i = 0
        while abs(v) >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return "\(sig(v)) \(units[i])"
    }
}
