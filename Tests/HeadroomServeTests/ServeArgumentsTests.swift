// `headroom serve`'s duration and KV budget options: the exact values they read, and what they refuse.
import HeadroomEngine
@testable import HeadroomServe
import XCTest

final class ServeArgumentsTests: XCTestCase {
    func testDurations() throws {
        let cases: [(String, Duration)] = [
            ("300s", .seconds(300)), ("5m", .seconds(300)), ("250ms", .milliseconds(250)), ("1h", .seconds(3600)),
            ("2", .seconds(2)), ("1.5s", .milliseconds(1500)), (" 30S ", .seconds(30)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try ServeArguments.duration(text), expected, text)
        }
        XCTAssertEqual(try ServeArguments.duration("168h"), .seconds(7 * 86400), "at most 7 days")
    }

    func testBadDurationsAreRefusedNamingTheText() {
        for text in ["", "0s", "-1s", "inf", "10d", "8days", "nan", "s", "1e400s", "169h", "5 minutes", "0.0001s"] {
            XCTAssertThrowsError(try ServeArguments.duration(text), "'\(text)'") { error in
                guard let e = error as? ServeArguments.Invalid else { return XCTFail("\(error)") }
                XCTAssertTrue(e.message.contains("'\(text)'"), e.message)
            }
        }
    }

    func testKVBudgets() throws {
        XCTAssertEqual(try ServeArguments.kvBudget("2GiB"), .bytes(2_147_483_648))
        XCTAssertEqual(try ServeArguments.kvBudget("512MiB"), .bytes(536_870_912))
        XCTAssertEqual(try ServeArguments.kvBudget("1.5GB"), .bytes(1_500_000_000))
        XCTAssertEqual(try ServeArguments.kvBudget("64KiB"), .bytes(65536))
        XCTAssertEqual(try ServeArguments.kvBudget("3 MB"), .bytes(3_000_000))
        XCTAssertEqual(try ServeArguments.kvBudget("65536"), .tokens(65536))
        XCTAssertEqual(try ServeArguments.kvBudget("1"), .tokens(1))
    }

    func testBadKVBudgetsAreRefused() {
        for text in ["0", "-5", "2XB", "GiB", "1e400GiB", "", "0GiB", "-1GiB", "nanGiB", "2gib", "1073741825", "0.5B"] {
            XCTAssertThrowsError(try ServeArguments.kvBudget(text), "'\(text)'") { error in
                XCTAssertTrue(error is ServeArguments.Invalid, "\(error)")
            }
        }
    }
}
