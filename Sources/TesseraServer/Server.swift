// `tessera serve`: the HTTP server and the model as two services of one ServiceGroup (swift-service-
// lifecycle), stopped gracefully by SIGTERM or SIGINT.
//
// The socket opens at once and /health answers 503 while the model loads on its own thread. On a
// shutdown signal the model service goes first (services stop in reverse order): it refuses new
// requests (503), lets the running and waiting ones finish for up to the grace period, cancels what is
// left, and returns; then the HTTP server closes, its in-flight responses already ended.
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TesseraEngine

public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var routes: RouteOptions
    /// How long in-flight requests may run after a shutdown signal before they are cancelled.
    public var shutdownGraceSeconds: Double

    public init(host: String = "127.0.0.1", port: Int = 8080, routes: RouteOptions = RouteOptions(),
                shutdownGraceSeconds: Double = 30) {
        self.host = host; self.port = port; self.routes = routes; self.shutdownGraceSeconds = shutdownGraceSeconds
    }
}

public enum TesseraHTTPServer {
    /// Serves until a shutdown signal; `load` runs on its own thread and fills the slot.
    public static func run(configuration: ServerConfiguration, slot: ModelSlot, metrics: ServerMetricsHandle,
                           logger: Logger, load: @escaping @Sendable () throws -> ServedModel,
                           onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let router = makeRouter(slot: slot, metrics: metrics, options: configuration.routes)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tessera"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        let model = ModelService(slot: slot, load: load, graceSeconds: configuration.shutdownGraceSeconds, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: app), .init(service: model, successTerminationBehavior: .ignore)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Loads the model, then on shutdown drains the engine.
struct ModelService: Service {
    let slot: ModelSlot
    let load: @Sendable () throws -> ServedModel
    let graceSeconds: Double
    let logger: Logger

    func run() async throws {
        let served: ServedModel = try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try load() }) }
            thread.name = "tessera-load"
            thread.start()
        }
        slot.fill(served)
        logger.info("model '\(served.name)' ready (\(served.engine.maxModelLength) tokens of context)")
        try? await gracefulShutdown()
        slot.beginDraining()
        await drain(served.engine)
    }

    func drain(_ engine: any InferenceEngine) async {
        engine.beginShutdown()
        let stats = engine.stats()
        if !engine.isIdle {
            logger.info("shutting down: waiting up to \(graceSeconds) s for \(stats.running) running and \(stats.waiting) waiting requests")
        }
        let deadline = Date().addingTimeInterval(graceSeconds)
        while !engine.isIdle && Date() < deadline && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
        if !engine.isIdle {
            logger.warning("shutting down: cancelling the requests still in flight")
            engine.cancelAll()
            while !engine.isIdle && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
        }
        logger.info("engine stopped")
    }
}
