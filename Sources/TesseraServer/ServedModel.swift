// What the server serves: the engine and the model's text tools, behind a slot that is empty while
// the model loads (every generation endpoint answers 503 until it is filled).
import Foundation
import Synchronization
import TesseraEngine
import TesseraTokenizers

public struct ServedModel: Sendable {
    /// The name clients pass as `model`.
    public var name: String
    public var engine: any InferenceEngine
    public var chatTemplate: ChatTemplate?
    /// Where the weights came from (GET /v1/models shows it as `root`).
    public var path: String
    public var created: Int

    public init(name: String, engine: any InferenceEngine, chatTemplate: ChatTemplate?, path: String) {
        self.name = name; self.engine = engine; self.chatTemplate = chatTemplate; self.path = path
        created = Int(Date().timeIntervalSince1970)
    }

    public var tokenizer: any Tokenizer { engine.tokenizer }

    /// The default served name of a model file: its file name without the extension and quantisation.
    public static func defaultName(path: String) -> String {
        var name = URL(fileURLWithPath: path).lastPathComponent
        if name.hasSuffix(".gguf") { name.removeLast(5) }
        return name
    }
}

public final class ModelSlot: Sendable {
    private let value = Mutex<ServedModel?>(nil)
    /// The name the server will serve, known before the model has loaded.
    public let name: String

    public init(name: String) { self.name = name }

    public var model: ServedModel? { value.withLock { $0 } }
    public func fill(_ model: ServedModel) { value.withLock { $0 = model } }

    private let drainingFlag = Mutex(false)
    /// Set when a shutdown begins: /health answers 503 from then on, so that a load balancer or a
    /// Kubernetes readiness probe stops sending requests while the running ones finish.
    public var isDraining: Bool { drainingFlag.withLock { $0 } }
    public func beginDraining() { drainingFlag.withLock { $0 = true } }
}
