// A tiny chat model for the server tests, built in a temporary directory on first use: a byte-level
// BPE tokenizer trained on a few lines (with ChatML's special tokens), a randomly initialised 2-layer
// GPT exported as a GPT-2 directory, and a ChatML chat template. Its text is nonsense, but every
// answer it gives is a deterministic function of its weights, which is what the tests compare.
import Foundation
import TesseraEngine
import TesseraServer
import TesseraTokenizers
import TesseraTraining

enum TinyChatModel {
    static let contextLength = 256

    static let directory: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tiny-chat-\(getpid())").path
        let text = String(repeating: """
            To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and
            arrows of outrageous fortune, or to take arms against a sea of troubles and by opposing end them.
            The quick brown fox jumps over the lazy dog. Hello world! How are you today? I am fine, thank you.

            """, count: 4)
        do {
            let trainer = BPETrainer(vocabularySize: 320, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
            let tokenizer = try trainer.train(text)
            let json = tokenizer.tokenizerJSON()
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try json.write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
            let vocabulary = try makeTokenizer(directory: dir).vocabularySize
            let config = GPTConfig(vocabularySize: vocabulary, layers: 2, heads: 2, embedding: 32, blockSize: contextLength)
            try GPT(config: config, seed: 5).exportHuggingFace(to: dir, tokenizerJSON: json)
            let template = """
                {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
                """
            let config2: [String: Any] = ["chat_template": template, "eos_token": "<|im_end|>"]
            try JSONSerialization.data(withJSONObject: config2).write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        } catch {
            fatalError("cannot build the tiny chat model: \(error)")
        }
        return dir
    }()

    static let loaded: LoadedModel = {
        do { return try LoadedModel.load(path: directory, precision: .exact) } catch { fatalError("\(error)") }
    }()

    static func engine(maxWaiting: Int = 64) -> SequentialEngine {
        SequentialEngine(model: loaded.model, tokenizer: loaded.tokenizer, maxWaiting: maxWaiting)
    }

    static func served(maxWaiting: Int = 64, batching: Bool = false) -> ServedModel {
        let engine: any InferenceEngine = batching
            ? BatchingEngine(model: loaded.model, tokenizer: loaded.tokenizer,
                             configuration: BatchingConfiguration(kvCacheBytes: 4 << 20, maxWaiting: maxWaiting))
            : self.engine(maxWaiting: maxWaiting)
        return ServedModel(name: "tiny-chat", engine: engine, chatTemplate: loaded.chatTemplate, path: directory)
    }
}
