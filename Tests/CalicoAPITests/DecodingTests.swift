import CalicoAPI
import Datastore
import IPAddress
import JSON
import Testing

typealias IPNetworkType = IPNetwork

@Suite struct DecodingTests {
    @Test func strictDecodingNamesTheUnknownField() throws {
        var json = try Fixture.json("resources/ippool.json")
        json["spec"]?["blocksize"] = 24
        #expect(throws: CalicoAPIError.unknownField("spec.blocksize")) { try IPPool(strictJSON: json) }
        // Lenient decoding ignores it and records it.
        let context = DecodingContext()
        _ = try IPPool(json: json, context: context)
        #expect(context.unknownFields == ["spec.blocksize"])
    }

    @Test func unknownFieldPathsInsideRules() throws {
        let text = #"{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"p","colour":"red"},"spec":{"ingress":[{"action":"Allow"},{"action":"Deny","source":{"selectr":"a == 'b'"}}],"extra":1},"status":{}}"#
        let context = DecodingContext()
        _ = try NetworkPolicy(json: try JSON(parsing: text), context: context)
        #expect(context.unknownFields == ["metadata.colour", "spec.ingress[1].source.selectr", "spec.extra", "status"])
        #expect(throws: CalicoAPIError.unknownField("metadata.colour")) {
            try ResourceKind.decodeResource(try JSON(parsing: text), strict: true)
        }
    }

    @Test func wrongTypesAndValuesAreErrors() throws {
        let bad: [(String, CalicoAPIError)] = [
            (#"{"kind":"IPPool","metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/8","natOutgoing":"yes"}}"#,
             .invalidField(path: "spec.natOutgoing", reason: "expected a boolean, found string")),
            (#"{"kind":"IPPool","metadata":{"name":"a"},"spec":{}}"#, .missingField("spec.cidr")),
            (#"{"kind":"IPPool","metadata":{"name":"a"},"spec":{"cidr":"10.0.0/8"}}"#,
             .invalidField(path: "spec.cidr", reason: "not a CIDR: 10.0.0/8")),
            (#"{"kind":"IPPool","metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/8","ipipMode":"Sometimes"}}"#,
             .invalidField(path: "spec.ipipMode", reason: "expected Never, Always or CrossSubnet, found \"Sometimes\"")),
        ]
        for (text, error) in bad {
            #expect(throws: error) { try IPPool(json: try JSON(parsing: text)) }
        }
        let rule = #"{"kind":"GlobalNetworkPolicy","metadata":{"name":"a"},"spec":{"ingress":[{"action":"Allow","protocol":"TCPX"}]}}"#
        #expect(throws: CalicoAPIError.invalidField(path: "spec.ingress[0].protocol", reason: "unknown protocol \"TCPX\"")) {
            try GlobalNetworkPolicy(json: try JSON(parsing: rule))
        }
        let port = #"{"kind":"GlobalNetworkPolicy","metadata":{"name":"a"},"spec":{"egress":[{"action":"Allow","destination":{"ports":["9:1"]}}]}}"#
        #expect(throws: CalicoAPIError.invalidField(path: "spec.egress[0].destination.ports[0]", reason: "port range 9:1 has min > max")) {
            try GlobalNetworkPolicy(json: try JSON(parsing: port))
        }
        #expect(throws: CalicoAPIError.kindMismatch(expected: "Profile", found: "IPPool")) {
            try Profile(json: try JSON(parsing: #"{"kind":"IPPool","metadata":{"name":"a"}}"#))
        }
        #expect(throws: CalicoAPIError.unknownKind("BGPWidget")) {
            try ResourceKind.decodeResource(try JSON(parsing: #"{"kind":"BGPWidget"}"#))
        }
    }

    @Test func protocolsAsNamesOrNumbers() throws {
        let text = #"{"kind":"Profile","metadata":{"name":"p"},"spec":{"ingress":[{"action":"allow","protocol":"tcp"},{"action":"Allow","protocol":"17"},{"action":"Allow","protocol":6}]}}"#
        let p = try Profile(json: try JSON(parsing: text))
        #expect(p.ingress.map(\.protocol) == [.name("tcp"), .number(17), .number(6)])
        #expect(p.ingress.map { $0.protocol!.number } == [6, 17, 6])
        #expect(p.ingress[0].action == .allow)
    }

    @Test func kindAliases() {
        let cases: [(String, ResourceKind)] = [
            ("policy", .networkPolicy), ("NP", .networkPolicy), ("networkpolicy", .networkPolicy),
            ("NetworkPolicies", .networkPolicy), ("gnp", .globalNetworkPolicy), ("GlobalNetworkPolicy", .globalNetworkPolicy),
            ("profile", .profile), ("pro", .profile), ("ippool", .ipPool), ("pool", .ipPool), ("IPPools", .ipPool),
            ("wep", .workloadEndpoint), ("workloadendpoint", .workloadEndpoint), ("hep", .hostEndpoint),
            ("node", .node), ("no", .node), ("Nodes", .node), ("felixconfig", .felixConfiguration),
            ("clusterinformation", .clusterInformation),
        ]
        for (alias, kind) in cases { #expect(ResourceKind(alias: alias) == kind, "\(alias)") }
        #expect(ResourceKind(alias: "pods") == nil)
    }

    @Test func keys() {
        #expect(ResourceKind.ipPool.key(name: "default-ipv4-ippool")
            == "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool")
        #expect(ResourceKind.networkPolicy.key(name: "p", namespace: "web")
            == "/calico/resources/v3/projectcalico.org/networkpolicies/web/p")
        #expect(ResourceKind.workloadEndpoint.key(name: "w")
            == "/calico/resources/v3/projectcalico.org/workloadendpoints/default/w")
        #expect(ResourceKind.clusterInformation.key(name: "default")
            == "/calico/resources/v3/projectcalico.org/clusterinformations/default")
        #expect(ResourceKind.globalNetworkPolicy.keyPrefix() == "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/")
        // A namespace is ignored for cluster-scoped kinds.
        #expect(ResourceKind.profile.key(name: "calico", namespace: "x")
            == "/calico/resources/v3/projectcalico.org/profiles/calico")
    }
}
