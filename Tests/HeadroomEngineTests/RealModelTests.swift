// Real model files beyond llama: a qwen2 file with Q/K/V biases and NEOX rotary, and a llama file with partial
// rotary, rope_freqs factors and a tied head, each against a naive forward pass written here with plain loops in
// double; LoRA on a tied model; the unknown architecture refused by name; chat templates recognised from their text.
import Foundation
import XCTest
@testable import HeadroomEngine
import HeadroomKernels

/// The forward pass of a llama-family model from the definition, in double: RMSNorm, Q/K/V (+ bias), RoPE
/// (pairs by `ordering`, the first `dims` of each head, frequencies scale·base^(-2i/dims)/factor[i]), causal GQA
/// attention, SwiGLU, the head. Returns the logits at every position.
func naiveLogits(_ w: ModelWeights, tokens: [Int32]) -> [[Double]] {
    let c = w.config, hd = c.headDim, T = tokens.count, group = c.heads / c.kvHeads
    func mat(_ m: WeightMatrix) -> [Float] { m.dequantized() }
    func linear(_ m: [Float], _ x: [Double], rows: Int) -> [Double] {
        let k = x.count
        return (0..<rows).map { r in (0..<k).reduce(0.0) { $0 + Double(m[r * k + $1]) * x[$1] } }
    }
    func norm(_ x: [Double], _ g: [Float]) -> [Double] {
        let r = 1 / (x.reduce(0) { $0 + $1 * $1 } / Double(x.count) + Double(c.normEps)).squareRoot()
        return x.indices.map { x[$0] * r * Double(g[$0]) }
    }
    let emb = mat(w.tokenEmbedding)
    var xs = tokens.map { t in (0..<c.dim).map { Double(emb[Int(t) * c.dim + $0]) } }
    let n = c.ropeDims, half = n / 2
    let factors = w.ropeFactors
    func rope(_ v: inout [Double], heads: Int, pos: Int) {
        for h in 0..<heads {
            for i in 0..<half {
                let angle = Double(pos) / c.rope.linearFactor * pow(c.ropeTheta, -2 * Double(i) / Double(n)) / Double(factors?[i] ?? 1)
                let (j0, j1) = c.rope.ordering == .normal ? (h * hd + 2 * i, h * hd + 2 * i + 1) : (h * hd + i, h * hd + i + half)
                let a = v[j0], b = v[j1]
                v[j0] = a * cos(angle) - b * sin(angle)
                v[j1] = a * sin(angle) + b * cos(angle)
            }
        }
    }
    for l in w.layers {
        let (wq, wk, wv, wo, wg, wu, wd) = (mat(l.wq), mat(l.wk), mat(l.wv), mat(l.wo), mat(l.gate), mat(l.up), mat(l.down))
        var qs: [[Double]] = [], ks: [[Double]] = [], vs: [[Double]] = []
        for (t, x) in xs.enumerated() {
            let h = norm(x, l.attnNorm)
            var q = linear(wq, h, rows: c.dim), k = linear(wk, h, rows: c.kvDim), v = linear(wv, h, rows: c.kvDim)
            if let b = l.bq { for i in q.indices { q[i] += Double(b[i]) } }
            if let b = l.bk { for i in k.indices { k[i] += Double(b[i]) } }
            if let b = l.bv { for i in v.indices { v[i] += Double(b[i]) } }
            rope(&q, heads: c.heads, pos: t); rope(&k, heads: c.kvHeads, pos: t)
            qs.append(q); ks.append(k); vs.append(v)
        }
        for t in 0..<T {
            var att = [Double](repeating: 0, count: c.dim)
            for h in 0..<c.heads {
                let g = h / group
                let s = (0...t).map { j in (0..<hd).reduce(0.0) { $0 + qs[t][h * hd + $1] * ks[j][g * hd + $1] } / Double(hd).squareRoot() }
                let mx = s.max()!, e = s.map { exp($0 - mx) }, sum = e.reduce(0, +)
                for i in 0..<hd { att[h * hd + i] = (0...t).reduce(0.0) { $0 + e[$1] / sum * vs[$1][g * hd + i] } }
            }
            let o = linear(wo, att, rows: c.dim)
            for i in 0..<c.dim { xs[t][i] += o[i] }
            let h2 = norm(xs[t], l.ffnNorm)
            let gate = linear(wg, h2, rows: c.ffnDim), up = linear(wu, h2, rows: c.ffnDim)
            let mid = gate.indices.map { gate[$0] / (1 + exp(-gate[$0])) * up[$0] }
            let d = linear(wd, mid, rows: c.dim)
            for i in 0..<c.dim { xs[t][i] += d[i] }
        }
    }
    let head = mat(w.output)
    return xs.map { linear(head, norm($0, w.outputNorm), rows: c.vocab) }
}

