import CNI
import IPAddress
import JSON
import Testing

/// Every version's result parses into the canonical model and prints back.
@Suite struct ResultTests {
    /// A dual-stack result using every 1.1.0 field.
    let full = CNIResult(
        interfaces: [
            .init(name: "cali0123456789a", mac: "ee:ee:ee:ee:ee:ee"),
            .init(name: "eth0", mac: "0a:58:0a:01:02:03", sandbox: "/var/run/netns/c1", mtu: 1450, socketPath: "/run/vhost.sock", pciID: "0000:00:1f.6"),
        ],
        ips: [
            .init(address: IPNetwork("172.29.10.66/32")!, gateway: IPAddress("169.254.1.1"), interface: 1),
            .init(address: IPNetwork("fd00::42/128")!, gateway: IPAddress("fe80::ecee:eeff:feee:eeee"), interface: 1),
            .init(address: IPNetwork("172.29.10.67/32")!, interface: 0),
        ],
        routes: [
            .init(destination: IPNetwork("0.0.0.0/0")!, gateway: IPAddress("169.254.1.1"), mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0),
            .init(destination: IPNetwork("169.254.1.1/32")!),
            .init(destination: IPNetwork("::/0")!, gateway: IPAddress("fe80::ecee:eeff:feee:eeee")),
        ],
        dns: .init(nameservers: ["10.0.0.10"], domain: "cluster.local", search: ["svc.cluster.local"], options: ["ndots:5"]))

    func text(_ r: CNIResult, _ v: String) throws -> String { try r.json(cniVersion: v).compactText }

    @Test(arguments: ["0.1.0", "0.2.0"])
    func legacyShape(version: String) throws {
        #expect(try text(full, version) == #"{"cniVersion":"\#(version)","dns":{"domain":"cluster.local","nameservers":["10.0.0.10"],"options":["ndots:5"],"search":["svc.cluster.local"]},"ip4":{"gateway":"169.254.1.1","ip":"172.29.10.66/32","routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"169.254.1.1/32"}]},"ip6":{"gateway":"fe80::ecee:eeff:feee:eeee","ip":"fd00::42/128","routes":[{"dst":"::/0","gw":"fe80::ecee:eeff:feee:eeee"}]}}"#)
    }

    @Test func legacyShapeWithOnlyIPv6() throws {
        let r = CNIResult(ips: [.init(address: IPNetwork("fd00::1/64")!)], routes: [.init(destination: IPNetwork("0.0.0.0/0")!)])
        #expect(try text(r, "0.2.0") == #"{"cniVersion":"0.2.0","dns":{},"ip6":{"ip":"fd00::1/64"}}"#)
    }

