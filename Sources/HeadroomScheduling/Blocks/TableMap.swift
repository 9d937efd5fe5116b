// Block tables by request id, for the lookup every sequence of every step makes. Swift's `Dictionary` hashes
// each key with a seeded SipHash, and that was the simulator's largest cost (a fifth of a `whatif`, profiled);
// request ids are plain integers, so a multiplicative hash and linear probing do the same job in a few
// instructions.

/// A map from request id to value: open addressing, linear probing, Fibonacci hashing of the id, backward-shift
/// deletion (no tombstones), at most half full.
struct TableMap<Value> {
    private var keys: [Int]
    private var values: [Value?]
    private var shift: Int
    private(set) var count = 0

    init() {
        keys = Array(repeating: 0, count: 16)
        values = Array(repeating: nil, count: 16)
        shift = 64 - 4
    }

    private var mask: Int { keys.count - 1 }

    @inline(__always)
    private func home(_ key: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: Int64(key)) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(shift))
    }

    /// The slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func find(_ key: Int) -> (index: Int, found: Bool) {
        var i = home(key)
        while values[i] != nil {
            if keys[i] == key { return (i, true) }
            i = (i + 1) & mask
        }
        return (i, false)
    }

    subscript(id: RequestID) -> Value? {
        let (i, found) = find(id.rawValue)
        return found ? values[i] : nil
    }

    /// The slot of `id`'s value, inserting `make()` first when there is none; valid until the next insertion
    /// or removal.
    mutating func slot(for id: RequestID, default make: @autoclosure () -> Value) -> Int {
        var (i, found) = find(id.rawValue)
        if !found {
            if (count + 1) * 2 > keys.count {
                grow()
                i = find(id.rawValue).index
            }
            keys[i] = id.rawValue
            values[i] = make()
            count += 1
        }
        return i
    }

    /// The value in an occupied slot, read or changed in place.
    subscript(slot i: Int) -> Value {
        get { values[i]! }
        _modify { yield &values[i]! }
    }

    @discardableResult
    mutating func removeValue(forKey id: RequestID) -> Value? {
        var (i, found) = find(id.rawValue)
        guard found else { return nil }
        let removed = values[i]
        values[i] = nil
        count -= 1
        // Backward shift: pull later entries of the probe run into the hole when their home is not between
        // the hole and them, so every lookup still finds its key before an empty slot.
        var j = (i + 1) & mask
        while values[j] != nil {
            let k = home(keys[j])
            let between = i <= j ? (i < k && k <= j) : (i < k || k <= j)
            if !between {
                keys[i] = keys[j]
                values[i] = values[j]
                values[j] = nil
                i = j
            }
            j = (j + 1) & mask
        }
        return removed
    }

    /// Every entry, in no particular order.
    var entries: [(id: RequestID, value: Value)] {
        keys.indices.compactMap { i in values[i].map { (RequestID(keys[i]), $0) } }
    }

    private mutating func grow() {
        let old = zip(keys, values).compactMap { k, v in v.map { (k, $0) } }
        keys = Array(repeating: 0, count: keys.count * 2)
        values = Array(repeating: nil, count: keys.count)
        shift -= 1
        for (k, v) in old {
            let i = find(k).index
            keys[i] = k
            values[i] = v
        }
    }
}