final class RealModelTests: XCTestCase {
    var scratch: GGUFScratchDirectory!
    override func setUpWithError() throws { scratch = try GGUFScratchDirectory() }
    override func tearDown() { scratch.remove() }

    /// A seeded f32 model of `config` with random norms (and biases, rope factors when asked), written as GGUF and mapped back.
    func writeModel(_ config: ModelConfig, ropeFactors: [Float]? = nil, name: String) throws -> ModelWeights {
        var rng = SplitMix64(seed: 42)
        func values(_ n: Int, _ scale: Float, around: Float = 0) -> [Float] { (0..<n).map { _ in around + (rng.nextUnitFloat() * 2 - 1) * scale } }
        var tensors: [String: WeightMatrix] = [:]
        func m(_ name: String, _ rows: Int, _ cols: Int, _ v: [Float]) { tensors[name] = .quantized(v, type: .f32, rows: rows, cols: cols) }
        let c = config, s = 1 / Float(c.dim).squareRoot()
        typealias N = ModelWeights.Name
        m(N.tokenEmbedding, c.vocab, c.dim, values(c.vocab * c.dim, 1))
        for l in 0..<c.layers {
            m(N.block(l, "attn_norm"), 1, c.dim, values(c.dim, 0.3, around: 1))
            m(N.block(l, "attn_q"), c.dim, c.dim, values(c.dim * c.dim, 2 * s))
            m(N.block(l, "attn_k"), c.kvDim, c.dim, values(c.kvDim * c.dim, 2 * s))
            m(N.block(l, "attn_v"), c.kvDim, c.dim, values(c.kvDim * c.dim, s))
            m(N.block(l, "attn_output"), c.dim, c.dim, values(c.dim * c.dim, s))
            m(N.block(l, "ffn_norm"), 1, c.dim, values(c.dim, 0.3, around: 1))
            m(N.block(l, "ffn_gate"), c.ffnDim, c.dim, values(c.ffnDim * c.dim, s))
            m(N.block(l, "ffn_up"), c.ffnDim, c.dim, values(c.ffnDim * c.dim, s))
            m(N.block(l, "ffn_down"), c.dim, c.ffnDim, values(c.dim * c.ffnDim, s))
            if c.qkvBias {
                m(N.bias(l, "attn_q"), 1, c.dim, values(c.dim, 0.5))
                m(N.bias(l, "attn_k"), 1, c.kvDim, values(c.kvDim, 0.5))
                m(N.bias(l, "attn_v"), 1, c.kvDim, values(c.kvDim, 0.5))
            }
        }
        m(N.outputNorm, 1, c.dim, values(c.dim, 0.3, around: 1))
        if !c.tiedEmbeddings { m(N.output, c.vocab, c.dim, values(c.vocab * c.dim, s)) }
        if let ropeFactors { m(N.ropeFactors, 1, ropeFactors.count, ropeFactors) }
        let path = scratch.file(name)
        try GGUFModelExport.write(try ModelWeights(config: c, tensor: { tensors[$0] }), to: path)
        return try ModelWeights.load(gguf: path)
    }

    /// Prefill of all tokens, and prefill of the first then decode of the rest, both equal the naive logits.
    func assertMatchesNaive(_ w: ModelWeights, tokens: [Int32] = [5, 260, 17, 99, 3, 42], file: StaticString = #filePath, line: UInt = #line) throws {
        let ref = naiveLogits(w, tokens: tokens)
        let s = try InferenceSession(weights: w, maxTokens: tokens.count)
        let prefill = try s.prefill(tokens)
        let s2 = try InferenceSession(weights: w, maxTokens: tokens.count)
        var decoded = try s2.prefill([tokens[0]])
        for (i, t) in tokens.dropFirst().enumerated() {
            decoded = try s2.decode(t)
            if i == 1 { for v in 0..<w.config.vocab { XCTAssertEqual(Double(decoded[v]), ref[2][v], accuracy: 1e-4, "decode position 2, token \(v)", file: file, line: line) } }
        }
        var worst = 0.0
        for v in 0..<w.config.vocab {
            worst = max(worst, abs(Double(prefill[v]) - ref[tokens.count - 1][v]), abs(Double(decoded[v]) - ref[tokens.count - 1][v]))
        }
        XCTAssertLessThan(worst, 1e-4, "largest difference from the naive logits", file: file, line: line)
    }

