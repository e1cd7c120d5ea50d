import CalicoAPI
import Datastore
import Foundation
import IPAM
import IPAddress
import JSON
import Testing

@Suite struct AssignTests {
    @Test(arguments: Backend.allCases)
    func firstAssignSetsUpAnEmptyDatastore(_ backend: Backend) throws {
        let t = try TestStore(backend)
        let ipam = IPAMClient(store: t.store)
        let r = try ipam.assign("calico.c1")
        let a = try #require(r.ipv4.first)
        #expect(r.ipv4.count == 1 && r.ipv6.isEmpty && a.isNew)
        #expect(IPNetwork("192.168.0.0/16")!.contains(a.address))

        // What calico-node would have written.
        let pool = try #require(try t.value("/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"))
        #expect(pool["spec"]?.compactText
            == #"{"blockSize":26,"cidr":"192.168.0.0/16","ipipMode":"Never","natOutgoing":true,"nodeSelector":"all()","vxlanMode":"Never"}"#)
        let info = try #require(try t.value("/calico/resources/v3/projectcalico.org/clusterinformations/default"))
        #expect(info["spec"]?["datastoreReady"] == true)
        #expect(info["kind"] == "ClusterInformation")
        let node = try #require(try t.value("/calico/resources/v3/projectcalico.org/nodes/node1"))
        #expect(node["metadata"]?["name"] == "node1" && node["kind"] == "Node")
        #expect(try t.store.get("/calico/ipam/v2/config")?.value == #"{"auto_allocate_blocks":true,"strict_affinity":false}"#)

        // The block, its affinity and the handle, byte for byte as REFERENCE.md §3 shows them
        // (plus upstream's `strictAffinity`).
        let cidr = block(of: a.address, size: 26)
        #expect(a.block == cidr)
        let seg = cidr.description.replacingOccurrences(of: "/", with: "-")
        let blockText = try #require(try t.store.get("/calico/ipam/v2/assignment/ipv4/block/\(seg)")?.value)
        let allocations = "[0" + String(repeating: ",null", count: 63) + "]"
        let unallocated = "[" + (1...63).map(String.init).joined(separator: ",") + "]"
        #expect(blockText == #"{"affinity":"host:node1","allocations":\#(allocations),"attributes":[{"handle_id":"calico.c1","secondary":{"node":"node1"}}],"cidr":"\#(cidr)","deleted":false,"strictAffinity":false,"unallocated":\#(unallocated)}"#)
        #expect(a.address == cidr.address(at: 0))
        #expect(try t.store.get("/calico/ipam/v2/host/node1/ipv4/block/\(seg)")?.value == #"{"deleted":false,"state":"confirmed"}"#)
        #expect(try t.store.get("/calico/ipam/v2/handle/calico.c1")?.value == #"{"block":{"\#(cidr)":1},"deleted":false}"#)
    }

