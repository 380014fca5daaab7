// `tessera bench serve`: a load generator for OpenAI-compatible servers, measured as vLLM's
// benchmark_serving measures them — a fixed number of requests with random prompts of a stated
// length, at a given concurrency (and optionally a Poisson arrival rate), each streamed, reporting
// requests/s, output tokens/s, time to first token, time per output token and inter-token latency
// (mean, median, p99). Several targets (Tessera and llama.cpp's server, say) get the same prompts in
// the same run, and the table sets them side by side.
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import TesseraEngine

struct BenchServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Load-test OpenAI-compatible servers side by side (requests/s, tokens/s, TTFT, TPOT, ITL).")

    @Option(name: .customLong("target"), help: "NAME=URL of a running server (repeatable; the first is the one compared).")
    var targets: [String] = ["tessera=http://127.0.0.1:8080"]
    @Option(help: "Requests per run.") var numPrompts = 64
    @Option(help: "Prompt tokens (random ids).") var inputLen = 128
    @Option(help: "Output tokens per request (ignore_eos).") var outputLen = 128
    @Option(help: "A prefix of this many tokens shared by every prompt (prefix-caching scenario).") var prefixLen = 0
    @Option(help: "Concurrency levels, comma-separated.") var concurrency = "1,4,8,16,32"
    @Option(help: "Poisson arrival rate in requests/s (default: all at once, limited by concurrency).") var requestRate: Double?
    @Option(help: "Random prompt ids are drawn from this range (lo..<hi): ordinary tokens of the vocabulary.")
    var tokenRange = "1000..<20000"
    @Option(help: "Seed for the prompts and arrivals.") var seed: UInt64 = 0
    @Option(help: "Sampling temperature of every request (0: greedy).") var temperature: Double = 0
    @Option(help: "Nucleus sampling: top_p of every request (1: off).") var topP: Double = 1
    @Option(help: "top_k of every request (0: off; min_p is sent as 0).") var topK = 0
    @Option(help: "Warm-up requests per target before measuring.") var warmup = 2
    @Flag(help: "Print one JSON object instead of the table.") var json = false
    @Option(help: "Write every run's figures as CSV here (for plots).") var csv: String?
    @Flag(help: "Exit with an error when any request failed.") var failOnError = false

    struct Run: Encodable {
        var target: String
        var concurrency: Int
        var completed: Int, failed: Int
        var seconds: Double
        var requestsPerSecond: Double, outputTokensPerSecond: Double, totalTokensPerSecond: Double
        var ttft: Stats, tpot: Stats, itl: Stats
        var errors: [String]
    }

    struct Stats: Encodable {
        var mean: Double, median: Double, p99: Double  // milliseconds
        init(_ values: [Double]) {
            let sorted = values.sorted()
            func percentile(_ p: Double) -> Double {
                guard !sorted.isEmpty else { return .nan }
                let k = Double(sorted.count - 1) * p / 100, lo = Int(k), hi = min(lo + 1, sorted.count - 1)
                return (sorted[lo] + (sorted[hi] - sorted[lo]) * (k - Double(lo))) * 1000
            }
            mean = sorted.isEmpty ? .nan : sorted.reduce(0, +) / Double(sorted.count) * 1000
            median = percentile(50)
            p99 = percentile(99)
        }
    }

    /// One request's timings.
    struct Sample: Sendable {
        var ok: Bool
        var error: String?
        var ttft = 0.0, e2e = 0.0
        var gaps: [Double] = []
        var outputTokens = 0
    }

    func run() async throws {
        let levels = try concurrency.split(separator: ",").map { piece -> Int in
            guard let n = Int(piece.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                throw ValidationError("--concurrency takes positive integers, got '\(piece)'")
            }
            return n
        }
        let parsedTargets = try targets.map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[1].hasPrefix("http") else { throw ValidationError("--target takes NAME=URL, got '\(item)'") }
            return (parts[0], parts[1].hasSuffix("/") ? String(parts[1].dropLast()) : parts[1])
        }
        let bounds = tokenRange.components(separatedBy: "..<").compactMap { Int32($0) }
        guard bounds.count == 2, bounds[0] >= 0, bounds[0] < bounds[1] else { throw ValidationError("--token-range takes LO..<HI") }
        guard numPrompts >= 1, inputLen >= 1, outputLen >= 1, prefixLen >= 0, prefixLen < inputLen else {
            throw ValidationError("--num-prompts, --input-len and --output-len must be positive, --prefix-len below --input-len")
        }
        guard temperature >= 0, topP > 0, topP <= 1, topK >= 0 else {
            throw ValidationError("--temperature takes 0 or more, --top-p a value in (0, 1], --top-k 0 or more")
        }

        var rng = SeededGenerator(seed: seed)
        let prefix = (0..<prefixLen).map { _ in Int32.random(in: bounds[0]..<bounds[1], using: &rng) }
        let prompts = (0..<numPrompts).map { _ in
            prefix + (0..<(inputLen - prefixLen)).map { _ in Int32.random(in: bounds[0]..<bounds[1], using: &rng) }
        }
        var arrivalRNG = SeededGenerator(seed: seed &+ 1)
        let gaps: [Double] = prompts.indices.map { _ in
            guard let rate = requestRate else { return 0 }
            return -log(max(Double(arrivalRNG.nextUnit()), 1e-9)) / rate
        }

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(900))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var runs: [Run] = []
        do {
            for (name, url) in parsedTargets {
                let model = try await modelName(client, url)
                progress("\(name): \(url), model \(model)")
                for w in 0..<warmup { _ = await send(client, url, model: model, prompt: prompts[w % prompts.count], outputTokens: 8) }
                for level in levels {
                    // Fresh prompts per level (the shared prefix excepted), so no server answers a level
                    // from what it cached during the previous one.
                    var levelRNG = SeededGenerator(seed: seed &+ UInt64(level) &* 7919)
                    let fresh = prompts.map { p in
                        Array(p.prefix(prefixLen)) + (prefixLen..<inputLen).map { _ in Int32.random(in: bounds[0]..<bounds[1], using: &levelRNG) }
                    }
                    let run = await measure(client, name: name, url: url, model: model, prompts: fresh, gaps: gaps, concurrency: level)
                    progress(String(format: "  c=%-3d %6.2f req/s %8.1f out tok/s  TTFT p50 %7.0f ms  TPOT p50 %6.1f ms  (%d ok, %d failed)",
                                    level, run.requestsPerSecond, run.outputTokensPerSecond, run.ttft.median, run.tpot.median,
                                    run.completed, run.failed))
                    runs.append(run)
                }
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        if let csv { try writeCSV(runs, to: csv) }
        let report = self.report(runs, levels: levels, names: parsedTargets.map(\.0))
        print(json ? report.json() : report.table())
        if failOnError, let bad = runs.first(where: { $0.failed > 0 }) {
            throw ValidationError("\(bad.failed) requests to \(bad.target) failed at concurrency \(bad.concurrency): \(bad.errors.first ?? "")")
        }
    }

    func modelName(_ client: HTTPClient, _ url: String) async throws -> String {
        let response = try await client.execute(HTTPClientRequest(url: url + "/v1/models"), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
              let data = object["data"] as? [[String: Any]], let id = data.first?["id"] as? String else {
            throw ValidationError("\(url)/v1/models did not list a model")
        }
        return id
    }

    /// Streams one completion and times its chunks.
    func send(_ client: HTTPClient, _ url: String, model: String, prompt: [Int32], outputTokens: Int) async -> Sample {
        var request = HTTPClientRequest(url: url + "/v1/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        var body: [String: Any] = ["model": model, "prompt": prompt.map(Int.init), "max_tokens": outputTokens, "temperature": temperature,
                                   "top_p": topP, "ignore_eos": true, "stream": true, "stream_options": ["include_usage": true]]
        // Sent whole: llama.cpp's server applies top_k 40 and min_p 0.05 where a request names none.
        body["top_k"] = topK
        body["min_p"] = 0
        request.body = .bytes(ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: body)) ?? Data()))
        let start = DispatchTime.now().uptimeNanoseconds
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        var sample = Sample(ok: false)
        do {
            // A server may close an idle keep-alive connection just as it is reused: retry the request
            // (nothing was received yet) on a fresh one, twice at most.
            var attempt = 0
            var maybeResponse: HTTPClientResponse?
            while maybeResponse == nil {
                do { maybeResponse = try await client.execute(request, timeout: .seconds(900)) } catch {
                    attempt += 1
                    if attempt > 2 { throw error }
                }
            }
            let response = maybeResponse!
            guard response.status == .ok else {
                let text = try await response.body.collect(upTo: 1 << 16)
                sample.error = "HTTP \(response.status.code): \(String(buffer: text).prefix(200))"
                return sample
            }
            var pending = "", last: Double?, chunks = 0, usage: Int?
            for try await buffer in response.body {
                pending += String(buffer: buffer)
                while let end = pending.range(of: "\n\n") {
                    let event = String(pending[..<end.lowerBound])
                    pending = String(pending[end.upperBound...])
                    guard event.hasPrefix("data: ") else { continue }
                    let payload = event.dropFirst(6)
                    if payload == "[DONE]" { continue }
                    guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else { continue }
                    if let u = object["usage"] as? [String: Any], let n = u["completion_tokens"] as? Int { usage = n }
                    let choices = object["choices"] as? [[String: Any]] ?? []
                    guard let text = choices.first?["text"] as? String, !text.isEmpty else { continue }
                    let t = now()
                    if let last { sample.gaps.append(t - last) } else { sample.ttft = t }
                    last = t
                    chunks += 1
                }
            }
            sample.e2e = now()
            sample.outputTokens = usage ?? chunks
            sample.ok = sample.outputTokens > 0
            if !sample.ok { sample.error = "no tokens streamed" }
        } catch {
            sample.error = "\(error)"
        }
        return sample
    }

    func measure(_ client: HTTPClient, name: String, url: String, model: String, prompts: [[Int32]], gaps: [Double],
                 concurrency: Int) async -> Run {
        let start = DispatchTime.now().uptimeNanoseconds
        let samples: [Sample] = await withTaskGroup(of: Sample.self) { group in
            var results: [Sample] = [], next = 0, inFlight = 0
            var arrival = 0.0
            while next < prompts.count || inFlight > 0 {
                while next < prompts.count && inFlight < concurrency {
                    arrival += gaps[next]
                    let prompt = prompts[next], delay = arrival
                    group.addTask {
                        let wait = delay - Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        if wait > 0 { try? await Task.sleep(for: .seconds(wait)) }
                        return await send(client, url, model: model, prompt: prompt, outputTokens: outputLen)
                    }
                    next += 1
                    inFlight += 1
                }
                if let sample = await group.next() { results.append(sample); inFlight -= 1 }
            }
            return results
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let ok = samples.filter(\.ok)
        let outputTokens = ok.reduce(0) { $0 + $1.outputTokens }
        return Run(target: name, concurrency: concurrency, completed: ok.count, failed: samples.count - ok.count, seconds: seconds,
                   requestsPerSecond: Double(ok.count) / seconds, outputTokensPerSecond: Double(outputTokens) / seconds,
                   totalTokensPerSecond: Double(outputTokens + ok.count * inputLen) / seconds,
                   ttft: Stats(ok.map(\.ttft)),
                   tpot: Stats(ok.filter { $0.outputTokens > 1 }.map { ($0.e2e - $0.ttft) / Double($0.outputTokens - 1) }),
                   itl: Stats(ok.flatMap(\.gaps)), errors: Array(samples.compactMap(\.error).prefix(3)))
    }

    func report(_ runs: [Run], levels: [Int], names: [String]) -> BenchReport {
        var report = BenchReport(benchmark: "serve", environment: [
            "workload": "\(numPrompts) requests, \(inputLen) prompt tokens (\(prefixLen) shared), \(outputLen) output tokens, "
                + (requestRate.map { "Poisson \($0) req/s" } ?? "all at once"),
            "sampling": temperature == 0 ? "greedy" : "temperature \(temperature), top_p \(topP)" + (topK > 0 ? ", top_k \(topK)" : ""),
            "targets": names.joined(separator: ", "),
        ])
        let first = names[0], peer = names.count > 1 ? names[1] : nil
        func run(_ name: String, _ c: Int) -> Run? { runs.first { $0.target == name && $0.concurrency == c } }
        for c in levels {
            guard let mine = run(first, c) else { continue }
            let other = peer.flatMap { run($0, c) }
            var notes: [String] = []
            if mine.failed > 0 { notes.append("\(mine.failed) failed: \(mine.errors.first ?? "")") }
            if let other, other.failed > 0 { notes.append("\(other.target): \(other.failed) failed: \(other.errors.first ?? "")") }
            let note = notes.joined(separator: "; ")
            report.add(BenchRow(name: "c=\(c) output tokens/s", value: mine.outputTokensPerSecond, unit: "tok/s",
                                reference: other?.outputTokensPerSecond, referenceName: peer, note: note))
            report.add(BenchRow(name: "c=\(c) requests/s", value: mine.requestsPerSecond, unit: "req/s",
                                reference: other?.requestsPerSecond, referenceName: peer))
            for (label, stats, theirs) in [("TTFT", mine.ttft, other?.ttft), ("TPOT", mine.tpot, other?.tpot), ("ITL", mine.itl, other?.itl)] {
                report.add(BenchRow(name: "c=\(c) \(label) mean / p50 / p99", value: stats.median, unit: "ms",
                                    reference: theirs?.median, referenceName: peer,
                                    note: String(format: "%.1f / %.1f / %.1f", stats.mean, stats.median, stats.p99)
                                        + (theirs.map { String(format: " vs %.1f / %.1f / %.1f", $0.mean, $0.median, $0.p99) } ?? "")))
            }
        }
        if let one = run(first, 1) {
            for c in levels where c > 1 {
                if let many = run(first, c) {
                    report.add(BenchRow(name: "c=\(c) vs c=1 output tokens/s", value: many.outputTokensPerSecond, unit: "tok/s",
                                        reference: one.outputTokensPerSecond, referenceName: "\(first) c=1"))
                }
            }
        }
        return report
    }

    func writeCSV(_ runs: [Run], to path: String) throws {
        var lines = ["target,concurrency,requests_per_s,output_tokens_per_s,ttft_mean_ms,ttft_p50_ms,ttft_p99_ms,tpot_mean_ms,tpot_p50_ms,tpot_p99_ms,itl_mean_ms,itl_p50_ms,itl_p99_ms,failed"]
        for r in runs {
            lines.append([r.target, "\(r.concurrency)", "\(r.requestsPerSecond)", "\(r.outputTokensPerSecond)",
                          "\(r.ttft.mean)", "\(r.ttft.median)", "\(r.ttft.p99)", "\(r.tpot.mean)", "\(r.tpot.median)", "\(r.tpot.p99)",
                          "\(r.itl.mean)", "\(r.itl.median)", "\(r.itl.p99)", "\(r.failed)"].joined(separator: ","))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
