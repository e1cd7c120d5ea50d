import POSIX

/// A complete HTTP response.
public struct HTTPResponse: Sendable, Hashable {
    /// The status code (200, 404, ...).
    public var status: Int
    /// Header fields by lower-cased name; repeated fields joined with ", ".
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// How the body of a response is delimited (RFC 9112 §6.3).
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
    /// Until the server closes the connection.
    case untilClose
}

/// The status line and header fields of a response.
struct ResponseHead {
    var status: Int
    var headers: [String: String]
    var keepAlive: Bool
    var framing: BodyFraming

    /// Reads the head from `conn` (skipping interim 1xx responses).
    static func read(from conn: Connection, deadline: Deadline) throws(TransportError) -> ResponseHead {
        while true {
            let head = try readOne(from: conn, deadline: deadline)
            if head.status >= 200 { return head }
        }
    }

    private static func readOne(from conn: Connection, deadline: Deadline) throws(TransportError) -> ResponseHead {
        // Bytes after `start` already searched; an offset, since `fill` may move the buffer.
        var searched = 0
        while true {
            let b = conn.buffer
            var i = conn.start + searched
            while i + 3 < b.count {
                if b[i] == 13, b[i + 1] == 10, b[i + 2] == 13, b[i + 3] == 10 {
                    let head = try parse(b[conn.start..<i])
                    conn.start = i + 4
                    return head
                }
                i += 1
            }
            searched = max(0, conn.available - 3)
            if conn.available > 65536 { throw .malformed("response head longer than 64 KiB") }
            try conn.fill(deadline: deadline)
        }
    }

    static func parse(_ bytes: ArraySlice<UInt8>) throws(TransportError) -> ResponseHead {
        let lines = bytes.split(separator: 10, omittingEmptySubsequences: false).map { line -> Substring in
            var l = line
            if l.last == 13 { l = l.dropLast() }
            return Substring(decoding: l, as: UTF8.self)
        }
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1.") else {
            throw .malformed("not an HTTP/1.x status line")
        }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]), (100...999).contains(status) else {
            throw .malformed("bad status line: \(statusLine)")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("bad header line: \(line)") }
            let name = line[..<colon].lowercased()
            let value = String(String(line[line.index(after: colon)...]).trimmingSpaces)
            if let old = headers[name] { headers[name] = old + ", " + value } else { headers[name] = value }
        }
        // `Connection` is a comma-separated list of tokens (RFC 9110 §7.6.1).
        let connectionHeader: String = headers["connection"]?.lowercased() ?? ""
        let connection = Set(connectionHeader.split(separator: ",").map { String(String($0).trimmingSpaces) })
        var keepAlive = statusLine.hasPrefix("HTTP/1.1") ? !connection.contains("close") : connection.contains("keep-alive")
        let framing: BodyFraming
        if status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if let te = headers["transfer-encoding"]?.lowercased() {
            guard te.hasSuffix("chunked") else { throw .malformed("unsupported transfer encoding \(te)") }
            framing = .chunked
        } else if let cl = headers["content-length"] {
            guard let n = Int(cl), n >= 0 else { throw .malformed("bad Content-Length \(cl)") }
            framing = .length(n)
        } else {
            framing = .untilClose
            keepAlive = false
        }
        return ResponseHead(status: status, headers: headers, keepAlive: keepAlive, framing: framing)
    }

    /// Reads the whole body by `deadline`.
    func readBody(from conn: Connection, deadline: Deadline) throws(TransportError) -> [UInt8] {
        switch framing {
        case .none:
            return []
        case .length(let n):
            while conn.available < n { try conn.fill(deadline: deadline) }
            return conn.take(n)
        case .chunked:
            var decoder = ChunkedDecoder()
            var out: [UInt8] = []
            while true {
                try decoder.decode(conn.buffer, start: &conn.start, into: &out)
                if decoder.isDone { return out }
                try conn.fill(deadline: deadline)
            }
        case .untilClose:
            while true {
                do { try conn.fill(deadline: deadline) } catch .closed { break }
            }
            return conn.take(conn.available)
        }
    }
}

/// Decodes a `Transfer-Encoding: chunked` body incrementally, as bytes arrive.
struct ChunkedDecoder {
    private enum State: Equatable {
        case size
        case data(Int)
        case dataEnd
        case trailer
        case done
    }

    private var state = State.size

    var isDone: Bool { state == .done }

    /// Consumes what it can of `buffer[start...]`, appending body bytes to `out` and
    /// advancing `start`; stops where more input is needed or at the end of the body.
    mutating func decode(_ buffer: [UInt8], start: inout Int, into out: inout [UInt8]) throws(TransportError) {
        while true {
            switch state {
            case .done:
                return
            case .size:
                guard let eol = lineEnd(buffer, from: start) else {
                    if buffer.count - start > 1024 { throw .malformed("chunk size line too long") }
                    return
                }
                var size = 0
                var digits = 0
                for c in buffer[start..<eol] {
                    let d: Int
                    switch c {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): d = Int(c - UInt8(ascii: "0"))
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): d = Int(c - UInt8(ascii: "a")) + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): d = Int(c - UInt8(ascii: "A")) + 10
                    case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"): d = -1
                    default: throw .malformed("bad chunk size")
                    }
                    if d < 0 { break }
                    digits += 1
                    guard digits <= 15 else { throw .malformed("chunk too large") }
                    size = size * 16 + d
                }
                guard digits > 0 else { throw .malformed("missing chunk size") }
                start = eol + 2
                state = size == 0 ? .trailer : .data(size)
            case .data(let left):
                let n = min(left, buffer.count - start)
                if n == 0 { return }
                out.append(contentsOf: buffer[start..<start + n])
                start += n
                state = left == n ? .dataEnd : .data(left - n)
            case .dataEnd:
                guard buffer.count - start >= 2 else { return }
                guard buffer[start] == 13, buffer[start + 1] == 10 else { throw .malformed("chunk not followed by CRLF") }
                start += 2
                state = .size
            case .trailer:
                guard let eol = lineEnd(buffer, from: start) else { return }
                let empty = eol == start
                start = eol + 2
                if empty { state = .done }
            }
        }
    }

    private func lineEnd(_ b: [UInt8], from: Int) -> Int? {
        var i = from
        while i + 1 < b.count {
            if b[i] == 13, b[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }
}
