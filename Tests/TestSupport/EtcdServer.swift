import Foundation

/// A real etcd (Debian `etcd-server`, `/usr/bin/etcd`) for one test: listening on
/// 127.0.0.1 on free ports, with its data in a temporary directory. `start()` waits until
/// it answers; `stop()` ends it (data kept, `start()` brings it back on the same ports);
/// the directory is removed on `destroy()` or deinit.
///
/// The TLS variant makes a CA, a server certificate (SAN `IP:127.0.0.1` only, so a
/// client connecting by the name `localhost` must fail hostname verification) and a
/// client certificate with the `openssl` CLI, and runs etcd with `--client-cert-auth`.
///
/// ```swift
/// @Test(.enabled(if: EtcdServer.isAvailable, "needs /usr/bin/etcd and etcdctl"))
/// func something() throws {
///     let etcd = try EtcdServer(tls: true)
///     let store = try EtcdDatastore(settings: etcd.settings...)
/// }
/// ```
public final class EtcdServer: @unchecked Sendable {
    public static let etcdPath = "/usr/bin/etcd"
    public static let etcdctlPath = "/usr/bin/etcdctl"

    /// Whether `etcd` and `etcdctl` are installed (tests that need them skip otherwise).
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: etcdPath) && FileManager.default.isExecutableFile(atPath: etcdctlPath)
    }

    /// Whether the TLS variant can run (it also needs the `openssl` CLI).
    public static var isTLSAvailable: Bool { isAvailable && TestEnvironment.has("openssl") }

    /// PEM files made for the TLS variant.
    public struct Certificates: Sendable {
        public var caCert: String
        public var serverCert: String
        public var serverKey: String
        public var clientCert: String
        public var clientKey: String
    }

    /// The temporary directory: `data/`, `etcd.log`, and the certificates.
    public let directory: URL
    public let clientPort: Int
    public let peerPort: Int
    /// Set for the TLS variant.
    public let certificates: Certificates?
    private var process: ChildProcess?
    private var destroyed = false

    /// `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`.
    public var endpoint: String { "\(certificates == nil ? "http" : "https")://127.0.0.1:\(clientPort)" }

    /// Makes the directory (and certificates) and starts etcd.
    public init(tls: Bool = false) throws {
        directory = TestEnvironment.temporaryDirectory("etcd")
        let ports = try Self.freePorts(2)
        clientPort = ports[0]
        peerPort = ports[1]
        do {
            certificates = tls ? try Self.makeCertificates(in: directory) : nil
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        do { try start() } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    /// Starts etcd (again) and waits until it serves requests (up to 20 s).
    public func start() throws {
        guard process == nil else { return }
        let scheme = certificates == nil ? "http" : "https"
        let client = "\(scheme)://127.0.0.1:\(clientPort)"
        let peer = "http://127.0.0.1:\(peerPort)"
        var args = [
            "--name", "test",
            "--data-dir", directory.appendingPathComponent("data").path,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "test=\(peer)",
            "--logger", "zap", "--log-outputs", "stderr",
        ]
        if let c = certificates {
            args += ["--cert-file", c.serverCert, "--key-file", c.serverKey, "--trusted-ca-file", c.caCert, "--client-cert-auth"]
        }
        let p = ChildProcess()
        p.executableURL = URL(fileURLWithPath: Self.etcdPath)
        p.arguments = args
        let logURL = directory.appendingPathComponent("etcd.log")
        if !FileManager.default.fileExists(atPath: logURL.path) { FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        try? log.close()
        process = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if !p.isRunning {
                process = nil
                throw EtcdServerError("etcd exited with \(p.terminationStatus) at start: \(logTail())")
            }
            if let r = try? etcdctl(["endpoint", "health", "--command-timeout=1s"]), r.status == 0 { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw EtcdServerError("etcd did not become healthy within 20 s: \(logTail())")
    }

    /// Stops etcd (SIGTERM, SIGKILL after 5 s) and waits for it to exit; the data stays.
    public func stop() {
        guard let p = process else { return }
        process = nil
        if p.isRunning {
            kill(p.processIdentifier, SIGCONT)
            p.terminate()
            let deadline = Date().addingTimeInterval(5)
            while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
    }

    /// Freezes etcd (SIGSTOP): the kernel still accepts connections, nothing answers.
    public func pause() {
        if let p = process { kill(p.processIdentifier, SIGSTOP) }
    }

    /// Thaws a paused etcd (SIGCONT).
    public func resume() {
        if let p = process { kill(p.processIdentifier, SIGCONT) }
    }

    /// Stops etcd and removes its directory.
    public func destroy() {
        guard !destroyed else { return }
        destroyed = true
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// `etcdctl` flags that reach this server (endpoint and, for TLS, the client
    /// certificate).
    public var etcdctlFlags: [String] {
        var flags = ["--endpoints=\(endpoint)"]
        if let c = certificates { flags += ["--cacert=\(c.caCert)", "--cert=\(c.clientCert)", "--key=\(c.clientKey)"] }
        return flags
    }

    /// Runs `etcdctl <args>` (API v3) against this server.
    @discardableResult
    public func etcdctl(_ args: [String]) throws -> CommandResult {
        try Command.run([Self.etcdctlPath] + etcdctlFlags + args,
                        environment: ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"], timeout: 30)
    }

    /// The exact bytes etcd holds for `key` (read with `etcdctl get -w json`, whose
    /// values are base64), or nil when the key does not exist.
    public func storedValue(_ key: String) throws -> Data? {
        let r = try etcdctl(["get", key, "-w", "json"])
        guard r.status == 0 else { throw CommandError(command: ["etcdctl", "get", key], result: r) }
        guard let answer = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw EtcdServerError("etcdctl get printed no JSON object")
        }
        guard let kvs = answer["kvs"] as? [[String: Any]], let kv = kvs.first else { return nil }
        guard let value = kv["value"] as? String else { return Data() }
        guard let bytes = Data(base64Encoded: value) else { throw EtcdServerError("value is not base64: \(value)") }
        return bytes
    }

    /// The last part of etcd's log, for failure messages.
    public func logTail(_ bytes: Int = 2000) -> String {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("etcd.log").path) else { return "" }
        return String(decoding: data.suffix(bytes), as: UTF8.self)
    }

    // MARK: - Setup helpers

    /// `count` distinct TCP ports on 127.0.0.1 that were free a moment ago (bound to port
    /// 0 together, then released for etcd to take).
    public static func freePorts(_ count: Int) throws -> [Int] {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw EtcdServerError("socket: \(errno)") }
            fds.append(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                    bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
                }
            }
            guard bound else { throw EtcdServerError("bind: \(errno)") }
            ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        }
        return ports
    }

    /// A CA, a server certificate for IP 127.0.0.1 and a client certificate, as PEM files
    /// in `dir` (EC P-256, valid two days), made with the `openssl` CLI.
    public static func makeCertificates(in dir: URL) throws -> Certificates {
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func openssl(_ args: [String]) throws { try Command.check(["openssl"] + args) }
        let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + newKey + ["-keyout", path("ca.key"), "-out", path("ca.crt"), "-days", "2",
                     "-subj", "/CN=calico-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        // etcd's gateway also dials etcd itself with the server certificate, so it needs
        // clientAuth as well as serverAuth.
        let leaves: [(name: String, subject: String, ext: String)] = [
            ("server", "/CN=etcd-test-server",
             "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"),
            ("client", "/CN=calico-test-client",
             "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"),
        ]
        for leaf in leaves {
            try openssl(["req"] + newKey + ["-keyout", path("\(leaf.name).key"), "-out", path("\(leaf.name).csr"), "-subj", leaf.subject])
            try leaf.ext.write(toFile: path("\(leaf.name).ext"), atomically: true, encoding: .utf8)
            try openssl(["x509", "-req", "-in", path("\(leaf.name).csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
                         "-CAcreateserial", "-out", path("\(leaf.name).crt"), "-days", "2", "-extfile", path("\(leaf.name).ext")])
        }
        return Certificates(caCert: path("ca.crt"), serverCert: path("server.crt"), serverKey: path("server.key"),
                            clientCert: path("client.crt"), clientKey: path("client.key"))
    }
}

public struct EtcdServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
