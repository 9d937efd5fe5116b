// Shrinks an input while the reader's answer stays the same, so the committed corpus holds the few lines that
// reach a check rather than a whole catalog file around them. Runs in process: for inputs that return.

public enum FuzzMinimizer {
    /// The smallest input found by removing chunks (halves, then quarters, … down to single lines for text, single
    /// bytes for binary) whose verdict keeps `input`'s signature. Text still over `textBytes` after that (a deep
    /// nesting, a long string on one line) is cut byte by byte too; shorter text keeps its lines whole, so a value
    /// like 1e309 stays 1e309 rather than whatever digit of it still fails. At most `attempts` runs of the reader.
    public static func minimize(_ input: [UInt8], target: FuzzTarget, attempts: Int = 4000, textBytes: Int = 2048) -> [UInt8] {
        let signature = target.run(input).signature
        var runs = 0
        var bytes = input
        if target.fileExtension == "yaml" {
            bytes = removeChunks(lines(input), signature: signature, target: target, runs: &runs, limit: attempts / 2).flatMap { $0 }
            if bytes.count <= textBytes { return bytes }
        }
        return removeChunks(bytes.map { [$0] }, signature: signature, target: target, runs: &runs, limit: attempts).flatMap { $0 }
    }

    /// Delta debugging's complement step: drop chunks of `units` of halving size while the signature holds.
    static func removeChunks(_ start: [[UInt8]], signature: String, target: FuzzTarget, runs: inout Int, limit: Int) -> [[UInt8]] {
        var units = start
        var chunk = max(units.count / 2, 1)
        while chunk >= 1 && runs < limit {
            var at = 0
            var removedAny = false
            while at < units.count && runs < limit {
                var candidate = units
                candidate.removeSubrange(at..<min(at + chunk, candidate.count))
                runs += 1
                if !candidate.isEmpty, target.run(candidate.flatMap { $0 }).signature == signature {
                    units = candidate
                    removedAny = true
                } else {
                    at += chunk
                }
            }
            if !removedAny || chunk > units.count { chunk /= 2 }
        }
        return units
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