    @Test(arguments: Backend.allCases)
    func sequentialAssignsAreDistinctFromOneAffineBlock(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.10.0.0/16")
        let ipam = IPAMClient(store: t.store)
        var seen = Set<IPAddress>()
        for i in 0..<20 { seen.insert(try #require(try ipam.assign("net.c\(i)").ipv4.first).address) }
        #expect(seen.count == 20)
        #expect(Set(seen.map { block(of: $0, size: 26) }).count == 1)
        #expect(try t.keys("/calico/ipam/v2/host/node1/ipv4/block/").count == 1)
        #expect(try ipam.handleIDs().count == 20)
    }

    @Test(arguments: Backend.allCases)
    func concurrentAssignsOnOneHostAllSucceed(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.20.0.0/16")
        // Separate connections, as separate plugin processes would have.
        let clients = try (0..<24).map { _ in IPAMClient(store: try t.connection()) }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 24) { i in
            results.record(i, Result { try clients[i].assign("calico.c\(i)") })
        }
        let addresses = try results.all().map { try #require($0.ipv4.first).address }
        #expect(addresses.count == 24)
        #expect(Set(addresses).count == 24)
        // All from the one block this host claimed.
        #expect(Set(addresses.map { block(of: $0, size: 26) }).count == 1)
        let affinities = try t.keys("/calico/ipam/v2/host/")
        #expect(affinities.count == 1)
        let blockKV = try #require(try t.store.list(prefix: "/calico/ipam/v2/assignment/ipv4/block/").kvs.first)
        let stored = try AllocationBlock(jsonText: blockKV.value)
        #expect(stored.usedCount == 24 && stored.affinity == "host:node1")
        #expect(try IPAMClient(store: t.store).handleIDs().count == 24)
    }

    @Test(arguments: Backend.allCases)
    func twoHostsNeverShareABlock(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.30.0.0/24", blockSize: 28)
        let clients = try (0..<16).map { _ in IPAMClient(store: try t.connection()) }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            results.record(i, Result { try clients[i].assign("calico.c\(i)", node: i % 2 == 0 ? "hostA" : "hostB") })
        }
        _ = try results.all()
        let ipam = IPAMClient(store: t.store)
        var owner: [IPNetwork: String] = [:]
        for b in try ipam.blocks() {
            let node = try #require(b.affineNode)
            owner[b.cidr] = node
            // Every address in the block belongs to its own host.
            for o in b.allocations.indices { if let a = b.attribute(ordinal: o) { #expect(a.secondary?["node"] == node) } }
        }
        #expect(Set(owner.values) == ["hostA", "hostB"])
        // Each affinity key names a block whose affinity is that host, and no block has two.
        for key in try t.keys("/calico/ipam/v2/host/") {
            let parts = key.split(separator: "/")
            let node = String(parts[4])
            let cidr = try #require(IPNetwork(CalicoKeys.cidr(fromKeySegment: parts.last!)))
            #expect(owner[cidr] == node)
        }
        #expect(try t.keys("/calico/ipam/v2/host/").count == owner.count)
    }

    @Test(arguments: Backend.allCases)
    func exhaustionClaimsTheNextBlock(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("small", "10.40.0.0/28", blockSize: 30)
        let ipam = IPAMClient(store: t.store)
        let ips = try (0..<6).map { try #require(try ipam.assign("n.c\($0)").ipv4.first).address }
        #expect(Set(ips).count == 6)
        let blocks = try ipam.blocks()
        #expect(blocks.count == 2)
        #expect(blocks.allSatisfy { $0.affinity == "host:node1" })
        #expect(blocks.map(\.usedCount).sorted() == [2, 4])
        #expect(try t.keys("/calico/ipam/v2/host/node1/ipv4/block/").count == 2)
    }

    @Test(arguments: Backend.allCases)
    func borrowingAndStrictAffinity(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("one-block", "10.50.0.0/30", blockSize: 30)
        let ipam = IPAMClient(store: t.store)
        let first = try #require(try ipam.assign("n.a", node: "hostA").ipv4.first)

        try t.setStrictAffinity(true)
        #expect(throws: IPAMError.exhausted(ipVersion: 4, requested: 1, assigned: 0)) { try ipam.assign("n.b", node: "hostB") }
        #expect(try ipam.handleIDs() == ["n.a"])

        try t.setStrictAffinity(false)
        let borrowed = try #require(try ipam.assign("n.b", node: "hostB").ipv4.first)
        #expect(borrowed.block == first.block && borrowed.address != first.address)
        // The block stays hostA's; hostB got no affinity.
        #expect(try ipam.blocks().map(\.affinity) == ["host:hostA"])
        #expect(try t.keys("/calico/ipam/v2/host/hostB/").isEmpty)
        #expect(try ipam.allocation(of: borrowed.address)?.attributes["node"] == "hostB")
    }

    @Test(arguments: Backend.allCases)
    func ipv6UsesSlash122Blocks(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("v4", "10.60.0.0/16")
        try t.addPool("v6", "fd00:1234::/64")
        let ipam = IPAMClient(store: t.store)
        let r = try ipam.assign("n.c", v4: 1, v6: 1)
        let v6 = try #require(r.ipv6.first)
        #expect(v6.block.prefixLength == 122 && IPNetwork("fd00:1234::/64")!.contains(v6.address))
        #expect(r.ipv4.count == 1)
        let seg = v6.block.description.replacingOccurrences(of: "/", with: "-")
        #expect(try t.store.get("/calico/ipam/v2/assignment/ipv6/block/\(seg)") != nil)
        #expect(try t.value("/calico/ipam/v2/host/node1/ipv6/block/\(seg)")?["state"] == "confirmed")
        let blockValue = try #require(try t.value("/calico/ipam/v2/assignment/ipv6/block/\(seg)"))
        #expect(blockValue["allocations"]?.arrayValue?.count == 64)
        #expect(try ipam.addresses(handleID: "n.c") == [r.ipv4[0].address, v6.address])
        #expect(try t.value("/calico/ipam/v2/handle/n.c")?["block"]?.objectValue?.count == 2)
        // IPv6 only.
        let only = try ipam.assign("n.d", v4: 0, v6: 1)
        #expect(only.ipv4.isEmpty && only.ipv6.count == 1)
    }

    @Test func disabledPoolsAndSelectors() throws {
        let t = try TestStore(.memory)
        try t.addPool("off", "10.70.0.0/16", disabled: true)
        try t.addPool("rack-a", "10.71.0.0/16", nodeSelector: "rack == 'a'")
        let ipam = IPAMClient(store: t.store)
        // The node exists without the label: no pool selects it.
        _ = try ResourceClient(store: t.store).create(Node(name: "node1"))
        #expect(throws: IPAMError.noPools(ipVersion: 4, node: "node1")) { try ipam.assign("n.a") }
        #expect(try ipam.handleIDs().isEmpty)

        var node = try #require(try ResourceClient(store: t.store).get(Node.self, name: "node1"))
        node.metadata.labels["rack"] = "a"
        _ = try ResourceClient(store: t.store).update(node)
        let a = try #require(try ipam.assign("n.a").ipv4.first)
        #expect(IPNetwork("10.71.0.0/16")!.contains(a.address))

        // Naming pools: by name or CIDR; a disabled or unknown one is refused.
        #expect(throws: IPAMError.poolNotUsable("off")) { try ipam.assign("n.b", v4Pools: ["off"]) }
        #expect(throws: IPAMError.poolNotUsable("10.99.0.0/16")) { try ipam.assign("n.b", v4Pools: ["10.99.0.0/16"]) }
        try t.addPool("extra", "10.72.0.0/16", nodeSelector: "rack == 'z'")
        // A named pool is used even if its selector does not pick the node (upstream too).
        let b = try #require(try ipam.assign("n.b", v4Pools: ["10.72.0.0/16"]).ipv4.first)
        #expect(IPNetwork("10.72.0.0/16")!.contains(b.address))
        let c = try #require(try ipam.assign("n.c", v4Pools: ["extra"]).ipv4.first)
        #expect(IPNetwork("10.72.0.0/16")!.contains(c.address))
    }

    @Test(arguments: Backend.allCases)
    func repeatedAssignReturnsTheLiveAddress(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.80.0.0/16")
        let ipam = IPAMClient(store: t.store)
        let first = try #require(try ipam.assign("calico.same").ipv4.first)
        let again = try #require(try ipam.assign("calico.same").ipv4.first)
        #expect(first.isNew && !again.isNew)
        #expect(again.address == first.address)
        #expect(try ipam.blocks().map(\.usedCount) == [1])
        #expect(try t.value("/calico/ipam/v2/handle/calico.same")?["block"]?[first.block.description] == 1)
        // Asking for IPv6 as well adds only the IPv6 address.
        try t.addPool("p6", "fd00:80::/64")
        let both = try ipam.assign("calico.same", v4: 1, v6: 1)
        #expect(both.ipv4.map(\.address) == [first.address] && both.ipv6.count == 1 && both.ipv6[0].isNew)
    }

    @Test func aFailedSecondFamilyGivesBackTheFirst() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.81.0.0/16")
        let ipam = IPAMClient(store: t.store)
        #expect(throws: IPAMError.noPools(ipVersion: 6, node: "node1")) { try ipam.assign("n.x", v4: 1, v6: 1) }
        #expect(try ipam.blocks().map(\.usedCount) == [0])
        #expect(try ipam.handleIDs().isEmpty)
    }

    @Test func lostAnswersDoNotLeakOrDuplicate() throws {
        let inner = InMemoryDatastore()
        let setup = IPAMClient(store: inner)
        _ = try setup.assign("warm.up")  // pools, node, block exist
        // Lose the answer of the next (block + handle) transaction.
        let flaky = FlakyStore(inner: inner, failures: 1, applyBeforeFailing: true)
        let ipam = IPAMClient(store: flaky)
        let a = try #require(try ipam.assign("n.lost").ipv4.first)
        #expect(flaky.failed == 1)
        #expect(try setup.addresses(handleID: "n.lost") == [a.address])
        #expect(try setup.blocks().map(\.usedCount) == [2])
        #expect(try inner.get("/calico/ipam/v2/handle/n.lost")?.value.contains(":1}") == true)

        // The same timeout without the write: "try again later", nothing taken; the retry works.
        let flaky2 = FlakyStore(inner: inner, failures: 1, applyBeforeFailing: false)
        #expect(throws: IPAMError.datastore(.timeout("injected: answer lost"))) {
            try IPAMClient(store: flaky2).assign("n.notapplied")
        }
        #expect(flaky2.failed == 1)
        #expect(try setup.addresses(handleID: "n.notapplied").isEmpty)
        #expect(try inner.get("/calico/ipam/v2/handle/n.notapplied") == nil)
        #expect(try setup.blocks().map(\.usedCount) == [2])
        let b = try #require(try IPAMClient(store: flaky2).assign("n.notapplied").ipv4.first)
        #expect(try setup.addresses(handleID: "n.notapplied") == [b.address])
    }

    @Test func aLostClaimIsSettledByRereading() throws {
        let inner = InMemoryDatastore()
        _ = try ResourceClient(store: inner).create(IPPool(name: "p", cidr: "10.82.0.0/16"))
        // Lose the answers of the claim's writes: pending affinity, block create, confirmation,
        // then the first allocation.
        let flaky = FlakyStore(inner: inner, failures: 3, applyBeforeFailing: true, keyFilter: "/calico/ipam/v2/")
        let ipam = IPAMClient(store: flaky)
        let a = try #require(try ipam.assign("n.claim").ipv4.first)
        #expect(flaky.failed == 3)
        let check = IPAMClient(store: inner)
        #expect(try check.blocks().count == 1)
        #expect(try check.addresses(handleID: "n.claim") == [a.address])
        #expect(try inner.list(prefix: "/calico/ipam/v2/host/").kvs.map(\.value) == [#"{"deleted":false,"state":"confirmed"}"#])

        // The same, with the writes not applied: each attempt fails at once with the
        // datastore's error and leaves what it wrote before; the next attempt carries on.
        let inner2 = InMemoryDatastore()
        _ = try ResourceClient(store: inner2).create(IPPool(name: "p", cidr: "10.82.0.0/16"))
        let flaky2 = FlakyStore(inner: inner2, failures: 4, applyBeforeFailing: false, keyFilter: "/calico/ipam/v2/")
        var b: Assignment?
        for attempt in 1...5 where b == nil {
            do { b = try IPAMClient(store: flaky2).assign("n.claim").ipv4.first } catch {
                #expect(error as? IPAMError == .datastore(.timeout("injected: answer lost")))
                #expect(flaky2.failed == attempt, "one write tried per attempt")
            }
        }
        let got = try #require(b)
        #expect(flaky2.failed == 4)
        #expect(try IPAMClient(store: inner2).addresses(handleID: "n.claim") == [got.address])
        #expect(try IPAMClient(store: inner2).blocks().map(\.usedCount) == [1])
        #expect(try inner2.get("/calico/ipam/v2/config") != nil)
        #expect(try inner2.list(prefix: "/calico/ipam/v2/host/").kvs.map(\.value) == [#"{"deleted":false,"state":"confirmed"}"#])
    }

    @Test func staleClaimsHeal() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.83.0.0/24", blockSize: 26)
        // A claim that crashed after writing the pending affinity, before the block.
        try t.store.put("/calico/ipam/v2/host/node1/ipv4/block/10.83.0.128-26", #"{"state":"pending","deleted":false}"#)
        // Another host's stale affinity to a block node1 owns.
        let ipam = IPAMClient(store: t.store)
        let a = try #require(try ipam.assign("n.a").ipv4.first)
        #expect(a.block.description == "10.83.0.128/26")
        #expect(try t.value("/calico/ipam/v2/host/node1/ipv4/block/10.83.0.128-26")?["state"] == "confirmed")
        try t.store.put("/calico/ipam/v2/host/node2/ipv4/block/10.83.0.128-26", #"{"state":"pending","deleted":false}"#)
        let b = try #require(try ipam.assign("n.b", node: "node2").ipv4.first)
        #expect(b.block != a.block)
        #expect(try t.store.get("/calico/ipam/v2/host/node2/ipv4/block/10.83.0.128-26") == nil)
    }

    @Test func maxBlocksPerHost() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.84.0.0/24", blockSize: 30)
        try IPAMClient(store: t.store).setConfig(IPAMConfig(strictAffinity: true, maxBlocksPerHost: 1))
        let ipam = IPAMClient(store: t.store)
        for i in 0..<4 { _ = try ipam.assign("n.\(i)") }
        #expect(throws: IPAMError.exhausted(ipVersion: 4, requested: 1, assigned: 0)) { try ipam.assign("n.5") }
    }
}

/// Collects per-thread results.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Result<AssignResult, any Error>] = [:]

    func record(_ i: Int, _ r: Result<AssignResult, any Error>) {
        lock.lock()
        values[i] = r
        lock.unlock()
    }

    func all() throws -> [AssignResult] {
        try values.keys.sorted().map { try values[$0]!.get() }
    }
}
