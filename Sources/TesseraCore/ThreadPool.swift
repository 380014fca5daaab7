// The kernel thread pool: a fixed set of persistent worker threads that run parallel loops.
//
// A decode step calls hundreds of kernels, each a few microseconds long, so the cost of starting a
// parallel region matters as much as the kernels themselves. Workers therefore spin (with `pause`) for a
// short while after each job, and only then sleep on a futex; the caller publishes a job by bumping a
// sequence number and wakes sleepers only when there are some. The caller works too: a pool of N
// threads has N - 1 workers. `tessera bench kernels` measures the cost of an empty parallel region.
//
// Nested parallel loops (a kernel called from inside another kernel's task) run serially on the
// calling thread; concurrent callers from different threads take turns.
import CTesseraCPU
import Foundation
import Synchronization

public final class ThreadPool: @unchecked Sendable {
    /// Threads taking part in a parallel loop, the calling thread included.
    public let threadCount: Int
    /// How long an idle worker spins before it sleeps, in nanoseconds.
    public let spinNanoseconds: UInt64

    // Shared words, each on its own cache line: the job sequence number (also the futex word), the
    // number of sleeping workers, the next task index and the number of workers still busy.
    private let words: UnsafeMutableRawPointer
    private var sequence: UnsafeMutablePointer<UInt32> { words.assumingMemoryBound(to: UInt32.self) }
    private var sleepers: UnsafeMutablePointer<Int64> { (words + 64).assumingMemoryBound(to: Int64.self) }
    private var claimWord: UnsafeMutablePointer<Int64> { (words + 128).assumingMemoryBound(to: Int64.self) }
    private var busyWorkers: UnsafeMutablePointer<Int64> { (words + 192).assumingMemoryBound(to: Int64.self) }
    private var doneTasks: UnsafeMutablePointer<Int64> { (words + 256).assumingMemoryBound(to: Int64.self) }

    // The current job: the address of the submitting thread's closure, written before the sequence
    // number is published. A raw address, not the closure: workers calling a stored closure retained
    // and released its context, one reference count bounced between the cores at every task.
    private var job: UnsafeRawPointer?
    private var jobTaskCount = 0
    /// When set, each thread runs `job(threadIndex)` once instead of taking tasks from the counter.
    private var jobOnEachThread = false
    private var shuttingDown = false
    private let submitLock = NSLock()
    private var workers: [Thread] = []
    private let exited = DispatchGroup()

    /// Creates a pool of `threads` threads (the caller plus `threads - 1` workers).
    public init(threads: Int = ThreadPool.availableCores, spinMicroseconds: Int = 200) {
        precondition(threads >= 1, "ThreadPool needs at least one thread, got \(threads)")
        threadCount = threads
        spinNanoseconds = UInt64(max(0, spinMicroseconds)) * 1000
        words = UnsafeMutableRawPointer.allocate(byteCount: 320, alignment: 64)
        words.initializeMemory(as: UInt8.self, repeating: 0, count: 320)
        for index in 1..<threads {
            exited.enter()
            // unowned(unsafe): deinit waits for every worker to leave `exited`, so self outlives them,
            // but a checked unowned read during deinit would trap.
            let thread = Thread { [unowned(unsafe) self, exited] in
                self.workerLoop(index: index)
                exited.leave()
            }
            thread.name = "tessera-worker-\(index)"
            thread.stackSize = 8 << 20
            workers.append(thread)
            thread.start()
        }
    }

    deinit {
        shutdown()
        words.deallocate()
    }

    /// Stops the workers; the pool runs later loops serially.
    public func shutdown() {
        submitLock.lock()
        defer { submitLock.unlock() }
        guard !shuttingDown else { return }
        shuttingDown = true
        if !workers.isEmpty {
            tessera_atomic_store_u32(sequence, tessera_atomic_load_u32(sequence) &+ 1)
            tessera_futex_wake(sequence, Int32.max)
            exited.wait()
        }
    }

    /// The number of CPUs this process may use (its affinity mask).
    public static var availableCores: Int { Int(tessera_available_cpus()) }

    // MARK: - Parallel loops

