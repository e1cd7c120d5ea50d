#if canImport(Glibc)
import Glibc
#endif
import POSIX

/// Waits until `fd` is ready for `events` (POLLIN/POLLOUT) or `deadline` passes.
/// Returns false when the time ran out. Errors and hang-ups count as ready: the next
/// read or write reports them.
func wait(fd: Int32, events: Int16, deadline: Deadline) throws(TransportError) -> Bool {
    var pfd = pollfd(fd: fd, events: events, revents: 0)
    while true {
        let ms = Int32(min((deadline.remaining * 1000).rounded(.up), 1_000_000_000))
        let r = poll(&pfd, 1, ms)
        if r > 0 { return true }
        if r == 0 {
            if deadline.hasPassed { return false }
            continue
        }
        if errno == EINTR { continue }
        throw .system("poll: " + String(cString: strerror(errno)))
    }
}

/// One TCP connection (optionally TLS) to an endpoint, with its read buffer.
///
/// Not thread-safe: `HTTPClient`'s pool hands a connection to one request at a time,
/// which is why the unchecked `Sendable` is sound.
final class Connection: @unchecked Sendable {
    let endpoint: HTTPEndpoint
    let endpointIndex: Int
    private var fd: Int32
    private var tls: TLSSession?
    /// Received bytes; `start` is the first not yet consumed.
    var buffer: [UInt8] = []
    var start = 0
    /// Requests answered on this connection (0: fresh).
    var requestsServed = 0
    private var scratch = [UInt8](repeating: 0, count: 16384)

    private init(endpoint: HTTPEndpoint, index: Int, fd: Int32) {
        self.endpoint = endpoint
        self.endpointIndex = index
        self.fd = fd
    }

    deinit { close() }

    /// Connects to `endpoint` (and runs the TLS handshake for https) within `deadline`.
    /// The socket is non-blocking with TCP_NODELAY: every request is one small write
    /// followed by a wait for the answer, the case Nagle's algorithm delays.
    static func open(endpoint: HTTPEndpoint, index: Int, tls: TLSContext?, deadline: Deadline) throws(TransportError) -> Connection {
        let fd = try connectTCP(host: endpoint.host, port: endpoint.port, deadline: deadline)
        let c = Connection(endpoint: endpoint, index: index, fd: fd)
        if endpoint.isSecure {
            guard let tls else { throw .tls("no TLS context for \(endpoint)", certificate: false) }
            c.tls = try TLSSession.handshake(context: tls, fd: fd, endpoint: endpoint, deadline: deadline)
        }
        return c
    }

    /// Unconsumed bytes in the buffer.
    var available: Int { buffer.count - start }

    /// Takes `count` buffered bytes.
    func take(_ count: Int) -> [UInt8] {
        let out = Array(buffer[start..<start + count])
        start += count
        return out
    }

    /// Writes all of `bytes` by `deadline`.
    func writeAll(_ bytes: [UInt8], deadline: Deadline) throws(TransportError) {
        var offset = 0
        while offset < bytes.count {
            let r: Result<Int, TransportError> = bytes.withUnsafeBytes { p in
                Result { () throws(TransportError) -> Int in
                    try self.writeSome(p.baseAddress! + offset, count: p.count - offset, deadline: deadline)
                }
            }
            offset += try r.get()
        }
    }

    private func writeSome(_ p: UnsafeRawPointer, count: Int, deadline: Deadline) throws(TransportError) -> Int {
        guard fd >= 0 else { throw .closed }
        if let tls { return try tls.write(p, count: count, deadline: deadline) }
        while true {
            let n = send(fd, p, count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                guard try wait(fd: fd, events: Int16(POLLOUT), deadline: deadline) else { throw .timedOut }
                continue
            }
            throw .system("send: " + String(cString: strerror(e)))
        }
    }

    /// Reads more bytes into the buffer by `deadline`; throws `.closed` at end of stream.
    func fill(deadline: Deadline) throws(TransportError) {
        guard fd >= 0 else { throw .closed }
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65536 {
            buffer.removeFirst(start)
            start = 0
        }
        let r: Result<Int, TransportError> = scratch.withUnsafeMutableBytes { p in
            Result { () throws(TransportError) -> Int in try self.readSome(p.baseAddress!, count: p.count, deadline: deadline) }
        }
        let n = try r.get()
        if n == 0 { throw .closed }
        buffer.append(contentsOf: scratch[0..<n])
    }

