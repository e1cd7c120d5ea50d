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

    /// On an empty cluster, etcd applies every IPAM write of the first ADD and every answer
    /// is lost: the cluster set-up (Node, ClusterInformation, IPAM config, default pool), the
    /// pending affinity, the block, the confirmed affinity and the allocation (which carries
    /// the WorkloadEndpoint). Each is settled by re-reading, none is written twice, and the
    /// ADD succeeds with exactly the records a normal ADD leaves. Then every answer of DEL's
    /// release is lost too.
    @Test func everyIPAMWriteAnswerLost() throws {
        let store = try EtcdTestStore(.etcdPlain)
        let agent = try EtcdAgent(node: "agent-a", store: store, inspecting: true)
        let proxy = try #require(agent.relay)
        let container = try EtcdWorkload()
        let handle = "calico." + container.id
        let plugin = ["/profiles/", "/workloadendpoints/"]  // the plugin's own records (CalicoAPI)
        let isIPAMWrite: @Sendable (EtcdRelay.Request) -> Bool = { r in
            let keys = r.putKeys + r.deleteKeys
            return r.path.hasSuffix("/kv/txn") && !keys.isEmpty
                && (keys.contains { $0.hasPrefix("/calico/ipam/") } || !keys.contains { k in plugin.contains { k.contains($0) } })
        }
        let endpointKey = EtcdE2E.endpointPrefix + "default/" + EtcdE2E.endpointName(node: agent.node, containerID: container.id)
        proxy.rule { r in isIPAMWrite(r) ? .loseAnswer : .forward }

        let add = try agent.invoke("ADD", container)
        #expect(add.status == 0, "\(add.stdoutText) \(add.stderrText)")
        let address = try EtcdAgent.address(of: add, container)
        let records = try store.records()
        let blockKey = try #require(records.keys.first { $0.hasPrefix(EtcdE2E.blockPrefix) })
        let affinityKey = EtcdE2E.affinityPrefix(agent.node) + blockKey.dropFirst(EtcdE2E.blockPrefix.count)
        // Every write was sent exactly once, in calico-node's and libcalico-go's order:
        // nothing was retried blindly after its answer was lost.
        let writes = proxy.requests.filter(isIPAMWrite)
        #expect(proxy.specialAnswers == writes.count)
        #expect(writes.map(\.putKeys) == [
            ["/calico/resources/v3/projectcalico.org/nodes/\(agent.node)"],
            ["/calico/resources/v3/projectcalico.org/clusterinformations/default"],
            ["/calico/ipam/v2/config"],
            ["/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"],
            [affinityKey],  // pending
            [blockKey],  // the block, created
            [affinityKey],  // confirmed
            [blockKey, EtcdE2E.handlePrefix + handle, endpointKey],  // the allocation, with the endpoint
        ])
        #expect(records[endpointKey]?["spec"]?["ipNetworks"] == [.string(address + "/32")])
        let allocations = try EtcdTestStore.allocations(in: records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) })
        #expect(allocations.map(\.address) == [address])
        #expect(allocations.map(\.handle) == [handle])
        #expect(records[affinityKey] == ["state": "confirmed", "deleted": false])
        #expect(records.keys.filter { $0.hasPrefix(EtcdE2E.blockPrefix) }.count == 1)
        #expect(records.keys.filter { $0.hasPrefix("/calico/resources/v3/projectcalico.org/ippools/") }.count == 1)

        let del = try agent.invoke("DEL", container)
        #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdoutText) \(del.stderrText)")
        #expect(proxy.requests.filter(isIPAMWrite).count > writes.count, "the release's answer was lost as well")
        #expect(try Self.leftovers(store).isEmpty)
    }

    /// Lost answers under contention: two agents start 10 ADDs each at once on a pool of
    /// eight /29 blocks while every third IPAM write's answer is lost (applied or refused by
    /// its compare, the plugin cannot tell). Every ADD succeeds, addresses are distinct, the
    /// blocks hold exactly the addresses handed out (nothing leaked, nothing doubled), no
    /// block serves both nodes; the DELs, losing answers too, leave nothing.
    @Test func lostAnswersUnderContention() throws {
        let store = try EtcdTestStore(.etcdPlain)
        try store.calicoctlCreate(EtcdConcurrencyTests.pool)
        let agents = try ["agent-a", "agent-b"].map { try EtcdAgent(node: $0, store: store, inspecting: true) }
        final class Counter: @unchecked Sendable {
            private let lock = NSLock()
            private var n = 0
            func next() -> Int { lock.withLock { n += 1; return n } }
        }
        let counter = Counter()
        for agent in agents {
            agent.relay?.rule { r in
                let ipam = r.path.hasSuffix("/kv/txn") && (r.putKeys + r.deleteKeys).contains { $0.hasPrefix("/calico/ipam/") }
                return ipam && counter.next() % 3 == 0 ? .loseAnswer : .forward
            }
        }
        var calls: [(agent: EtcdAgent, command: String, container: EtcdWorkload)] = []
        for i in 0..<20 { calls.append((agents[i % 2], "ADD", try EtcdWorkload())) }

        let results = try EtcdAgent.invokeAtOnce(calls)
        var addresses: [String: String] = [:]
        for (call, r) in zip(calls, results) {
            #expect(r.status == 0, "\(call.agent.node) \(call.container.id): \(r.stdoutText) \(r.stderrText)")
            if let ip = try? EtcdAgent.address(of: r, call.container) { addresses["calico." + call.container.id] = ip }
        }
        let lost = agents.map { $0.relay?.specialAnswers ?? 0 }.reduce(0, +)
        #expect(lost >= 5, "answers lost: \(lost)")
        #expect(Set(addresses.values).count == 20)
        let records = try store.records()
        let blocks = records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) }
        let allocations = try EtcdTestStore.allocations(in: blocks)
        #expect(Dictionary(allocations.map { ($0.handle, [$0.address]) }, uniquingKeysWith: +) == addresses.mapValues { [$0] })
        for (key, block) in blocks {
            let served = Set(allocations.filter { $0.block == block["cidr"]?.stringValue }.map(\.node))
            #expect(served.count <= 1, "\(key) serves \(served.sorted())")
            if let node = served.first { #expect(block["affinity"]?.stringValue == "host:\(node)", "\(key)") }
        }
        #expect(records.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) }.count == 20)

        let dels = try EtcdAgent.invokeAtOnce(calls.map { ($0.agent, "DEL", $0.container) })
        for (call, r) in zip(calls, dels) {
            #expect(r.status == 0 && r.stdout.isEmpty, "DEL \(call.container.id): \(r.stdoutText) \(r.stderrText)")
        }
        #expect(try Self.leftovers(store).isEmpty)
        print("EtcdLostAnswerTests: \(agents.map { $0.relay?.specialAnswers ?? 0 }.reduce(0, +)) IPAM write answers lost in 20 ADDs and 20 DELs")
    }

    /// The WorkloadEndpoint is written in the transaction that takes the address. When that
    /// transaction's answer is lost (etcd applied it), re-reading the block shows the
    /// allocation, and with it the endpoint: ADD succeeds, with exactly a normal ADD's
    /// records, and DEL leaves nothing. (Before the two were one transaction, this cost the
    /// container its ADD: code 11 and a rollback.)
    @Test func lostAnswerToTheAllocationWithTheEndpoint() throws {
        let store = try EtcdTestStore(.etcdPlain)
        let agent = try EtcdAgent(node: "agent-a", store: store, inspecting: true)
        let proxy = try #require(agent.relay)
        let container = try EtcdWorkload()
        let endpointKey = EtcdE2E.endpointPrefix + "default/" + EtcdE2E.endpointName(node: agent.node, containerID: container.id)

        let once = Once()
        proxy.rule { r in r.path.hasSuffix("/kv/txn") && r.putKeys.contains(endpointKey) && once.take() ? .loseAnswer : .forward }
        let add = try agent.invoke("ADD", container)
        #expect(proxy.specialAnswers == 1, "the endpoint write's answer was lost")
        #expect(add.status == 0, "\(add.stdoutText) \(add.stderrText)")
        let address = try EtcdAgent.address(of: add, container)
        #expect(try container.linkNames() == ["eth0", "lo"])
        #expect(try agent.workloadLinks().count == 1)
        let records = try store.records()
        #expect(records.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) } == [EtcdE2E.handlePrefix + "calico." + container.id])
        #expect(try EtcdTestStore.allocations(in: records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) }).map(\.address) == [address])
        #expect(records[endpointKey]?["spec"]?["ipNetworks"] == [.string(address + "/32")])

        let del = try agent.invoke("DEL", container)
        #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdoutText) \(del.stderrText)")
        #expect(try Self.leftovers(store).isEmpty)
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
        proxy.rule { r in Self.isAllocation(r) && once.take() ? .freezeThenDeliver({ etcd.pause() }) : .forward }
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