    /// Runs `body(i)` for every `i` in `0..<taskCount`, spread over the pool's threads, and returns
    /// when all have finished. Tasks are handed out dynamically, so uneven tasks balance themselves.
    public func parallelFor(_ taskCount: Int, _ body: (Int) -> Void) {
        if taskCount <= 0 { return }
        if taskCount == 1 || workers.isEmpty || ThreadPool.insideParallelRegion || shuttingDown {
            for i in 0..<taskCount { body(i) }
            return
        }
        // The claim word holds up to 2^20 - 1 tasks per job; more run as several jobs.
        let limit = 1 << 20 - 1
        if taskCount <= limit { submit(body, taskCount: taskCount, onEachThread: false); return }
        var start = 0
        while start < taskCount {
            let n = min(limit, taskCount - start), base = start
            submit({ body(base + $0) }, taskCount: n, onEachThread: false)
            start += n
        }
    }

    /// Runs `body(t)` exactly once on each thread t of the pool (0 is the caller), all at the same time —
    /// for per-thread work such as hardware probes, where two shares must never land on one thread.
    public func runOnEachThread(_ body: (Int) -> Void) {
        if workers.isEmpty || ThreadPool.insideParallelRegion || shuttingDown {
            body(0)
            return
        }
        submit(body, taskCount: threadCount, onEachThread: true)
    }

