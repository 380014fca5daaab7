// The KV cache flags shared by generate, chat, perplexity and bench: which kind, how large, f16, f32 or int8.
import ArgumentParser
import Foundation
import TesseraKVCache
import TesseraModels

struct KVCacheArguments: ParsableArguments {
    @Option(help: ArgumentHelp("KV cache kind: 'full' (every token, up to the context), 'window' (the --kv-window most recent tokens) "
                               + "or 'sinks' (the first --kv-sinks tokens plus a --kv-window recent window: streams past the context, "
                               + "StreamingLLM)."))
    var kvCache = "full"
    @Option(help: "Recent tokens kept by --kv-cache window or sinks.") var kvWindow = 2048
    @Option(help: "Attention-sink tokens kept by --kv-cache sinks.") var kvSinks = 4
    @Option(help: "KV cache element type: 'f16' (llama.cpp's default: half of f32's memory and reads, logits within ~0.1% of f32's on the real models), 'f32', or 'int8' (one scale per 16 values: under a third of f32's memory).") var kvType = "f16"

    var policy: KVLayerPolicy {
        get throws {
            guard kvWindow >= 1 else { throw ValidationError("--kv-window must be at least 1, got \(kvWindow)") }
            switch kvCache {
            case "full": return .full
            case "window": return .window(kvWindow)
            case "sinks":
                guard kvSinks >= 1 else { throw ValidationError("--kv-sinks must be at least 1, got \(kvSinks)") }
                return .sinks(kvSinks, window: kvWindow)
            default: throw ValidationError("--kv-cache must be full, window or sinks, got '\(kvCache)'")
            }
        }
    }

    var elementType: KVElementType {
        get throws { try parseKVType(kvType) }
    }

    func options(maxTokens: Int?, maxChunk: Int = 512) throws -> KVCacheOptions {
        KVCacheOptions(policy: try policy, elementType: try elementType, maxTokens: maxTokens, maxChunk: maxChunk)
    }

    /// `maxTokens` bounds full layers only: a window or sink cache streams without limit.
    func makeCache(for model: DecoderModel, maxTokens: Int?, maxChunk: Int = 512) throws -> LayeredKVCache {
        try model.makeCache(options(maxTokens: try policy == .full ? maxTokens : nil, maxChunk: maxChunk))
    }
}

/// The --verbose memory lines of a cache.
func describeMemory(_ cache: LayeredKVCache, layers: Int) -> String {
    let budget = cache.tokens(fittingBytes: 1 << 30)
    let fits = budget == Int.max ? "any length (no layer keeps every token)" : "\(budget) tokens"
    let limit = cache.maxTokens == Int.max ? "unlimited" : "\(cache.maxTokens)"
    return "KV cache: \(cache.summary); \(cache.bytesPerTokenPerLayer) bytes per token per layer, \(cache.bytesPerToken) over \(layers) layers; "
        + String(format: "%.1f MB allocated, %d tokens seen (limit %@), %d held per layer on average; 1 GiB holds %@",
                 Double(cache.allocatedBytes) / 1e6, cache.length, limit, cache.heldTokens, fits)
}

/// A --kv-type value (generate, serve, perplexity and the benches alike).
func parseKVType(_ text: String) throws -> KVElementType {
    guard let type = KVElementType(rawValue: text) else { throw ValidationError("--kv-type must be f32, f16 or int8, got '\(text)'") }
    return type
}
