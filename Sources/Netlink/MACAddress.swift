import IPAddress

/// A 48-bit Ethernet hardware address, written `ee:ee:ee:ee:ee:ee`.
public struct MACAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address in the low 48 bits, first octet most significant.
    public let value: UInt64

    public init(value: UInt64) {
        precondition(value >> 48 == 0, "a MAC address has 48 bits")
        self.value = value
    }

    /// Six octets in wire order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 6 else { return nil }
        value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also `-` separated), case-insensitive.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(omittingEmptySubsequences: false) { $0 == ":" || $0 == "-" }
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for part in parts {
            guard part.count == 2, let octet = UInt8(part, radix: 16) else { return nil }
            v = v << 8 | UInt64(octet)
        }
        value = v
    }

    /// The six octets in wire order.
    public var bytes: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: value >> (40 - 8 * UInt64($0))) } }

    /// A random unicast, locally administered address (what the kernel's
    /// `eth_hw_addr_random` makes).
    public static func random() -> MACAddress {
        var generator = SystemRandomNumberGenerator()
        let raw = generator.next() & 0xFFFF_FFFF_FFFF
        // First octet: clear the multicast bit (0x01), set the locally-administered bit (0x02).
        return MACAddress(value: (raw & ~(UInt64(0x01) << 40)) | (UInt64(0x02) << 40))
    }

    /// The modified EUI-64 IPv6 link-local address derived from this MAC (RFC 4291 §2.5.1):
    /// `fe80::` + the MAC with `ff:fe` in the middle and the universal/local bit flipped.
    /// For `ee:ee:ee:ee:ee:ee` that is `fe80::ecee:eeff:feee:eeee`, which the kernel also
    /// generates when the link comes up.
    public var ipv6LinkLocalAddress: IPAddress {
        let b = bytes.map(UInt64.init)
        let interfaceID: UInt64 =
            (b[0] ^ 0x02) << 56 | b[1] << 48 | b[2] << 40 | 0xFF << 32 | 0xFE << 24 | b[3] << 16 | b[4] << 8 | b[5]
        return .v6(UInt128(0xFE80_0000_0000_0000) << 64 | UInt128(interfaceID))
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
