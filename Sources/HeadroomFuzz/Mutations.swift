// Mutations that know nothing of the format: bit flips, byte changes, inserts, deletes, copies, splices and
// boundary integers at random places. The targets add mutations that know their format.

enum ByteMutations {
    /// Integers at the edges of the widths a format stores (as little-endian bytes when written).
    static let boundaryIntegers: [UInt64] = [
        0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 1024, 4095, 4096, 65535, 65536,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF, 1 << 32, (1 << 32) + 1, 1 << 40, (1 << 40) + 1,
        1 << 53, 1 << 60, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF_FFFF,
    ]

    /// Applies one generic mutation to `input`, maybe splicing in part of `other`.
    static func mutate(_ input: inout [UInt8], other: [UInt8], _ r: inout FuzzRandom) {
        if input.isEmpty {
            input = [UInt8(truncatingIfNeeded: r.next())]
            return
        }
        switch r.below(10) {
        case 0:  // flip one bit
            let i = r.below(input.count)
            input[i] ^= 1 << UInt8(r.below(8))
        case 1:  // set a byte to a random or an edge value
            input[r.below(input.count)] = r.oneIn(2) ? UInt8(truncatingIfNeeded: r.next()) : r.pick([0, 1, 0x7F, 0x80, 0xFF])
        case 2:  // insert random bytes
            let n = r.size(upTo: 64)
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: r.next()) }
            input.insert(contentsOf: bytes, at: r.below(input.count + 1))
        case 3:  // delete a range
            let start = r.below(input.count)
            input.removeSubrange(start..<min(input.count, start + r.size(upTo: 256)))
        case 4:  // copy a range elsewhere (repeated records, duplicated keys)
            let start = r.below(input.count)
            let chunk = Array(input[start..<min(input.count, start + r.size(upTo: 512))])
            input.insert(contentsOf: chunk, at: r.below(input.count + 1))
        case 5:  // overwrite with a boundary integer, 1, 2, 4 or 8 bytes little-endian
            let width = r.pick([1, 2, 4, 8])
            guard input.count >= width else { return }
            write(r.pick(boundaryIntegers), width: width, at: r.below(input.count - width + 1), in: &input)
        case 6:  // add or subtract a little at a random place
            let i = r.below(input.count)
            input[i] = r.oneIn(2) ? input[i] &+ UInt8(1 + r.below(16)) : input[i] &- UInt8(1 + r.below(16))
        case 7:  // truncate
            input.removeSubrange(r.below(input.count)...)
        case 8:  // splice: this input's head with another's tail
            guard !other.isEmpty else { return }
            let cut = r.below(input.count + 1)
            let from = r.below(other.count)
            input = Array(input[..<cut]) + Array(other[from...])
        default:  // shuffle a short window
            let start = r.below(input.count)
            let end = min(input.count, start + r.size(upTo: 16))
            input[start..<end].shuffle(using: &r)
        }
    }

    /// Writes the low `width` bytes of `value`, little-endian, at `offset` (which must leave room).
    static func write(_ value: UInt64, width: Int, at offset: Int, in bytes: inout [UInt8]) {
        for k in 0..<width { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
    }
}
