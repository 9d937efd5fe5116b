// One fine-tuning measurement: builds the trainer, runs warm-up and timed steps on the synthetic task
// (or a token file), and measures step time, loss and this process's peak resident memory against
// the trainer's own memory breakdown.
import Dispatch
import Foundation
import HeadroomCore
import HeadroomEngine
import HeadroomKernels

/// What one fine-tuning case runs.
public struct FinetuneCase: Sendable {
    public var model: ModelShape
    public var method: String           // "lora" or "full"
    public var rank: Int = 8
    public var alpha: Double = 16
    public var dropout: Double = 0
    public var targets: [String] = ["q", "v"]
    public var precision: String = "f32"
    public var seqLen: Int
    public var batch: Int
    public var steps: Int
    public var warmup: Int = 1
    public var checkpointing: Bool = false
    public var threads: Int
    public var learningRate: Double = 1e-3
    public var seed: UInt64 = 1
    /// A token file (little-endian uint32 ids); nil trains on the synthetic repeating-pattern task.
    public var tokenFile: String?
    /// A llama GGUF file whose tensors are the frozen base (`model` is then its shape, from
    /// `GGUFModelSource.describe`). `precision` is the file's own (kept as stored, mapped) or f32 (dequantized
    /// into f32 parameters: what full fine-tuning trains).
    public var modelFile: String?

    public init(model: ModelShape, method: String, seqLen: Int, batch: Int, steps: Int, threads: Int) {
        self.model = model; self.method = method; self.seqLen = seqLen; self.batch = batch; self.steps = steps; self.threads = threads
    }

    public init(model: ModelShape, settings s: FinetuneSettings, method: String, precision: String = "f32", checkpointing: Bool, threads: Int) {
        self.init(model: model, method: method, seqLen: s.seqLen, batch: s.batch, steps: s.steps, threads: threads)
        rank = s.rank; alpha = s.alpha; dropout = s.dropout; targets = s.targets; self.precision = precision
        warmup = s.warmup; self.checkpointing = checkpointing; learningRate = s.learningRate
    }

    /// The engine's method for this case; throws on unknown names.
    public func trainMethod() throws -> TrainMethod {
        switch method {
        case "full": return .full
        case "lora":
            let t = try TrainProjection.parseList(targets.joined(separator: ","))
            return .lora(LoRAConfig(rank: rank, alpha: Float(alpha), dropout: Float(dropout), targets: t))
        default: throw TrainError.badConfig("unknown method \"\(method)\"; expected lora or full")
        }
    }
}

/// What one fine-tuning case measured.
public struct FinetuneResult: Sendable {
    public var stepSeconds: [Double]
    /// The loss of every step, warm-up included, in order (the loss before that step's update).
    public var losses: [Double]
    public var memory: TrainMemory
    public var trainableParams: Int
    public var totalParams: Int
    public var flopsPerToken: Double
    public var tokensPerStep: Int
    /// VmRSS before anything was allocated, and VmHWM after the last step (bytes).
    public var baselineRSSBytes: Int
    public var peakRSSBytes: Int
    /// Whether the kernel's high-water mark could be reset before the case (clear_refs), so the peak is this case's.
    public var peakWasReset: Bool

    /// Peak resident memory above the baseline: what the step itself made resident.
    public var measuredBytes: Int { peakRSSBytes - baselineRSSBytes }
    /// measured ÷ breakdown; the breakdown is right within 10 % when this is in 0.9...1.1.
    public var breakdownRatio: Double { Double(measuredBytes) / Double(max(memory.totalBytes, 1)) }
}

