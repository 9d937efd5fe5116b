// Text from files (GGUF metadata, tensor names, YAML values, paths) reaches the terminal only through
// this escape: control characters become visible escapes, so no file can move the cursor, retitle the
// window or hide text with terminal escape sequences.

public enum TerminalText {
    /// `s` with every control character except newline and tab (C0, DEL, C1 — ESC and NUL among them)
    /// written as `\u{…}`, and a backslash that starts such an escape left as it is.
    public static func escape(_ s: String, keepNewlines: Bool = true) -> String {
        var needs = false
        for u in s.unicodeScalars where isControl(u, keepNewlines: keepNewlines) { needs = true; break }
        guard needs else { return s }
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if isControl(u, keepNewlines: keepNewlines) {
                switch u {
                case "\n": out.append(contentsOf: "\\n".unicodeScalars)
                case "\t": out.append(contentsOf: "\\t".unicodeScalars)
                case "\r": out.append(contentsOf: "\\r".unicodeScalars)
                default: out.append(contentsOf: "\\u{\(String(u.value, radix: 16))}".unicodeScalars)
                }
            } else {
                out.append(u)
            }
        }
        return String(out)
    }

    static func isControl(_ u: Unicode.Scalar, keepNewlines: Bool) -> Bool {
        if keepNewlines && (u == "\n" || u == "\t") { return false }
        return u.value < 0x20 || (0x7F...0x9F).contains(u.value)
            // bidirectional overrides and isolates reorder what the reader sees
            || (0x202A...0x202E).contains(u.value) || (0x2066...0x2069).contains(u.value)
    }
}
