import Foundation
import JSON
import Testing
import TestSupport

/// What an ADD asks etcd, seen on the wire (a relay between the plugin and etcd): on a node
/// that already has its block, two requests — one read-only transaction with every read
/// (the handle, the pools, the affinities, the profile and, from the host's hint, the
/// block), and one transaction writing the block, the handle and the WorkloadEndpoint.
@Suite(.enabled(if: EtcdE2E.etcdReady, EtcdE2E.etcdReason))
struct EtcdRoundTripTests {
    @Test func anAddOnANodeWithItsBlockIsTwoRequests() throws {
        let store = try EtcdTestStore(.etcdPlain)
        let agent = try EtcdAgent(node: "agent-rt-" + UUID().uuidString.prefix(8).lowercased(), store: store, inspecting: true)
        let proxy = try #require(agent.relay)
        let first = try EtcdWorkload()
        _ = try EtcdAgent.address(of: try agent.invoke("ADD", first), first)

        let before = proxy.requests.count
        let second = try EtcdWorkload()
        let address = try EtcdAgent.address(of: try agent.invoke("ADD", second), second)
        let requests = Array(proxy.requests.dropFirst(before))
        #expect(requests.map(\.path) == ["/v3/kv/txn", "/v3/kv/txn"], "\(requests)")
        #expect(requests.first.map { $0.putKeys.isEmpty && $0.deleteKeys.isEmpty } == true, "the first request only reads")
        let records = try store.records()
        let blockKey = try #require(records.keys.first { $0.hasPrefix(EtcdE2E.blockPrefix) })
        let endpointKey = EtcdE2E.endpointPrefix + "default/" + EtcdE2E.endpointName(node: agent.node, containerID: second.id)
        #expect(Set(requests.last?.putKeys ?? []) == [blockKey, EtcdE2E.handlePrefix + "calico." + second.id, endpointKey])
        #expect(records[endpointKey]?["spec"]?["ipNetworks"] == [.string(address + "/32")])

        for c in [first, second] { #expect(try agent.invoke("DEL", c).status == 0) }
        #expect(try EtcdLostAnswerTests.leftovers(store).isEmpty)
    }

    /// A DEL: one read-only transaction (the handle and, from the host's hint, the block)
    /// and one transaction releasing the address and deleting the endpoint with it.
    @Test func aDelIsTwoRequests() throws {
        let store = try EtcdTestStore(.etcdPlain)
        let agent = try EtcdAgent(node: "agent-rt-" + UUID().uuidString.prefix(8).lowercased(), store: store, inspecting: true)
        let proxy = try #require(agent.relay)
        let keep = try EtcdWorkload(), gone = try EtcdWorkload()
        _ = try EtcdAgent.address(of: try agent.invoke("ADD", keep), keep)
        _ = try EtcdAgent.address(of: try agent.invoke("ADD", gone), gone)
        let blockKey = try #require(try store.records().keys.first { $0.hasPrefix(EtcdE2E.blockPrefix) })
        let endpointKey = EtcdE2E.endpointPrefix + "default/" + EtcdE2E.endpointName(node: agent.node, containerID: gone.id)

        let before = proxy.requests.count
        #expect(try agent.invoke("DEL", gone).status == 0)
        let requests = Array(proxy.requests.dropFirst(before))
        #expect(requests.map(\.path) == ["/v3/kv/txn", "/v3/kv/txn"], "\(requests)")
        #expect(requests.first.map { $0.putKeys.isEmpty && $0.deleteKeys.isEmpty } == true, "the first request only reads")
        #expect(requests.last?.putKeys == [blockKey])
        #expect(Set(requests.last?.deleteKeys ?? []) == [EtcdE2E.handlePrefix + "calico." + gone.id, endpointKey])
        let records = try store.records()
        #expect(records[endpointKey] == nil)
        #expect(records.keys.contains(EtcdE2E.handlePrefix + "calico." + keep.id))

        // A DEL with nothing left to release deletes the endpoint record alone, if any.
        let again = proxy.requests.count
        #expect(try agent.invoke("DEL", gone).status == 0)
        #expect(proxy.requests.dropFirst(again).map(\.path) == ["/v3/kv/txn", "/v3/kv/txn"])
        #expect(try agent.invoke("DEL", keep).status == 0)
        #expect(try EtcdLostAnswerTests.leftovers(store).isEmpty)
    }
}
