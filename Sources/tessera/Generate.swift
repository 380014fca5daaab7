// `tessera generate "prompt"` and `tessera chat`: text from a model, streamed to stdout as it comes.
// stdout carries only the generated text; load time and speeds go to stderr.
import ArgumentParser
import Foundation
import TesseraEngine
import TesseraModels
import TesseraTokenizers

/// Which model to run and how to hold its weights.
struct ModelOptions: ParsableArguments {
    @Option(help: "A GGUF file or HF model directory (default: SmolLM2-135M-Instruct, fetched on first use).")
    var model: String?

    @Option(help: "'fast' (quantised weights, 16-bit activations), 'int8' (8-bit activations) or 'exact' (all f32).")
    var precision: String = "fast"

    @Option(help: "Context length to allocate (default: the model's, at most 8192).")
    var contextSize: Int?

    func load() throws -> LoadedModel {
        guard let precision = WeightPrecision(rawValue: precision) else {
            throw ValidationError("--precision must be fast, int8 or exact, got '\(precision)'")
        }
        let path = try model ?? ModelStore.ensure(log: { printErr($0) })
        let bar = ProgressBar(label: "loading")
        let loaded = try LoadedModel.load(path: path, precision: precision, progress: { bar.update($0) })
        bar.finish()
        return loaded
    }
}

/// Sampling flags, named as in the OpenAI API.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Most tokens to generate.") var maxTokens = 256
    @Option(help: "0 is greedy.") var temperature: Float = 0.7
    @Option var topP: Float = 1
    @Option(help: "0 keeps all.") var topK = 0
    @Option var minP: Float = 0.05
    @Option var repetitionPenalty: Float = 1
    @Option var presencePenalty: Float = 0
    @Option var frequencyPenalty: Float = 0
    @Option(help: "Same seed, same text.") var seed: UInt64?
    @Option(help: "Stop before this string (repeatable).") var stop: [String] = []
    @Flag(help: "Keep going past end-of-sequence tokens.") var ignoreEOS = false
    @Option(help: "An over-long prompt: 'none' (an error) or 'keep-end' (drop the oldest tokens).") var truncatePrompt = "none"

    var options: GenerationOptions {
        GenerationOptions(
            maxTokens: maxTokens,
            sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                         repetitionPenalty: repetitionPenalty, presencePenalty: presencePenalty,
                                         frequencyPenalty: frequencyPenalty, seed: seed),
            stopStrings: stop, ignoreEOS: ignoreEOS, truncation: PromptTruncation(rawValue: truncatePrompt) ?? .none)
    }

    func validate() throws {
        guard PromptTruncation(rawValue: truncatePrompt) != nil else {
            throw ValidationError("--truncate-prompt must be none or keep-end, got '\(truncatePrompt)'")
        }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        do { try options.sampling.validate(vocabularySize: Int(Int32.max)) } catch { throw ValidationError(error.description) }
    }
}

func printErr(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

/// A one-line progress bar on stderr (only when stderr is a terminal; otherwise one line at the end).
final class ProgressBar {
    let label: String
    let interactive = isatty(2) != 0
    private var last = -1
    init(label: String) { self.label = label }
    func update(_ fraction: Double) {
        let percent = Int(fraction * 100)
        guard interactive, percent != last else { return }
        last = percent
        let filled = percent * 30 / 100
        FileHandle.standardError.write("\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] \(percent)%".data(using: .utf8)!)
    }
    func finish() { if interactive { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) } }
}

