// The vocabulary of the GGUF format: metadata value types, metadata values, and the ggml tensor
// types, whose byte sizes (for the ones Headroom supports) come from the kernels' table of formats.
import Foundation
import HeadroomKernels

/// The type tag of a GGUF metadata value, as stored in the file (a little-endian `u32`).
public enum GGUFValueType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// The encoded size of a value of this type, or nil for strings and arrays (variable length).
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes a value of this type takes in a file: bounds array counts before reading.
    var minimumEncodedSize: Int {
        switch self {
        case .string: return 8            // u64 length
        case .array: return 12            // u32 element type + u64 count
        default: return fixedSize!
        }
    }

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}

/// One GGUF metadata value. Arrays carry their element type so an empty array round-trips.
public indirect enum GGUFValue: Equatable, Sendable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFValueType, [GGUFValue])

    /// The type tag this value is written with.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// The value as an `Int` when it is an integer of any width that fits; nil otherwise.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a `Double` when it is a float32 or float64; nil otherwise (integers are not floats here).
    public var floatValue: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return nil
        }
    }

    /// The string when this is a string value.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The Boolean when this is a bool value.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements when this is an array value.
    public var arrayValue: [GGUFValue]? {
        if case .array(_, let elements) = self { return elements }
        return nil
    }

    /// A short rendering for messages and listings; long arrays are summarised, not printed whole.
    public var description: String {
        switch self {
        case .uint8(let v): return "\(v)"
        case .int8(let v): return "\(v)"
        case .uint16(let v): return "\(v)"
        case .int16(let v): return "\(v)"
        case .uint32(let v): return "\(v)"
        case .int32(let v): return "\(v)"
        case .uint64(let v): return "\(v)"
        case .int64(let v): return "\(v)"
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .bool(let v): return "\(v)"
        case .string(let s): return "\"\(s)\""
        case .array(let type, let elements):
            let head = elements.prefix(4).map(\.description).joined(separator: ", ")
            let more = elements.count > 4 ? ", … (\(elements.count) \(type) values)" : ""
            return "[\(head)\(more)]"
        }
    }
}

/// Every tensor type ggml has given a number, so a file with one Headroom cannot load is refused
/// by name. The supported ones, and their block layouts, are the kernels' table of formats (`QuantType`);
/// the rest exist to be named in errors.
public enum GGMLType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_XXS = 16, iq2_XS = 17, iq3_XXS = 18, iq1_S = 19, iq4_NL = 20, iq3_S = 21, iq2_S = 22, iq4_XS = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_M = 29, bf16 = 30
    case q4_0_4_4 = 31, q4_0_4_8 = 32, q4_0_8_8 = 33, tq1_0 = 34, tq2_0 = 35
    case iq4_NL_4_4 = 36, iq4_NL_4_8 = 37, iq4_NL_8_8 = 38, mxfp4 = 39, nvfp4 = 40, q1_0 = 41, q2_0 = 42

    /// The types Headroom's kernels load, in the order error messages list them (the table's order).
    public static let supported: [GGMLType] = QuantType.allCases.map { GGMLType($0) }

    public var isSupported: Bool { GGMLType.supported.contains(self) }

    /// ggml's own name for the type (`Q4_K`, `IQ2_XXS`, `BF16`, …).
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        case .iq2_XXS: return "IQ2_XXS"
        case .iq2_XS: return "IQ2_XS"
        case .iq3_XXS: return "IQ3_XXS"
        case .iq1_S: return "IQ1_S"
        case .iq4_NL: return "IQ4_NL"
        case .iq3_S: return "IQ3_S"
        case .iq2_S: return "IQ2_S"
        case .iq4_XS: return "IQ4_XS"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .f64: return "F64"
        case .iq1_M: return "IQ1_M"
        case .bf16: return "BF16"
        case .q4_0_4_4: return "Q4_0_4_4"
        case .q4_0_4_8: return "Q4_0_4_8"
        case .q4_0_8_8: return "Q4_0_8_8"
        case .tq1_0: return "TQ1_0"
        case .tq2_0: return "TQ2_0"
        case .iq4_NL_4_4: return "IQ4_NL_4_4"
        case .iq4_NL_4_8: return "IQ4_NL_4_8"
        case .iq4_NL_8_8: return "IQ4_NL_8_8"
        case .mxfp4: return "MXFP4"
        case .nvfp4: return "NVFP4"
        case .q1_0: return "Q1_0"
        case .q2_0: return "Q2_0"
        }
    }

    public var description: String { "\(name) (\(rawValue))" }

    /// Elements per block (1 for the plain float types, 32, 256 for the K-quants), from the kernels' table. Nil when unsupported.
    public var blockElements: Int? { quantType?.blockSize }

    /// Bytes per block (Q4_0 18: f16 scale + 16 bytes of nibbles; Q4_K 144), from the kernels' table. Nil when unsupported.
    public var blockBytes: Int? { quantType?.blockBytes }

    /// The byte size of a tensor of this type and these ggml dims (ne[0] first), or nil when the
    /// type is unsupported, a dim is not positive, ne[0] is not a whole number of blocks, or the
    /// size overflows.
    public func byteCount(dims: [Int]) -> Int? {
        guard let perBlock = blockElements, let bytes = blockBytes, let rowLength = dims.first else { return nil }
        guard dims.allSatisfy({ $0 > 0 }), rowLength % perBlock == 0 else { return nil }
        var total = bytes
        for (i, d) in dims.enumerated() {
            let factor = i == 0 ? d / perBlock : d
            let (product, overflow) = total.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            total = product
        }
        return total
    }
}
