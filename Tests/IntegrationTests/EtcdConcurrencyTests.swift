import Foundation
import JSON
import Testing
import TestSupport

/// Many agents, one store: two agents (`agent-a`, `agent-b`) each start 10 ADDs, all 20
/// processes at once, on a pool of only eight /29 blocks, so the two hosts race for the
/// same blocks and each host's processes race for their host's next block.
@Suite(.enabled(if: EtcdE2E.ready && EtcdE2E.calicoctlReady, "needs root, ip, nsenter, sqlite3 and the built calico, calico-ipam and calicoctl"))
struct EtcdConcurrencyTests {
    @Test(.enabled(if: EtcdE2E.etcdReady, EtcdE2E.etcdReason))
    func twoNodesOnEtcdOverTLS() throws {
        try Self.twoNodes(try EtcdTestStore(.etcdTLS))
    }

    @Test func twoNodesOnSQLite() throws {
        try Self.twoNodes(try EtcdTestStore(.sqlite))
    }

    /// ADDs per node: 10, or `CALICO_E2E_ADDS_PER_NODE` for a heavier run by hand.
    static let perNode = ProcessInfo.processInfo.environment["CALICO_E2E_ADDS_PER_NODE"].flatMap { Int($0) } ?? 10

    /// Eight /29 blocks for 2 × 10 addresses (a /24 for heavier runs).
    static let pool = """
        apiVersion: projectcalico.org/v3
        kind: IPPool
        metadata:
          name: contended
        spec:
          cidr: 172.29.77.0/\(perNode > 10 ? 24 : 26)
          blockSize: 29
          ipipMode: Never
          vxlanMode: Never
          natOutgoing: true
        """

    static func twoNodes(_ store: EtcdTestStore) throws {
        try store.calicoctlCreate(pool)
        let agents = try ["agent-a", "agent-b"].map { try EtcdAgent(node: $0, store: store) }
        var calls: [(agent: EtcdAgent, command: String, container: EtcdWorkload)] = []
        for i in 0..<(2 * perNode) { calls.append((agents[i % 2], "ADD", try EtcdWorkload())) }
        let nodeOf = Dictionary(uniqueKeysWithValues: calls.map { ("calico." + $0.container.id, $0.agent.node) })

        let (results, addSeconds) = try EtcdE2E.timed { try EtcdAgent.invokeAtOnce(calls) }
        var addresses: [String: String] = [:]  // handle -> address
        for (call, r) in zip(calls, results) {
            let output = r.stdoutText + r.stderrText
            #expect(!output.contains("max retries"), "\(store.kind) \(call.agent.node): \(output)")
            #expect(r.status == 0, "\(store.kind) \(call.agent.node) \(call.container.id): \(output)")
            if let ip = try? EtcdAgent.address(of: r, call.container) { addresses["calico." + call.container.id] = ip }
        }
        #expect(addresses.count == 2 * perNode)
        #expect(Set(addresses.values).count == 2 * perNode, "distinct addresses: \(addresses.values.sorted())")
        for call in calls {
            let ip = addresses["calico." + call.container.id] ?? "?"
            #expect(try call.container.addresses("eth0") == ["\(ip)/32"])
        }
        for agent in agents { #expect(try agent.workloadLinks().count == perNode) }

        // The store agrees with the results, and every address sits in a block of its own node.
        let records = try store.records()
        let blocks = records.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) }
        let allocations = try EtcdTestStore.allocations(in: blocks)
        #expect(Dictionary(uniqueKeysWithValues: allocations.map { ($0.handle, $0.address) }) == addresses)
        #expect(allocations.count == 2 * perNode)
        for a in allocations {
            #expect(a.node == nodeOf[a.handle], "\(a.address) of \(a.handle) is attributed to \(a.node)")
        }
        // No block serves both nodes: each block's allocations belong to its affine node.
        for (key, block) in blocks {
            let affinity = block["affinity"]?.stringValue
            let served = Set(allocations.filter { $0.block == block["cidr"]?.stringValue }.map(\.node))
            #expect(served.count <= 1, "\(key) serves \(served.sorted())")
            if let node = served.first { #expect(affinity == "host:\(node)", "\(key) (\(affinity ?? "no affinity")) serves \(node)") }
        }
        // Each affinity is confirmed and names a block that is that host's; no block has two hosts.
        var hostsOfBlock: [String: [String]] = [:]
        for agent in agents {
            let prefix = EtcdE2E.affinityPrefix(agent.node)
            for (key, value) in records where key.hasPrefix(prefix) {
                let segment = String(key.dropFirst(prefix.count))
                hostsOfBlock[segment, default: []].append(agent.node)
                #expect(value == ["state": "confirmed", "deleted": false], "\(key): \(value.compactText)")
                #expect(blocks[EtcdE2E.blockPrefix + segment]?["affinity"]?.stringValue == "host:\(agent.node)", "\(key)")
            }
        }
        #expect(hostsOfBlock.values.allSatisfy { $0.count == 1 }, "\(hostsOfBlock)")
        print("EtcdConcurrencyTests \(store.kind): blocks \(hostsOfBlock.sorted { $0.key < $1.key }.map { "\($0.key)→\($0.value[0])" })")
        #expect(records.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) }.count == 2 * perNode)
        #expect(records.keys.filter { $0.hasPrefix(EtcdE2E.endpointPrefix) }.count == 2 * perNode)

        // All the DELs at once: nothing is left but the hosts' empty blocks.
        let (dels, delSeconds) = try EtcdE2E.timed { try EtcdAgent.invokeAtOnce(calls.map { ($0.agent, "DEL", $0.container) }) }
        print("EtcdConcurrencyTests \(store.kind): \(calls.count) ADDs at once took \(addSeconds) s, DELs \(delSeconds) s")
        for (call, r) in zip(calls, dels) {
            #expect(r.status == 0 && r.stdout.isEmpty, "\(store.kind) DEL \(call.container.id): \(r.stdoutText) \(r.stderrText)")
        }
        let after = try store.records()
        #expect(after.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) || $0.hasPrefix(EtcdE2E.endpointPrefix) }.isEmpty)
        #expect(try EtcdTestStore.allocations(in: after.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) }).isEmpty)
        for agent in agents { #expect(try agent.workloadLinks().isEmpty) }
    }
}
