import Foundation
import POSIX

/// What a finished process left behind.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: Data
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public struct CommandError: Error, CustomStringConvertible {
    public var command: [String]
    public var result: CommandResult
    public var description: String {
        "\(command.joined(separator: " ")) exited \(result.status): \(result.stderrText)\(result.stdoutText)"
    }
}

/// Runs programs for tests, with the environment REPLACED (as Mesos does) when given.
public enum Command {
    /// Runs `argv` with `environment` (nil: inherit), feeding `stdin`, and waits.
    ///
    /// Through POSIX `Subprocess` (posix_spawn, one poll loop over both outputs, a deadline
    /// that kills the child's process group), not Foundation's `Process`, whose `run()`
    /// intermittently crashes the test process (see `ChildProcess`). A child that
    /// daemonised, or a grandchild holding the pipes, cannot hang the run either: after
    /// `timeout` the group is killed. `status` is the exit status, the signal number of a
    /// child killed by a signal, or -1 when it was killed at the deadline.
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String]? = nil, stdin: Data = Data(),
                           timeout: TimeInterval = 60) throws -> CommandResult {
        let exe = argv[0].hasPrefix("/") ? argv[0] : (TestEnvironment.which(argv[0]) ?? argv[0])
        let out = try Subprocess.run(
            executable: exe, arguments: Array(argv.dropFirst()),
            environment: environment ?? ProcessInfo.processInfo.environment,
            stdin: Array(stdin), deadline: Deadline(secondsFromNow: timeout))
        let status: Int32
        switch out.termination {
        case _ where out.timedOut: status = -1
        case .exited(let code): status = code
        case .signaled(let signal): status = signal
        }
        return CommandResult(status: status, stdout: Data(out.stdout), stderr: Data(out.stderr))
    }

    /// Runs `argv` and throws unless it exits 0. Returns stdout as text.
    @discardableResult
    public static func check(_ argv: [String], environment: [String: String]? = nil, stdin: Data = Data()) throws -> String {
        let r = try run(argv, environment: environment, stdin: stdin)
        guard r.status == 0 else { throw CommandError(command: argv, result: r) }
        return r.stdoutText
    }
}
