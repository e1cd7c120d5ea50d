import Foundation
import JSON
import Testing
import TestSupport

/// Writes whose answer never reached the plugin (REFERENCE.md §4: upstream leaked
/// addresses this way). The agent's relay to etcd delivers the request and loses the answer,
/// so the plugin cannot know whether the write happened: it must re-read and reconcile, and
/// whatever it could not settle, the runtime's DEL must clean up.
@Suite(.enabled(if: EtcdE2E.etcdReady, EtcdE2E.etcdReason))
struct EtcdLostAnswerTests {
    /// True the first time only (a rule that fires once).
    final class Once: @unchecked Sendable {
        private let lock = NSLock()
        private var fired = false
        func take() -> Bool { lock.withLock { defer { fired = true }; return !fired } }
    }

    static func isAllocation(_ r: EtcdRelay.Request) -> Bool {
        r.path.hasSuffix("/kv/txn") && r.putKeys.contains { $0.hasPrefix(EtcdE2E.handlePrefix) }
            && r.putKeys.contains { $0.hasPrefix(EtcdE2E.blockPrefix) }
    }

    static func isRelease(_ r: EtcdRelay.Request) -> Bool {
        r.path.hasSuffix("/kv/txn") && r.deleteKeys.contains { $0.hasPrefix(EtcdE2E.handlePrefix) }
    }

    static func leftovers(_ store: EtcdTestStore) throws -> [String] {
        let records = try store.records()
        var found = records.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) || $0.hasPrefix(EtcdE2E.endpointPrefix) }
        found += try EtcdTestStore.allocations(in: records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) })
            .map { "allocation \($0.address) of \($0.handle)" }
        return found.sorted()
    }

    /// The answer to the allocation (block + handle) is lost, etcd still answers: the ADD
    /// re-reads the block, finds its address there and succeeds with exactly that one
    /// address. Then the answer to DEL's release is lost: DEL re-reads, sees it done, succeeds.
    @Test func lostAnswersAreReconciled() throws {
        let store = try EtcdTestStore(.etcdPlain)
        let agent = try EtcdAgent(node: "agent-a", store: store, inspecting: true)
        let proxy = try #require(agent.relay)
        let container = try EtcdWorkload()
        let handle = "calico." + container.id

        let once = Once()
        proxy.rule { r in Self.isAllocation(r) && once.take() ? .loseAnswer : .forward }
        let add = try agent.invoke("ADD", container)
        #expect(proxy.specialAnswers == 1, "the allocation's answer was lost")
        #expect(add.status == 0, "\(add.stdoutText) \(add.stderrText)")
        let address = try EtcdAgent.address(of: add, container)
        #expect(try container.addresses("eth0") == ["\(address)/32"])
        let records = try store.records()
        let allocations = try EtcdTestStore.allocations(in: records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) })
        #expect(allocations.map(\.address) == [address], "one address, not a second one taken on retry")
        #expect(allocations.map(\.handle) == [handle])
        #expect(records[EtcdE2E.handlePrefix + handle]?["block"]?.objectValue?.values.map(\.intValue) == [1])
        #expect(proxy.requests.filter(Self.isAllocation).count == 1, "the allocation was not written twice")

        let release = Once()
        proxy.rule { r in Self.isRelease(r) && release.take() ? .loseAnswer : .forward }
        let del = try agent.invoke("DEL", container)
        #expect(proxy.specialAnswers == 2, "the release's answer was lost")
        #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdoutText) \(del.stderrText)")
        #expect(try Self.leftovers(store).isEmpty)
        #expect(try agent.workloadLinks().isEmpty)
    }

    /// etcd freezes right after the allocation request was delivered: the write may or may
    /// not be applied, the re-read gets no answer either, ADD fails with code 11 and leaves
    /// no interface. When etcd thaws the write is applied (or not); the runtime's DEL then
    /// leaves no handle and no allocation behind.
    @Test func answerLostWhileEtcdIsPaused() throws {
        let store = try EtcdTestStore(.etcdPlain)
        let etcd = try #require(store.etcd)
        let agent = try EtcdAgent(node: "agent-a", store: store, datastoreKeys: store.cniKeys(timeout: 2), inspecting: true)
        let proxy = try #require(agent.relay)
        // A first attachment sets the cluster up, so the frozen write is the allocation itself.
        let earlier = try EtcdWorkload()
        _ = try agent.attach(earlier)

        let container = try EtcdWorkload()
        let once = Once()
        proxy.rule { r in Self.isAllocation(r) && once.take() ? .deliverThen({ etcd.pause() }) : .forward }
        let (add, seconds) = try EtcdE2E.timed { try agent.invoke("ADD", container) }
        etcd.resume()
        #expect(add.etcdE2EErrorCode == 11, "\(add.stdoutText) \(add.stderrText)")
        #expect(seconds < 15, "ADD took \(seconds) s")
        #expect(try container.linkNames() == ["lo"])
        #expect(try agent.workloadLinks().count == 1, "only the earlier container's veth")

        // Wait until etcd has answered the frozen request (applied it or not), as it will
        // long before Mesos gets to its DEL.
        let deadline = Date().addingTimeInterval(10)
        while proxy.specialAnswers < 1 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(proxy.specialAnswers == 1)
        let handle = "calico." + container.id
        let applied = try store.records()[EtcdE2E.handlePrefix + handle] != nil
        print("EtcdLostAnswerTests: the frozen allocation was \(applied ? "" : "not ")applied when etcd thawed")

        let del = try agent.invoke("DEL", container)
        #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdoutText) \(del.stderrText)")
        #expect(try agent.invoke("DEL", earlier).status == 0)
        #expect(try Self.leftovers(store).isEmpty)
    }
}
