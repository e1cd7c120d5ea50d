import Foundation
import POSIX

/// What one plugin execution produced.
public struct PluginRun: Sendable {
    public var exitCode: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// Wall time of the execution, seconds.
    public var duration: Double
    public var timedOut: Bool

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs a plugin binary the way a runtime does: exactly the given environment (replaced,
/// not extended), the given stdin bytes, stdout and stderr collected, optionally inside a
/// network namespace standing in for the host's (so host-side links never touch the
/// machine's own namespace).
public struct PluginRunner: Sendable {
    /// Seconds before a plugin is killed; Mesos would wait forever, a test should not.
    public var timeout: Double
    /// The `nsenter` used to run a plugin inside a namespace.
    public var nsenter: String

    public init(timeout: Double = 60, nsenter: String = "/usr/bin/nsenter") {
        self.timeout = timeout
        self.nsenter = nsenter
    }

    /// Runs `executable` with `environment` and `stdin`. With `namespace`, the plugin runs in
    /// that network namespace (`nsenter --net=PATH`, which passes the environment through
    /// unchanged).
    public func run(executable: String, arguments: [String] = [], environment: [String: String], stdin: [UInt8],
                    namespace: TestNamespace? = nil) throws -> PluginRun {
        var path = executable
        var args = arguments
        if let namespace {
            path = nsenter
            args = ["--net=\(namespace.path)", "--", executable] + arguments
        }
        let start = MonotonicClock.now()
        let out = try Subprocess.run(executable: path, arguments: args, environment: environment, stdin: stdin,
                                     deadline: Deadline(secondsFromNow: timeout))
        let code: Int32
        switch out.termination {
        case .exited(let c): code = c
        case .signaled(let s): code = 128 + s
        }
        return PluginRun(exitCode: code, stdout: out.stdout, stderr: out.stderr, duration: MonotonicClock.now() - start, timedOut: out.timedOut)
    }
}
