import Foundation
import JSON
import NetNS
import Testing
import TestSupport

// Support for the end-to-end tests of the built `calico` plugin on a shared datastore:
// a real etcd (plain or TLS with client certificates) or the SQLite file, simulated Mesos
// agents (host namespaces) and containers. Names start with `Etcd`; the machine
// requirements are the other integration tests' (`E2E`) plus etcd.

/// What the tests need.
enum EtcdE2E {
    static var nsenter: String? { E2E.nsenter }
    static var calico: String { E2E.calico }

    /// Root, `ip`, `nsenter` and the built plugins: enough for the SQLite runs.
    static var ready: Bool { E2E.ready }
    static var reason: Comment { E2E.reason }

    /// Plus a real etcd (Debian etcd-server, etcd-client) and the openssl CLI for certificates.
    static let etcdReady: Bool = ready && EtcdServer.isTLSAvailable
    static let etcdReason: Comment =
        "needs root, ip, nsenter, sqlite3, the built calico and calico-ipam, /usr/bin/etcd, /usr/bin/etcdctl and openssl"

    /// calicoctl writes the pools these tests need, as an operator would.
    static let calicoctlReady: Bool = TestEnvironment.hasProduct("calicoctl")

    static var cniPath: String { TestEnvironment.productsDirectory.path }

    /// A container id the way Mesos makes them: a lower-case UUID.
    static func containerID() -> String { UUID().uuidString.lowercased() }

    /// The WorkloadEndpoint name (REFERENCE.md §3), written out independently of the library.
    static func endpointName(node: String, containerID: String, ifname: String = "eth0") -> String {
        [node, "cni", containerID, ifname].map { $0.replacingOccurrences(of: "-", with: "--") }.joined(separator: "-")
    }

    static let blockPrefix = "/calico/ipam/v2/assignment/ipv4/block/"
    static let handlePrefix = "/calico/ipam/v2/handle/"
    static let endpointPrefix = "/calico/resources/v3/projectcalico.org/workloadendpoints/"
    static func affinityPrefix(_ node: String) -> String { "/calico/ipam/v2/host/\(node)/ipv4/block/" }

    static func ipv4<S: StringProtocol>(_ s: S) -> UInt32? {
        let parts = s.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4, parts.allSatisfy({ $0 < 256 }) else { return nil }
        return parts.reduce(0) { $0 << 8 | $1 }
    }

    static func ipv4String(_ v: UInt32) -> String { "\(v >> 24).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)" }

    /// Seconds `body` took, with its value.
    static func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = Date()
        let value = try body()
        return (value, Date().timeIntervalSince(start))
    }
}

struct EtcdE2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - The cluster's datastore

/// The datastore every agent of a test shares: a real etcd (plain or TLS with client
/// certificates) or one SQLite file. Its records are read back with `etcdctl` or `sqlite3`
/// exactly as an operator would.
final class EtcdTestStore: @unchecked Sendable {
    enum Kind: String, CustomStringConvertible {
        case etcdTLS = "etcd over TLS", etcdPlain = "etcd", sqlite = "SQLite"
        var description: String { rawValue }
    }

    let kind: Kind
    let etcd: EtcdServer?
    let directory: URL
    var sqlitePath: String { directory.appendingPathComponent("calico.db").path }

    init(_ kind: Kind) throws {
        self.kind = kind
        directory = TestEnvironment.temporaryDirectory("calico-etcd-e2e")
        switch kind {
        case .etcdTLS: etcd = try EtcdServer(tls: true)
        case .etcdPlain: etcd = try EtcdServer()
        case .sqlite: etcd = nil
        }
    }

