import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import POSIX

/// A small HTTP/1.1 client for JSON APIs such as etcd's gateway: POST requests over
/// persistent connections to one of several equivalent endpoints.
///
/// - Endpoints are tried in order; a connection error moves on to the next, and later
///   connections start at the endpoint that last worked (failover).
/// - Idle connections are kept (up to `maxIdleConnections`) and reused by later requests
///   of the process; a connection the server closed while idle is detected before reuse.
/// - Every call is bounded by its `deadline`: connecting, TLS, writing and reading.
/// - `https` endpoints use OpenSSL with the given CA and client certificate; with a client
///   certificate, sessions are saved beside its key so later processes resume them.
///
/// Errors say whether the request may have reached the server
/// (`HTTPError.requestMayHaveBeenProcessed`): requests marked idempotent are retried on a
/// fresh connection when the answer is lost, others are not.
///
/// Thread-safe: concurrent requests use separate connections.
public final class HTTPClient: Sendable {
    public let endpoints: [HTTPEndpoint]
    /// How many idle connections are kept for reuse.
    public static let maxIdleConnections = 4

    private let tls: TLSContext?
    private let pool = Mutex(Pool())

    private struct Pool {
        var idle: [Connection] = []
        /// The endpoint new connections try first: the last one that accepted.
        var preferred = 0
        var closed = false
    }

    /// A client for `endpoints` (`http://host:port` or `https://host:port`).
    /// Throws `.configuration` for an empty list, an unparsable endpoint or unreadable
    /// TLS files (loaded only when an endpoint is https).
    public init(endpoints: [String], tls files: TLSFiles = TLSFiles()) throws(HTTPError) {
        var parsed: [HTTPEndpoint] = []
        for text in endpoints {
            guard let e = HTTPEndpoint(parsing: text) else { throw .configuration("invalid endpoint \"\(text)\"") }
            parsed.append(e)
        }
        guard !parsed.isEmpty else { throw .configuration("no endpoints") }
        self.endpoints = parsed
        self.tls = parsed.contains(where: \.isSecure) ? try TLSContext(files: files, endpoints: parsed) : nil
    }

    /// POSTs `body` to `path` and returns the complete response (any status).
    ///
    /// `idempotent` requests (reads) are re-sent on a fresh connection, possibly to
    /// another endpoint, when the answer is lost; others fail with `.answerLost`.
    public func post(_ path: String, body: [UInt8], contentType: String = "application/json",
                     deadline: Deadline, idempotent: Bool) throws(HTTPError) -> HTTPResponse {
        var attempts = 0
        while true {
            attempts += 1
            let mayRetry = attempts <= endpoints.count + 1
            let conn = try acquire(deadline)
            let reused = conn.requestsServed > 0
            do {
                try conn.writeAll(request(path, body: body, contentType: contentType, host: conn.endpoint), deadline: deadline)
            } catch {
                // A failed or unfinished write never delivers a whole request: safe to resend.
                conn.close()
                if case .timedOut = error { throw .connectTimeout("\(conn.endpoint): writing the request") }
                if mayRetry && !deadline.hasPassed { continue }
                throw .unreachable("\(conn.endpoint): \(error)")
            }
            do {
                let head = try ResponseHead.read(from: conn, deadline: deadline)
                let payload = try head.readBody(from: conn, deadline: deadline)
                conn.requestsServed += 1
                if head.keepAlive { release(conn) } else { conn.close() }
                return HTTPResponse(status: head.status, headers: head.headers, body: payload)
            } catch {
                conn.close()
                switch error {
                case .timedOut:
                    throw .answerTimeout("\(conn.endpoint): no answer within the deadline")
                case .malformed(let m):
                    throw .malformedResponse("\(conn.endpoint): \(m)")
                case .tls(let m, certificate: true) where !reused:
                    // The server refused our certificate at the end of the handshake: it
                    // never read the request.
                    throw .certificateRejected("\(conn.endpoint): \(m)")
                case .closed, .system, .tls:
                    if idempotent && mayRetry && !deadline.hasPassed { continue }
                    throw .answerLost("\(conn.endpoint): \(error)")
                }
            }
        }
    }

    /// POSTs `body` to `path` and returns once the response head arrived, for a response
    /// that streams (etcd's watch). The stream owns its connection.
    public func openStream(_ path: String, body: [UInt8], contentType: String = "application/json",
                           deadline: Deadline) throws(HTTPError) -> HTTPStream {
        let conn = try acquire(deadline)
        do {
            try conn.writeAll(request(path, body: body, contentType: contentType, host: conn.endpoint), deadline: deadline)
        } catch {
            conn.close()
            if case .timedOut = error { throw .connectTimeout("\(conn.endpoint): writing the request") }
            throw .unreachable("\(conn.endpoint): \(error)")
        }
        do {
            let head = try ResponseHead.read(from: conn, deadline: deadline)
            return HTTPStream(connection: conn, head: head)
        } catch {
            conn.close()
            switch error {
            case .timedOut: throw .answerTimeout("\(conn.endpoint): no answer within the deadline")
            case .malformed(let m): throw .malformedResponse("\(conn.endpoint): \(m)")
            default: throw .answerLost("\(conn.endpoint): \(error)")
            }
        }
    }

