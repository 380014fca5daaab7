// The kernel thread pool: every task runs exactly once, nested loops and concurrent callers are safe,
// and workers that went to sleep wake up for the next job.
import CTesseraCPU
import Foundation
import Synchronization
import TesseraCore
import XCTest

final class ThreadPoolTests: XCTestCase {
    func testEveryTaskRunsExactlyOnce() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threads: threads)
            for count in [0, 1, 2, 7, 64, 1001] {
                let hits = UnsafeMutablePointer<Int64>.allocate(capacity: max(count, 1))
                hits.initialize(repeating: 0, count: max(count, 1))
                pool.parallelFor(count) { i in hits[i] += 1 }  // each index is touched by one task only
                XCTAssertEqual((0..<count).filter { hits[$0] != 1 }.count, 0, "threads \(threads), count \(count)")
                hits.deallocate()
            }
            pool.shutdown()
        }
    }

    /// Workers keep one copy of a job's closure across its tasks and report them only after dropping
    /// it; a copy still held when the submitter returns would trap in withoutActuallyEscaping's check.
    /// Many short regions back to back give a late worker every chance to be caught holding one.
    func testBackToBackRegionsCountEveryTaskAndLetNoClosureEscape() {
        let pool = ThreadPool(threads: 3)
        let counter = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
        counter.initialize(to: 0)
        var expected: Int64 = 0
        for region in 0..<20_000 {
            let tasks = 1 + region % 5
            pool.parallelFor(tasks) { _ in _ = tessera_atomic_fetch_add_i64(counter, 1) }
            expected += Int64(tasks)
        }
        XCTAssertEqual(counter.pointee, expected)
        counter.deallocate()
        pool.shutdown()
    }

    func testParallelRangesCoverTheWholeRangeWithoutOverlap() {
        let pool = ThreadPool(threads: 3)
        for total in [1, 5, 100, 12345] {
            let covered = Mutex<[Range<Int>]>([])
            pool.parallelRanges(total, grain: 7) { range in covered.withLock { $0.append(range) } }
            let ranges = covered.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, total)
            for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
        }
    }

    func testGuidedChunksCoverTheRangeAndShrinkToTheGrain() {
        for threads in [1, 2, 3] {
            let pool = ThreadPool(threads: threads)
            for (total, grain) in [(1, 1), (5, 8), (36, 1), (192, 2), (12345, 7)] {
                let covered = Mutex<[Range<Int>]>([])
                pool.parallelGuided(total, grain: grain) { range in covered.withLock { $0.append(range) } }
                let ranges = covered.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, total)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                // Every chunk but the range's last holds at least `grain` items; with several threads
                // the first chunk is no more than a quarter of the range per thread.
                for r in ranges.dropLast() { XCTAssertGreaterThanOrEqual(r.count, grain, "total \(total), grain \(grain)") }
                if threads > 1 && total > grain { XCTAssertLessThanOrEqual(ranges[0].count, max(grain, total / (2 * threads))) }
            }
            // Inside another loop's task it runs serially, as one chunk.
            let inner = Mutex<Int>(0)
            pool.parallelFor(4) { _ in pool.parallelGuided(10) { range in inner.withLock { $0 += range.count } } }
            XCTAssertEqual(inner.withLock { $0 }, 40)
            pool.shutdown()
        }
    }

    func testRunOnEachThreadGivesEveryThreadExactlyOneCall() {
        let pool = ThreadPool(threads: 4)
        for _ in 0..<20 {
            let calls = Mutex<[Int: Int]>([:])
            pool.runOnEachThread { index in
                let name = Int(bitPattern: UInt(pthread_self()))
                calls.withLock { $0[index, default: 0] += 1; $0[-name - 1] = index }
            }
            let seen = calls.withLock { $0 }
            XCTAssertEqual((0..<4).map { seen[$0] ?? 0 }, [1, 1, 1, 1])
            XCTAssertEqual(seen.keys.filter { $0 < 0 }.count, 4, "four distinct threads")
        }
    }

    func testNestedLoopsRunSeriallyInsideATask() {
        let pool = ThreadPool(threads: 2)
        let total = Mutex(0)
        pool.parallelFor(8) { _ in
            pool.parallelFor(10) { _ in total.withLock { $0 += 1 } }
        }
        XCTAssertEqual(total.withLock { $0 }, 80)
    }

    func testConcurrentCallersTakeTurns() {
        let pool = ThreadPool(threads: 2)
        let total = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<50 { pool.parallelFor(16) { _ in total.withLock { $0 += 1 } } }
        }
        XCTAssertEqual(total.withLock { $0 }, 4 * 50 * 16)
    }

    func testSleepingWorkersWakeForTheNextJob() {
        let pool = ThreadPool(threads: 2, spinMicroseconds: 10)
        usleep(20_000)  // past the spin window: the worker is asleep on the futex now
        let ran = Mutex(0)
        pool.parallelFor(4) { _ in ran.withLock { $0 += 1 } }
        XCTAssertEqual(ran.withLock { $0 }, 4)
        pool.shutdown()
        pool.parallelFor(3) { _ in ran.withLock { $0 += 1 } }  // after shutdown loops still run, serially
        XCTAssertEqual(ran.withLock { $0 }, 7)
    }
}
