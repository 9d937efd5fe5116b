@testable import HeadroomScheduling
import XCTest

/// The block tables' map against Swift's Dictionary: the same answers after every operation of a long random
/// sequence of inserts, changes and removals (growth, probe runs and backward-shift deletion all exercised).
final class TableMapTests: XCTestCase {
    func testMatchesADictionaryOverRandomOperations() {
        var rng = SplitMix64(seed: 7)
        var map = TableMap<Int>()
        var reference: [RequestID: Int] = [:]
        for step in 0..<40_000 {
            // Ids from a small range (collisions, reuse) and sometimes large or negative ones.
            let raw = rng.next() % 10 == 0 ? Int(truncatingIfNeeded: rng.next()) : Int(rng.next() % 700)
            let id = RequestID(raw)
            switch rng.next() % 3 {
            case 0:
                let slot = map.slot(for: id, default: 0)
                map[slot: slot] += step
                reference[id, default: 0] += step
            case 1:
                XCTAssertEqual(map.removeValue(forKey: id), reference.removeValue(forKey: id))
            default:
                XCTAssertEqual(map[id], reference[id])
            }
            XCTAssertEqual(map.count, reference.count)
        }
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: map.entries.map { ($0.id, $0.value) }), reference)
        for (id, value) in reference { XCTAssertEqual(map[id], value) }
    }

    func testRemovingEverythingLeavesItEmptyAndUsable() {
        var map = TableMap<String>()
        for i in 0..<1000 { _ = map.slot(for: RequestID(i * 16), default: "v\(i)") }
        XCTAssertEqual(map.count, 1000)
        for i in stride(from: 999, through: 0, by: -1) { XCTAssertEqual(map.removeValue(forKey: RequestID(i * 16)), "v\(i)") }
        XCTAssertEqual(map.count, 0)
        XCTAssertTrue(map.entries.isEmpty)
        XCTAssertNil(map[RequestID(0)])
        map[slot: map.slot(for: RequestID(5), default: "a")] += "b"
        XCTAssertEqual(map[RequestID(5)], "ab")
    }
}