    func testQwen2WithBiasesAndNeoxRotaryEqualsTheNaiveForward() throws {
        let c = ModelConfig(name: "q", layers: 1, dim: 64, heads: 4, kvHeads: 2, ffnDim: 64, vocab: 300, context: 16, ropeTheta: 1_000_000,
                            normEps: 1e-6, architecture: "qwen2", rope: RoPESettings(ordering: .neox), qkvBias: true)
        let w = try writeModel(c, name: "qwen2.gguf")
        XCTAssertEqual(w.config.architecture, "qwen2")
        XCTAssertTrue(w.config.qkvBias)
        XCTAssertEqual(w.config.rope.ordering, .neox, "qwen2 files rotate halves (llama.cpp's NEOX)")
        XCTAssertNotNil(w.bias(layer: 0, .k))
        try assertMatchesNaive(w)
        try assertServingMatchesNaive(w)
    }

    /// The serving path (paged cache, chunked prefill beside a decode) gives the naive logits too: it must use
    /// the model's biases and RoPE frequencies, not the defaults.
    func assertServingMatchesNaive(_ w: ModelWeights, tokens: [Int32] = [5, 260, 17, 99, 3, 42], file: StaticString = #filePath, line: UInt = #line) throws {
        let ref = naiveLogits(w, tokens: tokens)
        let session = try ServingSession(weights: w, cache: PagedKVCache(config: w.config, totalBlocks: 4), threads: 1)
        let table: [Int32] = [2, 0]
        _ = try session.stepLogits([SequenceWork(sequence: 0, blockTable: table, tokens: Array(tokens.prefix(3)), start: 0, wantsLogits: false)])
        let chunk = try session.stepLogits([SequenceWork(sequence: 0, blockTable: table, tokens: Array(tokens[3..<5]), start: 3, wantsLogits: true)])
        let decode = try session.stepLogits([SequenceWork(sequence: 0, blockTable: table, tokens: [tokens[5]], start: 5, wantsLogits: true)])
        var worst = 0.0
        for v in 0..<w.config.vocab {
            worst = max(worst, abs(Double(chunk[0][v]) - ref[4][v]), abs(Double(decode[0][v]) - ref[5][v]))
        }
        XCTAssertLessThan(worst, 1e-4, "serving path against the naive logits", file: file, line: line)
    }

    func testLlamaPartialRotaryWithFrequencyFactorsAndATiedHeadEqualsTheNaiveForward() throws {
        let c = ModelConfig(name: "p", layers: 1, dim: 64, heads: 4, kvHeads: 2, ffnDim: 64, vocab: 300, context: 16, ropeTheta: 500_000,
                            rope: RoPESettings(dimensions: 8), tiedEmbeddings: true)
        let w = try writeModel(c, ropeFactors: [1, 2, 4, 8], name: "partial.gguf")
        XCTAssertEqual(w.config.ropeDims, 8)
        XCTAssertEqual(w.ropeFactors, [1, 2, 4, 8])
        XCTAssertTrue(w.config.tiedEmbeddings)
        XCTAssertEqual(w.output.data, w.tokenEmbedding.data, "the tied head is the embedding's bytes")
        try assertMatchesNaive(w)
        try assertServingMatchesNaive(w)
    }

    func testLinearScalingAndMistralMetadataEqualTheNaiveForward() throws {
        let c = ModelConfig(name: "m", layers: 1, dim: 64, heads: 4, kvHeads: 4, ffnDim: 64, vocab: 300, context: 16,
                            architecture: "mistral", rope: RoPESettings(linearFactor: 4))
        let w = try writeModel(c, name: "mistral.gguf")
        let file = try GGUFFile(path: scratch.file("mistral.gguf"))
        XCTAssertEqual(file.metadata.int("mistral.block_count"), 1, "metadata under the architecture's own prefix")
        XCTAssertEqual(w.config.rope.linearFactor, 4)
        try assertMatchesNaive(w)
    }

    func testLlama3FactorsFollowTheConverter() {
        // convert_hf_to_gguf's rope_freqs for Llama 3.1 (factor 8, low 1, high 4, original context 8192): short
        // wavelengths keep 1, long ones get the factor, those between interpolate.
        let f = RoPESettings.Llama3Scaling(factor: 8).factors(base: 500_000, dims: 128)
        XCTAssertEqual(f.count, 64)
        XCTAssertEqual(f.first, 1)
        XCTAssertEqual(f.last, 8)
        XCTAssertTrue(f.contains { $0 > 1 && $0 < 8 })
        XCTAssertEqual(f, f.sorted())
    }

    func testUnknownArchitectureIsRefusedByName() throws {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("phi3")
        let path = scratch.file("phi3.gguf")
        _ = try GGUFWriter(metadata: m).write(to: path)
        assertGGUFError("\(path): general.architecture is \"phi3\", but Headroom runs only \"llama\", \"mistral\", \"qwen2\"") {
            _ = try ModelWeights.load(gguf: path)
        }
    }

