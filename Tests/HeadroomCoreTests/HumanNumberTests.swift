import XCTest
@testable import HeadroomCore

/// Money and counts for people, at every boundary where the form changes.
final class HumanNumberTests: XCTestCase {
    func testMoney() {
        XCTAssertEqual(HumanNumber.money(0), "$0")
        XCTAssertEqual(HumanNumber.money(0.944), "$0.94")
        XCTAssertEqual(HumanNumber.money(99.99), "$99.99")
        XCTAssertEqual(HumanNumber.money(99.996), "$100", "rounds up into whole dollars")
        XCTAssertEqual(HumanNumber.money(438), "$438")
        XCTAssertEqual(HumanNumber.money(999), "$999")
        XCTAssertEqual(HumanNumber.money(999.5), "$1,000")
        XCTAssertEqual(HumanNumber.money(1000), "$1,000")
        XCTAssertEqual(HumanNumber.money(28_710.9), "$28,711")
        XCTAssertEqual(HumanNumber.money(999_999), "$999,999")
        XCTAssertEqual(HumanNumber.money(999_999.5), "$1.00M", "a million after rounding is written as one")
        XCTAssertEqual(HumanNumber.money(1e6), "$1.00M")
        XCTAssertEqual(HumanNumber.money(19_813_392), "$19.8M")
        XCTAssertEqual(HumanNumber.money(123_456_789), "$123M")
        XCTAssertEqual(HumanNumber.money(999_960_000), "$1.00B")
        XCTAssertEqual(HumanNumber.money(4.56e12), "$4.56T")
        XCTAssertEqual(HumanNumber.money(999.6e12), "$1.00 × 10¹⁵")
        XCTAssertEqual(HumanNumber.money(1e19), "$1.00 × 10¹⁹")
        XCTAssertEqual(HumanNumber.money(-1234), "-$1,234")
        XCTAssertEqual(HumanNumber.money(-19.8e6), "-$19.8M")
        XCTAssertEqual(HumanNumber.money(-0.5), "-$0.50")
        XCTAssertEqual(HumanNumber.money(.nan), "—")
        XCTAssertEqual(HumanNumber.money(.infinity), "—")
        XCTAssertEqual(HumanNumber.money(-.infinity), "—")
    }

    func testCounts() {
        XCTAssertEqual(HumanNumber.count(0), "0")
        XCTAssertEqual(HumanNumber.count(8), "8")
        XCTAssertEqual(HumanNumber.count(0.25), "0.25")
        XCTAssertEqual(HumanNumber.count(2.777), "2.78")
        XCTAssertEqual(HumanNumber.count(12.46), "12.5")
        XCTAssertEqual(HumanNumber.count(999), "999")
        XCTAssertEqual(HumanNumber.count(999.4), "999")
        XCTAssertEqual(HumanNumber.count(999.6), "1,000")
        XCTAssertEqual(HumanNumber.count(1000), "1,000")
        XCTAssertEqual(HumanNumber.count(3944), "3,944")
        XCTAssertEqual(HumanNumber.count(999_999), "999,999")
        XCTAssertEqual(HumanNumber.count(999_999.7), "1.00 M")
        XCTAssertEqual(HumanNumber.count(1e6), "1.00 M")
        XCTAssertEqual(HumanNumber.count(6.08e8), "608 M")
        XCTAssertEqual(HumanNumber.count(6.0833e8), "608 M")
        XCTAssertEqual(HumanNumber.count(8.03e9), "8.03 B")
        XCTAssertEqual(HumanNumber.count(15e12), "15.0 T")
        XCTAssertEqual(HumanNumber.count(2.2e15), "2.20 × 10¹⁵")
        XCTAssertEqual(HumanNumber.count(-3944), "-3,944")
        XCTAssertEqual(HumanNumber.count(-6.08e8), "-608 M")
        XCTAssertEqual(HumanNumber.count(.nan), "—")
        XCTAssertEqual(HumanNumber.count(-.infinity), "—")
    }
}
