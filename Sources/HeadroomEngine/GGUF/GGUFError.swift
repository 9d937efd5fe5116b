// Why a GGUF file was refused or could not be written: one typed case per kind of problem, each
// message naming the file and the exact place (key, tensor, byte range) that was wrong.
import Foundation

/// An error reading, validating or writing a GGUF file. `description` reads
/// "`path`: `problem`", e.g. "model.gguf: truncated: tensor output.weight needs bytes 1048576..1310720
/// but the file has 1200000".
public struct GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file as the caller named it.
    public let path: String
    public let problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }

    /// What was wrong. Byte ranges are half-open, `start..end`, in bytes from the start of the file.
    public enum Problem: Equatable, Sendable, CustomStringConvertible {
        /// open/stat/mmap/write/rename failed; `reason` is the system's message.
        case io(operation: String, reason: String)
        case notRegularFile
        /// A fixed-size field (`what`) lies past the end of the file.
        case truncated(what: String, start: UInt64, end: UInt64, fileSize: UInt64)
        case badMagic(found: [UInt8])
        case unsupportedVersion(UInt32)
        /// The header's counts cannot fit in a file this size, whatever the contents.
        case implausibleCounts(tensors: UInt64, metadata: UInt64, fileSize: UInt64)
        /// A string or array length (`what`) claims more bytes than are left in the file.
        case lengthPastEnd(what: String, length: UInt64, offset: UInt64, fileSize: UInt64)
        case invalidUTF8(what: String, offset: UInt64)
        case unknownValueType(what: String, raw: UInt32)
        case invalidBool(what: String, raw: UInt8)
        case arrayTooDeep(key: String)
        case duplicateKey(String)
        case wrongValueType(key: String, expected: String, found: GGUFValueType)
        case badAlignment(UInt64)
        case badDimensionCount(tensor: String, nDims: UInt32)
        case badDimension(tensor: String, index: Int, value: UInt64)
        case unknownTensorType(tensor: String, raw: UInt32)
        case unsupportedTensorType(tensor: String, type: GGMLType)
        case rowNotWholeBlocks(tensor: String, type: GGMLType, rowLength: Int)
        case tensorTooLarge(tensor: String)
        case duplicateTensor(String)
        case misalignedOffset(tensor: String, offset: UInt64, alignment: UInt64)
        /// A tensor's data range `start..end` runs past the end of the file.
        case tensorPastEnd(tensor: String, start: UInt64, end: UInt64, fileSize: UInt64)
        case missingKey(String)
        case notLlama(architecture: String)
        case invalidConfig(String)
        case missingTensor(String)
        case wrongTensorShape(tensor: String, expected: [Int], found: [Int])
        /// The writer was handed something it cannot encode (mismatched sizes, bad names, mixed arrays).
        case invalidInput(String)
        /// A tokenizer key holds a value Headroom does not implement (`tokenizer.ggml.model`, `tokenizer.ggml.pre`).
        case unsupportedTokenizer(key: String, value: String, supported: [String])
        /// A tokenizer key is malformed: `index` is the array element at fault, when one is.
        case invalidTokenizer(key: String, index: Int?, reason: String)

        public var description: String {
            switch self {
            case let .io(operation, reason):
                return "\(operation) failed: \(reason)"
            case .notRegularFile:
                return "not a regular file"
            case let .truncated(what, start, end, fileSize):
                return "truncated: \(what) needs bytes \(start)..\(end) but the file has \(fileSize)"
            case let .badMagic(found):
                let hex = found.map { String(format: "%02x", $0) }.joined(separator: " ")
                return "not a GGUF file: it starts with bytes \(hex), expected \"GGUF\" (47 47 55 46)"
            case let .unsupportedVersion(v):
                let hint = (2...3).contains(v.byteSwapped) ? " (it looks like a big-endian GGUF file, which Headroom does not read)" : ""
                return "GGUF version \(v) is not supported; Headroom reads versions 2 and 3\(hint)"
            case let .implausibleCounts(tensors, metadata, fileSize):
                return "truncated or corrupt: the header claims \(tensors) tensor(s) and \(metadata) metadata entries, "
                    + "more than a file of \(fileSize) bytes can hold"
            case let .lengthPastEnd(what, length, offset, fileSize):
                return "\(what) at byte \(offset) has length \(length), which runs past the end of the file (\(fileSize) bytes)"
            case let .invalidUTF8(what, offset):
                return "\(what) at byte \(offset) is not valid UTF-8"
            case let .unknownValueType(what, raw):
                return "\(what) has unknown value type \(raw) (GGUF defines 0...12)"
            case let .invalidBool(what, raw):
                return "\(what) is a bool stored as \(raw), expected 0 or 1"
            case let .arrayTooDeep(key):
                return "metadata \(key): arrays nested more than \(GGUFLimits.maxArrayDepth) deep"
            case let .duplicateKey(key):
                return "metadata key \(key) appears more than once"
            case let .wrongValueType(key, expected, found):
                return "metadata \(key) is a \(found), expected \(expected)"
            case let .badAlignment(a):
                return "general.alignment is \(a), expected a power of two between 1 and \(GGUFLimits.maxAlignment)"
            case let .badDimensionCount(tensor, nDims):
                return "tensor \(tensor) has \(nDims) dimensions, expected 1 to 4"
            case let .badDimension(tensor, index, value):
                return "tensor \(tensor) has dimension \(index) of size \(value), expected 1 to \(GGUFLimits.maxDimension)"
            case let .unknownTensorType(tensor, raw):
                return "tensor \(tensor) has unknown ggml type \(raw)"
            case let .unsupportedTensorType(tensor, type):
                let supported = GGMLType.supported.map(\.name).joined(separator: ", ")
                return "tensor \(tensor) has type \(type), which Headroom does not support; supported: \(supported)"
            case let .rowNotWholeBlocks(tensor, type, rowLength):
                return "tensor \(tensor) has type \(type.name) but its row length \(rowLength) is not a multiple of \(type.blockElements ?? 1)"
            case let .tensorTooLarge(tensor):
                return "tensor \(tensor) is too large: its byte size overflows"
            case let .duplicateTensor(name):
                return "tensor \(name) appears more than once"
            case let .misalignedOffset(tensor, offset, alignment):
                return "tensor \(tensor) has offset \(offset), which is not a multiple of the alignment \(alignment)"
            case let .tensorPastEnd(tensor, start, end, fileSize):
                return "truncated: tensor \(tensor) needs bytes \(start)..\(end) but the file has \(fileSize)"
            case let .missingKey(key):
                return "metadata \(key) is missing"
            case let .notLlama(architecture):
                return "general.architecture is \"\(architecture)\", but Headroom runs only \(GGUFArchitecture.supported.map { "\"\($0)\"" }.joined(separator: ", "))"
            case let .invalidConfig(reason):
                return "invalid llama configuration: \(reason)"
            case let .missingTensor(name):
                return "tensor \(name) is missing"
            case let .wrongTensorShape(tensor, expected, found):
                return "tensor \(tensor) has dims \(found), expected \(expected)"
            case let .invalidInput(reason):
                return reason
            case let .unsupportedTokenizer(key, value, supported):
                return "metadata \(key) is \"\(value)\", which Headroom's tokenizer does not implement; supported: "
                    + supported.joined(separator: ", ")
            case let .invalidTokenizer(key, index, reason):
                return "metadata \(key)\(index.map { "[\($0)]" } ?? ""): \(reason)"
            }
        }
    }
}

/// The bounds the reader enforces beyond the format's own, so hostile files cannot exhaust memory.
enum GGUFLimits {
    static let maxArrayDepth = 4
    static let maxAlignment: UInt64 = 1 << 20
    static let maxDimension: UInt64 = 1 << 40
    static let maxDims = 4
    static let defaultAlignment = 32
    /// llama.cpp refuses tensor names of 64 bytes or more (GGML_MAX_NAME); the writer does too.
    static let maxTensorNameBytes = 63
}