    /// Closes idle connections; later requests fail with `.closed`. Requests in flight
    /// finish and close their connections.
    public func close() {
        let idle = pool.withLock { p -> [Connection] in
            p.closed = true
            defer { p.idle = [] }
            return p.idle
        }
        for c in idle { c.close() }
    }

    // MARK: - Connections

    private func acquire(_ deadline: Deadline) throws(HTTPError) -> Connection {
        while true {
            let (conn, closed) = pool.withLock { p in (p.idle.popLast(), p.closed) }
            if closed { throw .closed }
            guard let conn else { break }
            if conn.isIdleAndOpen() { return conn }
            conn.close()
        }
        return try connect(deadline)
    }

    private func release(_ conn: Connection) {
        let keep = pool.withLock { p -> Bool in
            guard !p.closed, p.idle.count < HTTPClient.maxIdleConnections else { return false }
            p.idle.append(conn)
            return true
        }
        if !keep { conn.close() }
    }

    /// Connects to the first endpoint that accepts, starting at the preferred one. Each
    /// endpoint gets an equal share of the time left, so one that drops packets cannot
    /// use up the whole deadline.
    private func connect(_ deadline: Deadline) throws(HTTPError) -> Connection {
        let n = endpoints.count
        let first = pool.withLock { $0.preferred }
        var failures: [String] = []
        var certificateFailures = 0
        for k in 0..<n {
            let i = (first + k) % n
            let left = deadline.remaining
            if left <= 0 { break }
            let budget = Deadline(secondsFromNow: left / Double(n - k))
            do {
                let conn = try Connection.open(endpoint: endpoints[i], index: i, tls: tls, deadline: budget)
                if i != first { pool.withLock { $0.preferred = i } }
                return conn
            } catch {
                if case .tls(_, certificate: true) = error { certificateFailures += 1 }
                failures.append("\(endpoints[i]): \(error)")
            }
        }
        let text = failures.joined(separator: "; ")
        if !failures.isEmpty && certificateFailures == failures.count { throw .certificateRejected(text) }
        if deadline.hasPassed { throw .connectTimeout(text.isEmpty ? "the deadline passed" : text) }
        throw .unreachable(text)
    }

    private func request(_ path: String, body: [UInt8], contentType: String, host: HTTPEndpoint) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + body.count)
        out.append(contentsOf: "POST \(path) HTTP/1.1\r\nHost: \(host.authority)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }
}

/// A response whose body is read as it arrives (a long-lived stream such as a watch).
/// Not thread-safe: one reader.
public final class HTTPStream {
    /// The status code.
    public let status: Int
    /// Header fields by lower-cased name.
    public let headers: [String: String]
    private var connection: Connection?
    private let framing: BodyFraming
    private var remaining = 0
    private var decoder = ChunkedDecoder()

    init(connection: Connection, head: ResponseHead) {
        self.connection = connection
        self.status = head.status
        self.headers = head.headers
        self.framing = head.framing
        if case .length(let n) = head.framing { remaining = n }
    }

    deinit { connection?.close() }

    /// Body bytes that arrived by `deadline`: a non-empty array, an empty one when the time
    /// ran out first, or nil at the end of the body. Throws `.answerLost` when the
    /// connection broke mid-body.
    public func read(until deadline: Deadline) throws(HTTPError) -> [UInt8]? {
        guard let conn = connection else { return nil }
        while true {
            var out: [UInt8] = []
            var ended = false
            do {
                switch framing {
                case .none:
                    ended = true
                case .length:
                    let n = min(remaining, conn.available)
                    out = conn.take(n)
                    remaining -= n
                    ended = remaining == 0
                case .chunked:
                    try decoder.decode(conn.buffer, start: &conn.start, into: &out)
                    ended = decoder.isDone
                case .untilClose:
                    out = conn.take(conn.available)
                }
            } catch {
                close()
                throw .malformedResponse("\(conn.endpoint): \(error)")
            }
            if ended { close() }
            if !out.isEmpty { return out }
            if ended { return nil }
            do {
                try conn.fill(deadline: deadline)
            } catch .timedOut {
                return []
            } catch .closed where framing == .untilClose {
                close()
                return nil
            } catch {
                close()
                throw .answerLost("\(conn.endpoint): \(error)")
            }
        }
    }

    /// The rest of the body (for an error answer), read by `deadline`.
    public func readToEnd(until deadline: Deadline) throws(HTTPError) -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try read(until: deadline) {
            if chunk.isEmpty { throw .answerTimeout("the body did not end within the deadline") }
            all += chunk
        }
        return all
    }

    /// Closes the connection (the server sees the stream cancelled).
    public func close() {
        connection?.close()
        connection = nil
    }
}

