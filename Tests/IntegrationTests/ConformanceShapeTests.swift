import CNI
import CNIHarness
import JSON
import Testing

/// The judgements the conformance harness applies to results, on known-good and
/// known-bad JSON (no namespaces needed).
@Suite struct ConformanceShapeTests {
    func problems(_ text: String, _ version: CNIVersion) throws -> [String] {
        ResultShape.problems(try JSON(parsing: text), version: version, interfaceName: "eth0", sandbox: "/var/run/netns/c")
    }

    static let interfaces = #""interfaces":[{"name":"cali0123456789a","mac":"ee:ee:ee:ee:ee:ee"},{"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/var/run/netns/c"}]"#

    @Test func legacyShape() throws {
        #expect(try problems(#"{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/32","gateway":"10.0.0.1","routes":[{"dst":"0.0.0.0/0"}]},"dns":{}}"#, .v0_2_0).isEmpty)
        #expect(try problems(#"{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2"}}"#, .v0_2_0)
            == [#"ip4.ip is not an address with prefix length: "10.0.0.2""#])
        #expect(try problems(#"{"cniVersion":"0.1.0","ips":[],"ip4":{"ip":"10.0.0.2/32"}}"#, .v0_2_0)
            == [#"cniVersion: expected "0.2.0", got "0.1.0""#, "ips is not part of a 0.1/0.2 result"])
        #expect(try problems(#"{"cniVersion":"0.2.0","dns":{}}"#, .v0_2_0) == ["neither ip4 nor ip6: a 0.1/0.2 result carries its addresses there"])
        #expect(try problems(#"{"cniVersion":"0.2.0","ip6":{"ip":"10.0.0.2/32"}}"#, .v0_2_0) == ["ip6.ip 10.0.0.2/32 is of the wrong family"])
    }

    @Test func versionFieldUntil100() throws {
        let with = #"{"cniVersion":"0.4.0",\#(Self.interfaces),"ips":[{"version":"4","interface":1,"address":"10.0.0.2/32"}]}"#
        #expect(try problems(with, .v0_4_0).isEmpty)
        let without = #"{"cniVersion":"1.0.0",\#(Self.interfaces),"ips":[{"interface":1,"address":"10.0.0.2/32"}]}"#
        #expect(try problems(without, .v1_0_0).isEmpty)
        #expect(try problems(without.replacingOccurrences(of: "1.0.0", with: "0.3.1"), .v0_3_1) == ["ips[0].version is missing (required before 1.0.0)"])
        #expect(try problems(with.replacingOccurrences(of: "0.4.0", with: "1.0.0"), .v1_0_0) == ["ips[0].version was removed in 1.0.0"])
        #expect(try problems(with.replacingOccurrences(of: #""version":"4""#, with: #""version":"6""#), .v0_4_0)
            == [#"ips[0].version "6" does not match 10.0.0.2/32"#])
    }

    @Test func interfacesAndExtendedFields() throws {
        let badIndex = #"{"cniVersion":"1.0.0",\#(Self.interfaces),"ips":[{"interface":2,"address":"10.0.0.2/32"}]}"#
        #expect(try problems(badIndex, .v1_0_0) == ["ips[0].interface 2 is not an index into interfaces"])
        let wrongSandbox = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/other"}],"ips":[{"address":"10.0.0.2/32"}]}"#
        #expect(try problems(wrongSandbox, .v1_0_0) == ["interface eth0 does not name sandbox /var/run/netns/c"])
        let mtu = #"{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/c","mtu":1450}],"ips":[{"address":"10.0.0.2/32","interface":0}],"routes":[{"dst":"0.0.0.0/0","table":100}]}"#
        #expect(try problems(mtu, .v1_1_0).isEmpty)
        #expect(try problems(mtu.replacingOccurrences(of: "1.1.0", with: "1.0.0"), .v1_0_0)
            == ["interfaces[0].mtu exists only from 1.1.0", "routes[0].table exists only from 1.1.0"])
        #expect(try problems(#"{"cniVersion":"1.0.0","ip4":{"ip":"10.0.0.2/32"}}"#, .v1_0_0)
            == ["ip4 belongs to 0.1/0.2 results, not 1.0.0", "interfaces lists no eth0", "ips is missing or not an array"])
    }

    @Test func mesosReadsOneObjectWithIP4() {
        let good = Array(#"{"cniVersion":"0.2.0","ip4":{"ip":"172.29.10.66/32"},"dns":{}}"#.utf8)
        #expect(MesosJudgement.problems(stdout: good).isEmpty)
        #expect(MesosJudgement.address(in: good)?.description == "172.29.10.66/32")
        #expect(MesosJudgement.problems(stdout: Array(#"{"cniVersion":"0.3.1","ips":[{"address":"172.29.10.66/32"}]}"#.utf8))
            == ["no ip4 in the result (a 0.3+ result: Mesos reads no address from ips): the task would get no IP"])
        #expect(MesosJudgement.problems(stdout: Array(#"{"ip4":{"ip":"172.29.10.66"}}"#.utf8))
            == [#"ip4.ip is not an address with prefix length: "172.29.10.66""#])
        let twoObjects = MesosJudgement.problems(stdout: Array("{\"ip4\":{\"ip\":\"10.0.0.2/32\"}}\n{}".utf8))
        #expect(twoObjects.count == 1 && twoObjects[0].hasPrefix("stdout is not exactly one JSON value"))
        #expect(MesosJudgement.problems(stdout: Array("adding\n{\"ip4\":{\"ip\":\"10.0.0.2/32\"}}".utf8)).first?.hasPrefix("stdout is not exactly one JSON value") == true)
    }
}
