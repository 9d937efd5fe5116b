// Money and counts written for people: "$19.8M" rather than "$19813392", "608 M" tokens rather than
// "6.08e+08". The one helper the plan and whatif tables, the report's planning section and the planner's
// sentences use; `--json` keeps the raw numbers.
import Foundation

public enum HumanNumber {
    /// Dollars: "$0.94" below $100, whole dollars with thousands separators below a million ("$438",
    /// "$28,711", "$999,999"), then three significant figures with M, B or T ("$1.00M", "$19.8M",
    /// "$4.56B"), and a power of ten from a thousand trillion on ("$1.23 × 10¹⁵"). "—" for NaN or infinity.
    public static func money(_ v: Double) -> String {
        guard v.isFinite else { return "—" }
        if v == 0 { return "$0" }
        let a = abs(v), sign = v < 0 ? "-" : ""
        if a < 100 && (a * 100).rounded() < 10_000 { return sign + "$" + String(format: "%.2f", a) }
        return sign + "$" + large(a, space: "")
    }

    /// Counts: whole numbers as they are and three significant figures below a thousand ("8", "999", "12.5", "0.25"), whole numbers with
    /// thousands separators below a million ("1,000", "999,999"), then three significant figures with
    /// M, B or T ("1.00 M", "608 M"), and a power of ten from a thousand trillion on ("1.23 × 10¹⁵").
    /// "—" for NaN or infinity.
    public static func count(_ v: Double) -> String {
        guard v.isFinite else { return "—" }
        if v == 0 { return "0" }
        let a = abs(v), sign = v < 0 ? "-" : ""
        if a.rounded() < 1000 {
            if a >= 100 || a == a.rounded() { return sign + String(format: "%.0f", a) }
            if a >= 10 { return sign + String(format: "%.1f", a) }
            if a >= 1 { return sign + String(format: "%.2f", a) }
            return sign + String(format: "%.3g", a)
        }
        return sign + large(a, space: " ")
    }

    static let units: [(scale: Double, name: String)] = [(1e6, "M"), (1e9, "B"), (1e12, "T")]

    /// `a` ≥ 99.5: grouped whole number below a million, else a unit or a power of ten.
    static func large(_ a: Double, space: String) -> String {
        if a.rounded() < 1e6 { return grouped(a.rounded()) }
        for u in units {
            let (text, rounded) = threeFigures(a / u.scale)
            // 999.96 M prints as 1.00 B, not 1000 M.
            if rounded < 1000 { return text + space + u.name }
        }
        return scientific(a)
    }

    /// Three significant figures of x in [1, 1000), and the value they show.
    static func threeFigures(_ x: Double) -> (String, Double) {
        let text = x >= 99.95 ? String(format: "%.0f", x) : x >= 9.995 ? String(format: "%.1f", x) : String(format: "%.2f", x)
        return (text, Double(text) ?? x)
    }

    static func grouped(_ whole: Double) -> String {
        let digits = Array(String(format: "%.0f", whole))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }

    /// "1.23 × 10¹⁵".
    static func scientific(_ a: Double) -> String {
        var e = Int(log10(a).rounded(.down))
        var m = a / pow(10, Double(e))
        if (m * 100).rounded() >= 1000 { m /= 10; e += 1 }
        let sup: [Character: Character] = ["0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸",
                                           "9": "⁹", "-": "⁻"]
        return String(format: "%.2f", m) + " × 10" + String(String(e).map { sup[$0] ?? $0 })
    }
}
