import Foundation
import POSIX

/// The part of Foundation's `Process` the tests use, started with `posix_spawn` (through
/// `POSIX.Subprocess.spawn`) instead.
///
/// Why: swift-corelibs-foundation's `Process.run()` (Swift 6.3.1) intermittently crashes
/// the whole test process with a bad pointer dereference in `memcpy`: it copies a whole
/// 256-byte `d_name` out of each `/proc/self/fd` entry, which over-reads when the entry
/// ends a page (swiftlang/swift-corelibs-foundation#5472, fixed upstream after 6.3.1).
/// A test run spawns thousands of processes, so it hit about one run in three here.
///
/// Semantics kept from `Process`: stdio from a `Pipe`, a `FileHandle` or nothing
/// (inherited); the parent's copies of the child's pipe ends closed after the start;
/// `environment` nil inherits; `terminationStatus` is the exit status, or the signal number
/// for a child killed by a signal. Unlike `Process`, the child starts in its own process
/// group with default signal dispositions.
public final class ChildProcess: @unchecked Sendable {
    public var executableURL: URL?
    public var arguments: [String] = []
    public var environment: [String: String]?
    /// A `Pipe`, a `FileHandle`, or nil (the test process's own).
    public var standardInput: Any?
    public var standardOutput: Any?
    public var standardError: Any?

    private let lock = NSLock()
    private var pid: pid_t = 0
    private var waitStatus: Int32?

    public init() {}

    public var processIdentifier: Int32 { lock.withLock { pid } }

    public func run() throws {
        guard let executableURL else { throw CocoaError(.fileNoSuchFile) }
        func descriptor(_ io: Any?, reading: Bool, default fd: Int32) -> Int32 {
            switch io {
            case let pipe as Pipe:
                return reading ? pipe.fileHandleForReading.fileDescriptor : pipe.fileHandleForWriting.fileDescriptor
            case let handle as FileHandle:
                return handle.fileDescriptor
            default:
                return fd
            }
        }
        let stdin = descriptor(standardInput, reading: true, default: 0)
        let stdout = descriptor(standardOutput, reading: false, default: 1)
        let stderr = descriptor(standardError, reading: false, default: 2)
        let spawned = try Subprocess.spawn(
            executable: executableURL.path, arguments: arguments,
            environment: environment ?? ProcessInfo.processInfo.environment,
            stdin: stdin, stdout: stdout, stderr: stderr)
        lock.withLock { pid = spawned }
        // The child has its own copies; ours would keep its output pipes from ever ending.
        if let pipe = standardInput as? Pipe { try? pipe.fileHandleForReading.close() }
        if let pipe = standardOutput as? Pipe { try? pipe.fileHandleForWriting.close() }
        if let pipe = standardError as? Pipe, (standardOutput as? Pipe) !== pipe { try? pipe.fileHandleForWriting.close() }
    }

    /// Reaps the child if it has exited (without waiting, unless `blocking`).
    private func reap(blocking: Bool) {
        lock.lock()
        defer { lock.unlock() }
        guard pid > 0, waitStatus == nil else { return }
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if r == pid { waitStatus = status; return }
            if r == -1 && errno == EINTR { continue }
            if r == -1 { waitStatus = 0 }  // not our child any more: count it as gone
            return
        }
    }

    public var isRunning: Bool {
        reap(blocking: false)
        return lock.withLock { pid > 0 && waitStatus == nil }
    }

    public func waitUntilExit() {
        while isRunning { usleep(1_000) }
    }

    /// The exit status, or the number of the signal that killed the child.
    public var terminationStatus: Int32 {
        reap(blocking: false)
        let status = lock.withLock { waitStatus } ?? 0
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : signal
    }

    /// SIGTERM.
    public func terminate() {
        let p = processIdentifier
        if p > 0 && isRunning { kill(p, SIGTERM) }
    }
}
