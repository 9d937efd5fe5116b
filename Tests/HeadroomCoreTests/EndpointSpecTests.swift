import HeadroomCore
import XCTest

final class EndpointSpecTests: XCTestCase {
    func scenario(_ endpoints: String) throws -> Scenario {
        let text = """
            schema: 1
            name: ep
            endpoints:
            \(endpoints)
            measure:
              model: tiny
              threads: [1]
              prompt_tokens: [8]
            """
        return try Scenario.parse(text, file: "ep.yaml", catalog: try Catalog.builtin())
    }

    func failure(_ endpoints: String) -> String {
        do { _ = try scenario(endpoints); return "no error" } catch { return "\(error)" }
    }

    func testReadsEveryKeyAndNormalisesTheURL() throws {
        let s = try scenario("""
              - { name: prod-vllm, url: "http://10.0.0.5:8000/v1/", model: meta-llama/Llama-3.1-8B-Instruct,
                  api_key_env: VLLM_KEY, api: chat, hardware: h100-sxm, devices: 2, precision: bf16, model_shape: small }
              - { name: local, url: "https://example.org" }
            """)
        XCTAssertEqual(s.endpoints, [
            EndpointSpec(name: "prod-vllm", url: "http://10.0.0.5:8000", model: "meta-llama/Llama-3.1-8B-Instruct", apiKeyEnv: "VLLM_KEY",
                         api: .chat, hardware: "h100-sxm", devices: 2, precision: "bf16", modelShape: "small"),
            EndpointSpec(name: "local", url: "https://example.org"),
        ])
    }

    func testBadEntriesNameTheKeyPath() {
        XCTAssertEqual(failure("  - { name: a }"), "ep.yaml: endpoints[0].url: missing; this key is required")
        XCTAssertTrue(failure("  - { name: a, url: \"ftp://x\" }").hasPrefix("ep.yaml: endpoints[0].url: expected an http:// or https:// URL"))
        XCTAssertTrue(failure("  - { name: a, url: \"http://x:8000?q=1\" }").hasPrefix("ep.yaml: endpoints[0].url: expected"))
        XCTAssertTrue(failure("  - { name: a, url: \"http://x\", hardware: tpu-v9 }").hasPrefix("ep.yaml: endpoints[0].hardware: expected"),
                      failure("  - { name: a, url: \"http://x\", hardware: tpu-v9 }"))
        XCTAssertTrue(failure("  - { name: a, url: \"http://x\", model_shape: nope }").hasPrefix("ep.yaml: endpoints[0].model_shape: expected a model in the catalog"))
        XCTAssertTrue(failure("  - { name: a, url: \"http://x\", devices: 0 }").hasPrefix("ep.yaml: endpoints[0].devices: expected an integer from 1"))
        XCTAssertTrue(failure("  - { name: a, url: \"http://x\", api_key_env: \"$(rm -rf)\" }").hasPrefix("ep.yaml: endpoints[0].api_key_env: expected an environment variable name"))
        XCTAssertTrue(failure("  - { name: a, url: \"http://x\", api: grpc }").hasPrefix("ep.yaml: endpoints[0].api: expected"))
        XCTAssertTrue(failure("  - { name: a, url: \"http://x\", colour: red }").hasPrefix("ep.yaml: endpoints[0].colour: unknown key"))
        XCTAssertEqual(failure("  - { name: a, url: \"http://x\" }\n  - { name: a, url: \"http://y\" }"),
                       "ep.yaml: endpoints[1].name: endpoint \"a\" is declared twice")
        XCTAssertTrue(failure("  - { name: \"a b\", url: \"http://x\" }").hasPrefix("ep.yaml: endpoints[0].name: expected an endpoint name"))
    }
}
