import Foundation
import JSON
import Testing
import TestSupport

/// A Mesos-style ADD and DEL of the built `calico` plugin, checked in the records an
/// operator reads: `etcdctl get --prefix /calico/` on a real etcd over TLS with client
/// certificates (and the same checks on the SQLite file, with `sqlite3`).
@Suite(.enabled(if: EtcdE2E.ready, EtcdE2E.reason))
struct EtcdMesosTests {
    @Test(.enabled(if: EtcdE2E.etcdReady, EtcdE2E.etcdReason))
    func addAndDelOnEtcdOverTLS() throws {
        try Self.addAndDel(try EtcdTestStore(.etcdTLS))
    }

    @Test(.enabled(if: EtcdE2E.etcdReady, EtcdE2E.etcdReason))
    func addAndDelOnPlainEtcd() throws {
        try Self.addAndDel(try EtcdTestStore(.etcdPlain))
    }

    @Test func addAndDelOnSQLite() throws {
        try Self.addAndDel(try EtcdTestStore(.sqlite))
    }

    /// ADD writes exactly Calico's keys (block, confirmed affinity, handle, endpoint, and
    /// what calico-node would have set up); DEL removes the handle and the endpoint and
    /// frees the address, keeping the host's block and affinity.
    static func addAndDel(_ store: EtcdTestStore) throws {
        let node = "agent-a"
        let agent = try EtcdAgent(node: node, store: store)
        let container = try EtcdWorkload()
        let handleID = "calico." + container.id
        let endpointName = EtcdE2E.endpointName(node: node, containerID: container.id)

        let add = try agent.invoke("ADD", container)
        #expect(add.status == 0, "\(store.kind): \(add.stdoutText) \(add.stderrText)")
        let address = try EtcdAgent.address(of: add, container)
        #expect(try container.addresses("eth0") == ["\(address)/32"])
        let veths = try agent.workloadLinks()
        #expect(veths.count == 1)

        let records = try store.records()
        let blockKeys = records.keys.filter { $0.hasPrefix(EtcdE2E.blockPrefix) }
        try #require(blockKeys.count == 1, "one block: \(records.keys.sorted())")
        let blockKey = blockKeys[0]
        let segment = String(blockKey.dropFirst(EtcdE2E.blockPrefix.count))
        let cidr = segment.replacingOccurrences(of: "-", with: "/")
        let affinityKey = EtcdE2E.affinityPrefix(node) + segment
        let handleKey = EtcdE2E.handlePrefix + handleID
        let endpointKey = EtcdE2E.endpointPrefix + "default/" + endpointName
        let expectedKeys: Set<String> = [
            blockKey, affinityKey, handleKey, endpointKey,
            "/calico/ipam/v2/config",
            "/calico/resources/v3/projectcalico.org/profiles/calico",
            "/calico/resources/v3/projectcalico.org/nodes/\(node)",
            "/calico/resources/v3/projectcalico.org/clusterinformations/default",
            "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
        ]
        #expect(Set(records.keys) == expectedKeys, "\(store.kind)")

        // The block: this host's, holding our one address under our handle.
        let block = try #require(records[blockKey])
        #expect(block["cidr"]?.stringValue == cidr)
        #expect(cidr.hasSuffix("/26"))
        #expect(block["affinity"]?.stringValue == "host:\(node)")
        #expect(block["deleted"] == .bool(false))
        let slots = block["allocations"]?.arrayValue ?? []
        #expect(slots.count == 64)
        let base = try #require(EtcdE2E.ipv4(cidr.split(separator: "/")[0]))
        let ordinal = Int(try #require(EtcdE2E.ipv4(address)) - base)
        #expect((0..<64).contains(ordinal), "\(address) in \(cidr)")
        #expect(slots.enumerated().filter { !$0.element.isNull }.map(\.offset) == [ordinal])
        let attributeIndex = try #require(slots[ordinal].intValue)
        let attribute = block["attributes"]?[attributeIndex]
        #expect(attribute?["handle_id"]?.stringValue == handleID)
        #expect(attribute?["secondary"]?["node"]?.stringValue == node)
        let unallocated = Set((block["unallocated"]?.arrayValue ?? []).compactMap(\.intValue))
        #expect(unallocated == Set(0..<64).subtracting([ordinal]))

        // The affinity is confirmed; the handle counts one address in that block.
        #expect(records[affinityKey] == ["state": "confirmed", "deleted": false])
        #expect(records[handleKey] == ["block": .object([cidr: 1]), "deleted": false])
        #expect(records["/calico/ipam/v2/config"]?["strict_affinity"] == .bool(false))
        #expect(records["/calico/ipam/v2/config"]?["auto_allocate_blocks"] == .bool(true))

        // The WorkloadEndpoint, as felix and calicoctl read it.
        let wep = try #require(records[endpointKey])
        #expect(wep["kind"]?.stringValue == "WorkloadEndpoint")
        #expect(wep["apiVersion"]?.stringValue == "projectcalico.org/v3")
        #expect(wep["metadata"]?["name"]?.stringValue == endpointName)
        #expect(wep["metadata"]?["namespace"]?.stringValue == "default")
        #expect(wep["metadata"]?["uid"]?.stringValue?.isEmpty == false)
        #expect(wep["metadata"]?["creationTimestamp"]?.stringValue?.isEmpty == false)
        #expect(wep["metadata"]?["labels"] == [
            "biz_type": "bookstore", "projectcalico.org/namespace": "default", "projectcalico.org/orchestrator": "cni",
        ])
        let spec = wep["spec"]
        #expect(spec?["orchestrator"]?.stringValue == "cni")
        #expect(spec?["node"]?.stringValue == node)
        #expect(spec?["containerID"]?.stringValue == container.id)
        #expect(spec?["endpoint"]?.stringValue == "eth0")
        #expect(spec?["ipNetworks"] == [.string("\(address)/32")])
        #expect(spec?["profiles"] == ["calico"])
        #expect(spec?["interfaceName"]?.stringValue == veths.first)
        #expect(spec?["mac"]?.stringValue == (try container.link("eth0"))?["address"] as? String)

        // DEL: kernel state, handle and endpoint gone; the address is free again.
        let del = try agent.invoke("DEL", container)
        #expect(del.status == 0 && del.stdout.isEmpty, "\(store.kind): \(del.stdoutText) \(del.stderrText)")
        #expect(try agent.workloadLinks().isEmpty)
        #expect(try container.linkNames() == ["lo"])
        let after = try store.records()
        #expect(after[handleKey] == nil)
        #expect(after[endpointKey] == nil)
        #expect(after.keys.filter { $0.hasPrefix(EtcdE2E.handlePrefix) || $0.hasPrefix(EtcdE2E.endpointPrefix) }.isEmpty)
        #expect(Set(after.keys) == expectedKeys.subtracting([handleKey, endpointKey]), "the host keeps its block and affinity")
        #expect(try EtcdTestStore.allocations(in: after.filter { $0.key.hasPrefix(EtcdE2E.blockPrefix) }).isEmpty)
        #expect(after[blockKey]?["affinity"]?.stringValue == "host:\(node)")
        #expect(after[affinityKey] == ["state": "confirmed", "deleted": false])

        // A second DEL finds nothing and still succeeds.
        let again = try agent.invoke("DEL", container)
        #expect(again.status == 0 && again.stdout.isEmpty, "\(again.stdoutText) \(again.stderrText)")
    }
}
