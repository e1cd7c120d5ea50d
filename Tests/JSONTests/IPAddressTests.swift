import Testing
import IPAddress
#if canImport(Glibc)
import Glibc
#endif

@Suite struct IPAddressTests {
    @Test(arguments: [("10.0.0.1", "10.0.0.1"), ("::", "::"), ("fd00:0:0::1", "fd00::1"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
                      ("::ffff:1.2.3.4", "::ffff:102:304"), ("FE80::EEEE:EEFF:FEEE:EEEE", "fe80::eeee:eeff:feee:eeee"), ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7")])
    func formats(_ input: String, _ expected: String) {
        #expect(IPAddress(input)?.description == expected)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", "g::1", "1.2.3.4/5",
                      "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.1000", "12345::", ":1::2", "1::2:", ":::", "1:2:3:4:5:6:7:1.2.3.4",
                      "1.2.3.4::", " 1.2.3.4", "::1.2.3", "::01.2.3.4", "1:2:3:4:5:6:7", "١.٢.٣.٤"])
    func rejects(_ input: String) { #expect(IPAddress(input) == nil) }

    @Test(arguments: [("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("::1.2.3.4", "::102:304"), ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
                      ("0000:0000::0001", "::1"), ("255.255.255.255", "255.255.255.255"), ("0.0.0.0", "0.0.0.0")])
    func acceptsEdgeForms(_ input: String, _ expected: String) {
        #expect(IPAddress(input)?.description == expected)
        #expect(IPAddress(Substring(input))?.description == expected)
    }

    /// The byte scanner agrees with glibc's inet_pton on every string of a random sample
    /// drawn from the characters addresses are made of (same acceptance, same value).
    @Test func agreesWithInetPton() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEF:.:.::")
        for _ in 0..<20_000 {
            let text = String((0..<Int.random(in: 0...22, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            #expect(IPAddress(text) == pton(text), "\(text)")
        }
        // And on addresses that are valid by construction.
        for _ in 0..<5_000 {
            let v6 = (0..<8).map { _ in String(UInt16.random(in: 0...UInt16.max, using: &rng) >> (UInt16.random(in: 0...3) * 4), radix: 16) }
            let gapStart = Int.random(in: 0...7), gapEnd = Int.random(in: gapStart...8)
            let text = gapEnd - gapStart >= 1 && Bool.random()
                ? v6[..<gapStart].joined(separator: ":") + "::" + v6[gapEnd...].joined(separator: ":")
                : v6.joined(separator: ":")
            #expect(IPAddress(text) == pton(text), "\(text)")
        }
    }

    private func pton(_ text: String) -> IPAddress? {
        var a4 = in_addr()
        if inet_pton(AF_INET, text, &a4) == 1 { return IPAddress(bytes: withUnsafeBytes(of: a4.s_addr) { Array($0) }) }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, text, &a6) == 1 { return IPAddress(bytes: withUnsafeBytes(of: a6) { Array($0) }) }
        return nil
    }

    @Test(arguments: ["10.0.0.0/", "10.0.0.0/a", "/24", "10.0.0.0/24/1", "10.0.0.0/-1", "fd00::/129", "10.0.0.0 /24"])
    func rejectsNetworks(_ input: String) {
        #expect(IPNetwork(input) == nil)
        #expect(IPNetwork(input, allowBareAddress: true) == nil)
    }

    @Test func bareAddressesAsNetworks() {
        #expect(IPNetwork("10.0.0.7") == nil)
        #expect(IPNetwork("10.0.0.7", allowBareAddress: true)?.description == "10.0.0.7/32")
        #expect(IPNetwork(Substring("fd00::7"), allowBareAddress: true)?.description == "fd00::7/128")
        #expect(IPNetwork("10.0.0.0/024")?.description == "10.0.0.0/24")
    }

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
