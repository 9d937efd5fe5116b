// Token bytes to text for streaming: a token may end in the middle of a UTF-8 character.

/// Collects token bytes and hands back only complete UTF-8 characters (a token may hold part of one).
public struct UTF8Stream: Sendable {
    public init() {}

    private var pending: [UInt8] = []

    /// The complete characters once `bytes` are appended; an incomplete tail waits for the next call.
    public mutating func append(_ bytes: [UInt8]) -> String {
        pending += bytes
        var end = pending.count
        // Back up over an incomplete final sequence: at most 3 continuation bytes after its lead byte.
        var i = pending.count - 1, back = 0
        while i >= 0 && back < 4 && pending[i] & 0xC0 == 0x80 { i -= 1; back += 1 }
        if i >= 0 {
            let lead = pending[i], need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if pending.count - i < need { end = i }
        }
        let out = String(decoding: pending[..<end], as: UTF8.self)
        pending.removeFirst(end)
        return out
    }

    /// Whatever is left (invalid bytes become U+FFFD).
    public mutating func flush() -> String { defer { pending = [] }; return String(decoding: pending, as: UTF8.self) }
}
