import Datastore
import DatastoreConformance
import EtcdDatastore
import Foundation
import Testing
import TestSupport


/// A store on `server` with its client certificate (TLS variant) and `timeout`.
private func store(_ server: EtcdServer, endpoints: [String]? = nil, timeout: Double = 5) throws -> EtcdDatastore {
    let c = server.certificates
    return try EtcdDatastore(settings: EtcdSettings(
        endpoints: endpoints ?? [server.endpoint], caCertFile: c?.caCert, certFile: c?.clientCert, keyFile: c?.clientKey,
        timeout: timeout))
}

/// Seconds `body` took.
private func elapsed(_ body: () throws -> Void) rethrows -> Double {
    let start = Date()
    try body()
    return Date().timeIntervalSince(start)
}

/// The error `body` threw, as a `DatastoreError` (nil when it returned, or threw
/// something else).
private func datastoreError(_ body: () throws -> Void) -> DatastoreError? {
    do { try body() } catch { return error as? DatastoreError }
    return nil
}

// MARK: - The shared contract, plain and over TLS with client certificates

@Suite(.enabled(if: EtcdServer.isAvailable, "needs /usr/bin/etcd and /usr/bin/etcdctl (Debian etcd-server, etcd-client)"))
struct EtcdConformanceTests {
    @Test(arguments: DatastoreConformance.cases)
    func plain(_ c: ConformanceCase) throws {
        let etcd = try EtcdServer()
        try c.run(try store(etcd))
    }

    @Test(.enabled(if: EtcdServer.isTLSAvailable, "needs /usr/bin/etcd, /usr/bin/etcdctl and the openssl CLI"), arguments: DatastoreConformance.cases)
    func tls(_ c: ConformanceCase) throws {
        let etcd = try EtcdServer(tls: true)
        try c.run(try store(etcd))
    }
}

// MARK: - What operators and upstream tools see

@Suite(.enabled(if: EtcdServer.isAvailable, "needs /usr/bin/etcd and /usr/bin/etcdctl (Debian etcd-server, etcd-client)"))
struct EtcdLayoutTests {
    /// Values we write are what `etcdctl` reads, byte for byte, under Calico's keys; and
    /// what `etcdctl` (standing in for upstream Calico) writes, we read back exactly.
    @Test(arguments: [false, true])
    func etcdctlReadsWhatWeWrite(tls: Bool) throws {
        guard !tls || EtcdServer.isTLSAvailable else { return }
        let etcd = try EtcdServer(tls: tls)
        let s = try store(etcd)
        var big = "{\"allocations\":["
        for i in 0..<20000 { big += (i == 0 ? "" : ",") + (i % 3 == 0 ? "null" : String(i)) }
        big += "]}"
        let values: [String: String] = [
            CalicoKeys.block(cidr: "172.29.10.64/26"):
                "{\"cidr\":\"172.29.10.64/26\",\"affinity\":\"host:agent-1\",\"allocations\":[0,null],\"unallocated\":[1],\"attributes\":[{\"handle_id\":\"calico.5baff64c-d028\",\"secondary\":{\"node\":\"agent-1\"}}],\"deleted\":false}",
            CalicoKeys.affinity(node: "agent-1", cidr: "172.29.10.64/26"): "{\"state\":\"confirmed\",\"deleted\":false}",
            CalicoKeys.handle("calico.5baff64c-d028"): "{\"block\":{\"172.29.10.64/26\":1},\"deleted\":false}",
            CalicoKeys.resource(plural: "profiles", name: "calico"): "{\"kind\":\"Profile\",\"labels\":{\"é\":\"☕ \\\"q\\\"\\n\"}}",
            "/calico/test/empty": "",
            "/calico/test/big": big,
        ]
        for (k, v) in values { try s.put(k, v) }
        for (k, v) in values {
            let stored = try #require(try etcd.storedValue(k), "etcdctl does not see \(k)")
            #expect(stored == Data(v.utf8), "bytes of \(k) as etcdctl reads them")
        }
        let keys = try etcd.etcdctl(["get", "--prefix", "/calico/", "--keys-only"]).stdoutText
            .split(separator: "\n").map(String.init)
        #expect(Set(keys) == Set(values.keys))

        let upstream = "{\"kind\":\"IPPool\",\"apiVersion\":\"projectcalico.org/v3\",\"spec\":{\"cidr\":\"172.29.0.0/16\"}}"
        let key = CalicoKeys.resource(plural: "ippools", name: "default-ipv4-ippool")
        let put = try etcd.etcdctl(["put", key, upstream])
        #expect(put.status == 0, "\(put.stderrText)")
        let kv = try #require(try s.get(key))
        #expect(kv.value.utf8.elementsEqual(upstream.utf8))
        #expect(kv.version == 1 && kv.createRevision == kv.modRevision)
        let listed = try s.list(prefix: "/calico/")
        #expect(listed.kvs.count == values.count + 1)
        #expect(listed.kvs.first { $0.key == "/calico/test/big" }?.value.utf8.count == big.utf8.count)
        // The empty prefix is every key (etcd's "\0" range).
        #expect(try s.list(prefix: "").kvs.map(\.key) == listed.kvs.map(\.key))
    }

