// A scenario's `measure.finetune:` section: which fine-tuning steps `headroom run` measures here
// (methods, LoRA rank and targets, sequence length, batch, steps, checkpointing), validated strictly.

/// What to measure of fine-tuning. Each combination of method, precision (f32 only for full) and checkpointing
/// is one case per thread count.
public struct FinetuneSettings: Codable, Equatable, Sendable {
    /// "lora" and/or "full".
    public var methods: [String]
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    /// Projections that carry adapters: some of q, k, v, o, gate, up, down.
    public var targets: [String]
    /// Formats of the frozen base: f32 and/or f16, q8_0, q4_0 (LoRA only; full fine-tuning is measured in f32).
    public var precisions: [String]
    public var seqLen: Int
    public var batch: Int
    /// Timed steps per case, after `warmup` untimed ones.
    public var steps: Int
    public var warmup: Int
    /// false and/or true: measure without and with per-layer activation checkpointing.
    public var checkpointing: [Bool]
    public var learningRate: Double

    public static let projections = ["q", "k", "v", "o", "gate", "up", "down"]

    public init(methods: [String] = ["lora"], rank: Int = 8, alpha: Double = 16, dropout: Double = 0, targets: [String] = ["q", "v"],
                precisions: [String] = ["f32"], seqLen: Int = 256, batch: Int = 4, steps: Int = 10, warmup: Int = 1,
                checkpointing: [Bool] = [false], learningRate: Double = 1e-3) {
        self.methods = methods; self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets
        self.precisions = precisions; self.seqLen = seqLen; self.batch = batch; self.steps = steps; self.warmup = warmup
        self.checkpointing = checkpointing; self.learningRate = learningRate
    }

    /// Reads `measure.finetune`; `context` bounds the sequence length. `filePrecision` is the format of a model
    /// file's matrices when `measure.model` names one: the frozen base is then the file's, kept as stored or
    /// dequantized (f32), so `precision` may list only those two and defaults to the file's; full fine-tuning
    /// always dequantizes it to f32.
    public static func read(_ field: YAMLField, context: Int, filePrecision: String? = nil) throws -> FinetuneSettings {
        let m = try field.mapping(allowed: ["method", "rank", "alpha", "dropout", "targets", "precision", "seq_len", "batch",
                                             "steps", "warmup", "checkpointing", "learning_rate"])
        var s = FinetuneSettings()
        if let f = m.optional("method") { s.methods = try distinct(f.list { try $0.oneOf(["lora", "full"]) }, f) }
        if let f = m.optional("rank") { s.rank = try f.int(min: 1, max: 4096) }
        if let f = m.optional("alpha") { s.alpha = try f.double(min: 0, exclusiveMin: true, max: 1e6) }
        if let f = m.optional("dropout") {
            s.dropout = try f.double(min: 0, max: 1)
            if s.dropout >= 1 { throw f.fail("a dropout probability below 1") }
        }
        if let f = m.optional("targets") { s.targets = try distinct(f.list { try $0.oneOf(projections) }, f) }
        if let filePrecision { s.precisions = [filePrecision] }
        if let f = m.optional("precision"), let filePrecision {
            let allowed = filePrecision == "f32" ? ["f32"] : [filePrecision, "f32"]
            s.precisions = try distinct(f.list { p in
                let name = try p.string()
                guard allowed.contains(name) else {
                    throw p.fail("the model file's precision \(filePrecision)\(filePrecision == "f32" ? "" : " or f32 (its tensors dequantized)")")
                }
                return name
            }, f)
        } else if let f = m.optional("precision") {
            s.precisions = try distinct(f.list { p in
                switch PrecisionNames.engineName(try p.string()) {
                case .success(let name): return name
                case .failure(let refusal): throw p.fail(refusal.expected)
                }
            }, f)
            if !s.precisions.contains("f32") && s.methods.contains("full") {
                throw f.error("is \(s.precisions.joined(separator: ", ")), but method includes full: full fine-tuning trains every weight in f32; a quantized base is for lora only (add f32 to measure full)")
            }
        }
        if let f = m.optional("seq_len") { s.seqLen = try f.int(min: 1, max: context) }
        if let f = m.optional("batch") { s.batch = try f.int(min: 1, max: 1024) }
        if let f = m.optional("steps") { s.steps = try f.int(min: 1, max: 100_000) }
        if let f = m.optional("warmup") { s.warmup = try f.int(min: 0, max: 1000) }
        if let f = m.optional("checkpointing") { s.checkpointing = try distinct(f.list { try $0.bool() }, f) }
        if let f = m.optional("learning_rate") { s.learningRate = try f.double(min: 0, exclusiveMin: true, max: 10) }
        return s
    }

    private static func distinct<T: Hashable>(_ values: [T], _ f: YAMLField) throws -> [T] {
        if Set(values).count != values.count { throw f.error("lists a value twice") }
        return values
    }
}