    private func submit(_ body: (Int) -> Void, taskCount: Int, onEachThread: Bool) {
        submitLock.lock()
        defer { submitLock.unlock() }
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { address in
                job = UnsafeRawPointer(address)
                jobTaskCount = taskCount
                jobOnEachThread = onEachThread
                let next = tessera_atomic_load_u32(sequence) &+ 1
                tessera_atomic_store_i64(doneTasks, 0)
                if onEachThread { tessera_atomic_store_i64(busyWorkers, Int64(workers.count)) }
                tessera_atomic_store_i64(claimWord, ThreadPool.claim(sequence: next, count: taskCount, index: 0))
                tessera_atomic_store_u32(sequence, next)
                if tessera_atomic_load_i64(sleepers) > 0 { tessera_futex_wake(sequence, Int32.max) }
                ThreadPool.insideParallelRegion = true
                if onEachThread {
                    body(0)
                    while tessera_atomic_load_i64(busyWorkers) > 0 { tessera_cpu_relax() }
                } else {
                    runTasks(body, sequence: next)
                    // Wait only for tasks that workers have claimed and not finished; a worker that has not
                    // woken up yet holds nobody up (it will find no task left of this job).
                    while tessera_atomic_load_i64(doneTasks) < Int64(taskCount) { tessera_cpu_relax() }
                }
                ThreadPool.insideParallelRegion = false
                job = nil
            }
        }
    }

    /// Runs the published job's task `index` (only while the job is sure to be published).
    @inline(__always) private func runJob(_ index: Int) {
        job?.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
    }

    /// The claim word: which job (low 24 bits of its sequence number), its task count and the next
    /// task index, in one atomic 64-bit value, so a late worker can never take a task of a job it has
    /// not seen, nor count against the wrong job.
    @inline(__always) static func claim(sequence: UInt32, count: Int, index: Int) -> Int64 {
        Int64(sequence & 0xFF_FFFF) << 40 | Int64(count) << 20 | Int64(index)
    }

    /// Takes the next task of job `sequence`, or nil when none is left.
    @inline(__always) private func claimTask(sequence: UInt32) -> Int? {
        while true {
            let word = tessera_atomic_load_i64(claimWord)
            let count = Int(word >> 20 & 0xF_FFFF), index = Int(word & 0xF_FFFF)
            guard UInt32(word >> 40) == sequence & 0xFF_FFFF, index < count else { return nil }
            if tessera_atomic_compare_exchange_i64(claimWord, word, word + 1) != 0 { return index }
        }
    }

    /// The submitting thread's share: tasks of job `sequence` until none is left.
    private func runTasks(_ body: (Int) -> Void, sequence: UInt32) {
        while let index = claimTask(sequence: sequence) {
            body(index)
            _ = tessera_atomic_fetch_add_i64(doneTasks, 1)
        }
    }

    /// A worker's share of job `sequence`. It reads the published closure once, after claiming its first
    /// task (when `job` is sure to be this sequence's), and reports its tasks done only after dropping
    /// that copy: a copy per task retained and released the closure's context from both cores, one
    /// reference count bouncing between them at every task, and the submitter may return (and check
    /// that the closure did not escape) as soon as the last task is reported.
    private func runWorkerTasks(sequence: UInt32) {
        guard let first = claimTask(sequence: sequence) else { return }
        _ = tessera_atomic_fetch_add_i64(doneTasks, runPublishedJob(from: first, sequence: sequence))
    }

    /// Runs task `first` and every later one it claims with one copy of the published closure, released
    /// on return (not inlined, so that the copy is surely gone before the tasks are reported); returns
    /// how many it ran.
    @inline(never) private func runPublishedJob(from first: Int, sequence: UInt32) -> Int64 {
        let body = job!.assumingMemoryBound(to: ((Int) -> Void).self).pointee
        var index = first, done: Int64 = 0
        while true {
            body(index)
            done += 1
            guard let next = claimTask(sequence: sequence) else { return done }
            index = next
        }
    }

    /// Splits `0..<total` into contiguous ranges of at least `grain` items (a few per thread, for
    /// balance) and runs `body` on each in parallel.
    public func parallelRanges(_ total: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let maxTasks = max(1, total / max(1, grain))
        let tasks = min(maxTasks, threadCount == 1 ? 1 : threadCount * 4)
        if tasks == 1 { body(0..<total); return }
        parallelFor(tasks) { t in
            let lo = total * t / tasks, hi = total * (t + 1) / tasks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body` over `0..<total` in contiguous chunks claimed as threads become free, each about a
    /// quarter of what is left per thread ("guided" self-scheduling, as OpenMP's): large chunks first,
    /// then smaller ones down to `grain` items, so the threads end within about one small chunk of each
    /// other after a dozen or so claims. (Fixed chunks trade the two: with four a thread, one thread
    /// ran on average half a chunk alone at the end of every product, an eighth of its share.)
    public func parallelGuided(_ total: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let threads = threadCount, grain = max(1, grain)
        if threads == 1 || workers.isEmpty || ThreadPool.insideParallelRegion || shuttingDown || total <= grain {
            body(0..<total)
            return
        }
        withUnsafeTemporaryAllocation(of: Int64.self, capacity: 1) { cursor in
            let next = cursor.baseAddress!
            next.initialize(to: 0)
            parallelFor(threads) { _ in
                var start = Int(tessera_atomic_load_i64(next))
                while start < total {
                    let remaining = total - start
                    let count = min(remaining, max(grain, remaining / (2 * threads)))
                    if tessera_atomic_compare_exchange_i64(next, Int64(start), Int64(start + count)) != 0 {
                        body(start..<start + count)
                    }
                    start = Int(tessera_atomic_load_i64(next))
                }
            }
        }
    }

    private func workerLoop(index: Int) {
        ThreadPool.insideParallelRegion = true
        var seen: UInt32 = 0
        while true {
            var current = tessera_atomic_load_u32(sequence)
            if current == seen {
                let start = tessera_now_ns()
                var spins = 0
                while current == seen {
                    tessera_cpu_relax()
                    spins &+= 1
                    if spins & 63 == 0, tessera_now_ns() &- start > spinNanoseconds {
                        _ = tessera_atomic_fetch_add_i64(sleepers, 1)
                        if tessera_atomic_load_u32(sequence) == seen { tessera_futex_wait(sequence, seen) }
                        _ = tessera_atomic_fetch_add_i64(sleepers, -1)
                    }
                    current = tessera_atomic_load_u32(sequence)
                }
            }
            seen = current
            if shuttingDown { return }
            if jobOnEachThread {
                // Every worker must take part; the caller waits for all of them. (Re-read the sequence:
                // a worker late from a task job may be seeing the next, each-thread job.)
                seen = tessera_atomic_load_u32(sequence)
                runJob(index)
                _ = tessera_atomic_fetch_add_i64(busyWorkers, -1)
            } else {
                // `job` stays valid while a claimed task of this sequence is unreported.
                runWorkerTasks(sequence: current)
            }
        }
    }

    // MARK: - The shared pool

    private static let sharedPool = Mutex<ThreadPool?>(nil)

    /// The pool the kernels use; created on first use with one thread per available core.
    public static var shared: ThreadPool {
        sharedPool.withLock { pool in
            if let pool { return pool }
            let created = ThreadPool()
            pool = created
            return created
        }
    }

    /// Replaces the shared pool with one of `threads` threads (the `--threads` option).
    public static func setSharedThreadCount(_ threads: Int) {
        let old = sharedPool.withLock { pool -> ThreadPool? in
            let old = pool
            pool = ThreadPool(threads: threads)
            return old
        }
        old?.shutdown()
    }

    /// True on pool workers, and on the submitting thread while it runs its share of a loop.
    private static var insideParallelRegion: Bool {
        get { tessera_tls_inside_parallel() != 0 }
        set { tessera_tls_set_inside_parallel(newValue ? 1 : 0) }
    }
}
