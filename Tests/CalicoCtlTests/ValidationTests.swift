import Foundation
import Testing
import TestSupport

/// A resource with one mistake, and what the refusal must say.
struct RefusalCase: CustomStringConvertible, Sendable {
    var name: String
    var yaml: String
    /// Fragments the error must contain (the field path and the problem).
    var expected: [String]
    var description: String { name }
}

private func policy(_ spec: String, kind: String = "NetworkPolicy", name: String = "p") -> String {
    "apiVersion: projectcalico.org/v3\nkind: \(kind)\nmetadata:\n  name: \(name)\nspec:\n" + spec
}

private func pool(_ spec: String) -> String {
    "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool1\nspec:\n" + spec
}

let refusalCases: [RefusalCase] = [
    RefusalCase(name: "unknown spec field", yaml: policy("  selector: all()\n  ingres:\n  - action: Allow\n"),
                expected: ["document 1 (line 7): spec.ingres: unknown field 'ingres'"]),
    RefusalCase(name: "unknown rule field", yaml: policy("  ingress:\n  - action: Allow\n    source:\n      selecter: has(a)\n"),
                expected: ["spec.ingress[0].source.selecter: unknown field 'selecter'"]),
    RefusalCase(name: "unknown top-level field", yaml: policy("  selector: all()\n") + "status: {}\n",
                expected: ["status: unknown field 'status'"]),
    RefusalCase(name: "name not DNS-1123", yaml: policy("  selector: all()\n", name: "Allow_Web"),
                expected: ["metadata.name: 'Allow_Web' is not a valid name", "did you mean 'allow-web'?"]),
    RefusalCase(name: "unquoted selector value", yaml: policy("  selector: role == web\n"),
                expected: ["spec.selector: invalid selector: expected a quoted string at column 9, found 'web'"]),
    RefusalCase(name: "bad rule selector", yaml: policy("  ingress:\n  - action: Allow\n    source:\n      selector: has(a) &&\n"),
                expected: ["spec.ingress[0].source.selector: invalid selector: expected a label name", "at column 10, found the end of the selector"]),
    RefusalCase(name: "unquoted bang in YAML", yaml: policy("  selector: !has(role)\n"),
                expected: ["line 6: spec.selector: YAML reads '!has(role)' as a type tag", "selector: '!has(role)'"]),
    RefusalCase(name: "unquoted bang followed by more", yaml: policy("  selector: !has(role) && a == 'b'\n"),
                expected: ["which YAML reads as a type tag", "selector: \"!has(role) && a == 'b'\""]),
    RefusalCase(name: "ports without protocol", yaml: policy("  ingress:\n  - action: Allow\n    destination:\n      ports: [80]\n"),
                expected: ["spec.ingress[0].destination.ports: ports can only be matched with protocol TCP, UDP or SCTP"]),
    RefusalCase(name: "ports with ICMP", yaml: policy("  egress:\n  - action: Allow\n    protocol: ICMP\n    destination:\n      notPorts: [53]\n"),
                expected: ["spec.egress[0].destination.notPorts: ports can only be matched with protocol TCP, UDP or SCTP, but the rule's protocol is ICMP"]),
    RefusalCase(name: "ICMP fields on TCP", yaml: policy("  ingress:\n  - action: Allow\n    protocol: TCP\n    icmp:\n      type: 8\n"),
                expected: ["spec.ingress[0].icmp: ICMP type/code can only be matched with protocol ICMP or ICMPv6, but the protocol is TCP"]),
    RefusalCase(name: "ICMP code without type", yaml: policy("  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp:\n      code: 0\n"),
                expected: ["spec.ingress[0].icmp.code: an ICMP code needs an ICMP type"]),
    RefusalCase(name: "action wrong case", yaml: policy("  ingress:\n  - action: allow\n"),
                expected: ["spec.ingress[0].action: 'allow' is not an action: use Allow, Deny, Log or Pass (did you mean Allow?)"]),
    RefusalCase(name: "action unknown", yaml: policy("  ingress:\n  - action: Accept\n"),
                expected: ["spec.ingress[0].action: 'Accept' is not an action"]),
    RefusalCase(name: "rule without action", yaml: policy("  ingress:\n  - protocol: TCP\n"),
                expected: ["spec.ingress[0].action: missing"]),
    RefusalCase(name: "port out of range", yaml: policy("  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [70000]\n"),
                expected: ["spec.ingress[0].destination.ports[0]: port 70000 is out of range"]),
    RefusalCase(name: "unmasked rule net", yaml: policy("  ingress:\n  - action: Allow\n    source:\n      nets: [10.0.0.1/8]\n"),
                expected: ["spec.ingress[0].source.nets[0]: '10.0.0.1/8' is not a network address", "did you mean 10.0.0.0/8?"]),
    RefusalCase(name: "types wrong", yaml: policy("  types: [Inbound]\n"),
                expected: ["spec.types[0]: 'Inbound' is not a policy type"]),
    RefusalCase(name: "egress rules without Egress type", yaml: policy("  types: [Ingress]\n  egress:\n  - action: Allow\n"),
                expected: ["spec.types: egress rules are given but types does not include Egress"]),
    RefusalCase(name: "unmasked pool CIDR", yaml: pool("  cidr: 172.30.1.0/16\n"),
                expected: ["spec.cidr: '172.30.1.0/16' is not a network address", "did you mean 172.30.0.0/16?"]),
    RefusalCase(name: "not a CIDR", yaml: pool("  cidr: 172.30.0.0\n"),
                expected: ["spec.cidr: '172.30.0.0' is not a valid CIDR"]),
    RefusalCase(name: "IPv4 block size too small", yaml: pool("  cidr: 172.30.0.0/16\n  blockSize: 19\n"),
                expected: ["spec.blockSize: 19 is out of range: IPv4 block sizes are 20–32"]),
    RefusalCase(name: "IPv6 block size too large", yaml: pool("  cidr: fd00::/48\n  blockSize: 130\n"),
                expected: ["spec.blockSize: 130 is out of range: IPv6 block sizes are 116–128"]),
    RefusalCase(name: "IPv6 block size of IPv4 range", yaml: pool("  cidr: fd00::/48\n  blockSize: 26\n"),
                expected: ["spec.blockSize: 26 is out of range: IPv6 block sizes are 116–128"]),
    RefusalCase(name: "IPIP and VXLAN together", yaml: pool("  cidr: 172.30.0.0/16\n  ipipMode: Always\n  vxlanMode: Always\n"),
                expected: ["spec.vxlanMode: IPIP and VXLAN cannot both be enabled"]),
    RefusalCase(name: "bad node selector", yaml: pool("  cidr: 172.30.0.0/16\n  nodeSelector: zone = 'a'\n"),
                expected: ["spec.nodeSelector: invalid selector: expected '==' at column 6"]),
    RefusalCase(name: "label value not a string", yaml: "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: p\n  labels:\n    version: 1.0\n",
                expected: ["metadata.labels.version: label values must be strings"]),
    RefusalCase(name: "wrong apiVersion", yaml: "apiVersion: v1\nkind: Profile\nmetadata:\n  name: p\n",
                expected: ["apiVersion: 'v1' is not supported: use projectcalico.org/v3"]),
    RefusalCase(name: "kind wrongly cased", yaml: "apiVersion: projectcalico.org/v3\nkind: networkpolicy\nmetadata:\n  name: p\n",
                expected: ["kind: 'networkpolicy' must be written 'NetworkPolicy'"]),
    RefusalCase(name: "unknown kind", yaml: "apiVersion: projectcalico.org/v3\nkind: Pod\nmetadata:\n  name: p\n",
                expected: ["kind: 'Pod' is not a resource kind this calicoctl manages"]),
    RefusalCase(name: "namespace on a cluster-scoped kind", yaml: "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: p\n  namespace: default\n",
                expected: ["metadata.namespace: Profile is not namespaced"]),
    RefusalCase(name: "GNP preDNAT with egress", yaml: policy("  preDNAT: true\n  applyOnForward: true\n  egress:\n  - action: Allow\n", kind: "GlobalNetworkPolicy"),
                expected: ["spec.egress: a preDNAT policy cannot have egress rules"]),
    RefusalCase(name: "invalid YAML", yaml: "apiVersion: projectcalico.org/v3\nkind: [\n",
                expected: ["invalid YAML at line"]),
]

