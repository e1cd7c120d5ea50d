import CalicoAPI
import Datastore
import IPAM
import IPAddress
import Testing

/// `autoAssign(_:alsoWriting:)`: the caller's writes (the plugin's WorkloadEndpoint) go
/// into the transaction that takes the address, so they exist exactly when the allocation
/// does; otherwise the caller is told to write them itself.
@Suite struct AlsoWritingTests {
    /// The write the plugin would add: a record naming the address it was given.
    static func endpoint(_ key: String) -> @Sendable ([IPAddress]) -> [Operation] {
        { addresses in [.put(key: key, value: addresses.map(\.description).joined(separator: ","))] }
    }

    @Test(arguments: Backend.allCases)
    func oneAddressCarriesTheWritesInItsTransaction(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.40.0.0/16")
        let ipam = IPAMClient(store: t.store)
        let r = try ipam.autoAssign(AssignRequest(handleID: "net.c1", node: "node1"), alsoWriting: Self.endpoint("/test/wep/c1"))
        let address = try #require(r.ipv4.first).address
        #expect(r.wroteAlso)
        let wep = try #require(try t.store.get("/test/wep/c1"))
        #expect(wep.value == address.description)
        // One transaction: the record, the block and the handle share a mod revision.
        let cidr = block(of: address, size: 26).description.replacingOccurrences(of: "/", with: "-")
        #expect(try t.store.get("/calico/ipam/v2/assignment/ipv4/block/\(cidr)")?.modRevision == wep.modRevision)
        #expect(try t.store.get("/calico/ipam/v2/handle/net.c1")?.modRevision == wep.modRevision)
    }

    @Test(arguments: Backend.allCases)
    func aRepeatedAssignmentWritesNothing(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.41.0.0/16")
        let ipam = IPAMClient(store: t.store)
        let first = try ipam.autoAssign(AssignRequest(handleID: "net.c1", node: "node1"))
        let again = try ipam.autoAssign(AssignRequest(handleID: "net.c1", node: "node1"), alsoWriting: Self.endpoint("/test/wep/c1"))
        #expect(again.ipv4.map(\.address) == first.ipv4.map(\.address) && again.ipv4.allSatisfy { !$0.isNew })
        #expect(!again.wroteAlso)
        #expect(try t.store.get("/test/wep/c1") == nil)
    }

    /// Two families take two transactions: neither completes the assignment alone, so the
    /// caller writes the record itself, with both addresses.
    @Test(arguments: Backend.allCases)
    func twoFamiliesLeaveTheWritesToTheCaller(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p4", "10.42.0.0/16")
        try t.addPool("p6", "fd00:42::/112")
        let ipam = IPAMClient(store: t.store)
        let r = try ipam.autoAssign(AssignRequest(handleID: "net.c1", node: "node1", ipv4Count: 1, ipv6Count: 1),
                                    alsoWriting: Self.endpoint("/test/wep/c1"))
        #expect(r.ipv4.count == 1 && r.ipv6.count == 1)
        #expect(!r.wroteAlso)
        #expect(try t.store.get("/test/wep/c1") == nil)
    }
}

/// `release(handleID:alsoWriting:)`: the plugin's DEL deletes its WorkloadEndpoint in the
/// transaction that releases the address, or is told to delete it itself.
@Suite struct ReleaseAlsoWritingTests {
    @Test(arguments: Backend.allCases)
    func theReleaseCarriesTheWritesInItsTransaction(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.43.0.0/16")
        let ipam = IPAMClient(store: t.store)
        let kept = try #require(try ipam.autoAssign(AssignRequest(handleID: "net.keep", node: "node1")).ipv4.first).address
        let address = try #require(try ipam.autoAssign(AssignRequest(handleID: "net.c1", node: "node1")).ipv4.first).address
        try t.store.put("/test/wep/c1", "x")

        let r = try ipam.release(handleID: "net.c1", alsoWriting: [.delete(key: "/test/wep/c1")])
        #expect(r.released == [address])
        #expect(r.wroteAlso)
        #expect(try t.store.get("/test/wep/c1") == nil)
        #expect(try t.store.get("/calico/ipam/v2/handle/net.c1") == nil)
        // One transaction: the block's revision is the one that deleted the record.
        let cidr = block(of: address, size: 26).description.replacingOccurrences(of: "/", with: "-")
        let blockRevision = try #require(try t.store.get("/calico/ipam/v2/assignment/ipv4/block/\(cidr)")).modRevision
        #expect(try t.store.transact(Transaction(if: [], then: [])).revision == blockRevision, "the last write deleted the record")
        #expect(try ipam.addresses(handleID: "net.keep") == [kept])
    }

