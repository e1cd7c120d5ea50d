#if canImport(Glibc)
import Glibc
#endif
import POSIX

/// How much a plugin logs.
public enum CNILogLevel: Int, Sendable, Hashable, Comparable, CaseIterable {
    case debug = 0
    case info = 1
    case warning = 2
    case error = 3

    /// Reads `debug`, `info`, `warning` (or `warn`), `error`, in any case.
    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    public var label: String {
        switch self {
        case .debug: return "DEBUG"
        case .info: return "INFO"
        case .warning: return "WARNING"
        case .error: return "ERROR"
        }
    }

    public static func < (a: CNILogLevel, b: CNILogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// A plugin's log: lines to stderr (the runtime shows them when a call fails; stdout is
/// reserved for the one result object) and, when the config sets `log_file_path`, appended
/// to that file too.
///
/// A line: `2026-11-26T15:21:32Z [INFO][4242] <containerID> ADD message`.
public final class CNILogger {
    /// Lines below this level are dropped.
    public var level: CNILogLevel
    /// The prefix after the level: container id and command, once known.
    public var context: String = ""
    private let stderr: ([UInt8]) -> Void
    private var fileDescriptor: Int32 = -1

    /// A logger writing to `stderr` (a sink: the real fd 2, or a buffer in tests).
    public init(level: CNILogLevel = .info, stderr: @escaping ([UInt8]) -> Void) {
        self.level = level
        self.stderr = stderr
    }

    deinit {
        if fileDescriptor >= 0 { close(fileDescriptor) }
    }

    /// Also append to `path` (created with its directories). A file that cannot be opened
    /// is reported on stderr and otherwise ignored: logging must not fail a plugin call.
    public func addFile(_ path: String) {
        if fileDescriptor >= 0 { close(fileDescriptor); fileDescriptor = -1 }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try? Files.makeDirectories(String(path[..<slash]))
        }
        // O_APPEND: concurrent plugin processes each write whole lines.
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 {
            let e = Errno.current("open \(path)")
            log(.warning, "cannot open log file: \(e)")
            return
        }
        fileDescriptor = fd
    }

    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    /// Writes one line at `level`, if the logger's level lets it through.
    public func log(_ level: CNILogLevel, _ message: @autoclosure () -> String) {
        guard level >= self.level else { return }
        var line = "\(rfc3339Now()) [\(level.label)][\(getpid())] "
        if !context.isEmpty { line += context + " " }
        line += message()
        if !line.hasSuffix("\n") { line += "\n" }
        writeRaw(Array(line.utf8))
    }

    /// Writes bytes to stderr and the log file, unformatted and unfiltered.
    func writeRaw(_ bytes: [UInt8]) {
        stderr(bytes)
        if fileDescriptor >= 0 { FileDescriptorSink.writeAll(fileDescriptor, bytes) }
    }
}

/// Writes to a raw file descriptor, retrying short writes and EINTR, ignoring failures
/// (a closed stderr must not take the plugin down).
enum FileDescriptorSink {
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            return
        }
    }
}
