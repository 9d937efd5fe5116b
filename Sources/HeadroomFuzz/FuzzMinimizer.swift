// Shrinks an input while the reader's answer stays the same, so the committed corpus holds the few lines that
// reach a check rather than a whole catalog file around them. Runs in process: for inputs that return.

public enum FuzzMinimizer {
    /// The smallest input found by removing chunks (halves, then quarters, … down to single lines for text, single
    /// bytes for binary) whose verdict keeps `input`'s signature. At most `attempts` runs of the reader.
    public static func minimize(_ input: [UInt8], target: FuzzTarget, attempts: Int = 2000) -> [UInt8] {
        let signature = target.run(input).signature
        let isText = target.fileExtension == "yaml"
        var units = isText ? lines(input) : input.map { [$0] }
        var runs = 0
        var chunk = max(units.count / 2, 1)
        while chunk >= 1 && runs < attempts {
            var start = 0
            var removedAny = false
            while start < units.count && runs < attempts {
                var candidate = units
                candidate.removeSubrange(start..<min(start + chunk, candidate.count))
                runs += 1
                if !candidate.isEmpty, target.run(candidate.flatMap { $0 }).signature == signature {
                    units = candidate
                    removedAny = true
                } else {
                    start += chunk
                }
            }
            if !removedAny || chunk > units.count { chunk /= 2 }
        }
        return units.flatMap { $0 }
    }

    /// The lines of `bytes`, each with its newline.
    static func lines(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var current: [UInt8] = []
        for b in bytes {
            current.append(b)
            if b == 10 {
                out.append(current)
                current = []
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
