import Foundation
import XCTest
@testable import HeadroomCore

/// A reproducible normal generator (SplitMix64 + Box–Muller) for synthetic sample sets.
struct SyntheticSamples {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Double(z >> 11) + 0.5) / Double(1 << 53)
    }

    mutating func normal() -> Double {
        (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())
    }

    /// `count` samples around `center` with a relative standard deviation `noise`.
    mutating func set(_ count: Int, center: Double, noise: Double) -> [Double] {
        (0..<count).map { _ in center * (1 + noise * normal()) }
    }
}

final class GateStatisticsTests: XCTestCase {
    func testOrderStatisticsOfPairwiseDifferencesMatchBruteForce() {
        var g = SyntheticSamples(seed: 3)
        for (n, m) in [(1, 1), (1, 5), (4, 3), (7, 9), (12, 5)] {
            // Rounded values, so ties (and repeated differences) occur.
            let x = (0..<n).map { _ in (g.uniform() * 8).rounded() / 4 }.sorted()
            let y = (0..<m).map { _ in (g.uniform() * 8).rounded() / 4 }.sorted()
            let all = x.flatMap { xi in y.map { $0 - xi } }.sorted()
            let d = PairwiseDifferences(x: x, y: y)
            for k in 1...all.count {
                XCTAssertEqual(d.kth(k), all[k - 1], "n=\(n) m=\(m) k=\(k)")
            }
        }
    }

    func testExactMannWhitneyNullDistributionMatchesTables() {
        // n = m = 5: 252 arrangements; U ≤ 2 in 4 of them, U ≤ 3 in 7.
        let cdf = MannWhitney.lowerCDF(n: 5, m: 5, upTo: 12)
        XCTAssertEqual(cdf[0], 1 / 252, accuracy: 1e-12)
        XCTAssertEqual(cdf[2], 4 / 252, accuracy: 1e-12)
        XCTAssertEqual(cdf[3], 7 / 252, accuracy: 1e-12)
        XCTAssertEqual(MannWhitney.lowerCDF(n: 5, m: 5, upTo: 25)[25], 1, accuracy: 1e-12)
        // Hollander & Wolfe: the 95 % interval for n = m = 5 runs from the 3rd smallest to the 3rd largest difference.
        XCTAssertEqual(RatioEstimate.criticalRank(n: 5, m: 5, confidence: 0.95), 3)
        // Three against three cannot reach 95 % (P(U = 0) = 1/20 > 2.5 %); four against four can, just.
        XCTAssertEqual(RatioEstimate.criticalRank(n: 3, m: 3, confidence: 0.95), 0)
        XCTAssertEqual(RatioEstimate.criticalRank(n: 4, m: 4, confidence: 0.95), 1)
    }

    func testNormalApproximationAgreesWithTheExactRankWhereTheyMeet() {
        // 100 × 101 pairs is just above the exact limit; the exact distribution is still computable here.
        let exact = MannWhitney.lowerCDF(n: 100, m: 101, upTo: 5050)
        var k = 0
        while exact[k] <= 0.025 { k += 1 }
        let approx = RatioEstimate.criticalRank(n: 100, m: 101, confidence: 0.95)
        XCTAssertEqual(approx, k, accuracy: 2)
        XCTAssertEqual(Normal.quantile(0.975), 1.959964, accuracy: 1e-6)
    }

