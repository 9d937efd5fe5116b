// Byte-level BPE over a `tokenizer.ggml.model = gpt2` vocabulary, as llama.cpp's llm_tokenizer_bpe does
// it: pre-tokenize into words, map each word's bytes to GPT-2's printable characters, then repeatedly
// merge the adjacent pair with the lowest merge rank.

extension Tokenizer {
    private struct Bigram {
        var left: Int
        var right: Int
        var rank: Int32
        var leftLength: Int
        var rightLength: Int
    }

    /// Appends the tokens of `text` to `output`.
    func encodeBytePair(_ text: [UInt8], into output: inout [Int32]) {
        guard let family = vocab.family else { return }
        let codepoints = String(decoding: text, as: UTF8.self).unicodeScalars.map(\.value)
        let lengths = family.pre.split(codepoints)

        // Lowest rank first; between equal ranks, the leftmost pair.
        var queue = MergeQueue<Bigram> { a, b in a.rank < b.rank || (a.rank == b.rank && a.left < b.left) }
        var start = 0
        var scratch: [UInt8] = []
        for length in lengths {
            // The word's UTF-8 bytes, each spelled as its GPT-2 character.
            var word: [UInt8] = []
            for cp in codepoints[start..<(start + length)] {
                scratch.removeAll(keepingCapacity: true)
                scratch.append(contentsOf: String(Unicode.Scalar(cp)!).utf8)
                for byte in scratch { word.append(contentsOf: ByteLevelEncoding.encoded[Int(byte)]) }
            }
            start += length

            var symbols: [MergeSymbol]
            if family.ignoreMerges, let id = vocab.ids[word] {
                symbols = [MergeSymbol(start: 0, length: word.count, prev: -1, next: -1, id: id)]
            } else {
                symbols = utf8Symbols(word)
                for i in symbols.indices {
                    symbols[i].id = vocab.ids[Array(word[symbols[i].start..<(symbols[i].start + symbols[i].length)])] ?? -1
                }
            }

            queue.removeAll()
            func tryAdd(_ left: Int, _ right: Int) {
                guard left >= 0, right >= 0 else { return }
                let l = symbols[left], r = symbols[right]
                guard l.id >= 0, r.id >= 0, let rank = vocab.merges[TokenVocabulary.mergeKey(l.id, r.id)] else { return }
                queue.push(Bigram(left: left, right: right, rank: rank, leftLength: l.length, rightLength: r.length))
            }
            for i in symbols.indices.dropFirst() { tryAdd(i - 1, i) }
            while let bigram = queue.pop() {
                let left = symbols[bigram.left], right = symbols[bigram.right]
                // Skip pairs whose symbols have changed since they were queued.
                guard left.length > 0, right.length > 0,
                      left.length == bigram.leftLength, right.length == bigram.rightLength else { continue }
                let merged = left.length + right.length
                symbols[bigram.left].length = merged
                symbols[bigram.left].id = vocab.ids[Array(word[left.start..<(left.start + merged)])] ?? -1
                symbols[bigram.right].length = 0
                symbols[bigram.left].next = right.next
                if right.next >= 0 { symbols[right.next].prev = bigram.left }
                tryAdd(symbols[bigram.left].prev, bigram.left)
                tryAdd(bigram.left, symbols[bigram.left].next)
            }

            for symbol in symbols where symbol.length > 0 {
                if symbol.id >= 0 {
                    output.append(symbol.id)
                } else {
                    // Not a token: each byte of its text that is a token by itself (llama.cpp's fallback).
                    for byte in word[symbol.start..<(symbol.start + symbol.length)] {
                        if let id = vocab.ids[[byte]] { output.append(id) }
                    }
                }
            }
        }
    }
}
