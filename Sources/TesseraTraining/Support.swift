import TesseraCore

enum ThreadPoolAccess {
    static func parallelRanges(_ count: Int, _ body: (Range<Int>) -> Void) {
        ThreadPool.shared.parallelRanges(count, grain: 32_768, body)
    }
}