    /// A watch reports operator edits made with `etcdctl`, and an `etcdctl compact` past
    /// its start revision ends it with `.compacted`.
    @Test func watchSeesEtcdctlEditsAndCompaction() throws {
        let etcd = try EtcdServer()
        let s = try store(etcd)
        let r0 = try s.currentRevision()
        let w = try s.watch(prefix: "/calico/resources/", after: r0)
        try etcd.etcdctl(["put", "/calico/resources/v3/projectcalico.org/profiles/p", "{}"])
        try etcd.etcdctl(["put", "/calico/other", "x"])
        try etcd.etcdctl(["del", "/calico/resources/v3/projectcalico.org/profiles/p"])
        var events: [WatchEvent] = []
        let end = Date().addingTimeInterval(5)
        while events.count < 2 && Date() < end { events += try w.next(timeout: 1) }
        #expect(events.map(\.kind) == [.put, .delete])
        #expect(events.map(\.kv.modRevision) == [r0 + 1, r0 + 3])
        #expect(events.last?.previous?.value == "{}")
        w.cancel()

        let compactAt = try s.put("/calico/x", "y")
        #expect(try etcd.etcdctl(["compact", String(compactAt)]).status == 0)
        let old = try s.watch(prefix: "/calico/", after: r0)
        #expect(throws: DatastoreError.compacted(compactAt)) { _ = try old.next(timeout: 2) }
        #expect(throws: DatastoreError.compacted(compactAt)) { _ = try old.next(timeout: 0) }
    }
}

// MARK: - Faults: bounded, honest, recovering

@Suite(.enabled(if: EtcdServer.isAvailable, "needs /usr/bin/etcd and /usr/bin/etcdctl (Debian etcd-server, etcd-client)"))
struct EtcdFaultTests {
    /// A dead first endpoint (nothing listens) fails over to the live one, given as a
    /// list or as Calico's comma-separated string.
    @Test func failoverFromDeadFirstEndpoint() throws {
        let etcd = try EtcdServer()
        let dead = "http://127.0.0.1:\(try EtcdServer.freePorts(1)[0])"
        for endpoints in [[dead, etcd.endpoint], ["\(dead), \(etcd.endpoint)"]] {
            let s = try store(etcd, endpoints: endpoints, timeout: 3)
            let took = try elapsed {
                let r = try s.put("/failover", "ok")
                #expect(try s.get("/failover")?.modRevision == r)
            }
            #expect(took < 1, "failover took \(took) s")
        }
        // Every endpoint dead: .unavailable, at once.
        let s = try store(etcd, endpoints: [dead, dead], timeout: 3)
        guard case .unavailable? = datastoreError({ _ = try s.get("/failover") }) else {
            Issue.record("all endpoints dead must be .unavailable")
            return
        }
    }

