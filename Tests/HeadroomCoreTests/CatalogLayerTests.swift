// The built-in catalog equals the repository's YAML files; override folders replace and add entries by id;
// ids and inputs are checked where they enter; the precision vocabulary's aliases resolve both ways.
import Foundation
import XCTest
@testable import HeadroomCore

final class CatalogLayerTests: XCTestCase {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The generated Sources/HeadroomCore/Catalog/BuiltinCatalog.swift is current (`make catalog` regenerates it).
    func testBuiltInCatalogIsTheRepositoryCatalog() throws {
        for name in ["models.yaml", "hardware.yaml", "prices.yaml", "published.yaml"] {
            let file = try String(contentsOf: repo.appendingPathComponent("Scenarios/catalog/\(name)"), encoding: .utf8)
            XCTAssertEqual(BuiltinCatalog.files[name].map { $0 + "\n" }, file, "\(name) differs from the built-in copy: run `make catalog`")
        }
        let scenario = try String(contentsOf: repo.appendingPathComponent("Scenarios/default.yaml"), encoding: .utf8)
        XCTAssertEqual(BuiltinCatalog.defaultScenario + "\n", scenario, "Scenarios/default.yaml differs from the built-in copy: run `make catalog`")
        let builtin = try Catalog.builtin()
        let fromFiles = try Catalog.load(directory: repo.appendingPathComponent("Scenarios/catalog").path)
        XCTAssertEqual(builtin.modelList, fromFiles.modelList)
        XCTAssertEqual(builtin.hardware, fromFiles.hardware)
        XCTAssertEqual(builtin.prices?.offers, fromFiles.prices?.offers)
        XCTAssertEqual(builtin.files, ["built-in models.yaml", "built-in hardware.yaml", "built-in prices.yaml", "built-in published.yaml"])
        XCTAssertEqual(builtin.published, fromFiles.published)
        XCTAssertEqual(try Scenario.builtinDefault().name, "default")
    }

    func testOverrideFolderReplacesAndAddsEntriesById() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            schema: 1
            models:
              - { id: tiny, layers: 3, dim: 64, heads: 4, ffn_dim: 128, vocab: 256, context: 64, source: "mine" }
              - { id: extra, layers: 2, dim: 64, heads: 4, ffn_dim: 128, vocab: 256, context: 64, source: "mine" }
            """.write(to: dir.appendingPathComponent("models.yaml"), atomically: true, encoding: .utf8)
        try """
            schema: 1
            hardware:
              - { id: my-gpu, kind: gpu, peak_tflops: { fp32: 50, bf16: 100, fp16: 100, fp8: 200, int8: 200 }, memory_gib: 24, memory_bandwidth_gbps: 1000,
                  interconnect: { kind: pcie4, bandwidth_gbps: 32, latency_us: 15 }, devices_per_node: 1, power_watts: 300, source: "mine" }
            """.write(to: dir.appendingPathComponent("hardware.yaml"), atomically: true, encoding: .utf8)
        try """
            schema: 1
            offers:
              - { hardware: my-gpu, provider: me, devices: 1, on_demand_usd_per_hour: 0.5, source: "mine" }
            """.write(to: dir.appendingPathComponent("prices.yaml"), atomically: true, encoding: .utf8)
        let builtin = try Catalog.builtin()
        let c = try Catalog.load(layers: [dir.path])
        XCTAssertEqual(c.models["tiny"]?.layers, 3)
        XCTAssertEqual(c.models["tiny"]?.source, "mine")
        XCTAssertNotNil(c.models["extra"])
        XCTAssertEqual(c.models["llama-3.1-8b"], builtin.models["llama-3.1-8b"], "untouched entries stay")
        XCTAssertEqual(c.hardware.count, builtin.hardware.count + 1)
        XCTAssertEqual(c.hardware.last?.id, "my-gpu")
        XCTAssertEqual(c.hardware.last?.efficiency, builtin.defaultEfficiency?.efficiency, "default_efficiency is inherited")
        XCTAssertEqual(c.prices?.offers.count, (builtin.prices?.offers.count ?? 0) + 1)
        XCTAssertEqual(c.prices?.hoursPerMonth, builtin.prices?.hoursPerMonth, "settings not stated stay")
        XCTAssertEqual(c.files.suffix(3), ["models.yaml", "hardware.yaml", "prices.yaml"].map { dir.appendingPathComponent($0).path })
        XCTAssertThrowsError(try Catalog.load(layers: [dir.appendingPathComponent("nope").path])) { e in
            XCTAssertEqual("\(e)", "\(dir.appendingPathComponent("nope").path): the catalog folder does not exist")
        }
    }

    /// An id reaches plot labels and report folders: one with a newline (and a gnuplot command) is refused at load.
    func testIdsAreCheckedWhereTheyEnter() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            schema: 1
            hardware:
              - { id: "x\\nsystem('touch /tmp/pwned')", kind: gpu, peak_tflops: { fp32: 50, bf16: 100, fp16: 100, fp8: 200, int8: 200 }, memory_gib: 24, memory_bandwidth_gbps: 1000,
                  interconnect: { kind: pcie4, bandwidth_gbps: 32, latency_us: 15 }, devices_per_node: 1, power_watts: 300, source: "x" }
            """.write(to: dir.appendingPathComponent("hardware.yaml"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Catalog.load(layers: [dir.path])) { e in
            XCTAssertTrue("\(e)".contains("hardware[0].id: expected a hardware id of letters, digits, '.', '_' or '-'"), "\(e)")
        }
    }

