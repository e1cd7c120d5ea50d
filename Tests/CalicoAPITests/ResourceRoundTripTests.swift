import CalicoAPI
import JSON
import Testing

/// Values shaped as upstream Calico v3.14/3.15 writes them (Fixtures/resources) must decode
/// strictly (no unknown field) and encode back to the same JSON.
@Suite struct ResourceRoundTripTests {
    @Test(arguments: [
        ("ippool.json", ResourceKind.ipPool),
        ("ippool-v6.json", .ipPool),
        ("node.json", .node),
        ("clusterinformation.json", .clusterInformation),
        ("profile.json", .profile),
        ("workloadendpoint.json", .workloadEndpoint),
        ("networkpolicy.json", .networkPolicy),
        ("globalnetworkpolicy.json", .globalNetworkPolicy),
        ("hostendpoint.json", .hostEndpoint),
        ("felixconfiguration.json", .felixConfiguration),
    ])
    func roundTrip(file: String, kind: ResourceKind) throws {
        let original = try Fixture.json("resources/" + file)
        let decoded = try ResourceKind.decodeResource(original, strict: true)
        #expect(type(of: decoded).kind == kind)
        #expect(decoded.json.compactText == original.compactText)
    }

    @Test func ipPoolFields() throws {
        let pool = try IPPool(strictJSON: try Fixture.json("resources/ippool.json"))
        #expect(pool.metadata.name == "default-ipv4-ippool")
        #expect(pool.cidr == "192.168.0.0/16")
        #expect(pool.blockSize == 26)
        #expect(pool.ipipMode == .always)
        #expect(pool.vxlanMode == .never)
        #expect(pool.natOutgoing)
        #expect(!pool.disabled)
        #expect(pool.effectiveNodeSelector == "all()")
        let v6 = try IPPool(strictJSON: try Fixture.json("resources/ippool-v6.json"))
        #expect(v6.disabled && v6.isIPv6 && v6.effectiveBlockSize == 122)
    }

    @Test func ipPoolDefaults() {
        let v4 = IPPool(name: "p", cidr: "10.1.0.0/16").withDefaults()
        #expect(v4.blockSize == 26 && v4.nodeSelector == "all()" && v4.ipipMode == .never && v4.vxlanMode == .never)
        let v6 = IPPool(name: "p6", cidr: "fd00::/48").withDefaults()
        #expect(v6.blockSize == 122)
        // A CIDR with host bits is stored masked, as upstream validation normalises it.
        #expect(IPPool(name: "x", cidr: "10.1.2.3/16").withDefaults().cidr == "10.1.0.0/16")
    }

    @Test func workloadEndpointMatchesReferenceShape() throws {
        let wep = try WorkloadEndpoint(strictJSON: try Fixture.json("resources/workloadendpoint.json"))
        #expect(wep.metadata.namespace == "default")
        #expect(wep.orchestrator == "cni")
        #expect(wep.containerID == "5baff64c-d028-4d1e-9c2b-6f0e1a2b3c4d")
        #expect(wep.endpoint == "eth0")
        #expect(wep.ipNetworks == ["172.29.10.66/32"])
        #expect(wep.profiles == ["calico"])
        #expect(wep.metadata.labels["projectcalico.org/orchestrator"] == "cni")
        let name = WorkloadEndpointName(node: "agent-1", containerID: wep.containerID!, endpoint: "eth0")
        #expect(name.description == wep.metadata.name)
    }

    @Test func ruleDetails() throws {
        let gnp = try GlobalNetworkPolicy(strictJSON: try Fixture.json("resources/globalnetworkpolicy.json"))
        #expect(gnp.order == 100)
        #expect(gnp.applyOnForward)
        #expect(gnp.ingress[0].protocol == .name("ICMP"))
        #expect(gnp.ingress[0].icmp == ICMPFields(type: 8, code: 0))
        let deny = gnp.ingress[1]
        #expect(deny.action == .deny && deny.ipVersion == 6)
        #expect(deny.notProtocol == .number(58))
        #expect(deny.notICMP == ICMPFields(type: 128))
        #expect(deny.source.nets == ["fd00::/8"] && deny.source.notNets == ["fd00:1::/64"])
        #expect(deny.source.notSelector == "role == 'scanner'")
        #expect(deny.source.namespaceSelector == "all()")
        #expect(deny.destination.notPorts == [.range(min: 1000, max: 2000), .named("metrics")])
        #expect(gnp.egress[0].destination.ports == [.number(53), .range(min: 8000, max: 8080), .named("dns")])
        #expect(gnp.egress[1].protocol == .number(132) && gnp.egress[1].action == .log)
        #expect(gnp.egress[2].protocol?.number == 136 && gnp.egress[2].action == .pass)
    }