    @Test func legacyShapeWithoutAddressesIsAnError() {
        let r = CNIResult(interfaces: [.init(name: "eth0")])
        #expect(throws: CNIError.self) { try r.json(cniVersion: "0.2.0") }
        do { _ = try r.json(cniVersion: "0.1.0") } catch { #expect(error.code == 1) }
    }

    @Test(arguments: ["0.3.0", "0.3.1", "0.4.0"])
    func shapeWithIPVersion(version: String) throws {
        #expect(try text(full, version) == #"{"cniVersion":"\#(version)","dns":{"domain":"cluster.local","nameservers":["10.0.0.10"],"options":["ndots:5"],"search":["svc.cluster.local"]},"interfaces":[{"mac":"ee:ee:ee:ee:ee:ee","name":"cali0123456789a"},{"mac":"0a:58:0a:01:02:03","name":"eth0","sandbox":"/var/run/netns/c1"}],"ips":[{"address":"172.29.10.66/32","gateway":"169.254.1.1","interface":1,"version":"4"},{"address":"fd00::42/128","gateway":"fe80::ecee:eeff:feee:eeee","interface":1,"version":"6"},{"address":"172.29.10.67/32","interface":0,"version":"4"}],"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"169.254.1.1/32"},{"dst":"::/0","gw":"fe80::ecee:eeff:feee:eeee"}]}"#)
    }

    @Test func shape100DropsIPVersion() throws {
        #expect(try text(full, "1.0.0") == #"{"cniVersion":"1.0.0","dns":{"domain":"cluster.local","nameservers":["10.0.0.10"],"options":["ndots:5"],"search":["svc.cluster.local"]},"interfaces":[{"mac":"ee:ee:ee:ee:ee:ee","name":"cali0123456789a"},{"mac":"0a:58:0a:01:02:03","name":"eth0","sandbox":"/var/run/netns/c1"}],"ips":[{"address":"172.29.10.66/32","gateway":"169.254.1.1","interface":1},{"address":"fd00::42/128","gateway":"fe80::ecee:eeff:feee:eeee","interface":1},{"address":"172.29.10.67/32","interface":0}],"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"169.254.1.1/32"},{"dst":"::/0","gw":"fe80::ecee:eeff:feee:eeee"}]}"#)
    }

    @Test func shape110AddsTheNewFields() throws {
        #expect(try text(full, "1.1.0") == #"{"cniVersion":"1.1.0","dns":{"domain":"cluster.local","nameservers":["10.0.0.10"],"options":["ndots:5"],"search":["svc.cluster.local"]},"interfaces":[{"mac":"ee:ee:ee:ee:ee:ee","name":"cali0123456789a"},{"mac":"0a:58:0a:01:02:03","mtu":1450,"name":"eth0","pciID":"0000:00:1f.6","sandbox":"/var/run/netns/c1","socketPath":"/run/vhost.sock"}],"ips":[{"address":"172.29.10.66/32","gateway":"169.254.1.1","interface":1},{"address":"fd00::42/128","gateway":"fe80::ecee:eeff:feee:eeee","interface":1},{"address":"172.29.10.67/32","interface":0}],"routes":[{"advmss":1360,"dst":"0.0.0.0/0","gw":"169.254.1.1","mtu":1400,"priority":10,"scope":0,"table":100},{"dst":"169.254.1.1/32"},{"dst":"::/0","gw":"fe80::ecee:eeff:feee:eeee"}]}"#)
    }

    @Test func ipamResultHasNoInterfaceIndex() throws {
        let r = CNIResult(ips: [.init(address: IPNetwork("10.22.0.5/16")!, gateway: IPAddress("10.22.0.1"))])
        #expect(try text(r, "0.4.0") == #"{"cniVersion":"0.4.0","dns":{},"ips":[{"address":"10.22.0.5/16","gateway":"10.22.0.1","version":"4"}]}"#)
    }

    @Test(arguments: ["", "0.5.0", "1.0"])
    func printingInAnUnknownVersion(version: String) throws {
        if version.isEmpty {
            // Empty means 0.1.0 and prints as such.
            #expect(try full.json(cniVersion: "")["cniVersion"] == "0.1.0")
            #expect(try full.json(cniVersion: "")["ip4"] != nil)
        } else {
            #expect(throws: CNIError.self) { try full.json(cniVersion: version) }
        }
    }

    /// Printing in a version and parsing it back keeps what that version can express.
    @Test(arguments: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    func roundTripModern(version: String) throws {
        let back = try CNIResult(parsing: try full.json(cniVersion: version))
        var expected = full
        if version != "1.1.0" {
            expected.interfaces[1].mtu = nil
            expected.interfaces[1].socketPath = nil
            expected.interfaces[1].pciID = nil
            expected.routes[0] = .init(destination: IPNetwork("0.0.0.0/0")!, gateway: IPAddress("169.254.1.1"))
        }
        #expect(back == expected)
    }

    @Test(arguments: ["0.1.0", "0.2.0"])
    func roundTripLegacy(version: String) throws {
        let back = try CNIResult(parsing: try full.json(cniVersion: version))
        #expect(back.interfaces.isEmpty)
        #expect(back.ips == [
            .init(address: IPNetwork("172.29.10.66/32")!, gateway: IPAddress("169.254.1.1")),
            .init(address: IPNetwork("fd00::42/128")!, gateway: IPAddress("fe80::ecee:eeff:feee:eeee")),
        ])
        #expect(back.routes == [
            .init(destination: IPNetwork("0.0.0.0/0")!, gateway: IPAddress("169.254.1.1")),
            .init(destination: IPNetwork("169.254.1.1/32")!),
            .init(destination: IPNetwork("::/0")!, gateway: IPAddress("fe80::ecee:eeff:feee:eeee")),
        ])
        #expect(back.dns == full.dns)
    }

    /// What host-local 0.2.0 prints, converted up to every newer version.
    @Test func legacyResultConvertsUp() throws {
        let hostLocal = try JSON(parsing: #"{"cniVersion":"0.2.0","ip4":{"ip":"10.22.0.5/16","gateway":"10.22.0.1","routes":[{"dst":"0.0.0.0/0"}]},"dns":{}}"#)
        let r = try CNIResult(parsing: hostLocal)
        #expect(try text(r, "0.4.0") == #"{"cniVersion":"0.4.0","dns":{},"ips":[{"address":"10.22.0.5/16","gateway":"10.22.0.1","version":"4"}],"routes":[{"dst":"0.0.0.0/0"}]}"#)
        #expect(try text(r, "1.1.0") == #"{"cniVersion":"1.1.0","dns":{},"ips":[{"address":"10.22.0.5/16","gateway":"10.22.0.1"}],"routes":[{"dst":"0.0.0.0/0"}]}"#)
        #expect(try text(r, "0.2.0") == #"{"cniVersion":"0.2.0","dns":{},"ip4":{"gateway":"10.22.0.1","ip":"10.22.0.5/16","routes":[{"dst":"0.0.0.0/0"}]}}"#)
    }

    /// Without a cniVersion, the shape decides.
    @Test func shapeDetection() throws {
        let legacy = try CNIResult(parsing: try JSON(parsing: #"{"ip4":{"ip":"1.2.3.4/24"}}"#))
        #expect(legacy.ips.map(\.address.description) == ["1.2.3.4/24"])
        let modern = try CNIResult(parsing: try JSON(parsing: #"{"ips":[{"address":"1.2.3.4/24","interface":0}],"interfaces":[{"name":"eth0"}]}"#))
        #expect(modern.ips.first?.interface == 0)
        #expect(modern.interfaces.first?.name == "eth0")
    }

    @Test(arguments: [
        #"{"cniVersion":"0.2.0","ip4":{"ip":"1.2.3.4"}}"#,
        #"{"cniVersion":"0.2.0","ip4":{"ip":"1.2.3.4/24","gateway":"x"}}"#,
        #"{"cniVersion":"0.2.0","ip4":{"ip":"1.2.3.4/24","routes":[{"gw":"1.2.3.1"}]}}"#,
        #"{"cniVersion":"0.4.0","ips":[{"address":"1.2.3.4/24","version":"6"}]}"#,
        #"{"cniVersion":"0.4.0","ips":[{"address":"1.2.3.4/24","interface":-1}]}"#,
        #"{"cniVersion":"1.0.0","ips":{}}"#,
        #"{"cniVersion":"1.0.0","interfaces":[{"mac":"x"}]}"#,
        #"{"cniVersion":"1.0.0","dns":{"nameservers":"8.8.8.8"}}"#,
        #"[]"#,
    ])
    func malformedResultsAreDecodeErrors(text: String) throws {
        let j = try JSON(parsing: text)
        do {
            _ = try CNIResult(parsing: j)
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.code == 6)
        }
    }
}
