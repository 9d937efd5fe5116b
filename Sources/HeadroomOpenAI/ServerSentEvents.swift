// Server-sent events as OpenAI streams use them: each chunk is one event `data: {json}\n\n`, and the stream
// ends with `data: [DONE]\n\n`. The server side frames; the client side parses incrementally, as bytes arrive,
// with the size of a pending event bounded.
import Foundation

public enum ServerSentEvents {
    /// One event carrying `payload` (a JSON body): `data: …\n\n`. A payload with line breaks (compact JSON has
    /// none) is split over several `data:` lines, which a parser joins with "\n" (a CR or CRLF comes back as LF).
    public static func frame(_ payload: Data) -> Data {
        var out = Data()
        out.reserveCapacity(payload.count + 8)
        var lineStart = payload.startIndex
        var k = payload.startIndex
        while k < payload.endIndex {
            let b = payload[k]
            if b == 0x0A || b == 0x0D {
                out.append(contentsOf: Array("data: ".utf8)); out.append(payload[lineStart..<k]); out.append(0x0A)
                if b == 0x0D, payload.index(after: k) < payload.endIndex, payload[payload.index(after: k)] == 0x0A { k = payload.index(after: k) }
                lineStart = payload.index(after: k)
            }
            k = payload.index(after: k)
        }
        out.append(contentsOf: Array("data: ".utf8)); out.append(payload[lineStart...]); out.append(contentsOf: [0x0A, 0x0A])
        return out
    }

    /// The event that ends an OpenAI stream: `data: [DONE]\n\n`.
    public static let done = Data("data: [DONE]\n\n".utf8)

    /// The payload of `done`, as `ServerSentEventParser` returns it.
    public static let donePayload = "[DONE]"
}

/// A pending event grew past the parser's bound.
public struct ServerSentEventError: Error, Hashable, Sendable, CustomStringConvertible {
    public var limit: Int
    public var description: String { "a server-sent event is longer than \(limit) bytes" }
}

/// Reads server-sent events (the WHATWG event-stream format) from bytes in any pieces: a line ends with CRLF, LF
/// or CR; a blank line ends an event; `data:` lines are joined with "\n"; comments (`:` lines) and the other
/// fields (`event`, `id`, `retry`) are skipped; a leading byte-order mark is dropped. Data is decoded as UTF-8,
/// invalid bytes replaced. An event still open when the stream ends is not returned (see `hasPendingEvent`).
public struct ServerSentEventParser: Sendable {
    /// The most bytes a pending line and event may hold together; past it `feed` throws.
    public let maxEventBytes: Int
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var sawData = false
    /// The last byte fed was a CR: an LF right after it belongs to the same line end.
    private var afterCR = false
    private var firstLine = true

    public init(maxEventBytes: Int = 16 << 20) { self.maxEventBytes = maxEventBytes }

    /// True when bytes of an event not yet ended by a blank line are held.
    public var hasPendingEvent: Bool { !line.isEmpty || sawData }

    /// The data of each event the bytes complete, in order. Throws `ServerSentEventError` when a pending event
    /// would grow past `maxEventBytes`; the parser then holds nothing, and the stream should be dropped.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [String] {
        var events: [String] = []
        for b in bytes {
            if afterCR {
                afterCR = false
                if b == 0x0A { continue }
            }
            switch b {
            case 0x0D:
                afterCR = true
                endLine(into: &events)
            case 0x0A:
                endLine(into: &events)
            default:
                line.append(b)
                if line.count + data.count > maxEventBytes {
                    line = []; data = []; sawData = false
                    throw ServerSentEventError(limit: maxEventBytes)
                }
            }
        }
        return events
    }

    private mutating func endLine(into events: inout [String]) {
        defer { line.removeAll(keepingCapacity: true) }
        if firstLine {
            firstLine = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty {
            if sawData {
                if data.last == 0x0A { data.removeLast() }
                events.append(String(decoding: data, as: UTF8.self))
            }
            data.removeAll(keepingCapacity: true)
            sawData = false
            return
        }
        if line[0] == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
        guard line[..<colon].elementsEqual("data".utf8) else { return }
        var valueStart = min(colon + 1, line.count)
        if valueStart < line.count, line[valueStart] == 0x20 { valueStart += 1 }
        data.append(contentsOf: line[valueStart...])
        data.append(0x0A)
        sawData = true
    }
}
