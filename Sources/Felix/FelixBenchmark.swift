#if canImport(Glibc)
import Glibc
#endif
import CalicoAPI
import Datastore
import JSON
import POSIX
import Policy
import SQLiteDatastore

/// `calico-felix --bench`: programs the kernel of the namespace it runs in from a
/// synthetic cluster in a throw-away SQLite store, and times what issue 5 asks for:
/// a full sync of 1,000 policies over 500 local endpoints, one policy change from the
/// datastore write to the rules being in the kernel, and one new endpoint likewise.
///
/// Run it in a scratch namespace (`ip netns exec bench calico-felix --bench`): it
/// replaces `table inet calico` there.
public enum FelixBenchmark {
    public struct Options: Sendable {
        public var endpoints = 500
        public var policies = 1000
        /// How many single changes to time.
        public var changes = 20
        public init() {}
    }

    static let node = "bench-node"
    static let apps = 50

    public static func run(_ o: Options, nft: any NFTablesBackend, log: FelixLog) throws(FelixError) -> String {
        var template = Array("/tmp/felix-bench-XXXXXX".utf8CString)
        guard let dirPtr = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw .usage("mkdtemp failed")
        }
        let dir = String(cString: dirPtr)
        let path = dir + "/calico.db"
        defer {
            for f in ["", "-wal", "-shm", "-journal"] { unlink(path + f) }
            rmdir(dir)
        }
        let store: SQLiteDatastore
        do { store = try SQLiteDatastore(path: path, timeout: 30) } catch { throw .datastore(error) }
        defer { store.close() }

        var out = "calico-felix benchmark: \(o.endpoints) local endpoints (+\(o.endpoints / 5) remote), \(o.policies) NetworkPolicies\n"
        var t = MonotonicClock.now()
        try populate(store, o)
        out += "  populate datastore: \(ms(MonotonicClock.now() - t))\n"

        let quiet = FelixLog(level: .warning, sink: { line in log.log(.warning, line) })
        var options = Felix.Options(nodeName: node)
        options.driftCheckInterval = 3600
        let felix = Felix(options: options, store: store, nft: nft, log: quiet)
        try nft.apply("add table inet calico\ndelete table inet calico\n")
        try felix.installBaseTable()
        t = MonotonicClock.now()
        let full = try felix.synchronize()
        let fullTotal = MonotonicClock.now() - t
        out += "  full sync: \(ms(fullTotal)) total (list \(ms(full.listSeconds)), compute+render \(ms(full.computeSeconds)), "
            + "nft \(ms(full.nftSeconds))); \(full.rules) rules, \(full.policies) policies active, \(full.scriptBytes / 1024) KiB script"
            + "  [goal ≤ 2000 ms: \(fullTotal <= 2 ? "met" : "MISSED")]\n"

        // Restart: the table exists; the first sync replaces it atomically.
        let restart = Felix(options: options, store: store, nft: nft, log: quiet)
        t = MonotonicClock.now()
        _ = try restart.synchronize()
        out += "  full sync over an existing table (restart): \(ms(MonotonicClock.now() - t))\n"
        // No-op drift check (the generation is unchanged).
        t = MonotonicClock.now()
        let repaired = try restart.checkDrift()
        out += "  drift check with nothing changed: \(ms(MonotonicClock.now() - t)) (repair: \(repaired))\n"

        // One policy change at a time, write → rules in the kernel.
        var policyLatencies: [Double] = [], policyNFT: [Double] = [], policyCompute: [Double] = []
        for k in 0..<o.changes {
            let j = (k * 37) % max(1, o.policies)
            let policy = makePolicy(j, o, port: 9000 + k)
            let t0 = MonotonicClock.now()
            let rev: Int64
            do { rev = try store.put(policy.key, ResourceClient.storedText(policy)) } catch { throw .datastore(error) }
            let report = try waitFor(rev, restart)
            policyLatencies.append(MonotonicClock.now() - t0)
            policyNFT.append(report.nftSeconds)
            policyCompute.append(report.computeSeconds)
            if k == o.changes - 1 {
                out += "  last change: dataplane \(ms(report.dataplaneSeconds)), render \(ms(report.renderSeconds)), diff \(ms(report.diffSeconds))\n"
            }
        }
        out += "  one policy change, datastore write → in the kernel: " + summary(policyLatencies)
            + "; of which compute \(ms(median(policyCompute))), nft \(ms(median(policyNFT)))  [goal ≤ 100 ms: \(median(policyLatencies) <= 0.1 ? "met" : "MISSED")]\n"