    func testLoRAOnATiedModelTrainsWithTheEmbeddingAsItsHead() throws {
        var c = ModelConfig(name: "t", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffnDim: 96, vocab: 300, context: 16)
        c.tiedEmbeddings = true
        let lora = TrainMethod.lora(LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v]))
        let options = TrainOptions(batch: 2, seqLen: 8, threads: 2, seed: 7)
        let synthetic = try Trainer(config: c, method: lora, options: options)
        XCTAssertNil(synthetic.parameterTable.entry("out"), "no head parameters of its own")
        let task = SyntheticPatternTask(vocab: c.vocab, period: 16, seed: 3)
        let batches = (0..<4).map { task.batch(step: $0, B: 2, T: 8) }
        // The base written to a file has no output.weight, loads tied, and trains to the same losses.
        let path = scratch.file("tied.gguf")
        try GGUFModelExport.write(synthetic.baseWeights(name: "t"), to: path)
        XCTAssertNil(try GGUFFile(path: path).tensor(named: "output.weight"))
        let base = try ModelWeights.load(gguf: path)
        XCTAssertTrue(base.config.tiedEmbeddings)
        let fromFile = try Trainer(config: c, method: lora, options: options, base: base)
        var losses: [Double] = []
        for b in batches {
            let l1 = synthetic.trainStep(b), l2 = fromFile.trainStep(b)
            XCTAssertTrue(l1.isFinite)
            XCTAssertEqual(l1, l2, accuracy: 1e-6 * abs(l1))
            losses.append(l1)
        }
        XCTAssertLessThan(losses.last!, losses.first!, "the adapters learn under a tied head")
        // A qwen2 base (biases, NEOX) is refused by the trainer, naming what it lacks.
        let q = ModelConfig(name: "q", layers: 1, dim: 64, heads: 4, kvHeads: 2, ffnDim: 64, vocab: 300, context: 16,
                            architecture: "qwen2", rope: RoPESettings(ordering: .neox), qkvBias: true)
        let qw = try writeModel(q, name: "q.gguf")
        var qc = q; qc.qkvBias = false
        XCTAssertThrowsError(try Trainer(config: qc, method: lora, options: TrainOptions(batch: 1, seqLen: 4), base: qw)) {
            XCTAssertTrue("\($0)".contains("biases"), "\($0)")
        }
    }

    func testChatTemplatesAreRecognisedFromTheirText() throws {
        let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        let llama3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
        let llama2 = "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}"
        let mistral = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}"
        let zephyr = "{% for message in messages %}\\n{% if message['role'] == 'user' %}\\n{{ '<|user|>\\n' + message['content'] + eos_token }}\\n{% elif message['role'] == 'assistant' %}\\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\\n{% endif %}{% endfor %}</s>"
        let phi3 = "{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}{% endif %}{% endfor %}"
        let gemma = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
        let cases: [(String, ChatTemplate)] = [(chatml, .chatml), (llama3, .llama3), (llama2, .llama2), (mistral, .mistral),
                                               (zephyr, .zephyr), (phi3, .phi3), (gemma, .gemma)]
        for (text, family) in cases { XCTAssertEqual(try ChatTemplate.detect(from: text), family) }
        let messages: [(role: String, content: String)] = [("system", "Be brief."), ("user", "Hi")]
        XCTAssertEqual(ChatTemplate.chatml.render(messages: messages, addGenerationPrompt: true),
                       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(ChatTemplate.llama3.render(messages: [("user", "Hi")], addGenerationPrompt: true),
                       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        XCTAssertEqual(ChatTemplate.llama2.render(messages: messages, addGenerationPrompt: true), "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]")
        XCTAssertEqual(ChatTemplate.gemma.render(messages: messages, addGenerationPrompt: true),
                       "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        XCTAssertThrowsError(try ChatTemplate.detect(from: "{{ weird }}\n\u{1B}[2J")) {
            XCTAssertEqual("\($0)", "the chat template is none Headroom knows (ChatML, Llama-2, Llama-3, Mistral, Zephyr, Phi-3, Gemma): it begins \"{{ weird }}\\n\\u{1b}[2J\"")
        }
        XCTAssertThrowsError(try ChatTemplate.detect(from: nil)) { XCTAssertEqual($0 as? ChatTemplateError, .missing) }
    }

    func testSamplerTopPKeepsTheNucleus() {
        let logits: [Float] = [0, 5, 4.9, -3]
        var s = Sampler(temperature: 1, topP: 0.5, seed: 9)
        XCTAssertEqual(Set((0..<100).map { _ in s.sample(logits) }), [1], "the top token alone holds half the mass")
        var t = Sampler(temperature: 1, topP: 0.9, seed: 9)
        XCTAssertEqual(Set((0..<200).map { _ in t.sample(logits) }), [1, 2])
    }
}
