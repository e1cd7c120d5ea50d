import CalicoAPI
import Datastore
import Felix
import Foundation
import JSON
import Policy
import Testing
import TestSupport

struct FelixAgentTests {
    func felix(_ store: any Datastore, _ nft: any NFTablesBackend) -> Felix {
        Felix(options: Felix.Options(nodeName: "hostA"), store: store, nft: nft, log: FelixLog(level: .error))
    }

    @Test func firstSyncReplacesTheTableThenOnlyChangesFollow() throws {
        let store = try seededStore(), nft = RecordingNFT()
        let f = felix(store, nft)
        try f.installBaseTable()
        #expect(nft.scripts.count == 1, "base table installed when missing")
        let report = try f.synchronize()
        #expect(report.full && report.localEndpoints == 3)
        let full = try #require(nft.scripts.last)
        #expect(full.contains("delete table inet calico\ntable inet calico {"))
        #expect(full.contains("chain cali-tw-\(Workload.bookstoreServer.interfaceName) {"))

        try store.put(seedPolicyKey, seedPolicyJSON)
        let change = try #require(try f.processChanges(timeout: 2))
        #expect(!change.full)
        let diff = try #require(nft.scripts.last)
        #expect(!diff.contains("delete table"))
        #expect(diff.contains("add chain inet calico cali-pi-default/allow-bookstore-cliient-to-server"))
        #expect(diff.contains("flush chain inet calico cali-tw-\(Workload.bookstoreServer.interfaceName)"))
        // The frontends' chains do not change: they are not selected.
        #expect(!diff.contains("cali-tw-\(Workload.bookstoreFrontend.interfaceName)"))
        #expect(try f.processChanges(timeout: 0.05) == nil)
    }

    @Test func writesTheStatusRecordEachSync() throws {
        let store = try seededStore(), nft = RecordingNFT()
        let f = felix(store, nft)
        try f.synchronize()
        let kv = try #require(try store.get(Felix.statusKey(node: "hostA")))
        #expect(kv.key == "/calico/felix/v1/host/hostA/status")
        let status = try JSON(parsing: kv.value)
        #expect(status["pid"]?.intValue == Int(getpid()))
        #expect(status["endpoints"]?.intValue == 3)
        #expect(status["policies"]?.intValue == 0)
        let stamp = try #require(status["lastSync"]?.stringValue)
        #expect(stamp.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil, "\(stamp)")
        try store.put(seedPolicyKey, seedPolicyJSON)
        _ = try f.processChanges(timeout: 2)
        let after = try JSON(parsing: try #require(try store.get(Felix.statusKey(node: "hostA"))).value)
        #expect(after["policies"]?.intValue == 1)
    }

    @Test func aDeletedEndpointTakesItsChainsAndDispatchEntriesWithIt() throws {
        let store = try seededStore(), nft = RecordingNFT()
        let f = felix(store, nft)
        try f.synchronize()
        let gone = Workload.fruitstoreFrontend
        try store.delete(gone.endpoint().key)
        _ = try #require(try f.processChanges(timeout: 2))
        let diff = try #require(nft.scripts.last)
        #expect(diff.contains("delete chain inet calico cali-tw-\(gone.interfaceName)"))
        #expect(diff.contains("delete chain inet calico cali-fw-\(gone.interfaceName)"))
        // The dispatch maps are re-declared without it (in the same transaction).
        #expect(diff.contains("flush map inet calico cali-to-wl"))
        #expect(diff.contains("flush map inet calico cali-from-wl"))
        #expect(!diff.contains("\"\(gone.interfaceName)\" :"))
        #expect(diff.contains("\"\(Workload.bookstoreServer.interfaceName)\" : goto cali-tw-\(Workload.bookstoreServer.interfaceName)"))
    }

    @Test func endpointsOfOtherNodesAreNotProgrammed() throws {
        let store = try seededStore(), nft = RecordingNFT()
        try put(store, Workload(name: "elsewhere", labels: ["biz_type": "bookstore"], ip: "172.29.9.9").endpoint(node: "hostB"))
        let f = felix(store, nft)
        let r = try f.synchronize()
        #expect(r.localEndpoints == 3)
        // ...but its address is a member of selector sets once a policy uses one.
        try store.put(seedPolicyKey, seedPolicyJSON)
        _ = try f.processChanges(timeout: 2)
        #expect(nft.scripts.last?.contains("172.29.9.9") == true)
    }

    @Test func aCompactedWatchIsRecoveredByRelisting() throws {
        let store = InMemoryDatastore(historyLimit: 10_000)
        _ = try seededStore(store)
        let nft = RecordingNFT()
        let f = felix(store, nft)
        try f.synchronize()
        try store.put(seedPolicyKey, seedPolicyJSON)
        try store.compact(through: try store.currentRevision())
        #expect {
            _ = try f.processChanges(timeout: 1)
        } throws: { error in
            guard case FelixError.datastore(.compacted) = error else { return false }
            return true
        }
        let r = try f.synchronize()
        #expect(r.policies == 1)
    }

