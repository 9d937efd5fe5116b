// A scenario's `endpoints:` section: OpenAI-compatible servers declared once, by name, that `measure.load`
// and `headroom load --endpoint NAME` measure. The endpoint is the third kind of hardware profile (DESIGN.md):
// a real server on hardware that may not be this machine, named so that its measurements calibrate it.
import Foundation

/// One declared endpoint.
public struct EndpointSpec: Codable, Equatable, Sendable {
    /// How cases, reports and the gate name it.
    public var name: String
    /// The server's base URL, `http://host:port` or `https://…` (a trailing `/v1` is accepted and dropped).
    public var url: String
    /// The model name sent in requests (`model` of the request body); nil: the first of the server's `/v1/models`.
    public var model: String?
    /// The environment variable holding its API key (sent as `Authorization: Bearer …`), never the key itself.
    public var apiKeyEnv: String?
    /// Which API the requests use.
    public var api: API
    /// A catalog hardware id (`h100-sxm`): the hardware the server runs on, which its sweeps calibrate.
    public var hardware: String?
    /// Devices the model is spread over (tensor parallel).
    public var devices: Int
    /// The weights' precision as the planner names it (bf16, fp8, int4…).
    public var precision: String?
    /// The catalog model whose shape the server runs (what the planner's ops model needs to calibrate).
    public var modelShape: String?

    public enum API: String, Codable, Sendable, CaseIterable {
        case completions, chat
    }

    public init(name: String, url: String, model: String? = nil, apiKeyEnv: String? = nil, api: API = .completions,
                hardware: String? = nil, devices: Int = 1, precision: String? = nil, modelShape: String? = nil) {
        self.name = name; self.url = url; self.model = model; self.apiKeyEnv = apiKeyEnv; self.api = api
        self.hardware = hardware; self.devices = devices; self.precision = precision; self.modelShape = modelShape
    }

    /// The keys an entry may have.
    public static let keys = ["name", "url", "model", "api_key_env", "api", "hardware", "devices", "precision", "model_shape"]

    /// Reads the `endpoints:` list; names must be unique, hardware and model shapes must be in `catalog`.
    public static func readList(_ field: YAMLField, catalog: Catalog) throws -> [EndpointSpec] {
        let list = try field.list { try read($0, catalog: catalog) }
        var seen = Set<String>()
        for (i, e) in list.enumerated() where !seen.insert(e.name).inserted {
            throw InputError(file: field.file, path: "\(field.path)[\(i)].name", message: "endpoint \"\(e.name)\" is declared twice")
        }
        return list
    }

    static func read(_ field: YAMLField, catalog: Catalog) throws -> EndpointSpec {
        let m = try field.mapping(allowed: keys)
        let name = try m.required("name").identifier("an endpoint name")
        let urlField = try m.required("url")
        let url: String
        switch normaliseURL(try urlField.string()) {
        case .success(let u): url = u
        case .failure(let refusal): throw urlField.fail(refusal.expected)
        }
        var spec = EndpointSpec(name: name, url: url)
        if let f = m.optional("model") { spec.model = try f.string() }
        if let f = m.optional("api_key_env") {
            let v = try f.string()
            guard isEnvironmentName(v) else { throw f.fail("an environment variable name (letters, digits and '_', not starting with a digit)") }
            spec.apiKeyEnv = v
        }
        if let f = m.optional("api") {
            spec.api = API(rawValue: try f.oneOf(API.allCases.map(\.rawValue)))!
        }
        if let f = m.optional("hardware") {
            let id = try f.string()
            if catalog.hardware.isEmpty { throw f.error("the catalog in \(catalog.directory) has no hardware.yaml") }
            _ = try catalog.hardware(id, field: f)
            spec.hardware = id
        }
        if let f = m.optional("devices") { spec.devices = try f.int(min: 1, max: 4096) }
        if let f = m.optional("precision") {
            switch PrecisionNames.plannerPrecision(try f.string()) {
            case .success(let p): spec.precision = p.rawValue
            case .failure(let refusal): throw f.fail(refusal.expected)
            }
        }
        if let f = m.optional("model_shape") {
            let id = try f.string()
            _ = try catalog.model(id, field: f)
            spec.modelShape = id
        }
        return spec
    }

    /// An endpoint's base URL: http or https, a host, an optional port, no query or fragment; a trailing
    /// `/` or `/v1` is dropped (requests add `/v1/…`). The refusal says what was expected.
    public static func normaliseURL(_ text: String) -> Result<String, Refusal> {
        let expected = "an http:// or https:// URL with a host (http://10.0.0.5:8000)"
        guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = c.host, !host.isEmpty, c.query == nil, c.fragment == nil, c.user == nil, c.password == nil else {
            return .failure(Refusal(expected: expected))
        }
        if let port = c.port, !(1...65535).contains(port) { return .failure(Refusal(expected: expected + ", port 1 to 65535")) }
        var path = c.path
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix("/v1") { path.removeLast(3) }
        var out = URLComponents()
        out.scheme = scheme; out.host = host; out.port = c.port; out.path = path
        guard let s = out.string else { return .failure(Refusal(expected: expected)) }
        return .success(s)
    }

    public struct Refusal: Error, Equatable, Sendable {
        public var expected: String
    }

    /// Whether `s` can name an environment variable (letters, digits and '_', not starting with a digit).
    public static func isEnvironmentName(_ s: String) -> Bool {
        s.range(of: "^[A-Za-z_][A-Za-z0-9_]{0,127}$", options: .regularExpression) != nil
    }
}