    /// With etcd stopped every call fails with `.unavailable` within the deadline and a
    /// write is known not to have happened; when etcd is back the same store works.
    @Test func stoppedEtcdIsUnavailableThenRecovers() throws {
        let etcd = try EtcdServer()
        let s = try store(etcd, timeout: 2)
        try s.put("/k", "before")
        etcd.stop()
        for call in ["get", "put", "list", "watch"] {
            var error: DatastoreError?
            let took = elapsed {
                error = datastoreError {
                    switch call {
                    case "get": _ = try s.get("/k")
                    case "put": try s.put("/k", "while down")
                    case "list": _ = try s.list(prefix: "/")
                    default: _ = try s.watch(prefix: "/", after: 0)
                    }
                }
            }
            guard case .unavailable? = error else {
                Issue.record("\(call) with etcd stopped: expected .unavailable, got \(String(describing: error))")
                continue
            }
            #expect(took < 2.5, "\(call) took \(took) s with a 2 s deadline")
        }
        try etcd.start()
        #expect(try s.get("/k")?.value == "before", "the write made while etcd was down must not exist")
        try s.put("/k", "after")
        #expect(try etcd.storedValue("/k") == Data("after".utf8))
    }

    /// A frozen etcd takes the request but never answers: the write ends in `.timeout`
    /// (sent, outcome unknown: IPAM re-reads rather than assuming failure) at the
    /// deadline, as does a read; once etcd thaws the same store works again.
    @Test func frozenEtcdTimesOutAtTheDeadline() throws {
        let etcd = try EtcdServer()
        let s = try store(etcd, timeout: 1)
        try s.put("/k", "v0")
        etcd.pause()
        defer { etcd.resume() }
        for call in ["put", "get"] {
            var error: DatastoreError?
            let took = elapsed {
                error = datastoreError { if call == "put" { try s.put("/k", "v1") } else { _ = try s.get("/k") } }
            }
            guard case .timeout? = error else {
                Issue.record("\(call) to a frozen etcd: expected .timeout, got \(String(describing: error))")
                continue
            }
            #expect(took >= 0.9 && took < 1.6, "\(call) with a 1 s deadline took \(took) s")
        }
        etcd.resume()
        let after = try #require(try s.get("/k"))
        #expect(["v0", "v1"].contains(after.value))
        try s.put("/k", "v2")
        #expect(try etcd.storedValue("/k") == Data("v2".utf8))
    }

    /// A watch whose etcd restarts reports `.unavailable` while etcd is down, then
    /// resumes where it left off: nothing lost, nothing repeated.
    @Test func watchResumesAfterRestart() throws {
        let etcd = try EtcdServer()
        let s = try store(etcd, timeout: 2)
        let r0 = try s.currentRevision()
        let w = try s.watch(prefix: "/w/", after: r0)
        try s.put("/w/a", "1")
        #expect(try w.next(timeout: 5).map(\.kv.value) == ["1"])
        etcd.stop()
        var sawUnavailable = false
        for _ in 0..<3 {
            do { _ = try w.next(timeout: 0.5) } catch { if case .unavailable = error { sawUnavailable = true } }
        }
        #expect(sawUnavailable, "a watch on a stopped etcd must say .unavailable")
        try etcd.start()
        try etcd.etcdctl(["put", "/w/b", "2"])
        var events: [WatchEvent] = []
        let end = Date().addingTimeInterval(5)
        while events.isEmpty && Date() < end { events += (try? w.next(timeout: 1)) ?? [] }
        #expect(events.map(\.kv.key) == ["/w/b"])
        #expect(try w.next(timeout: 0.3) == [])
    }

