/// An IPv4 or IPv6 address.
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (including `::` and an embedded IPv4 tail).
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let v = IPAddress.parseV6(Substring(text)) else { return nil }
            self = .v6(v)
        } else {
            guard let v = IPAddress.parseV4(Substring(text)) else { return nil }
            self = .v4(v)
        }
    }

    /// Builds an address from network-order bytes (4 or 16).
    public init?(bytes: some Collection<UInt8>) {
        if bytes.count == 4 {
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        } else if bytes.count == 16 {
            self = .v6(bytes.reduce(0) { $0 << 8 | UInt128($1) })
        } else {
            return nil
        }
    }

    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// 32 or 128.
    public var bitWidth: Int { isIPv6 ? 128 : 32 }

    /// Network-order bytes (4 or 16).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let v): return (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) }
        case .v6(let v): return (0..<16).map { UInt8(truncatingIfNeeded: v >> (120 - 8 * $0)) }
        }
    }

    /// The address as an unsigned integer (IPv4 zero-extended).
    public var integer: UInt128 {
        switch self {
        case .v4(let v): return UInt128(v)
        case .v6(let v): return v
        }
    }

    /// The address `n` places after this one, in the same family (wrapping).
    public func advanced(by n: UInt128) -> IPAddress {
        switch self {
        case .v4(let v): return .v4(v &+ UInt32(truncatingIfNeeded: n))
        case .v6(let v): return .v6(v &+ n)
        }
    }

    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        case .v6(let v):
            return IPAddress.formatV6(v)
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): return x < y
        case (.v6(let x), .v6(let y)): return x < y
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }

    static func parseV4(_ s: Substring) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        for part in s.split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let n = UInt32(part), n <= 255
            else { return nil }
            if part.count > 1 && part.first == "0" { return nil }  // no octal-looking forms
            value = value << 8 | n
            parts += 1
        }
        return parts == 4 ? value : nil
    }

    static func parseV6(_ s: Substring) -> UInt128? {
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let chars = Array(s.utf8)
        var gapAt = -1
        for i in 0..<max(0, chars.count - 1) where chars[i] == UInt8(ascii: ":") && chars[i + 1] == UInt8(ascii: ":") {
            if gapAt >= 0 { return nil }
            gapAt = i
        }
        if gapAt >= 0 {
            sawGap = true
            let left = s.utf8.index(s.startIndex, offsetBy: gapAt)
            let right = s.utf8.index(left, offsetBy: 2)
            let r = s[right...]
            if r.hasPrefix(":") { return nil }
            guard let h = groups(s[..<left], allowV4Tail: false), let t = groups(r, allowV4Tail: true) else { return nil }
            head = h
            tail = t
        } else {
            guard let g = groups(s, allowV4Tail: true) else { return nil }
            head = g
        }
        let total = head.count + tail.count
        if sawGap ? total > 7 : total != 8 { return nil }
        var all = head
        if sawGap { all += Array(repeating: 0, count: 8 - total) }
        all += tail
        return all.reduce(0) { $0 << 16 | UInt128($1) }
    }

    private static func groups(_ s: Substring, allowV4Tail: Bool) -> [UInt16]? {
        if s.isEmpty { return [] }
        var out: [UInt16] = []
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        for (i, p) in parts.enumerated() {
            if i == parts.count - 1, allowV4Tail, p.contains(".") {
                guard let v4 = parseV4(p) else { return nil }
                out.append(UInt16(v4 >> 16))
                out.append(UInt16(v4 & 0xFFFF))
                continue
            }
            guard !p.isEmpty, p.count <= 4, let n = UInt16(p, radix: 16) else { return nil }
            out.append(n)
        }
        return out
    }

    /// RFC 5952: lowercase, leading zeros dropped, the longest run (≥ 2) of zero groups as `::`.
    static func formatV6(_ v: UInt128) -> String {
        let g = (0..<8).map { UInt16(truncatingIfNeeded: v >> (112 - 16 * $0)) }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLen { bestStart = i; bestLen = j - i }
                i = j
            } else {
                i += 1
            }
        }
        if bestLen < 2 { bestStart = -1 }
        var out = ""
        i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLen
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(g[i], radix: 16)
            i += 1
        }
        return out
    }
}

/// An address with a prefix length: `172.29.10.64/26`, `fd00::1/128`.
///
/// The address need not be the network's first (an interface address keeps its host bits);
/// `isMasked` tells whether it is.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) {
        precondition(prefixLength >= 0 && prefixLength <= address.bitWidth, "prefix length out of range")
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `addr/len`; a bare address is rejected unless `allowBareAddress` (then /32 or /128).
    public init?(_ text: some StringProtocol, allowBareAddress: Bool = false) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let addr = IPAddress(parts[0]) else { return nil }
        if parts.count == 1 {
            guard allowBareAddress else { return nil }
            self.init(address: addr, prefixLength: addr.bitWidth)
            return
        }
        guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let len = Int(parts[1]), len <= addr.bitWidth,
            !parts[1].isEmpty
        else { return nil }
        self.init(address: addr, prefixLength: len)
    }

    /// The single-address network of `address` (/32 or /128).
    public init(host address: IPAddress) {
        self.init(address: address, prefixLength: address.bitWidth)
    }

    public var isIPv6: Bool { address.isIPv6 }

    /// The mask as an integer of the family's width.
    var maskInteger: UInt128 {
        let width = address.bitWidth
        if prefixLength == 0 { return 0 }
        let ones: UInt128 = width == 128 ? UInt128.max : UInt128(UInt32.max)
        return (ones << UInt128(width - prefixLength)) & ones
    }

    /// The network's first address (host bits cleared).
    public var networkAddress: IPAddress {
        let v = address.integer & maskInteger
        return address.isIPv6 ? .v6(v) : .v4(UInt32(truncatingIfNeeded: v))
    }

    /// This network with host bits cleared.
    public var masked: IPNetwork { IPNetwork(address: networkAddress, prefixLength: prefixLength) }

    /// Whether the address has no host bits set (`10.0.0.0/8` yes, `10.0.0.1/8` no).
    public var isMasked: Bool { address == networkAddress }

    /// Number of addresses (saturating at UInt128.max for /0 in IPv6).
    public var size: UInt128 {
        let hostBits = address.bitWidth - prefixLength
        return hostBits >= 128 ? UInt128.max : (1 << UInt128(hostBits))
    }

    /// Whether `ip` lies in this network.
    public func contains(_ ip: IPAddress) -> Bool {
        ip.isIPv6 == isIPv6 && (ip.integer & maskInteger) == (address.integer & maskInteger)
    }

    /// Whether `other` lies entirely within this network.
    public func contains(_ other: IPNetwork) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }

    /// Whether the two networks share any address.
    public func overlaps(_ other: IPNetwork) -> Bool { contains(other.networkAddress) || other.contains(networkAddress) }

    /// The address at `ordinal` places from the network address.
    public func address(at ordinal: UInt128) -> IPAddress { networkAddress.advanced(by: ordinal) }

    /// The ordinal of `ip` within this network (nil when outside).
    public func ordinal(of ip: IPAddress) -> UInt128? {
        guard contains(ip) else { return nil }
        return ip.integer - networkAddress.integer
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
