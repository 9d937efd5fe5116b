// Double → Int without traps. Swift's `Int(_: Double)` stops the process on NaN, on infinity and on a
// value beyond Int's range; a figure computed from user input must never do that. Every conversion of a
// computed figure goes through one of these two, so each call site says what an out-of-range figure
// means there: nil (the caller refuses, e.g. a candidate that needs too many replicas) or a clamp.

extension Int {
    /// `value` rounded by `rule`, or nil when it is NaN, infinite, or outside `range` once rounded.
    public init?(checking value: Double, rounding rule: FloatingPointRoundingRule, within range: ClosedRange<Int> = Int.min...Int.max) {
        guard let i = Int(exactly: value.rounded(rule)), range.contains(i) else { return nil }
        self = i
    }

    /// `value` rounded by `rule` and clamped into `range`. NaN, which has no place on the line, gives
    /// `range.lowerBound`; so does −∞, and +∞ gives `range.upperBound`.
    public init(saturating value: Double, rounding rule: FloatingPointRoundingRule, into range: ClosedRange<Int>) {
        let r = value.rounded(rule)
        if r.isNaN || r <= Double(range.lowerBound) {
            self = range.lowerBound
        } else if r >= Double(range.upperBound) {
            self = range.upperBound
        } else {
            // Strictly inside two Ints, so inside Int's range: the conversion cannot trap.
            self = Int(r)
        }
    }
}
