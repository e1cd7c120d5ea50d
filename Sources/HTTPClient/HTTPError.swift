/// Why an exchange failed, sorted by what the caller most needs to know: whether the
/// server may have acted on the request.
///
/// - Never delivered (safe to treat as "did not happen"): `unreachable`,
///   `connectTimeout`, `certificateRejected`, `configuration`, `closed`.
/// - Delivered, answer missing (the server may have acted on it): `answerLost`,
///   `answerTimeout`, `malformedResponse`. See `requestMayHaveBeenProcessed`.
public enum HTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No endpoint accepted a connection (refused, unreachable, reset, TLS handshake
    /// failed); the request was not sent. The text lists each endpoint's failure.
    case unreachable(String)
    /// The deadline passed before the request was completely written; it was not
    /// delivered.
    case connectTimeout(String)
    /// Every endpoint's TLS certificate failed verification, or the server refused our
    /// client certificate: a configuration problem, retrying will not help. Not sent.
    case certificateRejected(String)
    /// Bad endpoints or unreadable TLS files. Nothing was sent.
    case configuration(String)
    /// `close()` was called on the client.
    case closed
    /// The request was sent but the connection ended before a complete answer.
    case answerLost(String)
    /// The request was sent but the deadline passed before a complete answer.
    case answerTimeout(String)
    /// The server answered something that is not HTTP/1.1 as we know it.
    case malformedResponse(String)

    /// Whether the server may have received and acted on the request (its outcome is
    /// unknown). False means the request certainly was not delivered.
    public var requestMayHaveBeenProcessed: Bool {
        switch self {
        case .answerLost, .answerTimeout, .malformedResponse: return true
        case .unreachable, .connectTimeout, .certificateRejected, .configuration, .closed: return false
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let m): return "no endpoint reachable: \(m)"
        case .connectTimeout(let m): return "timed out before the request was sent: \(m)"
        case .certificateRejected(let m): return "TLS certificate rejected: \(m)"
        case .configuration(let m): return m
        case .closed: return "the client was closed"
        case .answerLost(let m): return "connection lost before the answer: \(m)"
        case .answerTimeout(let m): return "timed out waiting for the answer: \(m)"
        case .malformedResponse(let m): return "invalid HTTP response: \(m)"
        }
    }
}

/// What went wrong on one connection (internal; `HTTPClient` turns it into `HTTPError`).
enum TransportError: Error, CustomStringConvertible {
    /// The deadline passed.
    case timedOut
    /// The peer closed the connection.
    case closed
    /// A system call failed.
    case system(String)
    /// TLS failed; `certificate` when verification (ours or the server's of ours) failed.
    case tls(String, certificate: Bool)
    /// The bytes received are not a valid HTTP response.
    case malformed(String)

    var description: String {
        switch self {
        case .timedOut: return "timed out"
        case .closed: return "connection closed by the server"
        case .system(let m): return m
        case .tls(let m, _): return "TLS: \(m)"
        case .malformed(let m): return m
        }
    }
}
