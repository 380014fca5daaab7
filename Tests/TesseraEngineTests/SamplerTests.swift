// The Sampler and the generation loop: each sampling rule on hand-made logits, determinism under a
// seed, typed errors for bad parameters, stop strings held back while they might still match, and
// generation on the real default model (skipped when it is not in the cache).
import Foundation
import TesseraEngine
import TesseraModels
import TesseraTokenizers
import TesseraFormats
import XCTest

final class SamplerTests: XCTestCase {
    let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.5]

    func testGreedyIsArgmax() {
        var s = Sampler(.greedy)
        XCTAssertEqual(s.sample(logits), 1)
    }

    func testSameSeedSameDraws() {
        func draws(_ seed: UInt64) -> [Int32] {
            var s = Sampler(SamplingParameters(temperature: 1.5, seed: seed))
            return (0..<50).map { _ in s.sample(logits) }
        }
        XCTAssertEqual(draws(7), draws(7))
        XCTAssertNotEqual(draws(7), draws(8))
        XCTAssertEqual(Set(draws(7)).count > 2, true, "a hot temperature visits several tokens")
    }

    func testTopKTopPMinPRestrictTheCandidates() {
        var k1 = Sampler(SamplingParameters(temperature: 5, topK: 1, seed: 1))
        XCTAssertTrue((0..<20).allSatisfy { _ in k1.sample(logits) == 1 })
        var k2 = Sampler(SamplingParameters(temperature: 5, topK: 2, seed: 1))
        XCTAssertEqual(Set((0..<200).map { _ in k2.sample(logits) }), [1, 2])
        // p(1) ≈ 0.52 at temperature 1: top-p 0.5 keeps token 1 alone.
        var p = Sampler(SamplingParameters(temperature: 1, topP: 0.5, seed: 1))
        XCTAssertTrue((0..<20).allSatisfy { _ in p.sample(logits) == 1 })
        // min-p 0.5: tokens at least half as likely as the best: 1 and 2 (e^-0.5 ≈ 0.61).
        var m = Sampler(SamplingParameters(temperature: 1, minP: 0.5, seed: 3))
        XCTAssertEqual(Set((0..<200).map { _ in m.sample(logits) }), [1, 2])
    }

    func testPenaltiesAndBias() {
        // Repetition penalty 2 halves the positive logit of token 1 (3 -> 1.5 < 2.5).
        var r = Sampler(SamplingParameters(temperature: 0, repetitionPenalty: 2))
        XCTAssertEqual(r.sample(logits, history: TokenHistory(prompt: [1])), 2)
        XCTAssertEqual(r.sample(logits, history: TokenHistory(output: [1])), 2)
        // Frequency penalty per occurrence in the output: 3 - 2·0.4 = 2.2 < 2.5.
        var f = Sampler(SamplingParameters(temperature: 0, frequencyPenalty: 0.4))
        XCTAssertEqual(f.sample(logits, history: TokenHistory(output: [1, 1])), 2)
        XCTAssertEqual(f.sample(logits, history: TokenHistory(output: [1])), 1)
        var presence = Sampler(SamplingParameters(temperature: 0, presencePenalty: 0.6))
        XCTAssertEqual(presence.sample(logits, history: TokenHistory(output: [1, 1, 1])), 2)
        // Presence and frequency count the output only (OpenAI, vLLM): prompt tokens are free.
        XCTAssertEqual(presence.sample(logits, history: TokenHistory(prompt: [1, 1, 1])), 1)
        XCTAssertEqual(f.sample(logits, history: TokenHistory(prompt: [1, 1], output: [2])), 1)
        var b = Sampler(SamplingParameters(temperature: 0, logitBias: [3: 10]))
        XCTAssertEqual(b.sample(logits), 3)
    }

    func testBadParametersAreTypedErrors() {
        let bad: [(SamplingParameters, String)] = [
            (SamplingParameters(temperature: -1), "temperature"), (SamplingParameters(topP: 0), "top_p"),
            (SamplingParameters(minP: 2), "min_p"), (SamplingParameters(repetitionPenalty: 0), "repetition_penalty"),
            (SamplingParameters(presencePenalty: 3), "presence_penalty"), (SamplingParameters(logitBias: [99: 1]), "logit_bias"),
            (SamplingParameters(temperature: .nan), "temperature"),
        ]
        for (parameters, name) in bad {
            XCTAssertThrowsError(try parameters.validate(vocabularySize: 5)) { error in
                guard case .invalid(let p, _, _)? = error as? SamplingError else { return XCTFail("\(error)") }
                XCTAssertEqual(p, name)
            }
        }
        XCTAssertNoThrow(try SamplingParameters().validate(vocabularySize: 5))
    }

    func testStopStringsAreHeldBackUntilTheyCannotMatch() {
        var f = StopStringFilter(["\n\nUser:", "###"])
        XCTAssertEqual(f.push("Hello").emit, "Hello")
        XCTAssertEqual(f.push(" world\n").emit, " world")   // "\n" may start "\n\nUser:"
        XCTAssertEqual(f.push("\nUs").emit, "")
        let (emit, stopped) = f.push("er: hi")
        XCTAssertEqual(emit, "")
        XCTAssertTrue(stopped)
        var g = StopStringFilter(["###"])
        XCTAssertEqual(g.push("a#").emit, "a")
        XCTAssertEqual(g.push("b").emit, "#b")
        XCTAssertEqual(g.push("c##").emit, "c")
        XCTAssertEqual(g.flush(), "##")
    }
}

