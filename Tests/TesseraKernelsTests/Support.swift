// Test support: deterministic random data, closeness checks, and a loop over every kernel set this CPU
// can run (all three on an AVX-512 machine; under `qemu-x86_64 -cpu Nehalem` only the generic one).
import TesseraCore
import TesseraKernels
import XCTest

/// Deterministic uniform values in [-scale, scale).
func randomFloats(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

/// Asserts |found - expected| <= atol + rtol·|expected| element-wise, naming the first offender.
func assertClose(_ found: [Float], _ expected: [Float], atol: Float, rtol: Float = 0, _ message: @autoclosure () -> String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(found.count, expected.count, message(), file: file, line: line)
    for i in 0..<min(found.count, expected.count) {
        let (f, e) = (found[i], expected[i])
        if f.isNaN || e.isNaN {
            if f.isNaN != e.isNaN { XCTFail("\(message()): [\(i)] found \(f), expected \(e)", file: file, line: line); return }
            continue
        }
        if f == e { continue }  // also covers equal infinities
        if abs(f - e) > atol + rtol * abs(e) {
            XCTFail("\(message()): [\(i)] found \(f), expected \(e) (|diff| \(abs(f - e)))", file: file, line: line)
            return
        }
    }
}

/// Runs `body` for every kernel set this CPU supports; notes the ones it cannot run.
func forEachKernelSet(_ body: (KernelSetID, any KernelSet.Type) throws -> Void) rethrows {
    let supported = CPUFeatures.current.supportedKernelSets
    for id in KernelSetID.allCases {
        if supported.contains(id) {
            try body(id, id.kernels)
        } else {
            skippedSets.insert(id.rawValue)
        }
    }
}

nonisolated(unsafe) var skippedSets = Set<String>()
