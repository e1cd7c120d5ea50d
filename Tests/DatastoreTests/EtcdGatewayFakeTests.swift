import Datastore
@testable import EtcdDatastore
import Foundation
import Testing

/// A scripted stand-in for etcd's JSON gateway on 127.0.0.1, for what a real etcd will
/// not do on demand: answer 404 on `/v3/` like etcd 3.3, split chunked bodies oddly,
/// drop a connection after reading a request, report gRPC errors.
private final class FakeGateway: @unchecked Sendable {
    /// What to do with one request.
    enum Reply {
        /// Send these bytes, keep the connection.
        case send(String)
        /// Send these bytes, then close.
        case sendAndClose(String)
        /// Close without answering.
        case drop
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var seen: [(path: String, body: String)] = []
    private let handler: @Sendable (String, String) -> Reply

    /// The requests received so far (path, body).
    var requests: [(path: String, body: String)] { lock.withLock { seen } }

    init(_ handler: @escaping @Sendable (_ path: String, _ body: String) -> Reply) throws {
        self.handler = handler
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(listening, p, len) == 0 && listen(listening, 16) == 0 && getsockname(listening, p, &len) == 0
            }
        }
        guard ok else { throw POSIXError(.EADDRINUSE) }
        listener = listening
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread.detachNewThread { [self] in
            while true {
                let fd = accept(listening, nil, nil)
                if fd < 0 { return }
                Thread.detachNewThread { self.serve(fd) }
            }
        }
    }

    deinit { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // One request: head, then Content-Length bytes of body.
            var headEnd: Int?
            while headEnd == nil {
                if let r = buffer.indices.dropLast(3).first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10 }) {
                    headEnd = r
                    break
                }
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
            let path = head.split(separator: " ")[1]
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            while buffer.count < headEnd! + 4 + length {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let body = String(decoding: buffer[(headEnd! + 4)..<(headEnd! + 4 + length)], as: UTF8.self)
            buffer.removeFirst(headEnd! + 4 + length)
            lock.withLock { seen.append((String(path), body)) }
            switch handler(String(path), body) {
            case .send(let text): send(fd, text)
            case .sendAndClose(let text): send(fd, text); return
            case .drop: return
            }
        }
    }

    private func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func next() -> Int { lock.withLock { n += 1; return n } }
}

private func base64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

/// `body` as HTTP/1.1 200 with a chunked body cut into pieces of `sizes` bytes (with a
/// chunk extension, as the RFC allows).
private func chunked(_ body: String, sizes: [Int]) -> String {
    var out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    var rest = Substring(body)
    var i = 0
    while !rest.isEmpty {
        let piece = rest.utf8.prefix(sizes[i % sizes.count])
        let text = String(decoding: piece, as: UTF8.self)
        out += String(piece.count, radix: 16) + (i == 1 ? ";ext=1" : "") + "\r\n" + text + "\r\n"
        rest = rest.dropFirst(text.count)
        i += 1
    }
    return out + "0\r\n\r\n"
}

private func json(_ status: String, _ body: String) -> String {
    "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
}

private let rangeAnswer = """
{"header":{"cluster_id":"1","member_id":"2","revision":"42","raft_term":"2"},"kvs":[{"key":"\(base64("/calico/a"))","create_revision":"7","mod_revision":"41","version":"3","value":"\(base64("{\"x\":\"ü\"}"))"}],"count":"1"}
"""

@Suite struct EtcdGatewayFakeTests {
    /// etcd 3.3 serves the gateway only under /v3beta/: after one 404 on /v3/ the store
    /// switches for good. The answer arrives in odd chunk sizes.
    @Test func fallsBackToV3betaAndDecodesChunks() throws {
        let fake = try FakeGateway { path, _ in
            path.hasPrefix("/v3/") ? .send(json("404 Not Found", "Not Found")) : .send(chunked(rangeAnswer, sizes: [1, 7, 300, 2]))
        }
        let s = try EtcdDatastore(settings: EtcdSettings(endpoints: [fake.endpoint], timeout: 2))
        let kv = try #require(try s.get("/calico/a"))
        #expect(kv == KeyValue(key: "/calico/a", value: "{\"x\":\"ü\"}", createRevision: 7, modRevision: 41, version: 3))
        #expect(try s.currentRevision() == 42)
        #expect(fake.requests.map(\.path) == ["/v3/kv/range", "/v3beta/kv/range", "/v3beta/kv/range"])
        #expect(fake.requests[1].body.contains("\"key\":\"\(base64("/calico/a"))\""))
    }

