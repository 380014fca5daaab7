// Prometheus metrics under vLLM's names, so that dashboards and Kubernetes inference routers built for
// vLLM read Tessera unchanged (https://docs.vllm.ai/en/latest/design/metrics.html).
//
// Gauges (requests running and waiting, KV-cache usage) are read from the engine when /metrics is
// scraped; the engine's cumulative counts (preemptions, prefix-cache queries and hits) become counters
// by adding what changed since the last scrape. Latencies are recorded by the server per request as
// its events arrive, so they include everything a client waits for except the network.
import Prometheus
import Synchronization
import TesseraEngine

final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let labels: [(String, String)]

    private let running, waiting, kvCacheUsage: Gauge
    private let promptTokens, generationTokens, preemptions, prefixQueries, prefixHits: Counter
    /// vllm:request_success_total, one series per finish reason (made up front, as vLLM does).
    private let requestSuccess: [FinishReason: Counter]
    private let timeToFirstToken, interTokenLatency, timePerOutputToken, e2eLatency, queueTime: ValueHistogram
    private let prefillTime, decodeTime, requestPromptTokens, requestGenerationTokens: ValueHistogram
    private let lastEngineCounts = Mutex<(preemptions: Int, queries: Int, hits: Int)>((0, 0, 0))

    // vLLM's bucket boundaries, in seconds or tokens.
    static let firstTokenBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5,
                                    10, 20, 40, 80, 160, 640, 2560]
    static let interTokenBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
                                    20, 40, 80]
    static let requestBuckets = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960,
                                 1920, 7680]
    static let tokenBuckets: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]

    init(modelName: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let labels = [("model_name", modelName), ("engine", "0")]
        self.labels = labels
        func gauge(_ name: String, _ help: String) -> Gauge { registry.makeGauge(descriptor: Self.name(name, help), labels: labels) }
        func counter(_ name: String, _ help: String) -> Counter { registry.makeCounter(descriptor: Self.name(name, help), labels: labels) }
        func histogram(_ name: String, _ buckets: [Double], _ help: String) -> ValueHistogram {
            registry.makeValueHistogram(descriptor: Self.name(name, help), labels: labels, buckets: buckets)
        }
        running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        kvCacheUsage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        promptTokens = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.")
        generationTokens = counter("vllm:generation_tokens_total", "Number of generation tokens processed.")
        preemptions = counter("vllm:num_preemptions_total", "Cumulative number of preemptions from the engine.")
        prefixQueries = counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.")
        prefixHits = counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.")
        requestSuccess = Dictionary(uniqueKeysWithValues: FinishReason.allCases.map { reason in
            (reason, registry.makeCounter(descriptor: Self.name("vllm:request_success_total", "Count of successfully processed requests."),
                                          labels: labels + [("finished_reason", reason.rawValue)]))
        })
        timeToFirstToken = histogram("vllm:time_to_first_token_seconds", Self.firstTokenBuckets, "Histogram of time to first token in seconds.")
        interTokenLatency = histogram("vllm:inter_token_latency_seconds", Self.interTokenBuckets, "Histogram of inter-token latency in seconds.")
        timePerOutputToken = histogram("vllm:time_per_output_token_seconds", Self.interTokenBuckets, "Histogram of time per output token in seconds.")
        e2eLatency = histogram("vllm:e2e_request_latency_seconds", Self.requestBuckets, "Histogram of end-to-end request latency in seconds.")
        queueTime = histogram("vllm:request_queue_time_seconds", Self.requestBuckets, "Histogram of time spent in WAITING phase for request.")
        prefillTime = histogram("vllm:request_prefill_time_seconds", Self.requestBuckets, "Histogram of time spent in PREFILL phase for request.")
        decodeTime = histogram("vllm:request_decode_time_seconds", Self.requestBuckets, "Histogram of time spent in DECODE phase for request.")
        requestPromptTokens = histogram("vllm:request_prompt_tokens", Self.tokenBuckets, "Number of prefill tokens processed.")
        requestGenerationTokens = histogram("vllm:request_generation_tokens", Self.tokenBuckets, "Number of generation tokens processed.")
    }

    /// A full name as given (vLLM's names carry their unit already).
    static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    func firstToken(after seconds: Double) { timeToFirstToken.record(seconds) }
    func interToken(_ seconds: Double) { interTokenLatency.record(seconds) }

    /// One finished request (one choice of a request with n > 1).
    func finished(_ summary: EngineSummary, e2eSeconds: Double, firstTokenSeconds: Double?) {
        promptTokens.increment(by: Int64(summary.promptTokens))
        generationTokens.increment(by: Int64(summary.completionTokens))
        requestSuccess[summary.finishReason]?.increment()
        e2eLatency.record(e2eSeconds)
        queueTime.record(summary.queueSeconds)
        prefillTime.record(summary.prefillSeconds)
        decodeTime.record(summary.decodeSeconds)
        requestPromptTokens.record(Double(summary.promptTokens))
        requestGenerationTokens.record(Double(summary.completionTokens))
        if let firstTokenSeconds, summary.completionTokens > 1 {
            timePerOutputToken.record((e2eSeconds - firstTokenSeconds) / Double(summary.completionTokens - 1))
        }
    }

    /// The Prometheus text exposition, with the engine's current state folded in.
    func exposition(engine: EngineStats?) -> String {
        if let stats = engine {
            running.set(Double(stats.running))
            waiting.set(Double(stats.waiting))
            kvCacheUsage.set(stats.kvCacheUsage)
            let deltas = lastEngineCounts.withLock { last in
                defer { last = (stats.preemptions, stats.prefixCacheQueries, stats.prefixCacheHits) }
                return (stats.preemptions - last.preemptions, stats.prefixCacheQueries - last.queries,
                        stats.prefixCacheHits - last.hits)
            }
            preemptions.increment(by: Int64(max(deltas.0, 0)))
            prefixQueries.increment(by: Int64(max(deltas.1, 0)))
            prefixHits.increment(by: Int64(max(deltas.2, 0)))
        }
        return registry.emitToString()
    }
}
