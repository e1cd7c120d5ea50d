import CalicoAPI
import Datastore
import Felix
import Foundation
import JSON
import Policy
import TestSupport

/// An nftables backend that only records: each script felix sends, with a generation
/// counter that moves on every apply as the kernel's does.
final class RecordingNFT: NFTablesBackend, @unchecked Sendable {
    var scripts: [String] = []
    var gen: UInt32 = 7
    var tableExists = false

    func apply(_ script: String) throws(FelixError) {
        scripts.append(script)
        gen &+= 1
        tableExists = true
    }

    func listTable() throws(FelixError) -> String? { tableExists ? #"{"nftables": []}"# : nil }
    func generation() -> UInt32? { gen }
}

/// Real `nft` run inside a test namespace (`ip netns exec`), for in-process kernel tests.
/// The generation is not readable from outside the namespace, so felix falls back to
/// comparing the listed table on every drift check.
final class NamespacedNFT: NFTablesBackend, @unchecked Sendable {
    let namespace: String
    var applied = 0
    init(namespace: String) { self.namespace = namespace }

    func apply(_ script: String) throws(FelixError) {
        let r: CommandResult
        do { r = try Command.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], stdin: Data(script.utf8)) } catch {
            throw .nft(command: "-f -", status: "cannot start", stderr: "\(error)")
        }
        guard r.status == 0 else { throw .nft(command: "-f -", status: "exit \(r.status)", stderr: r.stderrText) }
        applied += 1
    }

    func listTable() throws(FelixError) -> String? {
        let r: CommandResult
        do { r = try Command.run(["ip", "netns", "exec", namespace, "nft", "-j", "list", "table", "inet", "calico"]) } catch {
            throw .nft(command: "list", status: "cannot start", stderr: "\(error)")
        }
        return r.status == 0 ? r.stdoutText : nil
    }

    func generation() -> UInt32? { nil }
}

/// The seed's three workloads on node `hostA`.
struct Workload {
    var name: String
    var labels: [String: String]
    var ip: String
    var containerID: String { "cid-" + name }
    /// The host-side veth. Shaped like the plugin's names (`cali` + 11 hex digits); the
    /// plugin's own name replaces it when the plugin attaches the workload.
    var interfaceName: String

    init(name: String, labels: [String: String], ip: String) {
        self.name = name
        self.labels = labels
        self.ip = ip
        interfaceName = "cali" + String(StableName.hex("cid-" + name + "\u{0}eth0").prefix(11))
    }

    func endpoint(node: String = "hostA") -> WorkloadEndpoint {
        var wep = WorkloadEndpoint(name: "\(node)-cni-\(containerID.replacingOccurrences(of: "-", with: "--"))-eth0",
                                   node: node, containerID: containerID, endpoint: "eth0", ipNetworks: [ip + "/32"],
                                   profiles: ["calico"], interfaceName: interfaceName, mac: "ee:ee:ee:ee:ee:ee")
        wep.metadata.labels = labels.merging(["projectcalico.org/namespace": "default",
                                              "projectcalico.org/orchestrator": "cni"]) { a, _ in a }
        return wep
    }

    static let bookstoreFrontend = Workload(name: "bookstore-frontend", labels: ["biz_type": "bookstore"], ip: "172.29.0.2")
    static let bookstoreServer = Workload(name: "bookstore-server", labels: ["biz_type": "bookstore", "role": "server"], ip: "172.29.0.3")
    static let fruitstoreFrontend = Workload(name: "fruitstore-frontend", labels: ["biz_type": "fruitstore"], ip: "172.29.0.4")
    static let lateServer = Workload(name: "bookstore-server-2", labels: ["biz_type": "bookstore", "role": "server"], ip: "172.29.0.5")
}

enum StableName {
    static func hex(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let d = String(h, radix: 16)
        return String(repeating: "0", count: 16 - d.count) + d
    }
}

/// The seed's policy as calicoctl stores it.
let seedPolicyJSON = """
    {"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"allow-bookstore-cliient-to-server","namespace":"default"},
     "spec":{"selector":"biz_type == 'bookstore' && role == 'server'","types":["Ingress"],
     "ingress":[{"action":"Allow","protocol":"TCP","source":{"selector":"biz_type == 'bookstore'"},"destination":{"ports":[80]}},
                {"action":"Deny","protocol":"TCP","source":{"selector":"biz_type == 'fruitstore'"},"destination":{"ports":[80]}}]}}
    """
let seedPolicyKey = CalicoKeys.resource(plural: "networkpolicies", namespace: "default", name: "allow-bookstore-cliient-to-server")

func put<R: CalicoResource>(_ store: any Datastore, _ r: R) throws {
    try store.put(r.key, ResourceClient.storedText(r))
}

/// A store holding the network's profile and the seed's three workloads.
func seededStore(_ store: any Datastore = InMemoryDatastore()) throws -> any Datastore {
    try put(store, Profile.networkDefault(name: "calico"))
    for w in [Workload.bookstoreFrontend, .bookstoreServer, .fruitstoreFrontend] { try put(store, w.endpoint()) }
    return store
}
