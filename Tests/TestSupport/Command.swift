import Foundation

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
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String]? = nil, stdin: Data = Data(),
                           timeout: TimeInterval = 60) throws -> CommandResult {
        let p = Process()
        let exe = argv[0].hasPrefix("/") ? argv[0] : (TestEnvironment.which(argv[0]) ?? argv[0])
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = Array(argv.dropFirst())
        if let environment { p.environment = environment }
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = errPipe
        try p.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data(), err = Data()
        group.enter()
        DispatchQueue.global().async { out = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { err = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if !stdin.isEmpty { inPipe.fileHandleForWriting.write(stdin) }
        try? inPipe.fileHandleForWriting.close()
        if group.wait(timeout: .now() + timeout) == .timedOut {
            p.terminate()
            _ = group.wait(timeout: .now() + 5)
        }
        // Bounded wait for the exit: a child that daemonised (or a grandchild holding the
        // pipes) must not hang the test run; after the bound it is killed.
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            let grace = Date().addingTimeInterval(5)
            while p.isRunning && Date() < grace { usleep(2_000) }
        }
        let status: Int32 = p.isRunning ? -1 : p.terminationStatus
        return CommandResult(status: status, stdout: out, stderr: err)
    }

    /// Runs `argv` and throws unless it exits 0. Returns stdout as text.
    @discardableResult
    public static func check(_ argv: [String], environment: [String: String]? = nil, stdin: Data = Data()) throws -> String {
        let r = try run(argv, environment: environment, stdin: stdin)
        guard r.status == 0 else { throw CommandError(command: argv, result: r) }
        return r.stdoutText
    }
}
