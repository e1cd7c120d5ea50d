#if canImport(Glibc)
import Glibc
#endif
import POSIX

/// felix's log: timestamped lines on stderr (systemd's journal picks them up).
public struct FelixLog: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        /// felix's `logSeverityScreen` names (`Debug`, `Info`, `Warning`, `Error`).
        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warning", "warn": self = .warning
            case "error", "fatal", "panic": self = .error
            default: return nil
            }
        }
    }

    public var level: Level
    private let sink: @Sendable (String) -> Void

    /// Logs to stderr at `level` and above.
    public init(level: Level = .info) {
        self.level = level
        sink = { line in
            var bytes = Array(line.utf8)
            bytes.append(0x0A)
            _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
    }

    /// Logs through `sink` (tests, benchmarks).
    public init(level: Level = .info, sink: @escaping @Sendable (String) -> Void) {
        self.level = level
        self.sink = sink
    }

    public func log(_ l: Level, _ message: @autoclosure () -> String) {
        guard l >= level else { return }
        let tag: String
        switch l {
        case .debug: tag = "DEBUG"
        case .info: tag = "INFO"
        case .warning: tag = "WARNING"
        case .error: tag = "ERROR"
        }
        sink("\(rfc3339Now()) [\(tag)] calico-felix: \(message())")
    }

    public func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }
    public func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public func warning(_ m: @autoclosure () -> String) { log(.warning, m()) }
    public func error(_ m: @autoclosure () -> String) { log(.error, m()) }
}
