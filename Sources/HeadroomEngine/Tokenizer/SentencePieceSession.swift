// SentencePiece-style BPE over a `tokenizer.ggml.model = llama` vocabulary, as llama.cpp's
// llm_tokenizer_spm does it: start from UTF-8 characters, repeatedly merge the adjacent pair whose
// concatenation is the highest-scoring token, and spell whatever is left that is not a token in bytes.

/// One symbol of the text being merged: a byte range, linked to its neighbours (-1 at the ends).
struct MergeSymbol {
    var start: Int
    var length: Int
    var prev: Int
    var next: Int
    /// The token id of the symbol's text, or -1 (BPE only; SPM looks texts up when needed).
    var id: Int32 = -1
}

/// The symbols of UTF-8 `text`, one per character (a truncated trailing sequence keeps what is there).
func utf8Symbols(_ text: [UInt8], from: Int = 0, to: Int? = nil) -> [MergeSymbol] {
    let end = to ?? text.count
    var symbols: [MergeSymbol] = []
    symbols.reserveCapacity(end - from)
    var offset = from
    while offset < end {
        let lead = text[offset]
        let width = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        let length = min(width, end - offset)
        let index = symbols.count
        offset += length
        symbols.append(MergeSymbol(start: offset - length, length: length, prev: index - 1, next: offset == end ? -1 : index + 1))
    }
    return symbols
}

extension Tokenizer {
    private struct Bigram {
        var left: Int
        var right: Int
        var score: Float
        var size: Int
    }

    /// Appends the tokens of `text` (already space-escaped) to `output`.
    func encodeSentencePiece(_ text: [UInt8], into output: inout [Int32]) {
        var symbols = utf8Symbols(text)
        guard !symbols.isEmpty else { return }
        // Highest score first; between equal scores, the leftmost pair.
        var queue = MergeQueue<Bigram> { a, b in a.score > b.score || (a.score == b.score && a.left < b.left) }

        func tryAdd(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let start = symbols[left].start
            let size = symbols[left].length + symbols[right].length
            guard let id = vocab.ids[Array(text[start..<(start + size)])] else { return }
            queue.push(Bigram(left: left, right: right, score: vocab.scores[Int(id)], size: size))
        }

        for i in 1..<symbols.count { tryAdd(i - 1, i) }
        while let bigram = queue.pop() {
            let left = symbols[bigram.left], right = symbols[bigram.right]
            // Skip pairs one of whose symbols has since been merged into another.
            guard left.length > 0, right.length > 0, left.length + right.length == bigram.size else { continue }
            symbols[bigram.left].length += right.length
            symbols[bigram.right].length = 0
            symbols[bigram.left].next = right.next
            if right.next >= 0 { symbols[right.next].prev = bigram.left }
            tryAdd(symbols[bigram.left].prev, bigram.left)
            tryAdd(bigram.left, symbols[bigram.left].next)
        }

        var i = 0
        while i != -1 {
            let symbol = symbols[i]
            let piece = Array(text[symbol.start..<(symbol.start + symbol.length)])
            if let id = vocab.ids[piece] {
                output.append(id)
            } else {
                for byte in piece {
                    if let id = sentencePieceByteToken(byte) { output.append(id) }
                }
            }
            i = symbol.next
        }
    }

    /// The byte-fallback token for `byte`: `<0xXX>`, else the byte itself as a token, else the unknown
    /// token (llama.cpp throws here; SentencePiece without byte fallback emits the unknown token).
    func sentencePieceByteToken(_ byte: UInt8) -> Int32? {
        let hex = Array("0123456789ABCDEF".utf8)
        let name: [UInt8] = [0x3C, 0x30, 0x78, hex[Int(byte >> 4)], hex[Int(byte & 15)], 0x3E]
        return vocab.ids[name] ?? vocab.ids[[byte]] ?? vocab.unknown
    }
}