    /// An endpoint list that cannot work is a configuration error at once.
    @Test func badConfiguration() {
        let cases: [EtcdSettings] = [
            EtcdSettings(endpoints: []),
            EtcdSettings(endpoints: ["ftp://127.0.0.1:2379"]),
            EtcdSettings(endpoints: ["http://127.0.0.1:99999"]),
            EtcdSettings(endpoints: ["https://127.0.0.1:2379"], caCertFile: "/nonexistent/ca.pem"),
            EtcdSettings(endpoints: ["https://127.0.0.1:2379"], certFile: "/etc/hostname"),
        ]
        for settings in cases {
            do {
                _ = try EtcdDatastore(settings: settings)
                Issue.record("\(settings) must be refused")
            } catch {
                guard case .failed = error else { Issue.record("\(settings): \(error) is not .failed"); continue }
            }
        }
    }
}

// MARK: - TLS

@Suite(.enabled(if: EtcdServer.isTLSAvailable, "needs /usr/bin/etcd, /usr/bin/etcdctl and the openssl CLI"))
struct EtcdTLSTests {
    /// Certificates are checked both ways: without our client certificate etcd refuses,
    /// with the wrong CA we refuse etcd, and a name the certificate does not carry is
    /// refused (hostname verification). All are `.failed`, not "try again later".
    @Test func certificatesAreVerified() throws {
        let etcd = try EtcdServer(tls: true)
        let c = try #require(etcd.certificates)
        let ok = try store(etcd)
        try ok.put("/tls", "yes")

        let attempts: [(String, EtcdSettings)] = [
            ("no client certificate", EtcdSettings(endpoints: [etcd.endpoint], caCertFile: c.caCert)),
            ("wrong CA", EtcdSettings(endpoints: [etcd.endpoint], caCertFile: c.clientCert, certFile: c.clientCert, keyFile: c.clientKey)),
            ("name not in the certificate", EtcdSettings(endpoints: ["https://localhost:\(etcd.clientPort)"],
                                                         caCertFile: c.caCert, certFile: c.clientCert, keyFile: c.clientKey)),
            ("plain HTTP to a TLS port", EtcdSettings(endpoints: ["http://127.0.0.1:\(etcd.clientPort)"])),
        ]
        for (what, settings) in attempts {
            let s = try EtcdDatastore(settings: settings)
            let error = datastoreError { _ = try s.get("/tls") }
            switch (what, error) {
            case ("plain HTTP to a TLS port", .some): break
            case (_, .failed?): break
            default: Issue.record("\(what): expected .failed, got \(String(describing: error))")
            }
        }
        #expect(try ok.get("/tls")?.value == "yes")
    }

    /// A TLS connection is kept and reused: after the first call, fifty more go over the
    /// very same socket (our open sockets to etcd, from /proc, keep their inode).
    @Test func connectionIsReused() throws {
        let etcd = try EtcdServer(tls: true)
        let s = try store(etcd)
        try s.put("/r/first", "x")
        let before = try ourSockets(to: etcd.clientPort)
        for i in 0..<50 { try s.put("/r/\(i)", "\(i)") }
        #expect(try s.list(prefix: "/r/").kvs.count == 51)
        let after = try ourSockets(to: etcd.clientPort)
        #expect(before.count == 1, "our connections to etcd after one call: \(before)")
        #expect(after == before, "sockets before \(before), after \(after)")
    }
}

/// Inodes of this process's open TCP sockets connected to 127.0.0.1:`port`: the
/// sockets in /proc/net/tcp with that remote end, that /proc/self/fd links to.
private func ourSockets(to port: Int) throws -> Set<String> {
    // /proc files report size 0: read to the end rather than by size.
    let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/net/tcp"))
    defer { try? file.close() }
    let table = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
    let remote = String(format: "0100007F:%04X", port)
    var toPort: Set<String> = []
    for line in table.split(separator: "\n").dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        if f.count > 9, f[2] == remote, f[3] == "01" { toPort.insert(String(f[9])) }
    }
    var ours: Set<String> = []
    for fd in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd),
              link.hasPrefix("socket:[") else { continue }
        let inode = String(link.dropFirst("socket:[".count).dropLast())
        if toPort.contains(inode) { ours.insert(inode) }
    }
    return ours
}