    deinit {
        etcd?.destroy()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The datastore keys of a CNI network config, as an operator writes them
    /// (`datastore_timeout` when `timeout` is given).
    func cniKeys(timeout: Double? = nil) -> [String: JSON] {
        var o: [String: JSON] = [:]
        if let etcd {
            o["datastore_type"] = "etcdv3"
            o["etcd_endpoints"] = .string(etcd.endpoint)
            if let c = etcd.certificates {
                o["etcd_ca_cert_file"] = .string(c.caCert)
                o["etcd_cert_file"] = .string(c.clientCert)
                o["etcd_key_file"] = .string(c.clientKey)
            }
        } else {
            o["datastore_type"] = "sqlite"
            o["sqlite_path"] = .string(sqlitePath)
        }
        if let timeout { o["datastore_timeout"] = .double(timeout) }
        return o
    }

    /// calicoctl's environment for this store.
    var calicoctlEnvironment: [String: String] {
        var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": directory.path]
        if let etcd {
            env["DATASTORE_TYPE"] = "etcdv3"
            env["ETCD_ENDPOINTS"] = etcd.endpoint
            if let c = etcd.certificates {
                env["ETCD_CA_CERT_FILE"] = c.caCert
                env["ETCD_CERT_FILE"] = c.clientCert
                env["ETCD_KEY_FILE"] = c.clientKey
            }
        } else {
            env["DATASTORE_TYPE"] = "sqlite"
            env["SQLITE_PATH"] = sqlitePath
        }
        return env
    }

    /// `calicoctl create -f -` with `yaml`.
    func calicoctlCreate(_ yaml: String) throws {
        let r = try Command.run([TestEnvironment.product("calicoctl"), "create", "-f", "-"], environment: calicoctlEnvironment,
                                stdin: Data(yaml.utf8))
        guard r.status == 0 else { throw EtcdE2EError("calicoctl create exited \(r.status): \(r.stdoutText) \(r.stderrText)") }
    }

    /// Every key under `prefix` with its value parsed as JSON, read with `etcdctl get
    /// --prefix -w json` (values are base64 there) or `sqlite3 -json`.
    func records(_ prefix: String = "/calico/") throws -> [String: JSON] {
        var out: [String: JSON] = [:]
        if let etcd {
            let r = try etcd.etcdctl(["get", "--prefix", prefix, "-w", "json"])
            guard r.status == 0 else { throw EtcdE2EError("etcdctl get --prefix \(prefix) exited \(r.status): \(r.stderrText)") }
            let answer = try JSON(parsing: r.stdoutText)
            for kv in answer["kvs"]?.arrayValue ?? [] {
                guard let k = kv["key"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else {
                    throw EtcdE2EError("etcdctl printed a key that is not base64: \(kv.compactText)")
                }
                let v = kv["value"]?.stringValue.flatMap { Data(base64Encoded: $0) } ?? Data()
                out[String(decoding: k, as: UTF8.self)] = try JSON(parsing: String(decoding: v, as: UTF8.self))
            }
            return out
        }
        guard FileManager.default.fileExists(atPath: sqlitePath) else { return [:] }
        let quoted = prefix.replacingOccurrences(of: "'", with: "''")
        let text = try Command.check(["sqlite3", "-json", sqlitePath,
                                      "SELECT key, value FROM kv WHERE substr(key, 1, \(prefix.utf8.count)) = '\(quoted)'"])
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [:] }
        for row in try JSON(parsing: text).arrayValue ?? [] {
            guard let k = row["key"]?.stringValue, let v = row["value"]?.stringValue else { continue }
            out[k] = try JSON(parsing: v)
        }
        return out
    }

    /// Every allocated IPv4 address, with the block it is in, its handle and its
    /// `secondary.node` attribute.
    struct Allocation: Hashable {
        var address: String
        var block: String
        var handle: String
        var node: String
    }

    func allocations() throws -> [Allocation] {
        try Self.allocations(in: records(EtcdE2E.blockPrefix))
    }

    static func allocations(in blocks: [String: JSON]) throws -> [Allocation] {
        var out: [Allocation] = []
        for (_, block) in blocks {
            guard let cidr = block["cidr"]?.stringValue, let base = EtcdE2E.ipv4(cidr.split(separator: "/")[0]) else {
                throw EtcdE2EError("a block without an IPv4 cidr: \(block.compactText)")
            }
            let attributes = block["attributes"]?.arrayValue ?? []
            for (ordinal, slot) in (block["allocations"]?.arrayValue ?? []).enumerated() {
                guard let index = slot.intValue else { continue }
                let attribute = attributes.indices.contains(index) ? attributes[index] : .null
                out.append(Allocation(address: EtcdE2E.ipv4String(base + UInt32(ordinal)), block: cidr,
                                      handle: attribute["handle_id"]?.stringValue ?? "?",
                                      node: attribute["secondary"]?["node"]?.stringValue ?? "?"))
            }
        }
        return out.sorted { $0.address < $1.address }
    }
}

// MARK: - Agents and containers

/// A container as Mesos makes one: a network namespace holding only `lo`, down.
final class EtcdWorkload: @unchecked Sendable {
    let id: String
    let namespace: TestNamespace
    var netns: String { namespace.path }

