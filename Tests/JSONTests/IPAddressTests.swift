import Testing
import IPAddress

@Suite struct IPAddressTests {
    @Test(arguments: [("10.0.0.1", "10.0.0.1"), ("::", "::"), ("fd00:0:0::1", "fd00::1"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
                      ("::ffff:1.2.3.4", "::ffff:102:304"), ("FE80::EEEE:EEFF:FEEE:EEEE", "fe80::eeee:eeff:feee:eeee"), ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7")])
    func formats(_ input: String, _ expected: String) {
        #expect(IPAddress(input)?.description == expected)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", "g::1", "1.2.3.4/5"])
    func rejects(_ input: String) { #expect(IPAddress(input) == nil) }

    @Test func networks() throws {
        let n = try #require(IPNetwork("172.29.10.64/26"))
        #expect(n.isMasked)
        #expect(n.size == 64)
        #expect(n.address(at: 2).description == "172.29.10.66")
        #expect(n.ordinal(of: IPAddress("172.29.10.127")!) == 63)
        #expect(!n.contains(IPAddress("172.29.10.128")!))
        #expect(IPNetwork("10.0.0.1/8")?.isMasked == false)
        #expect(IPNetwork("10.0.0.1/8")?.masked.description == "10.0.0.0/8")
        #expect(IPNetwork("fd00::/122")?.size == 64)
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
    }
}