func statistics(_ r: GenerationResult, load: Double?) -> String {
    var parts: [String] = []
    if let load { parts.append(String(format: "load %.2f s", load)) }
    parts.append(String(format: "prompt %d tokens, %.1f tokens/s", r.promptTokens, r.promptTokensPerSecond))
    parts.append(String(format: "generated %d tokens, %.1f tokens/s", r.tokens.count, r.decodeTokensPerSecond))
    parts.append("finish: \(r.finishReason.rawValue)")
    return parts.joined(separator: "; ")
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a prompt, streaming the text to stdout.")

    @Argument(help: "The prompt.") var prompt: String
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var compute: ComputeOptions
    @Flag(help: "Wrap the prompt in the model's chat template as one user message.") var chat = false
    @Flag(help: "Print no statistics to stderr.") var quiet = false
    @OptionGroup var kvCache: KVCacheArguments
    @Flag(help: "Also print memory figures: weights, KV cache per token and allocated.") var verbose = false

    func run() throws {
        try compute.apply()
        let loaded = try modelOptions.load()
        var text = prompt
        if chat {
            guard let template = loaded.chatTemplate else { throw ValidationError("the model has no chat template") }
            text = try template.render(messages: [["role": "user", "content": prompt]], addGenerationPrompt: true)
        }
        let ids = loaded.tokenizer.encode(text, addSpecialTokens: true)  // as ChatPrompt.ids does
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let cache = try kvCache.makeCache(for: loaded.model, maxTokens: modelOptions.contextSize ?? min(loaded.model.config.contextLength, 8192))
        if let window = try kvCache.policy.window, ids.count > window + kvCache.kvSinks, !quiet {
            printErr("note: the prompt has \(ids.count) tokens; with --kv-cache \(kvCache.kvCache) each token attends to at most "
                     + "\(window)\(kvCache.kvCache == "sinks" ? " recent tokens plus \(kvCache.kvSinks) sinks" : " tokens")")
        }
        let result = try generator.generate(prompt: ids, options: sampling.options, cache: cache) { piece in
            FileHandle.standardOutput.write(piece.data(using: .utf8)!)
        }
        print("")
        if !quiet { printErr(statistics(result, load: loaded.loadSeconds)) }
        if verbose {
            let c = loaded.model.config
            printErr(String(format: "weights: %.1f MB of matrices read per token (%@)", Double(loaded.model.matrixBytes) / 1e6,
                            loaded.model.precision.rawValue))
            printErr(describeMemory(cache, layers: c.layerCount))
        }
    }
}

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Talk with a model in the terminal, using its chat template.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kvCache: KVCacheArguments
    @Option(help: "A system message.") var system: String?

    func run() throws {
        try compute.apply()
        let loaded = try modelOptions.load()
        guard let template = loaded.chatTemplate else { throw ValidationError("the model has no chat template") }
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        var messages: [[String: String]] = system.map { [["role": "system", "content": $0]] } ?? []
        printErr("Chatting with \(loaded.path). Empty line or Ctrl-D ends.")
        let maxTokens = modelOptions.contextSize ?? min(loaded.model.config.contextLength, 8192)
        var cache = try kvCache.makeCache(for: loaded.model, maxTokens: maxTokens)
        var cachedIDs: [Int32] = []  // the tokens whose keys and values the cache holds, in order
        while true {
            FileHandle.standardError.write("> ".data(using: .utf8)!)
            guard let line = readLine(), !line.isEmpty else { break }
            messages.append(["role": "user", "content": line])
            // Each turn re-renders the whole conversation, but only the tokens after the part the cache
            // already holds run through the model: the cache is rewound to the common prefix (a ring
            // that can no longer rewind that far starts over).
            let ids = try ChatPrompt.ids(messages: messages, template: template, tokenizer: loaded.tokenizer)
            var common = zip(cachedIDs, ids).prefix { $0 == $1 }.count
            common = min(common, ids.count - 1)  // at least one token to run
            do { try cache.truncate(to: common) } catch {
                cache = try kvCache.makeCache(for: loaded.model, maxTokens: maxTokens)
                common = 0
            }
            let result = try generator.generate(prompt: Array(ids[common...]), options: sampling.options, cache: cache) { piece in
                FileHandle.standardOutput.write(piece.data(using: .utf8)!)
            }
            cachedIDs = Array((ids + result.tokens).prefix(cache.length))
            print("")
            printErr("[\(statistics(result, load: nil)); \(common) conversation tokens reused from the cache]")
            messages.append(["role": "assistant", "content": result.text])
        }
    }
}