    func testIdenticalDistributionsPass() throws {
        var g = SyntheticSamples(seed: 1)
        let base = g.set(20, center: 100, noise: 0.02), cur = g.set(20, center: 100, noise: 0.02)
        let e = try RatioEstimate.compare(baseline: base, current: cur)
        XCTAssertLessThan(e.lower, 1); XCTAssertGreaterThan(e.upper, 1)
        XCTAssertEqual(e.ratio, 1, accuracy: 0.02)
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05).verdict, .pass)
        XCTAssertEqual(Decision(estimate: e, direction: .lowerIsBetter, threshold: 0.05).verdict, .pass)
        // The very same samples: ratio exactly 1.
        let same = try RatioEstimate.compare(baseline: base, current: base)
        XCTAssertEqual(same.ratio, 1, accuracy: 1e-12)
    }

    func testConstantSamplesGiveAZeroWidthInterval() throws {
        let e = try RatioEstimate.compare(baseline: Array(repeating: 5, count: 200), current: Array(repeating: 5, count: 200))
        XCTAssertEqual([e.lower, e.ratio, e.upper], [1, 1, 1])
        // The tie-corrected variance of an all-equal pool is 0 up to rounding, which must not go negative.
        for (n, m) in [(101, 101), (333, 97), (1000, 1000), (4, 30_000)] {
            let c = try RatioEstimate.compare(baseline: Array(repeating: 7.3, count: n), current: Array(repeating: 7.3, count: m))
            XCTAssertEqual([c.lower, c.ratio, c.upper], [1, 1, 1], "\(n) × \(m)")
        }
    }

    func testTwentyPercentDropWithTwoPercentNoiseIsARegression() throws {
        var g = SyntheticSamples(seed: 2)
        let base = g.set(20, center: 100, noise: 0.02), cur = g.set(20, center: 80, noise: 0.02)
        let e = try RatioEstimate.compare(baseline: base, current: cur)
        XCTAssertEqual(e.ratio, 0.8, accuracy: 0.02)
        XCTAssertLessThan(e.upper, 0.85)
        XCTAssertGreaterThan(e.lower, 0.75)
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05).verdict, .regression)
        // Beyond a 25 % threshold it would not fail, significant or not.
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.25).verdict, .pass)
    }

    func testThreePercentShiftUnderFifteenPercentNoiseIsNotSignificant() throws {
        var g = SyntheticSamples(seed: 4)
        let base = g.set(20, center: 100, noise: 0.15), cur = g.set(20, center: 97, noise: 0.15)
        let e = try RatioEstimate.compare(baseline: base, current: cur)
        XCTAssertLessThan(e.lower, 1); XCTAssertGreaterThan(e.upper, 1)
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05).verdict, .notSignificant)
    }

    func testImprovementPassesAndIsReportedAsSuch() throws {
        var g = SyntheticSamples(seed: 5)
        let base = g.set(15, center: 100, noise: 0.02), cur = g.set(15, center: 125, noise: 0.02)
        let e = try RatioEstimate.compare(baseline: base, current: cur)
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05).verdict, .improvement)
    }

    func testDirectionDecidesWhetherGrowthIsGoodOrBad() throws {
        var g = SyntheticSamples(seed: 6)
        let base = g.set(20, center: 10, noise: 0.02), slower = g.set(20, center: 12, noise: 0.02)
        let up = try RatioEstimate.compare(baseline: base, current: slower)
        // 20 % more milliseconds is a regression; 20 % more tokens per second is an improvement.
        XCTAssertEqual(Decision(estimate: up, direction: .lowerIsBetter, threshold: 0.05).verdict, .regression)
        XCTAssertEqual(Decision(estimate: up, direction: .higherIsBetter, threshold: 0.05).verdict, .improvement)
        let down = try RatioEstimate.compare(baseline: slower, current: base)
        XCTAssertEqual(Decision(estimate: down, direction: .lowerIsBetter, threshold: 0.05).verdict, .improvement)
        XCTAssertEqual(Decision(estimate: down, direction: .higherIsBetter, threshold: 0.05).verdict, .regression)
        XCTAssertEqual(MetricRules.rule(for: "decode_tokens_per_s")?.direction, .higherIsBetter)
        XCTAssertEqual(MetricRules.rule(for: "ttft_ms")?.direction, .lowerIsBetter)
        XCTAssertEqual(MetricRules.rule(for: "peak_rss_bytes")?.direction, .lowerIsBetter)
        XCTAssertEqual(MetricRules.rule(for: "gflops")?.direction, .higherIsBetter)
        XCTAssertEqual(MetricRules.rule(for: "lm_head_gbps")?.normalisation, .divide(.readBandwidth))
        XCTAssertNil(MetricRules.rule(for: "loss"))
    }

    func testSmallSignificantChangeWithinThresholdPasses() throws {
        var g = SyntheticSamples(seed: 7)
        let base = g.set(30, center: 100, noise: 0.005), cur = g.set(30, center: 98, noise: 0.005)
        let e = try RatioEstimate.compare(baseline: base, current: cur)
        XCTAssertLessThan(e.upper, 1, "a 2 % drop under 0.5 % noise is significant")
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05).verdict, .pass)
    }

    func testTooFewSamplesCannotBeSignificant() throws {
        let e = try RatioEstimate.compare(baseline: [100, 101, 99], current: [50, 51, 49])
        XCTAssertFalse(e.isBounded)
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05).verdict, .notSignificant)
    }

    /// 50,000 copies of one value against a single sample: the rank test alone bounds a zero-wide interval
    /// there, but one sample is fewer than four, so it is not significant whatever its size.
    func testOneSampleAgainstAHugeConstantBaselineIsNotSignificant() throws {
        let e = try RatioEstimate.compare(baseline: Array(repeating: 100, count: 50_000), current: [130])
        XCTAssertEqual(e.ratio, 1.3, accuracy: 1e-12)
        XCTAssertFalse(e.isBounded)
        XCTAssertEqual([e.lower, e.upper], [0, .infinity])
        XCTAssertEqual(Decision(estimate: e, direction: .lowerIsBetter, threshold: 0.05).verdict, .notSignificant)
        XCTAssertEqual(Decision(estimate: e, direction: .higherIsBetter, threshold: 0.05).verdict, .notSignificant)
        // Three current samples against many: the rank distribution would allow an interval; the floor does not.
        XCTAssertGreaterThan(RatioEstimate.criticalRank(n: 3, m: 50, confidence: 0.95), 0)
        XCTAssertFalse(try RatioEstimate.compare(baseline: (1...50).map { 100 + Double($0) / 100 }, current: [200, 201, 202]).isBounded)
    }

    /// The boundary: three against three is never significant, four against four can be.
    func testThreeAgainstThreeAndFourAgainstFour() throws {
        let three = try RatioEstimate.compare(baseline: [100, 101, 102], current: [200, 201, 202])
        XCTAssertFalse(three.isBounded)
        XCTAssertEqual(Decision(estimate: three, direction: .lowerIsBetter, threshold: 0.05).verdict, .notSignificant)
        let four = try RatioEstimate.compare(baseline: [100, 101, 102, 103], current: [200, 201, 202, 203])
        XCTAssertTrue(four.isBounded)
        // K = 1: the interval runs from the smallest to the largest pairwise ratio.
        XCTAssertEqual(four.lower, 200 / 103, accuracy: 1e-12)
        XCTAssertEqual(four.upper, 203 / 100, accuracy: 1e-12)
        XCTAssertEqual(Decision(estimate: four, direction: .lowerIsBetter, threshold: 0.05).verdict, .regression)
        let fourByThree = try RatioEstimate.compare(baseline: [100, 101, 102, 103], current: [200, 201, 202])
        XCTAssertFalse(fourByThree.isBounded, "four on one side is not enough when the other has three")
    }

    /// Identical values on each side with four or more of each: a deterministic change, significant when it
    /// is one (a zero-width interval at the shift), and "no change" when the values agree.
    func testZeroSpreadOnBothSidesIsADeterministicChange() throws {
        let up = try RatioEstimate.compare(baseline: Array(repeating: 100, count: 4), current: Array(repeating: 120, count: 4))
        XCTAssertEqual(up.lower, 1.2, accuracy: 1e-12)
        XCTAssertEqual(up.ratio, 1.2, accuracy: 1e-12)
        XCTAssertEqual(up.upper, 1.2, accuracy: 1e-12)
        XCTAssertEqual(Decision(estimate: up, direction: .lowerIsBetter, threshold: 0.05).verdict, .regression)
        XCTAssertEqual(Decision(estimate: up, direction: .higherIsBetter, threshold: 0.05).verdict, .improvement)
        // Significant but within the threshold: pass.
        let small = try RatioEstimate.compare(baseline: Array(repeating: 100, count: 6), current: Array(repeating: 101, count: 6))
        XCTAssertEqual(Decision(estimate: small, direction: .lowerIsBetter, threshold: 0.05).verdict, .pass)
        // A large constant baseline against four constant samples takes the normal approximation with its tie
        // correction (200,000 pairs): still a zero-width interval at the shift.
        let many = try RatioEstimate.compare(baseline: Array(repeating: 100, count: 50_000), current: Array(repeating: 130, count: 4))
        XCTAssertEqual([many.lower, many.upper].map { ($0 * 1e9).rounded() / 1e9 }, [1.3, 1.3])
        XCTAssertEqual(Decision(estimate: many, direction: .lowerIsBetter, threshold: 0.05).verdict, .regression)
        // Three constant samples are still too few.
        let three = try RatioEstimate.compare(baseline: Array(repeating: 100, count: 3), current: Array(repeating: 120, count: 3))
        XCTAssertEqual(Decision(estimate: three, direction: .lowerIsBetter, threshold: 0.05).verdict, .notSignificant)
    }

    func testNonPositiveOrMissingSamplesAreRefused() {
        XCTAssertThrowsError(try RatioEstimate.compare(baseline: [1, 0], current: [1])) {
            XCTAssertEqual($0 as? ComparisonError, .nonPositive(0))
        }
        XCTAssertThrowsError(try RatioEstimate.compare(baseline: [], current: [1]))
    }
}
