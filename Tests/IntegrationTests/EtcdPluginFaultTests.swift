import Foundation
import JSON
import Testing
import TestSupport

/// etcd unreachable: ADD fails with code 11 ("try again later") within 15 s and leaves
/// nothing behind; DEL still removes the veth, answers code 11 and keeps the address for a
/// later DEL; once etcd is back, ADD works and the later DEL frees the address.
@Suite(.enabled(if: EtcdE2E.etcdReady, EtcdE2E.etcdReason))
struct EtcdPluginFaultTests {
    /// The keys of one attachment in the records.
    static func traces(of container: EtcdWorkload, node: String, in records: [String: JSON]) throws -> [String] {
        let handle = "calico." + container.id
        var found = records.keys.filter {
            $0 == EtcdE2E.handlePrefix + handle || $0.hasSuffix("/" + EtcdE2E.endpointName(node: node, containerID: container.id))
        }
        let blocks = records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) }
        found += try EtcdTestStore.allocations(in: blocks).filter { $0.handle == handle }.map { "allocation \($0.address)" }
        return found.sorted()
    }

    @Test func etcdStopped() throws {
        let store = try EtcdTestStore(.etcdTLS)
        let etcd = try #require(store.etcd)
        let agent = try EtcdAgent(node: "agent-a", store: store)
        let first = try EtcdWorkload()
        let firstAddress = try agent.attach(first)
        let firstVeth = try agent.workloadLinks()
        #expect(firstVeth.count == 1)

        // etcd stops; in the agent's namespace its port is closed too.
        etcd.stop()
        agent.relay?.suspend()

        // ADD with etcd down: code 11, quickly, and no interface anywhere.
        let second = try EtcdWorkload()
        let (add, seconds) = try EtcdE2E.timed { try agent.invoke("ADD", second) }
        #expect(add.status != 0)
        #expect(add.etcdE2EErrorCode == 11, "\(add.stdoutText) \(add.stderrText)")
        #expect(seconds < 15, "ADD took \(seconds) s")
        #expect(try agent.workloadLinks() == firstVeth)
        #expect(try second.linkNames() == ["lo"])

        // DEL with etcd down: the veth goes, the answer is code 11.
        let del = try agent.invoke("DEL", first)
        #expect(del.etcdE2EErrorCode == 11, "\(del.stdoutText) \(del.stderrText)")
        #expect(try agent.workloadLinks().isEmpty)
        #expect(try first.linkNames() == ["lo"])
        // The runtime's DEL after the failed ADD also meets etcd down.
        #expect(try agent.invoke("DEL", second).etcdE2EErrorCode == 11)

        try etcd.start()
        try agent.relay?.resume()

        // Nothing of the failed ADD was recorded; the first container's address is still held.
        var records = try store.records()
        #expect(try Self.traces(of: second, node: agent.node, in: records).isEmpty)
        let held = try EtcdTestStore.allocations(in: records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) })
        #expect(held.map(\.address) == [firstAddress])
        #expect(held.map(\.handle) == ["calico." + first.id])
        #expect(records[EtcdE2E.handlePrefix + "calico." + first.id] != nil)

        // etcd is back: ADD works, and the retried DELs clean up.
        let third = try EtcdWorkload()
        let thirdAddress = try agent.attach(third)
        #expect(thirdAddress != firstAddress)
        #expect(try agent.workloadLinks().count == 1)
        let laterDel = try agent.invoke("DEL", first)
        #expect(laterDel.status == 0 && laterDel.stdout.isEmpty, "\(laterDel.stdoutText) \(laterDel.stderrText)")
        #expect(try agent.invoke("DEL", second).status == 0)
        records = try store.records()
        #expect(try Self.traces(of: first, node: agent.node, in: records).isEmpty)
        #expect(try Self.traces(of: second, node: agent.node, in: records).isEmpty)
        let left = try EtcdTestStore.allocations(in: records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) })
        #expect(left.map(\.address) == [thirdAddress])
        #expect(try agent.invoke("DEL", third).status == 0)
    }

    /// A frozen etcd accepts connections and never answers: every call ends at its
    /// deadline (default 5 s), so ADD and DEL still answer code 11 within 15 s.
    @Test func etcdPaused() throws {
        let store = try EtcdTestStore(.etcdTLS)
        let etcd = try #require(store.etcd)
        let agent = try EtcdAgent(node: "agent-a", store: store)
        let live = try EtcdWorkload()
        _ = try agent.attach(live)

        etcd.pause()
        let container = try EtcdWorkload()
        let (add, addSeconds) = try EtcdE2E.timed { try agent.invoke("ADD", container) }
        let (del, delSeconds) = try EtcdE2E.timed { try agent.invoke("DEL", live) }
        etcd.resume()

        #expect(add.etcdE2EErrorCode == 11, "\(add.stdoutText) \(add.stderrText)")
        #expect(addSeconds < 15, "ADD took \(addSeconds) s")
        #expect(try container.linkNames() == ["lo"])
        #expect(del.etcdE2EErrorCode == 11, "\(del.stdoutText) \(del.stderrText)")
        #expect(delSeconds < 15, "DEL took \(delSeconds) s")
        #expect(try agent.workloadLinks().isEmpty)

        #expect(try agent.invoke("DEL", container).status == 0)
        #expect(try agent.invoke("DEL", live).status == 0)
        let records = try store.records()
        #expect(records.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) || $0.hasPrefix(EtcdE2E.endpointPrefix) }.isEmpty)
        #expect(try EtcdTestStore.allocations(in: records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) }).isEmpty)
    }
}
