// The one error a user sees for a bad scenario or catalog file: the file, the key path and what was expected.

/// A problem in a file the user gave us. Its description is the whole message
/// (`Scenarios/x.yaml: plan.demand.users: expected a positive integer, got "many"`); the command line exits 2.
public struct InputError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let path: String
    public let message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}
