// What a path names before Headroom reads or writes it: inputs must be regular files (a FIFO would block
// a read forever, a device would stream without end), and an output never replaces something that is
// not a regular file (a device node, a socket, a folder).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum FileKind: Equatable, Sendable {
    case missing, regular, directory, fifo, characterDevice, blockDevice, socket, other

    /// How a message names this kind of file.
    public var phrase: String {
        switch self {
        case .missing: return "nothing"
        case .regular: return "a regular file"
        case .directory: return "a folder"
        case .fifo: return "a FIFO (named pipe)"
        case .characterDevice: return "a character device"
        case .blockDevice: return "a block device"
        case .socket: return "a socket"
        case .other: return "a special file"
        }
    }

    /// What `path` is, following symbolic links (a dangling link is `.missing`).
    public static func of(_ path: String) -> FileKind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFIFO: return .fifo
        case S_IFCHR: return .characterDevice
        case S_IFBLK: return .blockDevice
        case S_IFSOCK: return .socket
        default: return .other
        }
    }
}

public enum FileChecks {
    /// Input files are read whole into memory; none of Headroom's text inputs comes near this.
    public static let maxTextInputBytes = 64 << 20

    /// Throws unless `path` names an existing regular file. `what` names the file's role in the message.
    public static func requireRegularInput(_ path: String, what: String = "file") throws {
        let kind = FileKind.of(path)
        switch kind {
        case .regular: return
        case .missing:
            throw InputError(file: path, path: "", message: "cannot read the \(what): no such file")
        default:
            throw InputError(file: path, path: "", message: "expected a regular file as the \(what), got \(kind.phrase)")
        }
    }

    /// Reads a text input whole: a regular file of at most `maxBytes`, in UTF-8.
    public static func readText(_ path: String, what: String = "file", maxBytes: Int = maxTextInputBytes) throws -> String {
        let data = try readData(path, what: what, maxBytes: maxBytes)
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputError(file: path, path: "", message: "expected UTF-8 text")
        }
        return text
    }

    /// Reads an input whole: a regular file of at most `maxBytes`.
    public static func readData(_ path: String, what: String = "file", maxBytes: Int = maxTextInputBytes) throws -> Data {
        try requireRegularInput(path, what: what)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        if size > maxBytes {
            throw InputError(file: path, path: "", message: "the \(what) is \(size) bytes; expected at most \(maxBytes)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError(file: path, path: "", message: "cannot read the \(what) (permission denied or unreadable)")
        }
        return data
    }

    /// Throws unless `path` may be written as a regular file: it is missing or a regular file already, and
    /// its folder exists. `option` names where the path came from (`--junit`), for the message.
    public static func requireWritableOutput(_ path: String, option: String) throws {
        let kind = FileKind.of(path)
        guard kind == .missing || kind == .regular else {
            throw InputError(file: option, path: "", message: "\(path) is \(kind.phrase); expected a regular file or a new path to write")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let folder = dir.isEmpty ? "." : dir
        switch FileKind.of(folder) {
        case .directory:
            guard access(folder, W_OK) == 0 else {
                throw InputError(file: option, path: "", message: "cannot write \(path): the folder \(folder) is not writable")
            }
        case .missing:
            throw InputError(file: option, path: "", message: "cannot write \(path): the folder \(folder) does not exist")
        case let other:
            throw InputError(file: option, path: "", message: "cannot write \(path): \(folder) is \(other.phrase), not a folder")
        }
    }

    /// Writes `data` to `path` through a temporary file renamed over it, so a reader never sees half a file
    /// and a failure leaves the old file intact. Refuses paths that are not regular files.
    public static func writeAtomically(_ data: Data, to path: String, option: String) throws {
        try requireWritableOutput(path, option: option)
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw OutputError(path: path, reason: (error as NSError).localizedDescription)
        }
    }
}

/// Writing an output failed after it was checked (a full disk, a folder removed meanwhile).
public struct OutputError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): cannot write the file: \(reason)" }
}