    init() throws {
        id = EtcdE2E.containerID()
        namespace = try TestNamespace("etcdc", loopbackDown: true)
    }

    func linkNames() throws -> [String] { try namespace.linkNames().sorted() }

    /// `ip -j link show dev IF` fields, or nil.
    func link(_ ifname: String) throws -> [String: Any]? {
        try namespace.ipJSON(["link", "show"]).first { $0["ifname"] as? String == ifname }
    }

    /// The IPv4 addresses on `ifname` as `a.b.c.d/len`.
    func addresses(_ ifname: String) throws -> [String] {
        try namespace.ipJSON(["-4", "addr", "show", "dev", ifname]).flatMap { l in
            ((l["addr_info"] as? [[String: Any]]) ?? []).compactMap { a in
                guard let local = a["local"] as? String, let len = a["prefixlen"] as? Int else { return nil }
                return "\(local)/\(len)"
            }
        }
    }
}

/// One simulated Mesos agent: a host network namespace in which the plugin runs, as it
/// runs in the agent's own namespace for real, with its node name in the config.
final class EtcdAgent: @unchecked Sendable {
    let node: String
    let store: EtcdTestStore
    let host: TestNamespace
    /// The datastore keys of the config (the store's, or a test's variant).
    var datastoreKeys: [String: JSON]
    /// How the plugin in this namespace reaches etcd (nil on SQLite).
    let relay: EtcdRelay?

    /// `inspecting`: a relay that sees each request and can lose answers (plain etcd only).
    init(node: String, store: EtcdTestStore, datastoreKeys: [String: JSON]? = nil, inspecting: Bool = false) throws {
        self.node = node
        self.store = store
        self.datastoreKeys = datastoreKeys ?? store.cniKeys()
        host = try TestNamespace("etcdh")
        if let etcd = store.etcd {
            relay = try EtcdRelay(namespacePath: host.path, port: etcd.clientPort, upstreamPort: etcd.clientPort,
                                  inspecting: inspecting)
        } else {
            relay = nil
        }
    }

    deinit { relay?.stop() }

    /// The network config file an operator writes.
    var config: JSON {
        var o: [String: JSON] = [
            "name": "calico", "type": "calico", "cniVersion": "0.2.0", "ipam": ["type": "calico-ipam"],
            "nodename": .string(node), "mtu": 1450,
        ]
        for (k, v) in datastoreKeys { o[k] = v }
        return .object(o)
    }

    /// What Mesos writes on stdin: the config with `args["org.apache.mesos"].network_info`
    /// injected, compact with sorted keys.
    func mesosStdin(labels: [(String, String)] = [("biz_type", "bookstore")]) -> Data {
        var o = config
        o["args"] = ["org.apache.mesos": ["network_info": [
            "name": "calico", "ip_addresses": [["protocol": "IPv4"]],
            "labels": ["labels": .array(labels.map { ["key": .string($0.0), "value": .string($0.1)] })],
        ]]]
        return Data(Self.sortedCompact(o).utf8)
    }

    /// Compact JSON text with object keys sorted at every level, as Mesos serialises.
    static func sortedCompact(_ j: JSON) -> String {
        switch j {
        case .object(let o):
            return "{" + o.keys.sorted().map { JSON.string($0).compactText + ":" + sortedCompact(o[$0]!) }.joined(separator: ",") + "}"
        case .array(let a):
            return "[" + a.map(sortedCompact).joined(separator: ",") + "]"
        default:
            return j.compactText
        }
    }