    /// The release's answer lost: it is found done by re-reading, but whose transaction
    /// did it is not known, so the caller is told to make its writes itself.
    @Test func aLostAnswerLeavesTheWritesToTheCaller() throws {
        let setup = try TestStore(.memory)
        let inner = try #require(setup.store as? InMemoryDatastore)
        try setup.addPool("p", "10.45.0.0/16")
        let address = try #require(try IPAMClient(store: inner).autoAssign(AssignRequest(handleID: "net.c1", node: "node1")).ipv4.first).address
        let flaky = FlakyStore(inner: inner, failures: 1_000, applyBeforeFailing: true)
        let r = try IPAMClient(store: flaky).release(handleID: "net.c1", alsoWriting: [.delete(key: "/test/wep/c1")])
        #expect(r.released == [address])
        #expect(!r.wroteAlso)
        #expect(try inner.get(CalicoKeys.handle("net.c1")) == nil)
    }

    @Test(arguments: Backend.allCases)
    func nothingToReleaseLeavesTheWritesToTheCaller(_ backend: Backend) throws {
        let t = try TestStore(backend)
        try t.addPool("p", "10.44.0.0/16")
        let ipam = IPAMClient(store: t.store)
        try t.store.put("/test/wep/c1", "x")
        let r = try ipam.release(handleID: "net.unknown", alsoWriting: [.delete(key: "/test/wep/c1")])
        #expect(r.released.isEmpty)
        #expect(!r.wroteAlso)
        #expect(try t.store.get("/test/wep/c1")?.value == "x")
    }
}

/// `AssignRequest.preferredBlocks`: the block the host's last address came from is tried
/// first, so a busy host's full blocks are not read at all.
@Suite struct PreferredBlockTests {
    @Test func thePreferredBlockIsTriedFirstAndFullOnesAreNotRead() throws {
        let inner = InMemoryDatastore()
        _ = try ResourceClient(store: inner).create(IPPool(name: "p", cidr: "10.50.0.0/24", blockSize: 30))
        let setup = IPAMClient(store: inner)
        // Four addresses fill the host's first /30; the fifth claims a second block.
        var taken: [Assignment] = []
        for i in 0..<5 { taken += try setup.assign("net.c\(i)").ipv4 }
        let full = try #require(taken.first?.block), roomy = try #require(taken.last?.block)
        #expect(full != roomy)

        // Without a preference the blocks are tried in key order: the full one is read.
        let plain = try PrefetchingDatastore(inner, prefetching: [])
        let a = try #require(try IPAMClient(store: plain).assign("net.x").ipv4.first)
        #expect(a.block == roomy)
        #expect(plain.keysUsed(under: CalicoKeys.blockPrefix(ipv6: false)).contains(CalicoKeys.block(cidr: full.description)))

        // With the roomy block preferred, the full one is never read.
        let preferring = try PrefetchingDatastore(inner, prefetching: [])
        var request = AssignRequest(handleID: "net.y", node: "node1")
        request.preferredBlocks = [roomy]
        let b = try #require(try IPAMClient(store: preferring).autoAssign(request).ipv4.first)
        #expect(b.block == roomy && b.address != a.address)
        #expect(preferring.keysUsed(under: CalicoKeys.blockPrefix(ipv6: false)) == [CalicoKeys.block(cidr: roomy.description)])
    }
}