final class GeneratorTests: XCTestCase {
    func loadDefault() throws -> LoadedModel {
        let path = ModelStore.modelDirectory + "/" + ModelSpec.smolLM2.fileName
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) not in the cache; run `tessera fetch`") }
        return try LoadedModel.load(path: path)
    }

    func testGreedyTextStopStringsAndLimits() throws {
        let loaded = try loadDefault()
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        let prompt = loaded.tokenizer.encode("The capital of France is", addSpecialTokens: true)
        var streamed = ""
        let greedy = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 8, sampling: .greedy)) { streamed += $0 }
        XCTAssertEqual(greedy.text, " Paris.\n\nThe answer is:")  // transformers' greedy text (Goldens/real-smollm2.json)
        XCTAssertEqual(streamed, greedy.text)
        XCTAssertEqual(greedy.finishReason, .length)
        XCTAssertEqual(greedy.tokens.count, 8)

        let stopped = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 32, sampling: .greedy, stopStrings: ["answer"]))
        XCTAssertEqual(stopped.text, " Paris.\n\nThe ")
        XCTAssertEqual(stopped.finishReason, .stop)

        // The chat template's end-of-turn token ends generation.
        let template = try XCTUnwrap(loaded.chatTemplate)
        let chat = try template.render(messages: [["role": "user", "content": "What is the capital of Japan? Answer in one short sentence."]],
                                       addGenerationPrompt: true)
        let reply = try generator.generate(prompt: loaded.tokenizer.encode(chat, addSpecialTokens: true),
                                           options: GenerationOptions(maxTokens: 40, sampling: .greedy))
        XCTAssertEqual(reply.text, "The capital of Japan is Tokyo.")
        XCTAssertEqual(reply.finishReason, .stop)

        // Same seed, same text.
        let sampled = { try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 12, sampling: SamplingParameters(temperature: 0.9, seed: 11))).text }
        XCTAssertEqual(try sampled(), try sampled())

        XCTAssertThrowsError(try generator.generate(prompt: [], options: GenerationOptions()))
        XCTAssertThrowsError(try generator.generate(prompt: prompt, options: GenerationOptions(sampling: SamplingParameters(topP: 5))))
        let tiny = loaded.model.makeCache(maxTokens: 3)
        XCTAssertThrowsError(try generator.generate(prompt: prompt, options: GenerationOptions(), cache: tiny)) { error in
            XCTAssertTrue("\(error)".contains("context holds 3"), "\(error)")
        }
        // With a truncation policy the prompt's end is kept and generation runs to the end of the context.
        let kept = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 8, sampling: .greedy, truncation: .keepEnd),
                                          cache: loaded.model.makeCache(maxTokens: 4))
        XCTAssertEqual(kept.promptTokens, 3)
        XCTAssertEqual(kept.finishReason, .length)
    }
}

/// The sampler's candidate sets and probabilities against the textbook algorithm (sort the whole
/// vocabulary, softmax in Double, cut), on random logits of a real vocabulary's size.
final class SamplerDistributionTests: XCTestCase {
    func reference(_ logits: [Float], _ p: SamplingParameters) -> [Int: Double] {
        let (tokens, probabilities) = Sampler.referenceDistribution(logits, p)
        return Dictionary(uniqueKeysWithValues: zip(tokens, probabilities))
    }

    func testCandidatesAndProbabilitiesMatchTheFullSort() {
        var rng = SeededGenerator(seed: 11)
        // A peaked and a flat distribution over 49,152 tokens (SmolLM2's vocabulary).
        for spread in [Float(8), 1] {
            let logits = (0..<49_152).map { _ in Float.random(in: -spread...spread, using: &rng) }
            for parameters in [SamplingParameters(temperature: 0.8), SamplingParameters(temperature: 0.7, topP: 0.9),
                               SamplingParameters(temperature: 1, topP: 0.3), SamplingParameters(temperature: 1.3, minP: 0.05),
                               SamplingParameters(temperature: 0.9, topK: 40, topP: 0.95, minP: 0.02),
                               SamplingParameters(temperature: 2, topK: 1000)] {
                let expected = reference(logits, parameters)
                let d = Sampler(parameters).distribution(logits)
                let tokens = d.tokens ?? Array(logits.indices)
                let total = d.probabilities.reduce(0, +)
                XCTAssertEqual(tokens.count, expected.count, "spread \(spread), \(parameters)")
                XCTAssertTrue(Set(tokens) == Set(expected.keys), "spread \(spread), \(parameters)")
                for (token, q) in zip(tokens, d.probabilities) {
                    XCTAssertEqual(Double(q / total), expected[token] ?? -1, accuracy: 1e-4 * max(1e-3, expected[token] ?? 0) + 1e-9,
                                   "token \(token), spread \(spread), \(parameters)")
                }
            }
        }
    }

