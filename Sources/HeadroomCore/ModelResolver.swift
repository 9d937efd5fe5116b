// How a scenario's `measure.model` becomes a model: a catalog id by default, or whatever a resolver the caller
// supplies describes first (the command line supplies one that reads GGUF files; HeadroomCore cannot).

/// A model file named by `measure.model`: where it is, its size, and the format of its matrices.
public struct ModelFile: Codable, Equatable, Sendable {
    /// The path as resolved against the scenario file's folder.
    public var path: String
    public var bytes: Int
    /// The matrices' format: f32, f16, q8_0 or q4_0.
    public var precision: String

    public init(path: String, bytes: Int, precision: String) {
        self.path = path; self.bytes = bytes; self.precision = precision
    }
}

/// A `measure.model` value described from a file: its shape and the file.
public struct ResolvedModel: Sendable {
    public var shape: ModelShape
    public var file: ModelFile
    public init(shape: ModelShape, file: ModelFile) { self.shape = shape; self.file = file }
}

/// Describes a `measure.model` value (as written) given the scenario file's folder ("" for the current one),
/// or returns nil to leave it to the catalog. What it throws becomes the message at `measure.model`.
public typealias ModelResolver = @Sendable (_ value: String, _ directory: String) throws -> ResolvedModel?