    /// The environment Mesos gives a plugin, replaced, not extended.
    func environment(_ command: String, containerID: String, netns: String?) -> [String: String] {
        var env = ["CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_IFNAME": "eth0",
                   "CNI_PATH": EtcdE2E.cniPath, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        if let netns { env["CNI_NETNS"] = netns }
        return env
    }

    var argv: [String] { [EtcdE2E.nsenter!, "--net=\(host.path)", EtcdE2E.calico] }

    /// Runs the built `calico` inside the host namespace, Mesos-style.
    @discardableResult
    func invoke(_ command: String, _ container: EtcdWorkload, netns: String?? = nil) throws -> CommandResult {
        try Command.run(argv, environment: environment(command, containerID: container.id, netns: netns ?? container.netns),
                        stdin: mesosStdin(), timeout: 120)
    }

    /// ADD that must succeed; returns the address (`a.b.c.d`) of `ip4.ip`.
    func attach(_ container: EtcdWorkload) throws -> String {
        let r = try invoke("ADD", container)
        return try Self.address(of: r, container)
    }

    static func address(of r: CommandResult, _ container: EtcdWorkload) throws -> String {
        guard r.status == 0 else { throw EtcdE2EError("ADD \(container.id) exited \(r.status): \(r.stdoutText) \(r.stderrText)") }
        guard let ip = try JSON(parsing: r.stdoutText)["ip4"]?["ip"]?.stringValue, ip.hasSuffix("/32") else {
            throw EtcdE2EError("ADD \(container.id) printed no ip4.ip: \(r.stdoutText)")
        }
        return String(ip.dropLast(3))
    }

    /// The host's `cali*` links.
    func workloadLinks() throws -> [String] {
        try host.linkNames().filter { $0.hasPrefix("cali") }.sorted()
    }

    /// Starts every call's process at once (all threads released together) and waits.
    static func invokeAtOnce(_ calls: [(agent: EtcdAgent, command: String, container: EtcdWorkload)]) throws -> [CommandResult] {
        final class Box: @unchecked Sendable { var result: Result<CommandResult, Error>? }
        let boxes = calls.map { _ in Box() }
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for (call, box) in zip(calls, boxes) {
            group.enter()
            let argv = call.agent.argv
            let env = call.agent.environment(call.command, containerID: call.container.id, netns: call.container.netns)
            let stdin = call.agent.mesosStdin()
            Thread.detachNewThread {
                start.wait()
                box.result = Result { try Command.run(argv, environment: env, stdin: stdin, timeout: 120) }
                group.leave()
            }
        }
        for _ in calls { start.signal() }
        group.wait()
        return try boxes.map { try $0.result!.get() }
    }
}

extension CommandResult {
    /// The CNI error code on stdout, or nil.
    var etcdE2EErrorCode: Int? { (try? JSON(parsing: stdoutText))?["code"]?.intValue }
}

// MARK: - A relay from an agent's namespace to etcd, which can lose answers

/// etcd listens on the machine's loopback, which a plugin running in an agent's host
/// namespace cannot reach (each namespace has its own `lo`). A relay listens on
/// `127.0.0.1:<etcd's port>` inside the agent's namespace (its socket is made by a thread
/// that entered that namespace) and forwards each connection to etcd on the machine's
/// loopback, so the plugin's config names etcd's own endpoint and TLS (certificate for IP
/// 127.0.0.1) works end to end. `suspend()` closes the listener while etcd is stopped, so
/// connecting is refused there as it would be on the machine.
///
/// In `inspecting` mode (plain HTTP only) each client connection carries one request
/// (the relay asks etcd to close after answering), and a rule decides per request whether
/// its answer reaches the plugin: a test chooses exactly which write's answer is lost.
final class EtcdRelay: @unchecked Sendable {
    /// What to do with one request (inspecting mode).
    enum Verdict: Sendable {
        /// Relay the answer.
        case forward
        /// Deliver the request, wait for etcd's answer (so it is applied), then close the
        /// client's connection without a byte of it.
        case loseAnswer
        /// Run `action` (the test pauses etcd there), then deliver the request into etcd's
        /// socket; the answer is relayed whenever it comes. Pausing first makes "etcd froze
        /// with the request delivered" certain: paused after the delivery, a fast etcd could
        /// answer in between.
        case freezeThenDeliver(@Sendable () -> Void)
    }

    /// One request seen: its path and the keys its puts and deletes name.
    struct Request: Sendable {
        var path: String
        var putKeys: [String]
        var deleteKeys: [String]
    }