    /// A dropped connection after the request arrived: a read is sent again and succeeds;
    /// a write is NOT sent again and reports `.timeout` (outcome unknown).
    @Test func lostAnswersRetryReadsButNotWrites() throws {
        let counter = Counter()
        let fake = try FakeGateway { path, _ in
            let first = counter.next() == 1
            if path.hasSuffix("/txn") { return .drop }
            return first ? .drop : .send(json("200 OK", rangeAnswer))
        }
        let s = try EtcdDatastore(settings: EtcdSettings(endpoints: [fake.endpoint], timeout: 2))
        #expect(try s.get("/calico/a")?.modRevision == 41)
        #expect(fake.requests.count == 2)

        do {
            try s.put("/calico/a", "v")
            Issue.record("a write whose answer was lost must throw")
        } catch {
            guard case .timeout = error else { Issue.record("expected .timeout, got \(error)"); return }
        }
        #expect(fake.requests.filter { $0.path.hasSuffix("/txn") }.count == 1, "a write must not be resent")
    }

    /// The gateway's gRPC errors: "request timed out" (UNAVAILABLE) on a write means the
    /// proposal may still commit → `.timeout`; invalid arguments → `.failed`; on a read
    /// UNAVAILABLE → `.unavailable`.
    @Test func grpcErrorsMapToOutcomes() throws {
        let fake = try FakeGateway { path, body in
            if body.contains(base64("bad")) { return .send(json("400 Bad Request", #"{"error":"etcdserver: bad","message":"etcdserver: bad","code":3}"#)) }
            return .send(json("503 Service Unavailable", #"{"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}"#))
        }
        let s = try EtcdDatastore(settings: EtcdSettings(endpoints: [fake.endpoint], timeout: 2))
        #expect(throws: DatastoreError.timeout("etcd: etcdserver: request timed out (the write may have been applied)")) {
            try s.put("/k", "v")
        }
        #expect(throws: DatastoreError.unavailable("etcd: etcdserver: request timed out")) { _ = try s.get("/k") }
        #expect(throws: DatastoreError.failed("etcd: HTTP 400: etcdserver: bad")) { try s.put("/k", "bad") }
    }

    /// A server that closes every connection after answering (no keep-alive) costs a
    /// reconnect per call but nothing else.
    @Test func serverClosingConnections() throws {
        let fake = try FakeGateway { _, _ in .sendAndClose(json("200 OK", rangeAnswer)) }
        let s = try EtcdDatastore(settings: EtcdSettings(endpoints: [fake.endpoint], timeout: 2))
        for _ in 0..<5 { #expect(try s.get("/calico/a")?.version == 3) }
        #expect(fake.requests.count == 5)
    }
}

/// The wire helpers on their own: base64 against Foundation's, and the prefix ranges.
@Suite struct EtcdWireTests {
    @Test func base64MatchesFoundation() {
        var bytes: [UInt8] = []
        for n in 0..<300 {
            let text = Base64.encode(bytes)
            #expect(text == Data(bytes).base64EncodedString(), "length \(n)")
            #expect(Base64.decode(text) == bytes, "length \(n)")
            bytes.append(UInt8(truncatingIfNeeded: n &* 131 &+ 7))
        }
        #expect(Base64.decode("Zm9v") == Array("foo".utf8))
        #expect(Base64.decode("Zm8") == Array("fo".utf8), "padding is optional")
        #expect(Base64.decode("Z") == nil)
        #expect(Base64.decode("Zm9v!") == nil)
        #expect(Base64.decode("Zg==Zg==") == nil)
    }

    @Test func prefixRanges() {
        #expect(EtcdWire.prefixRange("/calico/") == (Array("/calico/".utf8), Array("/calico0".utf8)))
        #expect(EtcdWire.prefixRange("a") == ([0x61], [0x62]))
        // No upper bound: etcd's "\0" range end; the empty key is written "\0".
        #expect(EtcdWire.prefixRange("") == ([0], [0]))
    }
}
