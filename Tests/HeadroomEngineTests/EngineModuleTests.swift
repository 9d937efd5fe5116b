import XCTest
@testable import HeadroomEngine

final class EngineModuleTests: XCTestCase {
    func testModuleLinks() {
        // Replaced by the engine's own tests as they land; checks the target builds and links OpenBLAS.
        XCTAssertTrue(true)
    }
}