    func testSpecialFilesAreRefusedAsInputsAndOutputs() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("f.yaml").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try Scenario.load(fifo)) { e in
            XCTAssertEqual("\(e)", "\(fifo): expected a regular file as the scenario file, got a FIFO (named pipe)")
        }
        XCTAssertThrowsError(try FileChecks.requireWritableOutput("/dev/null", option: "--junit")) { e in
            XCTAssertEqual("\(e)", "--junit: /dev/null is a character device; expected a regular file or a new path to write")
        }
        XCTAssertThrowsError(try FileChecks.requireWritableOutput(dir.path, option: "-o")) { e in
            XCTAssertTrue("\(e)".contains("is a folder"), "\(e)")
        }
        XCTAssertNoThrow(try FileChecks.requireWritableOutput(dir.appendingPathComponent("new.json").path, option: "-o"))
        XCTAssertEqual(FileKind.of(dir.appendingPathComponent("new.json").path), .missing, "checking writes nothing")
    }

    func testControlCharactersAreEscapedForTheTerminal() {
        XCTAssertEqual(TerminalText.escape("a\u{1B}[2Jb\u{0}c\u{7}"), "a\\u{1b}[2Jb\\u{0}c\\u{7}")
        XCTAssertEqual(TerminalText.escape("line\nnext\ttab"), "line\nnext\ttab")
        XCTAssertEqual(TerminalText.escape("line\nnext", keepNewlines: false), "line\\nnext")
        XCTAssertEqual(TerminalText.escape("rtl\u{202E}x"), "rtl\\u{202e}x")
        XCTAssertEqual(TerminalText.escape("plain — ünïcode"), "plain — ünïcode")
    }

    func testPrecisionVocabularyResolvesAliasesBothWays() {
        XCTAssertEqual(try PrecisionNames.engineName("int4").get(), "q4_0")
        XCTAssertEqual(try PrecisionNames.engineName("FP16").get(), "f16")
        XCTAssertEqual(try PrecisionNames.plannerPrecision("q8_0").get(), .int8)
        XCTAssertEqual(try PrecisionNames.plannerPrecision("f32").get(), .fp32)
        XCTAssertEqual(try PrecisionNames.engineName("BF16").get(), "bf16")
        XCTAssertEqual(try PrecisionNames.engineName("q4_K").get(), "q4_k")
        XCTAssertThrowsError(try PrecisionNames.engineName("fp8").get())
        XCTAssertThrowsError(try PrecisionNames.engineName("q4_k_m").get()) { e in
            XCTAssertTrue((e as! PrecisionNames.Refusal).expected.contains("q4_k_m is a GGUF format the engine does not compute yet"))
        }
        XCTAssertThrowsError(try PrecisionNames.plannerPrecision("q6_k").get()) { e in
            XCTAssertTrue((e as! PrecisionNames.Refusal).expected.contains("q6_k is a GGUF format the planner does not model yet"))
        }
        for p in Precision.allCases {
            XCTAssertEqual(try PrecisionNames.plannerPrecision(p.rawValue).get(), p)
        }
    }
}

extension CatalogLayerTests {
    /// A message quotes a bad value on one line, escaped and cut short, whatever the file holds.
    func testMessagesQuoteValuesEscapedAndShort() throws {
        let long = String(repeating: "x", count: 5000)
        let text = "schema: 1\nname: \"a\\u001b[2Jb\\nc\"\nmeasure: { model: tiny, threads: [1], prompt_tokens: [\"\(long)\"] }\n"
        XCTAssertThrowsError(try Scenario.parse(text, file: "s.yaml", catalog: Catalog.builtin())) { e in
            XCTAssertEqual("\(e)", "s.yaml: name: expected a name (it names the report folder) of letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit), got \"a\\u{1b}[2Jb\\nc\"")
        }
        let text2 = "schema: 1\nname: ok\nmeasure: { model: tiny, threads: [1], prompt_tokens: [\"\(long)\"] }\n"
        XCTAssertThrowsError(try Scenario.parse(text2, file: "s.yaml", catalog: Catalog.builtin())) { e in
            XCTAssertTrue("\(e)".hasSuffix("got \"\(String(repeating: "x", count: 80))…\" (5000 characters)"), "\(e)")
        }
    }
}
