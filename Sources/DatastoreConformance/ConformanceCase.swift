#if canImport(Glibc)
import Glibc
#endif
import Datastore

/// One named check of the `Datastore` contract, run against a backend.
///
/// A backend's test file runs every case on a fresh store:
/// ```swift
/// @Test(arguments: DatastoreConformance.cases)
/// func sqlite(_ c: ConformanceCase) throws { try c.run(makeStore()) }
/// ```
/// Each case writes only under its own random key prefix, so leftovers from earlier cases
/// do not matter; but cases assert exact revision steps, so nobody else may write to the
/// store while a case runs (a fresh store per case, or cases run one at a time).
public struct ConformanceCase: Sendable, CustomStringConvertible {
    /// What the case checks, in a few words ("create if absent").
    public let name: String
    /// Runs the check; throws `ConformanceFailure` (or the store's `DatastoreError`).
    public let run: @Sendable (any Datastore) throws -> Void

    public init(_ name: String, run: @escaping @Sendable (any Datastore) throws -> Void) {
        self.name = name
        self.run = run
    }

    public var description: String { name }
}

/// A broken expectation of a conformance case.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

// MARK: - Checking helpers

/// Throws `ConformanceFailure(message)` unless `condition`.
func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(ConformanceFailure) {
    if !condition { throw ConformanceFailure(message()) }
}

/// Throws unless `actual == expected`, naming `what` and both values.
func checkEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: String) throws(ConformanceFailure) {
    if actual != expected { throw ConformanceFailure("\(what): expected \(expected), got \(actual)") }
}

/// Unwraps `value` or throws naming `what`.
func required<T>(_ value: T?, _ what: String) throws(ConformanceFailure) -> T {
    guard let value else { throw ConformanceFailure("\(what): got nil") }
    return value
}

/// Byte-wise string equality (Swift's `==` treats canonically equivalent text as equal).
func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

/// A fresh key prefix for one case run: `/conformance/<random>/`.
func uniquePrefix() -> String {
    "/conformance/" + String(UInt64.random(in: 0...UInt64.max), radix: 36) + "/"
}

/// Seconds on the monotonic clock.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sleeps the calling thread.
func sleep(seconds: Double) {
    var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    nanosleep(&ts, nil)
}

/// Collects watch events until `count` arrived or `seconds` passed.
func collect(_ watch: any Watch, count: Int, within seconds: Double) throws -> [WatchEvent] {
    var events: [WatchEvent] = []
    let end = now() + seconds
    while events.count < count {
        let left = end - now()
        if left <= 0 { break }
        events += try watch.next(timeout: left)
    }
    return events
}

/// Runs `body(i)` for `i` in `0..<count` on separate threads and waits for all; returns
/// the error each thread threw (nil where it succeeded).
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [(any Error)?] {
    final class Job {
        let index: Int
        let body: @Sendable (Int) throws -> Void
        var error: (any Error)?
        init(index: Int, body: @escaping @Sendable (Int) throws -> Void) { self.index = index; self.body = body }
    }
    let jobs = (0..<count).map { Job(index: $0, body: body) }
    var threads: [pthread_t] = []
    for job in jobs {
        var t = pthread_t()
        let arg = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&t, nil, { raw in
            let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
            do { try job.body(job.index) } catch { job.error = error }
            return nil
        }, arg)
        if rc != 0 {
            Unmanaged<Job>.fromOpaque(arg).release()
            job.error = ConformanceFailure("pthread_create failed: \(rc)")
            continue
        }
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
    // pthread_join orders the threads' writes before these reads.
    return jobs.map(\.error)
}