    @Test func seedPolicyDecodes() throws {
        let np = try NetworkPolicy(strictJSON: try Fixture.json("resources/networkpolicy.json"))
        #expect(np.selector == "biz_type == 'bookstore' && role == 'server'")
        #expect(np.types == [.ingress])
        #expect(np.ingress.count == 2)
        #expect(np.ingress[0].protocol == .tcp && np.ingress[0].destination.ports == [.number(80)])
        #expect(np.ingress[1].action == .deny)
    }

    @Test func policyTypesDefaultAsUpstream() {
        let allow = Rule(action: .allow)
        #expect(NetworkPolicy(name: "a").withDefaults().types == [.ingress])
        #expect(NetworkPolicy(name: "b", ingress: [allow]).withDefaults().types == [.ingress])
        #expect(NetworkPolicy(name: "c", egress: [allow]).withDefaults().types == [.egress])
        #expect(NetworkPolicy(name: "d", ingress: [allow], egress: [allow]).withDefaults().types == [.ingress, .egress])
        #expect(GlobalNetworkPolicy(name: "e", egress: [allow]).withDefaults().types == [.egress])
        // Explicit types are kept.
        #expect(NetworkPolicy(name: "f", types: [.egress], ingress: [allow]).withDefaults().types == [.egress])
    }

    @Test func networkDefaultProfile() throws {
        let p = Profile.networkDefault(name: "calico")
        let fixture = try Profile(strictJSON: try Fixture.json("resources/profile.json"))
        #expect(p.ingress == fixture.ingress)
        #expect(p.egress == fixture.egress)
        #expect(p.labelsToApply == ["calico": ""])
    }

    @Test func ipamValuesRoundTrip() throws {
        let blockJSON = try Fixture.json("resources/ipam-block.json")
        let block = try AllocationBlock(json: blockJSON)
        #expect(block.json.compactText == blockJSON.compactText)
        #expect(block.cidr.description == "172.29.10.64/26")
        #expect(block.affineNode == "agent-1")
        #expect(block.size == 64 && block.usedCount == 2)
        #expect(block.ordinals(handleID: "calico.5baff64c-d028-4d1e-9c2b-6f0e1a2b3c4d") == [0, 2])
        #expect(block.address(ordinal: 2).description == "172.29.10.66")

        let handleJSON = try Fixture.json("resources/ipam-handle.json")
        let handle = try IPAMHandle(handleID: "calico.x", json: handleJSON)
        #expect(handle.block == ["172.29.10.64/26": 2])
        #expect(handle.json.compactText == handleJSON.compactText)

        let aff = try BlockAffinity(json: try Fixture.json("resources/ipam-affinity.json"))
        #expect(aff.state == .confirmed)
        #expect(aff.json.compactText == #"{"deleted":false,"state":"confirmed"}"#)

        let cfg = try IPAMConfig(json: try Fixture.json("resources/ipam-config.json"))
        #expect(!cfg.strictAffinity && cfg.autoAllocateBlocks)
        #expect(cfg.json.compactText == #"{"auto_allocate_blocks":true,"strict_affinity":false}"#)
    }

    @Test func blockWithoutAffinityWritesNull() throws {
        let b = AllocationBlock(cidr: IPNetworkFixture.net("10.0.0.0/30"), affinity: nil)
        #expect(b.json.compactText
            == #"{"affinity":null,"allocations":[null,null,null,null],"attributes":[],"cidr":"10.0.0.0/30","deleted":false,"strictAffinity":false,"unallocated":[0,1,2,3]}"#)
    }

    @Test func blockAssignAndRelease() {
        var b = AllocationBlock(cidr: IPNetworkFixture.net("10.0.0.0/29"), affinity: "host:n1")
        #expect(b.assign(count: 2, handleID: "h1", secondary: ["node": "n1"]) == [0, 1])
        #expect(b.assign(count: 1, handleID: "h2", secondary: ["node": "n1"]) == [2])
        #expect(b.attributes.count == 2)
        b.release(handleID: "h1")
        #expect(b.unallocated == [3, 4, 5, 6, 7, 0, 1])
        // h2's attribute was renumbered to 0.
        #expect(b.allocations[2] == 0 && b.attributes == [AllocationAttribute(handleID: "h2", secondary: ["node": "n1"])])
        b.release(handleID: "h2")
        #expect(b.isEmpty && b.attributes.isEmpty)
    }
}

enum IPNetworkFixture {
    static func net(_ s: String) -> IPNetworkType { IPNetworkType(s)! }
}
