// The planner's bytes per weight (HeadroomCore cannot import the kernels) against the kernels' table of formats,
// and the command line's engine vocabulary against the same table.
import HeadroomCore
import HeadroomKernels
import XCTest

final class PrecisionBytesTests: XCTestCase {
    func testPlannerBytesPerWeightAreTheTables() {
        for e in PrecisionNames.entries where e.engine {
            guard let q = QuantType(name: e.name) else { XCTFail("\(e.name) is an engine name the kernels' table lacks"); continue }
            if let p = e.planner { XCTAssertEqual(p.weightBytes, q.bytesPerWeight, "planner \(p.rawValue) vs kernels \(q)") }
        }
        XCTAssertEqual(Precision.int8.weightBytes, QuantType.q8_0.bytesPerWeight)
        XCTAssertEqual(Precision.int4.weightBytes, QuantType.q4_0.bytesPerWeight)
        XCTAssertEqual(Set(PrecisionNames.entries.filter(\.engine).map(\.name)), Set(QuantType.allCases.map(\.description)),
                       "every format of the table is an engine name, and nothing else is")
    }

    /// The execution-time models' statement of the prefill kernel's padding is the kernel's.
    func testPrefillPaddingIsTheKernels() {
        XCTAssertEqual(PrefillKernel.rowBlock, QMatmul.sgemmRowBlock)
        for rows in 2...600 { XCTAssertEqual(PrefillKernel.sgemmRows(rows), QMatmul.paddedRows(rows), "\(rows) rows") }
        XCTAssertEqual(PrefillKernel.sgemmRows(1), 1, "a one-token chunk is a decode row, never sgemm's")
        XCTAssertEqual(PrefillKernel.sgemmRows(0), 0)
    }
}