    private func readSome(_ p: UnsafeMutableRawPointer, count: Int, deadline: Deadline) throws(TransportError) -> Int {
        if let tls { return try tls.read(into: p, count: count, deadline: deadline) }
        while true {
            let n = recv(fd, p, count, 0)
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                guard try wait(fd: fd, events: Int16(POLLIN), deadline: deadline) else { throw .timedOut }
                continue
            }
            if e == ECONNRESET { throw .closed }
            throw .system("recv: " + String(cString: strerror(e)))
        }
    }

    /// Whether an idle pooled connection can take another request: the server has not
    /// closed it and sent nothing unasked. Checked without blocking right before reuse,
    /// so a write is rarely lost to a connection the server dropped while idle.
    func isIdleAndOpen() -> Bool {
        guard fd >= 0, available == 0 else { return false }
        if let tls { return tls.isIdleAndOpen() }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) == 0
    }

    func close() {
        tls?.free()
        tls = nil
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }
}

/// Resolves `host` and connects a non-blocking TCP socket to the first address that
/// accepts within `deadline`.
///
/// Address literals are used as they are; names go through getaddrinfo(3), which has no
/// timeout of its own (a hung resolver delays the call beyond `deadline`).
private func connectTCP(host: String, port: UInt16, deadline: Deadline) throws(TransportError) -> Int32 {
    var failures: [String] = []
    for address in try resolve(host: host, port: port) {
        if deadline.hasPassed { throw .timedOut }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .system("socket: " + String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        var r = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
        }
        var e = r == 0 ? 0 : errno
        if e == EINPROGRESS || e == EINTR {
            let ready: Bool
            do { ready = try wait(fd: fd, events: Int16(POLLOUT), deadline: deadline) } catch {
                Glibc.close(fd)
                throw error
            }
            if !ready {
                Glibc.close(fd)
                throw .timedOut
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            e = r == 0 ? soError : errno
        }
        if e == 0 { return fd }
        Glibc.close(fd)
        failures.append("connect: " + String(cString: strerror(e)))
    }
    throw .system(failures.isEmpty ? "no address for \(host)" : failures.joined(separator: "; "))
}

private struct SocketAddress {
    var family: Int32
    var storage: sockaddr_storage
    var length: socklen_t
}

private func resolve(host: String, port: UInt16) throws(TransportError) -> [SocketAddress] {
    var storage = sockaddr_storage()
    var a4 = in_addr()
    if inet_pton(AF_INET, host, &a4) == 1 {
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                $0.pointee.sin_family = sa_family_t(AF_INET)
                $0.pointee.sin_port = port.bigEndian
                $0.pointee.sin_addr = a4
            }
        }
        return [SocketAddress(family: AF_INET, storage: storage, length: socklen_t(MemoryLayout<sockaddr_in>.size))]
    }
    var a6 = in6_addr()
    if inet_pton(AF_INET6, host, &a6) == 1 {
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                $0.pointee.sin6_family = sa_family_t(AF_INET6)
                $0.pointee.sin6_port = port.bigEndian
                $0.pointee.sin6_addr = a6
            }
        }
        return [SocketAddress(family: AF_INET6, storage: storage, length: socklen_t(MemoryLayout<sockaddr_in6>.size))]
    }
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &list)
    guard rc == 0 else { throw .system("cannot resolve \(host): " + String(cString: gai_strerror(rc))) }
    defer { freeaddrinfo(list) }
    var out: [SocketAddress] = []
    var p = list
    while let ai = p {
        if let addr = ai.pointee.ai_addr, Int(ai.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
            var s = sockaddr_storage()
            withUnsafeMutableBytes(of: &s) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: Int(ai.pointee.ai_addrlen)))
            }
            out.append(SocketAddress(family: ai.pointee.ai_family, storage: s, length: ai.pointee.ai_addrlen))
        }
        p = ai.pointee.ai_next
    }
    return out
}