public enum FinetuneBench {
    /// Runs `c`; `step` is called after each warm-up or timed step (progress, interruption).
    public static func run(_ c: FinetuneCase, step: () throws -> Void = {}) throws -> FinetuneResult {
        guard let precision = QuantType(name: c.precision) else {
            throw TrainError.badConfig("precision \(c.precision): expected f32, f16, q8_0 or q4_0")
        }
        let config = try ModelConfig(training: c.model)
        let method = try c.trainMethod()
        var options = TrainOptions(batch: c.batch, seqLen: c.seqLen, checkpointing: c.checkpointing, threads: c.threads, seed: c.seed,
                                   precision: precision)
        options.optimizer = AdamWSettings(learningRate: Float(c.learningRate), weightDecay: 0.0)
        let data: any TrainDataSource
        if let file = c.tokenFile {
            data = try TokenFileSource(path: file, vocab: config.vocab, seqLen: c.seqLen)
        } else {
            data = SyntheticPatternTask(vocab: config.vocab, period: min(64, config.vocab), seed: c.seed)
        }
        // Every batch is generated before the baseline so the token arrays are not counted against the step.
        let batches = (0..<(c.warmup + c.steps)).map { data.batch(step: $0, B: c.batch, T: c.seqLen) }
        try checkFits(config: config, method: method, options: options)

        let reset = ProcessMemory.resetPeak()
        let baseline = ProcessMemory.current()?.rss ?? 0
        // The file is mapped after the baseline: its pages are the base weights the step reads.
        let base = try c.modelFile.map { try baseWeights($0, precision: precision) }
        let trainer = try Trainer(config: config, method: method, options: options, base: base)
        var losses: [Double] = [], seconds: [Double] = []
        for (i, batch) in batches.enumerated() {
            try checkInterrupt()
            let start = DispatchTime.now().uptimeNanoseconds
            let loss = trainer.trainStep(batch)
            let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard loss.isFinite else { throw TrainError.diverged(step: i, loss: loss) }
            losses.append(loss)
            if i >= c.warmup { seconds.append(s) }
            try step()
        }
        let peak = ProcessMemory.current()?.hwm ?? 0
        return FinetuneResult(stepSeconds: seconds, losses: losses, memory: trainer.memory,
                              trainableParams: trainer.trainableParameters, totalParams: trainer.totalParameters,
                              flopsPerToken: trainer.flopsPerToken, tokensPerStep: c.batch * c.seqLen,
                              baselineRSSBytes: baseline, peakRSSBytes: peak, peakWasReset: reset)
    }

    /// The file's weights, mapped and pre-faulted; refused when `precision` is neither the file's nor f32.
    static func baseWeights(_ path: String, precision: QuantType) throws -> ModelWeights {
        let w = try GGUFModelSource.weights(path)
        let stored = w.layers.first?.wq.type ?? w.type
        guard precision == .f32 || precision == stored else {
            throw TrainError.badConfig("precision \(precision): \(path) stores its matrices in \(stored); a frozen base from a file is kept as stored (\(stored)) or dequantized (f32)")
        }
        return w
    }

    /// Refuses a case whose buffers would not fit in the memory available now, before allocating any.
    static func checkFits(config: ModelConfig, method: TrainMethod, options: TrainOptions) throws {
        let bytes = Trainer.plannedMemory(config: config, method: method, options: options).totalBytes
        if let available = ProcessMemory.availableBytes(), bytes > available {
            throw TrainError.badConfig(String(format: "the step needs %.2f GB of buffers but only %.2f GB of memory is available",
                                              Double(bytes) / 1e9, Double(available) / 1e9))
        }
    }
}

/// This process's resident memory from /proc/self/status, and the system's available memory.
public enum ProcessMemory {
    /// VmRSS and VmHWM in bytes, nil where /proc is absent.
    public static func current() -> (rss: Int, hwm: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        var rss: Int?, hwm: Int?
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let kb = Int(parts[1]) else { continue }
            if parts[0] == "VmRSS:" { rss = kb * 1024 }
            if parts[0] == "VmHWM:" { hwm = kb * 1024 }
        }
        guard let rss, let hwm else { return nil }
        return (rss, hwm)
    }

    /// Resets VmHWM to the current RSS (writing 5 to /proc/self/clear_refs); false where that is not allowed.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// MemAvailable from /proc/meminfo, in bytes.
    public static func availableBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(whereSeparator: { $0 == " " })
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