    /// The nucleus from one scan's head of bands is the band-by-band scans' exactly — the same tokens in
    /// the same order — whether it ends in the head (peaked and flat distributions) or falls back to the
    /// scans (a tail below 2^-16 of the top holding more than 1 - p), at masses from tiny to all.
    func testNucleusFromTheHeadEqualsTheScans() {
        var rng = SeededGenerator(seed: 17)
        var cases: [[Float]] = []
        for spread in [Float(12), 4, 1, 0] {
            let logits = (0..<49_152).map { _ in Float.random(in: -spread...spread, using: &rng) }
            let top = logits.max()!
            cases.append(logits.map { exp($0 - top) })
        }
        // One likely token over a tail of tokens each under 2^-16 of it, together a third of the mass.
        var heavy = [Float](repeating: 1e-5, count: 49_152)
        heavy[123] = 1
        cases.append(heavy)
        cases.append([1])
        cases.append([0.25, 0.25, 0.25, 0.25])
        for (c, probabilities) in cases.enumerated() {
            let total = probabilities.reduce(0.0) { $0 + Double($1) }
            for p in [1e-9, 0.05, 0.3, 0.5, 0.9, 0.95, 0.999, 1.0] {
                XCTAssertEqual(Sampler.nucleus(probabilities, mass: p * total), Sampler.nucleusByScans(probabilities, mass: p * total),
                               "case \(c), p \(p)")
            }
        }
    }

    func testDrawsFollowTheDistribution() {
        // Three tokens at 0.5, 0.3, 0.2 among many at nothing: frequencies over 20,000 draws.
        var logits = [Float](repeating: -80, count: 1000)
        logits[3] = log(0.5); logits[500] = log(0.3); logits[999] = log(0.2)
        for parameters in [SamplingParameters(temperature: 1, seed: 5), SamplingParameters(temperature: 1, topP: 0.99, seed: 5)] {
            var s = Sampler(parameters)
            var counts: [Int32: Int] = [:]
            for _ in 0..<20_000 { counts[s.sample(logits), default: 0] += 1 }
            XCTAssertEqual(Set(counts.keys), [3, 500, 999])
            XCTAssertEqual(Double(counts[3] ?? 0) / 20_000, 0.5, accuracy: 0.015)
            XCTAssertEqual(Double(counts[500] ?? 0) / 20_000, 0.3, accuracy: 0.015)
        }
    }

    func testTiesGoToLowerIdsAndBadLogitsFallBackToArgmax() {
        // 100 equal logits: top-p 0.5 keeps ids 0-49, top-k 10 ids 0-9.
        let flat = [Float](repeating: 1, count: 100)
        XCTAssertEqual(Sampler(SamplingParameters(temperature: 1, topP: 0.5)).distribution(flat).tokens.map(Set.init), Set(0..<50))
        XCTAssertEqual(Sampler(SamplingParameters(temperature: 1, topK: 10)).distribution(flat).tokens, Array(0..<10))
        // A long tail: top-p 0.999 keeps all but the least likely tail, as the full sort does.
        let tail = (0..<5000).map { -Float($0) / 400 }
        let nucleus = Sampler(SamplingParameters(temperature: 1, topP: 0.999)).distribution(tail).tokens ?? []
        XCTAssertEqual(nucleus.count, Sampler.referenceDistribution(tail, SamplingParameters(temperature: 1, topP: 0.999)).tokens.count)
        // NaN or infinite logits, or a vanishing temperature: the largest finite one, never a crash.
        var bad = [Float](repeating: 0, count: 64)
        bad[5] = 3; bad[9] = .nan
        var s = Sampler(SamplingParameters(temperature: 1, seed: 2))
        XCTAssertEqual(s.sample(bad), 5)
        var cold = Sampler(SamplingParameters(temperature: 1e-38, seed: 2))
        XCTAssertTrue((0..<20).allSatisfy { _ in cold.sample(bad.map { $0.isNaN ? 0 : $0 }) == 5 })
        var inf = [Float](repeating: 0, count: 64)
        inf[7] = .infinity
        XCTAssertEqual(Sampler(SamplingParameters(temperature: 1, topK: 4, seed: 2)).distribution(inf).tokens?.first, 7)
    }

    func testArgmaxTakesTheFirstLargest() {
        var x = [Float](repeating: 0, count: 100)
        x[37] = 2; x[90] = 2; x[99] = 1
        XCTAssertEqual(Sampler.argmax(x), 37)
        x[98] = 3
        XCTAssertEqual(Sampler.argmax(x), 98)
        XCTAssertEqual(Sampler.argmax([1, 5, 5]), 1)
    }
}