        // A new workload: its WorkloadEndpoint written → its chains and dispatch entries in.
        var addLatencies: [Double] = [], addNFT: [Double] = [], addCompute: [Double] = [], addBytes: [Int] = []
        for k in 0..<o.changes {
            let i = o.endpoints + 1000 + k
            let wep = makeEndpoint(i, node: node)
            let t0 = MonotonicClock.now()
            let rev: Int64
            do { rev = try store.put(wep.key, ResourceClient.storedText(wep)) } catch { throw .datastore(error) }
            let report = try waitFor(rev, restart)
            addLatencies.append(MonotonicClock.now() - t0)
            addNFT.append(report.nftSeconds)
            addCompute.append(report.computeSeconds)
            addBytes.append(report.scriptBytes)
        }
        out += "  new endpoint, WorkloadEndpoint write → programmed: " + summary(addLatencies)
            + "; of which compute \(ms(median(addCompute))), nft \(ms(median(addNFT))) for \(addBytes.sorted()[addBytes.count / 2]) bytes\n"

        // Proof the last change is in the kernel, not only in felix's head.
        let listing = (try? nft.listTable()) ?? nil
        let lastIf = "calib\(o.endpoints + 1000 + o.changes - 1)"
        out += "  kernel check: chain cali-tw-\(lastIf) \(listing?.contains("\"cali-tw-\(lastIf)\"") == true ? "present" : "MISSING")\n"
        try nft.apply("delete table inet calico\n")
        return out
    }

    private static func waitFor(_ revision: Int64, _ felix: Felix) throws(FelixError) -> Felix.SyncReport {
        let deadline = MonotonicClock.now() + 10
        var last: Felix.SyncReport?
        while felix.revision < revision {
            guard MonotonicClock.now() < deadline else { throw .usage("change at revision \(revision) not seen within 10 s") }
            if let r = try felix.processChanges(timeout: 1) { last = r }
        }
        return last ?? Felix.SyncReport(full: false)
    }

    static func makeEndpoint(_ i: Int, node: String) -> WorkloadEndpoint {
        let name = "\(node)-cni-bench\(i)-eth0"
        var wep = WorkloadEndpoint(name: name, node: node, containerID: "bench\(i)", endpoint: "eth0",
                                   ipNetworks: ["10.\(64 + i / 62500).\((i / 250) % 250).\(i % 250 + 1)/32"],
                                   profiles: ["calico"], interfaceName: "calib\(i)")
        wep.metadata.labels = ["app": "app-\(i % apps)", "tier": ["web", "db", "cache"][i % 3],
                               "projectcalico.org/namespace": "default", "projectcalico.org/orchestrator": "cni"]
        return wep
    }

    static func makePolicy(_ j: Int, _ o: Options, port: Int = 443) -> NetworkPolicy {
        var ingress = [
            Rule(action: .allow, protocol: .tcp, source: EntityRule(selector: "app == 'app-\((j * 7) % apps)'"),
                 destination: EntityRule(ports: [.number(80), .number(UInt16(port)), .range(min: 8000, max: 8100)])),
            Rule(action: .deny, protocol: .tcp, source: EntityRule(nets: ["192.168.0.0/16"])),
        ]
        if j % 10 == 0 { ingress.insert(Rule(action: .log, protocol: .udp), at: 0) }
        let egress = j % 4 == 0
            ? [Rule(action: .allow, protocol: .tcp, destination: EntityRule(selector: "tier == 'db'", ports: [.number(5432)]))]
            : []
        return NetworkPolicy(name: "policy-\(j)", order: Double(j % 100), selector: "app == 'app-\(j % apps)'",
                             ingress: ingress, egress: egress).withDefaults()
    }

    private static func populate(_ store: SQLiteDatastore, _ o: Options) throws(FelixError) {
        var puts: [Operation] = []
        let profile = Profile.networkDefault(name: "calico")
        puts.append(.put(key: profile.key, value: ResourceClient.storedText(profile)))
        for i in 0..<o.endpoints {
            let w = makeEndpoint(i, node: node)
            puts.append(.put(key: w.key, value: ResourceClient.storedText(w)))
        }
        for i in 0..<(o.endpoints / 5) {
            let w = makeEndpoint(100_000 + i, node: "other-node")
            puts.append(.put(key: w.key, value: ResourceClient.storedText(w)))
        }
        for j in 0..<o.policies {
            let p = makePolicy(j, o)
            puts.append(.put(key: p.key, value: ResourceClient.storedText(p)))
        }
        var start = 0
        while start < puts.count {
            let chunk = Array(puts[start..<min(start + 500, puts.count)])
            do { _ = try store.transact(Transaction(if: [], then: chunk)) } catch { throw .datastore(error) }
            start += 500
        }
    }

    private static func median(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return 0 }
        return xs.sorted()[xs.count / 2]
    }

    private static func summary(_ xs: [Double]) -> String {
        guard !xs.isEmpty else { return "n/a" }
        let s = xs.sorted()
        return "median \(ms(s[s.count / 2])), p90 \(ms(s[min(s.count - 1, s.count * 9 / 10)])), max \(ms(s.last!)) (n=\(s.count))"
    }
}
