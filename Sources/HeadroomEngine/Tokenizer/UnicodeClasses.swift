// The Unicode facts the pre-tokenizers ask about a code point (its category group: \p{L}, \p{N}, …, and
// White_Space), answered as llama.cpp's tables answer them, and GPT-2's byte-to-character mapping.

/// llama.cpp's code point flags: exactly one category bit (or `undefined`), plus `whitespace`.
struct CodepointFlags: OptionSet, Sendable {
    let rawValue: UInt16

    static let undefined = CodepointFlags(rawValue: 0x0001)
    static let number = CodepointFlags(rawValue: 0x0002)       // \p{N}
    static let letter = CodepointFlags(rawValue: 0x0004)       // \p{L}
    static let separator = CodepointFlags(rawValue: 0x0008)    // \p{Z}
    static let mark = CodepointFlags(rawValue: 0x0010)         // \p{M}
    static let punctuation = CodepointFlags(rawValue: 0x0020)  // \p{P}
    static let symbol = CodepointFlags(rawValue: 0x0040)       // \p{S}
    static let control = CodepointFlags(rawValue: 0x0080)      // \p{C}
    static let whitespace = CodepointFlags(rawValue: 0x0100)   // \s (Unicode White_Space)

    var isNumber: Bool { contains(.number) }
    var isLetter: Bool { contains(.letter) }
    var isWhitespace: Bool { contains(.whitespace) }
    /// The category bits alone, as llama.cpp's regex fallback compares them.
    var category: CodepointFlags { CodepointFlags(rawValue: rawValue & 0x00FF) }
}

enum UnicodeClasses {
    /// The flags of `cp`. llama.cpp's tables are generated from Unicode 15.1; Swift's runtime carries a
    /// newer Unicode, so code points assigned after 15.1 are reported `undefined`, as llama.cpp sees them.
    /// (Checked once against llama.cpp's unicode-data.cpp: with that cut-off the two agree on all 1,114,112
    /// code points.)
    static func flags(_ cp: UInt32) -> CodepointFlags {
        if cp < 128 { return ascii[Int(cp)] }
        guard let scalar = Unicode.Scalar(cp) else { return .undefined }
        let properties = scalar.properties
        guard let age = properties.age, age.major < 15 || (age.major == 15 && age.minor <= 1) else { return .undefined }
        var flags = category(properties.generalCategory)
        if properties.isWhitespace { flags.insert(.whitespace) }
        return flags
    }

    private static func category(_ c: Unicode.GeneralCategory) -> CodepointFlags {
        switch c {
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .spaceSeparator, .lineSeparator, .paragraphSeparator: return .separator
        case .nonspacingMark, .spacingMark, .enclosingMark: return .mark
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return .punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: return .symbol
        case .control, .format, .surrogate, .privateUse: return .control
        case .unassigned: return .undefined
        @unknown default: return .undefined
        }
    }

    private static let ascii: [CodepointFlags] = (0..<128).map { cp in
        let properties = Unicode.Scalar(UInt8(cp)).properties
        var flags = category(properties.generalCategory)
        if properties.isWhitespace { flags.insert(.whitespace) }
        return flags
    }
}

/// GPT-2's reversible mapping of the 256 byte values onto printable characters, so byte-level BPE
/// vocabularies can be stored as text: printable Latin-1 bytes map to themselves, the other 68 to
/// U+0100 onwards in byte order (space becomes "Ġ", newline "Ċ").
enum ByteLevelEncoding {
    /// The UTF-8 bytes of the character standing for each byte value.
    static let encoded: [[UInt8]] = {
        var codepoints = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                codepoints[b] = UInt32(b)
            } else {
                codepoints[b] = next
                next += 1
            }
        }
        return codepoints.map { Array(String(Unicode.Scalar($0)!).utf8) }
    }()

    /// The byte each mapping character stands for, by code point.
    static let decoded: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, utf8) in encoded.enumerated() {
            let scalar = String(decoding: utf8, as: UTF8.self).unicodeScalars.first!
            map[scalar.value] = UInt8(b)
        }
        return map
    }()
}