    let port: Int
    let inspecting: Bool
    private let namespacePath: String
    private let upstreamPort: Int
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var open: Set<Int32> = []
    private var decide: @Sendable (Request) -> Verdict = { _ in .forward }
    private var seenRequests: [Request] = []
    private var answers = 0

    /// Listens on 127.0.0.1:`port` in the namespace at `namespacePath`, forwarding to
    /// 127.0.0.1:`upstreamPort` of the test process's own namespace.
    init(namespacePath: String, port: Int, upstreamPort: Int, inspecting: Bool = false) throws {
        self.namespacePath = namespacePath
        self.port = port
        self.upstreamPort = upstreamPort
        self.inspecting = inspecting
        try resume()
    }

    deinit { stop() }

    /// Sets the rule applied to every later request (inspecting mode).
    func rule(_ decide: @escaping @Sendable (Request) -> Verdict) {
        lock.withLock { self.decide = decide }
    }

    /// Requests seen so far (inspecting mode).
    var requests: [Request] { lock.withLock { seenRequests } }

    /// How many answers etcd has sent for requests whose verdict was not `.forward`.
    var specialAnswers: Int { lock.withLock { answers } }

    /// Closes the listener (connections are refused) and every relayed connection.
    func suspend() {
        let fds = lock.withLock { () -> [Int32] in
            defer { listener = -1; open = [] }
            return (listener >= 0 ? [listener] : []) + Array(open)
        }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        // The accept loop closes the listener; relayed sockets are closed by their threads.
    }

    /// Listens again (after `suspend`).
    func resume() throws {
        let port = self.port
        let fd = try NetworkNamespace(path: namespacePath).run { () throws -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw EtcdE2EError("socket: \(errno)") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = Self.loopback(port: UInt16(port))
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard ok, listen(fd, 128) == 0 else {
                let e = errno
                close(fd)
                throw EtcdE2EError("relay bind/listen on 127.0.0.1:\(port): errno \(e)")
            }
            return fd
        }
        lock.withLock { listener = fd }
        Thread.detachNewThread { [self] in acceptLoop(fd) }
    }

    func stop() { suspend() }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        return addr
    }

    private func acceptLoop(_ fd: Int32) {
        defer { close(fd) }
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let live = lock.withLock { () -> Bool in
                guard listener == fd else { return false }
                open.insert(client)
                return true
            }
            guard live else {
                close(client)
                return
            }
            Thread.detachNewThread { [self] in
                if inspecting { serveOneRequest(client) } else { pump(client) }
                lock.withLock { _ = open.remove(client) }
                close(client)
            }
        }
    }

