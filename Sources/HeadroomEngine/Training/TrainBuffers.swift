// One allocation per kind of buffer (parameters, adapters, gradients, optimizer moments, activations),
// each described by a table of named offsets computed before anything is allocated.
import HeadroomKernels

/// Named slices of one float allocation, laid out before allocating so the size is known up front.
/// Each slice starts on a 64-byte boundary.
public struct BufferTable: Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let offset: Int
        public let count: Int
    }
    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    /// Floats the allocation needs.
    public private(set) var count = 0

    public init() {}

    /// Reserves `count` floats under `name` and returns the offset.
    @discardableResult
    public mutating func add(_ name: String, _ count: Int) -> Int {
        precondition(index[name] == nil, "buffer \(name) laid out twice")
        let offset = self.count
        entries.append(Entry(name: name, offset: offset, count: count))
        index[name] = entries.count - 1
        self.count = offset + (count + 15) / 16 * 16
        return offset
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }
    public func offset(_ name: String) -> Int {
        guard let e = entry(name) else { preconditionFailure("no buffer named \(name)") }
        return e.offset
    }
    public var bytes: Int { count * MemoryLayout<Float>.stride }
}
