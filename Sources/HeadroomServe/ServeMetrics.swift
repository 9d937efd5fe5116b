// What `GET /metrics` shows, in Prometheus' text format (swift-prometheus). Names follow vLLM's where one
// exists (`vllm:num_requests_running` → `headroom_requests_running`), so dashboards map one to one.
import HeadroomEngine
import Prometheus

public final class ServeMetrics: @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()

    private let running, waiting, blocksUsed, blocksFree, blocksTotal: Gauge
    private let preemptions, promptTokens, generationTokens, steps: Counter
    private let finishedByCause: [String: Counter]
    private let httpByStatus: (Int) -> Counter
    private let stepTime: DurationHistogram
    private let batchSize, stepTokens: ValueHistogram
    private let ttft, itl: DurationHistogram

    public init() {
        let r = registry
        running = r.makeGauge(name: "headroom_requests_running", help: "Requests in the running batch (holding KV blocks).")
        waiting = r.makeGauge(name: "headroom_requests_waiting", help: "Requests queued for admission.")
        blocksUsed = r.makeGauge(name: "headroom_kv_blocks_used", help: "KV cache blocks held by requests.")
        blocksFree = r.makeGauge(name: "headroom_kv_blocks_free", help: "KV cache blocks free.")
        blocksTotal = r.makeGauge(name: "headroom_kv_blocks_total", help: "KV cache blocks in the pool.")
        preemptions = r.makeCounter(name: "headroom_preemptions_total", help: "Requests preempted (blocks freed, recomputed later).")
        promptTokens = r.makeCounter(name: "headroom_prompt_tokens_total", help: "Prompt tokens of finished requests.")
        generationTokens = r.makeCounter(name: "headroom_generation_tokens_total", help: "Tokens generated.")
        steps = r.makeCounter(name: "headroom_steps_total", help: "Model steps run.")
        var byCause: [String: Counter] = [:]
        for cause in ["length", "stop", "cancelled", "timeout", "shutdown", "failed"] {
            byCause[cause] = r.makeCounter(name: "headroom_requests_finished_total", labels: [("finish", cause)],
                                           help: "Requests the engine finished, by how.")
        }
        finishedByCause = byCause
        httpByStatus = { status in
            r.makeCounter(name: "headroom_http_responses_total", labels: [("status", "\(status)")],
                          help: "HTTP responses to the completion endpoints, by status.")
        }
        let seconds: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 40, 80]
            .map { Duration.milliseconds(Int64($0 * 1000)) }
        stepTime = r.makeDurationHistogram(name: "headroom_step_seconds", buckets: seconds, help: "Wall time of one model step.")
        batchSize = r.makeValueHistogram(name: "headroom_step_batch_size", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
                                         help: "Requests computed in one step.")
        stepTokens = r.makeValueHistogram(name: "headroom_step_tokens", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
                                          help: "Tokens computed in one step (prefill and decode).")
        ttft = r.makeDurationHistogram(name: "headroom_time_to_first_token_seconds", buckets: seconds,
                                       help: "Request submitted to its first token, server side.")
        itl = r.makeDurationHistogram(name: "headroom_inter_token_latency_seconds", buckets: seconds,
                                      help: "Between consecutive tokens of one request, server side.")
    }

    /// The text `GET /metrics` answers.
    public func render() -> [UInt8] { registry.emitToBuffer() }

    func kvBlocks(used: Int, total: Int) {
        blocksUsed.set(Double(used)); blocksFree.set(Double(total - used)); blocksTotal.set(Double(total))
    }

    func engine(running r: Int, waiting w: Int, usedBlocks: Int, totalBlocks: Int) {
        running.set(Double(r)); waiting.set(Double(w))
        kvBlocks(used: usedBlocks, total: totalBlocks)
    }

    func step(duration: Duration, requests: Int, prefillTokens: Int, decodes: Int, preemptions p: Int) {
        steps.increment()
        stepTime.record(duration)
        batchSize.record(Double(requests))
        stepTokens.record(Double(prefillTokens + decodes))
        if p > 0 { preemptions.increment(by: Int64(p)) }
    }

    func timeToFirstToken(_ d: Duration) { ttft.record(d) }
    func interTokenLatency(_ d: Duration) { itl.record(d) }
    func generatedToken() { generationTokens.increment() }

    func finished(_ cause: FinishCause, promptTokens n: Int) {
        finishedByCause[EngineLoop.name(cause)]?.increment()
        promptTokens.increment(by: Int64(n))
    }

    /// Counts one answer of a completion endpoint (the registry hands back the same counter per status).
    public func response(status: Int) { httpByStatus(status).increment() }
}
