// A double-ended queue of small integers (block numbers, sequence slots) in one ring buffer. The
// scheduler runs millions of steps in the simulator, so its queues push and pop at either end in O(1)
// and stop allocating once they have grown to their largest size.

struct IndexRing: Sendable {
    private var storage: [Int32]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        storage = Array(repeating: 0, count: max(capacity, 1))
    }

    var isEmpty: Bool { count == 0 }

    var first: Int32? { count == 0 ? nil : storage[head] }

    /// The element `i` places from the front.
    subscript(i: Int) -> Int32 {
        precondition(i >= 0 && i < count, "IndexRing index \(i) out of 0..<\(count)")
        return storage[physical(i)]
    }

    mutating func pushBack(_ value: Int32) {
        if count == storage.count { grow() }
        storage[physical(count)] = value
        count += 1
    }

    mutating func pushFront(_ value: Int32) {
        if count == storage.count { grow() }
        head = head == 0 ? storage.count - 1 : head - 1
        storage[head] = value
        count += 1
    }

    mutating func popFront() -> Int32 {
        precondition(count > 0, "popFront on an empty IndexRing")
        let value = storage[head]
        head = physical(1)
        count -= 1
        return value
    }

    func firstIndex(of value: Int32) -> Int? {
        for i in 0..<count where storage[physical(i)] == value { return i }
        return nil
    }

    /// Removes the element `i` places from the front, keeping the order of the rest; O(count).
    @discardableResult
    mutating func remove(at i: Int) -> Int32 {
        let value = self[i]
        var j = i
        while j + 1 < count {
            storage[physical(j)] = storage[physical(j + 1)]
            j += 1
        }
        count -= 1
        return value
    }

    /// The elements front to back (allocates: for tests and diagnostics, not the hot path).
    var elements: [Int32] { (0..<count).map { storage[physical($0)] } }

    private func physical(_ i: Int) -> Int {
        let p = head + i
        return p >= storage.count ? p - storage.count : p
    }

    private mutating func grow() {
        var bigger = [Int32](repeating: 0, count: storage.count * 2)
        for i in 0..<count { bigger[i] = storage[physical(i)] }
        storage = bigger
        head = 0
    }
}
