#if canImport(Glibc)
import Glibc
#endif

/// Work started on its own thread at once, whose result the starter collects later with
/// `wait()`: how the plugin overlaps two independent waits (the kernel building a veth,
/// the datastore answering) inside one short-lived process.
///
/// A plain POSIX thread, not a Swift task: the plugin's libraries are synchronous and the
/// process is too short-lived to start a concurrency runtime. When the thread cannot be
/// created the work runs on the caller's thread inside `init`, so the outcome is the same,
/// only not overlapped.
///
/// Call `wait()` from the thread that created the value, before the process ends; it
/// returns the body's outcome, whose writes `pthread_join` orders before the caller's
/// reads (later calls return the same outcome).
public final class ConcurrentWork<Success, Failure: Error>: ThreadEntry, @unchecked Sendable {
    private let body: () throws(Failure) -> Success
    private var outcome: Result<Success, Failure>?
    private var thread: pthread_t?

    /// Starts `body` on a new thread.
    public init(_ body: @escaping @Sendable () throws(Failure) -> Success) {
        self.body = body
        super.init()
        start()
    }

    private func start() {
        let context = Unmanaged<ThreadEntry>.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadEntry>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, context)
        if created == 0 {
            self.thread = thread
        } else {
            Unmanaged<ThreadEntry>.fromOpaque(context).release()
            run()
        }
    }

    public override func run() {
        do throws(Failure) { outcome = .success(try body()) } catch { outcome = .failure(error) }
    }

    /// Blocks until the body has finished and returns what it returned or threw.
    public func wait() throws(Failure) -> Success {
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
        return try outcome!.get()
    }
}

/// What a thread's entry point (a C function, which cannot name a generic type) runs: a
/// class method, so starting the thread costs no dynamic cast (a first `as!` to a protocol
/// scans every conformance record of the binary, ~1.5 ms in the plugin).
open class ThreadEntry {
    public init() {}
    /// The thread's work.
    open func run() {}
}
