// `tessera serve`: the OpenAI-compatible HTTP server (see docs/server.md).
import ArgumentParser
import Foundation
import Logging
import TesseraEngine
import TesseraModels
import TesseraServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over an OpenAI-compatible HTTP API, with streaming, metrics and a chat page at /.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kvCache: KVCacheArguments
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(help: "The model name clients send (default: the model file's name).") var servedModelName: String?
    @Option(help: "Require 'Authorization: Bearer KEY' on the API routes (default: $TESSERA_API_KEY if set).") var apiKey: String?
    @Option(help: "Requests allowed to wait for the engine; more are refused with 503.") var maxWaiting = 256
    @Option(help: "'batching' (continuous batching over a paged KV cache) or 'sequential' (one request at a time).")
    var engine = "batching"
    @Option(help: "Requests running together (batching; vLLM's max_num_seqs).") var maxNumSeqs = 32
    @Option(help: "Tokens computed per step, prefill chunks and decodes together (vLLM's max_num_batched_tokens).")
    var maxBatchedTokens = 512
    @Option(help: "MiB of memory for the paged KV cache (batching), taken and touched at start-up.") var kvCacheMemory = 512
    @Option(help: "Tokens per KV-cache block (batching).") var blockSize = 16
    @Flag(help: "Turn automatic prefix caching off (batching).") var noPrefixCaching = false
    @Option(help: "Scheduling policy: 'fcfs' or 'priority' (lower 'priority' in the request runs first).") var schedulingPolicy = "fcfs"
    @Option(help: "Largest request body, in bytes.") var maxBodyBytes = 4 << 20
    @Option(help: "Seconds in-flight requests may run after SIGTERM/SIGINT before they are cancelled.") var shutdownGrace = 30.0
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    func run() async throws {
        try compute.apply()
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard maxWaiting >= 0, maxBodyBytes >= 1024 else { throw ValidationError("--max-waiting must be >= 0 and --max-body-bytes >= 1024") }
        var logger = Logger(label: "tessera")
        logger.logLevel = level
        // The served name comes from the file name, known before the file is there: the default model is
        // fetched (on first use) inside the load step, while the socket is open and /health answers 503.
        let givenPath = modelOptions.model, defaultModel = ModelSpec.smolLM2
        let name = servedModelName ?? ServedModel.defaultName(path: givenPath ?? defaultModel.fileName)
        let slot = ModelSlot(name: name)
        let metrics = ServerMetricsHandle(modelName: name)
        metrics.bootstrapSwiftMetrics()
        let key = apiKey ?? ProcessInfo.processInfo.environment["TESSERA_API_KEY"]
        let configuration = ServerConfiguration(
            host: host, port: port, routes: RouteOptions(apiKey: key, maxBodyBytes: maxBodyBytes), shutdownGraceSeconds: shutdownGrace)
        guard let precision = WeightPrecision(rawValue: modelOptions.precision) else {
            throw ValidationError("--precision must be fast, int8 or exact, got '\(modelOptions.precision)'")
        }
        let cacheOptions = try kvCache.options(maxTokens: nil)
        let contextSize = modelOptions.contextSize, maxWaiting = self.maxWaiting
        guard ["batching", "sequential"].contains(engine) else { throw ValidationError("--engine must be batching or sequential") }
        guard let policy = SchedulerConfig.Policy(rawValue: schedulingPolicy) else {
            throw ValidationError("--scheduling-policy must be fcfs or priority, got '\(schedulingPolicy)'")
        }
        guard maxNumSeqs >= 1, maxBatchedTokens >= 1, kvCacheMemory >= 1, blockSize >= 1 else {
            throw ValidationError("--max-num-seqs, --max-batched-tokens, --kv-cache-memory and --block-size must be positive")
        }
        guard try kvCache.policy == .full else { throw ValidationError("serve keeps every token: use --kv-cache full") }
        let batching = engine == "batching" ? BatchingConfiguration(
            scheduler: SchedulerConfig(maxBatchedTokens: maxBatchedTokens, maxSequences: maxNumSeqs, policy: policy),
            kvCacheBytes: kvCacheMemory << 20, blockSize: blockSize, elementType: try kvCache.elementType,
            prefixCaching: !noPrefixCaching, maxWaiting: maxWaiting, maxModelLength: contextSize) : nil
        let host = self.host
        try await TesseraHTTPServer.run(
            configuration: configuration, slot: slot, metrics: metrics, logger: logger,
            load: { [logger] in
                let path = try givenPath ?? ModelStore.ensure(defaultModel, log: { logger.info("\($0)") })
                let loaded = try LoadedModel.load(path: path, precision: precision)
                logger.info("loaded \(path) in \(String(format: "%.2f", loaded.loadSeconds)) s")
                let engine: any InferenceEngine
                if let batching {
                    let batched = BatchingEngine(model: loaded.model, tokenizer: loaded.tokenizer, configuration: batching)
                    let summary = "continuous batching: \(batching.scheduler.maxSequences) sequences, \(batching.scheduler.maxBatchedTokens) tokens a step, "
                        + "KV cache \(batched.cacheTokens) tokens in blocks of \(batching.blockSize) (\(batched.cacheBytes >> 20) MiB), "
                        + "prefix caching \(batching.prefixCaching ? "on" : "off")"
                    logger.info("\(summary)")
                    engine = batched
                } else {
                    engine = SequentialEngine(model: loaded.model, tokenizer: loaded.tokenizer,
                                              maxModelLength: contextSize ?? min(loaded.model.config.contextLength, 8192),
                                              cacheOptions: cacheOptions, maxWaiting: maxWaiting)
                }
                return ServedModel(name: name, engine: engine, chatTemplate: loaded.chatTemplate, path: path)
            },
            onListening: { [logger] port in
                logger.info("listening on http://\(host):\(port) (model '\(name)'; chat page at /, metrics at /metrics)")
            })
    }
}