    @Test func anUnreadableResourceCountsAsDeleted() throws {
        let store = try seededStore(), nft = RecordingNFT()
        let f = felix(store, nft)
        try f.synchronize()
        try store.put(Workload.bookstoreServer.endpoint().key, "{not json")
        let r = try #require(try f.processChanges(timeout: 2))
        #expect(r.localEndpoints == 2)
    }

    @Test func felixConfigurationSetsTheEndpointToHostAction() throws {
        let store = try seededStore(), nft = RecordingNFT()
        let f = felix(store, nft)
        try f.synchronize()
        let config = FelixConfiguration(name: "default", spec: ["defaultEndpointToHostAction": "Accept"])
        try put(store, config)
        _ = try #require(try f.processChanges(timeout: 2))
        let diff = try #require(nft.scripts.last)
        #expect(diff.contains("flush chain inet calico cali-wl-to-host"))
        #expect(diff.contains("add rule inet calico cali-wl-to-host accept"))
    }

    @Test func driftCheckIsFreeWhileTheGenerationStands() throws {
        let store = try seededStore(), nft = RecordingNFT()
        let f = felix(store, nft)
        try f.synchronize()
        let before = nft.scripts.count
        #expect(try f.checkDrift() == false)
        #expect(nft.scripts.count == before)
        // Another commit happened and our table is unreadable as ours: felix rewrites it.
        nft.gen &+= 1
        #expect(try f.checkDrift() == true)
        #expect(nft.scripts.last?.contains("delete table inet calico") == true)
    }
}

let canProgramKernel = TestEnvironment.canUseNamespaces && TestEnvironment.has("nft")

/// felix against the real kernel, in a namespace of its own.
@Suite(.enabled(if: canProgramKernel, "needs root, ip and nft"))
struct FelixKernelTests {
    @Test func programsTheTableAndRepairsDrift() throws {
        let ns = try TestNamespace("fk")
        defer { ns.remove() }
        let nft = NamespacedNFT(namespace: ns.name)
        let store = try seededStore()
        let f = Felix(options: Felix.Options(nodeName: "hostA"), store: store, nft: nft, log: FelixLog(level: .error))
        try f.installBaseTable()
        try store.put(seedPolicyKey, seedPolicyJSON)
        try f.synchronize()
        let server = Workload.bookstoreServer.interfaceName
        let chain = try ns.check(["nft", "list", "chain", "inet", "calico", "cali-tw-\(server)"])
        #expect(chain.contains("jump cali-pi-default/allow-bookstore-cliient-to-server"))
        #expect(try f.checkDrift() == false)

        // Someone deletes the whole table: it comes back on the next check.
        try ns.check(["nft", "delete", "table", "inet", "calico"])
        #expect(try f.checkDrift() == true)
        #expect(try ns.run(["nft", "list", "chain", "inet", "calico", "cali-tw-\(server)"]).status == 0)

        // Someone empties one chain: repaired too.
        try ns.check(["nft", "flush", "chain", "inet", "calico", "cali-pi-default/allow-bookstore-cliient-to-server"])
        #expect(try f.checkDrift() == true)
        let policyChain = try ns.check(["nft", "list", "chain", "inet", "calico", "cali-pi-default/allow-bookstore-cliient-to-server"])
        #expect(policyChain.contains("drop"))
        #expect(try f.checkDrift() == false)

        // A deleted endpoint leaves nothing behind in the kernel.
        try store.delete(Workload.bookstoreServer.endpoint().key)
        _ = try f.processChanges(timeout: 2)
        let table = try ns.check(["nft", "list", "table", "inet", "calico"])
        #expect(!table.contains(server))
        #expect(!table.contains("cali-pi-default/allow-bookstore-cliient-to-server"), "the policy selects no local endpoint now")
    }
}