    /// A socket connected to etcd on the machine's loopback, registered for `suspend`.
    private func connectUpstream() -> Int32? {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard upstream >= 0 else { return nil }
        var addr = Self.loopback(port: UInt16(upstreamPort))
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(upstream)
            return nil
        }
        lock.withLock { _ = open.insert(upstream) }
        return upstream
    }

    private func closeUpstream(_ fd: Int32) {
        lock.withLock { _ = open.remove(fd) }
        close(fd)
    }

    /// Copies bytes both ways until both sides have finished.
    private func pump(_ client: Int32) {
        guard let upstream = connectUpstream() else {
            // etcd is not there: reset the connection, as a refused one would fail.
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            return
        }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            Self.copy(from: client, to: upstream)
            done.signal()
        }
        Self.copy(from: upstream, to: client) { [self] first in
            // etcd speaks first only in TLS: its first record is the ServerHello.
            guard let resumed = Self.serverHelloAcceptsPSK(first) else { return }
            lock.withLock {
                handshakes += 1
                if resumed { resumptions += 1 }
            }
        }
        done.wait()
        closeUpstream(upstream)
    }

    /// TLS handshakes relayed, and how many of them resumed a session (raw mode).
    var tlsHandshakes: (full: Int, resumed: Int) { lock.withLock { (handshakes - resumptions, resumptions) } }
    private var handshakes = 0
    private var resumptions = 0

    /// Copies until end of stream on `from`, then ends writing on `to`. `firstRecord` sees
    /// the first TLS-record-sized prefix of the stream.
    private static func copy(from: Int32, to: Int32, firstRecord: ((Data) -> Void)? = nil) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var head = Data()
        var inspect = firstRecord
        while true {
            let n = recv(from, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if let f = inspect {
                head.append(contentsOf: chunk[0..<n])
                let bytes = [UInt8](head)
                let length = bytes.count >= 5 ? 5 + (Int(bytes[3]) << 8 | Int(bytes[4])) : Int.max
                if bytes.count >= length || bytes.count > 16384 {
                    f(head)
                    inspect = nil
                }
            }
            if !writeAll(to, Data(chunk[0..<n])) { break }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    /// Whether a TLS ServerHello accepts the client's pre-shared key (extension 41, sent by
    /// the server only when it resumes the session); nil when `record` is no ServerHello.
    static func serverHelloAcceptsPSK(_ record: Data) -> Bool? {
        let b = [UInt8](record)
        // record: type 22 (handshake), version, length; handshake: type 2, 3-byte length.
        guard b.count > 9, b[0] == 22, b[5] == 2 else { return nil }
        var i = 9 + 2 + 32  // legacy_version, random
        guard i < b.count else { return nil }
        i += 1 + Int(b[i])  // session id
        i += 2 + 1  // cipher suite, compression
        guard i + 2 <= b.count else { return nil }
        let end = min(b.count, i + 2 + (Int(b[i]) << 8 | Int(b[i + 1])))
        i += 2
        while i + 4 <= end {
            let type = Int(b[i]) << 8 | Int(b[i + 1])
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if type == 41 { return true }
            i += 4 + length
        }
        return false
    }

    private func serveOneRequest(_ client: Int32) {
        guard let (head, body) = Self.readRequest(client) else { return }
        let request = Self.describe(head: head, body: body)
        let verdict = lock.withLock { () -> Verdict in
            seenRequests.append(request)
            return decide(request)
        }
        // Ask etcd to close after its answer, so each connection carries one exchange.
        var lines = head.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("connection:") }
        lines.insert("Connection: close", at: 1)
        let forwarded = Data((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body
        guard let upstream = connectUpstream() else { return }
        defer { closeUpstream(upstream) }
        if case .freezeThenDeliver(let action) = verdict { action() }
        guard Self.writeAll(upstream, forwarded) else { return }
        let answer = Self.readToEnd(upstream)
        switch verdict {
        case .forward:
            _ = Self.writeAll(client, answer)
        case .loseAnswer:
            lock.withLock { answers += 1 }
        case .freezeThenDeliver:
            lock.withLock { answers += 1 }
            _ = Self.writeAll(client, answer)
        }
    }

    /// The request head (without the blank line) and its `Content-Length` body.
    private static func readRequest(_ fd: Int32) -> (String, Data)? {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        let separator = Data("\r\n\r\n".utf8)
        while true {
            if let range = buffer.range(of: separator) {
                let head = String(decoding: buffer[..<range.lowerBound], as: UTF8.self)
                let length = head.components(separatedBy: "\r\n").compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                    return Int(parts[1].trimmingCharacters(in: .whitespaces))
                }.first ?? 0
                var body = Data(buffer[range.upperBound...])
                while body.count < length {
                    let n = recv(fd, &chunk, chunk.count, 0)
                    if n <= 0 { return nil }
                    body.append(contentsOf: chunk[0..<n])
                }
                return (head, body)
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    private static func readToEnd(_ fd: Int32) -> Data {
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    private static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw -> Bool in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                sent += n
            }
            return true
        }
    }

    /// The path and the keys of a gateway request (keys are base64 in its JSON).
    private static func describe(head: String, body: Data) -> Request {
        let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        var puts: [String] = [], deletes: [String] = []
        func key(_ any: Any?) -> String? {
            (any as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        }
        if let o = try? JSONSerialization.jsonObject(with: body) as? [String: Any] {
            for branch in ["success", "failure"] {
                for op in (o[branch] as? [[String: Any]]) ?? [] {
                    if let k = key((op["request_put"] as? [String: Any])?["key"]) { puts.append(k) }
                    if let k = key((op["request_delete_range"] as? [String: Any])?["key"]) { deletes.append(k) }
                }
            }
        }
        return Request(path: path, putKeys: puts, deleteKeys: deletes)
    }
}
