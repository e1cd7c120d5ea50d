import CalicoAPI
import Datastore
import Foundation
import IPAM
import IPAddress
import JSON
import Testing

@Suite struct ReleaseTests {
    @Test(arguments: Backend.allCases)
    func releaseByHandleFreesTheAddress(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.90.0.0/16")
        let ipam = IPAMClient(store: t.store)
        let a = try #require(try ipam.assign("calico.a").ipv4.first)
        let b = try #require(try ipam.assign("calico.b").ipv4.first)
        #expect(try ipam.release(handleID: "calico.a") == [a.address])
        #expect(try t.store.get("/calico/ipam/v2/handle/calico.a") == nil)
        let blk = try #require(try ipam.blocks().first)
        #expect(blk.usedCount == 1)
        // The freed ordinal goes to the end of `unallocated`.
        #expect(blk.unallocated.last == blk.ordinal(of: a.address))
        #expect(blk.attributes.count == 1 && blk.attributes[0].handleID == "calico.b")
        // Twice, and an unknown handle: success, nothing released.
        #expect(try ipam.release(handleID: "calico.a").isEmpty)
        #expect(try ipam.release(handleID: "calico.never").isEmpty)
        // The block keeps its affinity when emptied.
        try ipam.release(handleID: "calico.b")
        #expect(try ipam.blocks().map(\.usedCount) == [0])
        #expect(try ipam.blocks().first?.cidr == b.block)
        #expect(try ipam.handleIDs().isEmpty)
        // A new assignment reuses the block.
        #expect(try ipam.assign("calico.c").ipv4.first?.block == b.block)
    }

    @Test func anEmptyBlockWithoutAffinityIsDeleted() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.91.0.0/16")
        let ipam = IPAMClient(store: t.store)
        let a = try #require(try ipam.assign("calico.a").ipv4.first)
        // Remove the affinity as calicoctl's `ipam release` of a host would.
        var blk = try #require(try ipam.blocks().first)
        blk.affinity = nil
        let key = CalicoKeys.block(cidr: a.block.description)
        try t.store.put(key, blk.json.compactText)
        try ipam.release(handleID: "calico.a")
        #expect(try t.store.get(key) == nil)
    }

    @Test func releaseByAddressFixesTheHandle() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.92.0.0/16")
        try t.addPool("p6", "fd00:92::/64")
        let ipam = IPAMClient(store: t.store)
        let r = try ipam.assign("calico.x", v4: 1, v6: 1)
        let v4 = r.ipv4[0].address, v6 = r.ipv6[0].address
        #expect(try ipam.release(addresses: [v4, IPAddress("10.92.255.1")!]) == [IPAddress("10.92.255.1")!])
        #expect(try ipam.addresses(handleID: "calico.x") == [v6])
        #expect(try t.value("/calico/ipam/v2/handle/calico.x")?["block"]?.objectValue?.keys.sorted() == [r.ipv6[0].block.description])
        try ipam.release(addresses: [v6])
        #expect(try t.store.get("/calico/ipam/v2/handle/calico.x") == nil)
        #expect(try ipam.allocation(of: v4) == nil)
    }

    @Test func garbageCollectionKeepsValidAttachments() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.93.0.0/16")
        let ipam = IPAMClient(store: t.store)
        for id in ["calico.keep", "calico.stale1", "calico.stale2", "other.stale"] { _ = try ipam.assign(id) }
        // An allocation whose handle record was lost.
        let orphan = try #require(try ipam.assign("calico.orphan").ipv4.first)
        try t.store.delete("/calico/ipam/v2/handle/calico.orphan")
        let released = try ipam.releaseUnused(handlePrefix: "calico.", keeping: ["calico.keep"])
        #expect(released.sorted() == ["calico.orphan", "calico.stale1", "calico.stale2"])
        #expect(try ipam.handleIDs() == ["calico.keep", "other.stale"])
        #expect(try ipam.allocation(of: orphan.address) == nil)
        #expect(try ipam.blocks().map(\.usedCount) == [2])
    }

    @Test func usageAndLookup() throws {
        let t = try TestStore(.memory)
        try t.addPool("p", "10.94.0.0/24", blockSize: 26)
        let ipam = IPAMClient(store: t.store)
        let a = try #require(try ipam.assign("calico.a").ipv4.first)
        _ = try ipam.assign("calico.b")
        let u = try #require(try ipam.usage().first)
        #expect(u.name == "p" && u.total == 256 && u.inUse == 2 && u.free == 254)
        #expect(u.blocks.map(\.total) == [64] && u.blocks.map(\.inUse) == [2])
        let info = try #require(try ipam.allocation(of: a.address))
        #expect(info.handleID == "calico.a" && info.blockAffinity == "host:node1" && info.attributes == ["node": "node1"])
        #expect(try ipam.hasCapacity(node: "node1"))
        #expect(try ipam.handles().map(\.handleID) == ["calico.a", "calico.b"])
    }

    @Test func capacityReflectsExhaustion() throws {
        let t = try TestStore(.memory)
        try t.addPool("tiny", "10.95.0.0/30", blockSize: 30)
        let ipam = IPAMClient(store: t.store)
        for i in 0..<4 { _ = try ipam.assign("n.\(i)") }
        #expect(try !ipam.hasCapacity(node: "node1"))
        #expect(try !ipam.hasCapacity(node: "node1", ipv6: true))
        try ipam.release(handleID: "n.0")
        #expect(try ipam.hasCapacity(node: "node1"))
    }

    @Test(arguments: Backend.allCases)
    func concurrentAssignAndReleaseKeepCountsConsistent(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.96.0.0/24", blockSize: 27)
        let clients = try (0..<12).map { _ in IPAMClient(store: try t.connection()) }
        let errors = NSLock()
        nonisolated(unsafe) var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 12) { i in
            do {
                for round in 0..<3 {
                    _ = try clients[i].assign("n.\(i).\(round)", node: "host\(i % 3)")
                    if round < 2 { try clients[i].release(handleID: "n.\(i).\(round)") }
                }
            } catch {
                errors.lock(); failures.append("\(i): \(error)"); errors.unlock()
            }
        }
        #expect(failures.isEmpty)
        let ipam = IPAMClient(store: t.store)
        #expect(try ipam.handleIDs().count == 12)
        let used = try ipam.blocks().reduce(0) { $0 + $1.usedCount }
        #expect(used == 12)
        for id in try ipam.handleIDs() { #expect(try ipam.addresses(handleID: id).count == 1) }
    }
}
