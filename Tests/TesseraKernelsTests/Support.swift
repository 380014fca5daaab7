// Test support: a loop over every kernel set this CPU can run (all three on an AVX-512 machine; under
// `qemu-x86_64 -cpu Nehalem` only the generic one), and an assertion on conformance results.
import TesseraCore
import TesseraKernels
import XCTest

/// Runs `body` for every kernel set this CPU supports.
func forEachKernelSet(_ body: (KernelSetID, any KernelSet.Type) throws -> Void) rethrows {
    for id in CPUFeatures.current.supportedKernelSets { try body(id, id.kernels) }
}

func assertPassed(_ result: KernelCheckResult, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertGreaterThan(result.cases, 0, "\(result.kernel): no cases ran", file: file, line: line)
    XCTAssertTrue(result.passed, result.description, file: file, line: line)
}

func randomFloats(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    KernelConformance.randomFloats(count, seed: seed, scale: scale)
}

/// Asserts |found - expected| <= atol element-wise.
func assertClose(_ found: [Float], _ expected: [Float], atol: Float, _ message: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(found.count, expected.count, message, file: file, line: line)
    let worst = zip(found, expected).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, atol, message, file: file, line: line)
}