@Suite(.enabled(if: Calicoctl.isBuilt, "needs the built calicoctl"), .enabled(if: hasSQLite3, "needs the sqlite3 tool"))
struct ValidationTests {
    @Test(arguments: refusalCases)
    func refusesWithFieldAndProblem(_ c: RefusalCase) throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let path = try ctl.file("bad.yaml", c.yaml)
        let r = try ctl.run(["apply", "-f", path])
        #expect(r.status == 1)
        #expect(r.stdoutText == "")
        for fragment in c.expected {
            #expect(r.stderrText.contains(fragment), "missing \"\(fragment)\" in:\n\(r.stderrText)")
        }
        #expect(r.stderrText.contains("nothing was stored"))
        #expect(try ctl.storedKeys().isEmpty)
    }

    @Test func oneBadDocumentStopsTheWholeFileAndEveryProblemIsListed() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let text = pool("  cidr: 10.0.0.0/16\n") + "\n---\n" + policy("  selector: role == web\n  ingress:\n  - action: allow\n")
        let path = try ctl.file("mixed.yaml", text)
        let r = try ctl.run(["create", "-f", path])
        #expect(r.status == 1)
        #expect(r.stderrText.hasPrefix("Failed to create resources: 2 problems found; nothing was stored:\n"))
        #expect(r.stderrText.contains("\(path), document 2 (line 14): spec.selector: invalid selector"))
        #expect(r.stderrText.contains("\(path), document 2 (line 16): spec.ingress[0].action: 'allow' is not an action"))
        #expect(!r.stderrText.contains("document 1"))
        // The good pool in document 1 was not stored either.
        #expect(try ctl.storedKeys().isEmpty)
    }

    @Test func directoryIsAllOrNothingToo() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        let dir = ctl.directory.appendingPathComponent("resources")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try pool("  cidr: 10.0.0.0/16\n").write(to: dir.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try policy("  selector: x == y\n").write(to: dir.appendingPathComponent("b.yml"), atomically: true, encoding: .utf8)
        try "not a resource".write(to: dir.appendingPathComponent("README.txt"), atomically: true, encoding: .utf8)
        let r = try ctl.run(["apply", "-f", dir.path])
        #expect(r.status == 1)
        #expect(r.stderrText.contains("b.yml, document 1 (line 6): spec.selector"))
        #expect(try ctl.storedKeys().isEmpty)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("b.yml"))
        let ok = try ctl.run(["apply", "-f", dir.path])
        #expect(ok.stdoutText == "Successfully applied 1 'IPPool' resource(s)\n", "\(ok.stderrText)")
    }

    @Test func overlappingPoolIsRefusedAtWriteTime() throws {
        let ctl = Calicoctl()
        defer { ctl.remove() }
        _ = try ctl.run(["create", "-f", Calicoctl.fixture("seed-ippool-profile.yaml")])
        let path = try ctl.file("overlap.yaml", pool("  cidr: 172.30.128.0/17\n"))
        let r = try ctl.run(["create", "-f", path])
        #expect(r.status == 1)
        #expect(r.stderrText == "Failed to create 'IPPool' resource: [invalid value for field spec.cidr: IPPool(pool1) CIDR 172.30.128.0/17 overlaps with IPPool(seed-pool) CIDR 172.30.0.0/16]\n")
        #expect(try ctl.storedKeys("/calico/resources/v3/projectcalico.org/ippools/") == ["/calico/resources/v3/projectcalico.org/ippools/seed-pool"])
    }
}
