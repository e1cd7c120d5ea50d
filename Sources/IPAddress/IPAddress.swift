/// An IPv4 or IPv6 address.
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (including `::` and an embedded IPv4 tail).
    public init?(_ text: some StringProtocol) {
        guard let parsed = IPAddress.parse(utf8: text.utf8) else { return nil }
        self = parsed
    }

    /// `init?(_:)` for the common argument types, without the generic dispatch.
    public init?(_ text: String) {
        guard let parsed = IPAddress.parse(utf8: text.utf8) else { return nil }
        self = parsed
    }

    public init?(_ text: Substring) {
        guard let parsed = IPAddress.parse(utf8: text.utf8) else { return nil }
        self = parsed
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

    // MARK: Parsing, over UTF-8 bytes
    //
    // Addresses are parsed at every plugin start (pools, blocks, results), so this is a
    // plain byte scanner: no Character or Unicode property work, no intermediate arrays.

    static func parse(utf8: some Collection<UInt8>) -> IPAddress? {
        if let parsed = utf8.withContiguousStorageIfAvailable({ parse(bytes: $0, 0, $0.count) }) { return parsed }
        return Array(utf8).withUnsafeBufferPointer { parse(bytes: $0, 0, $0.count) }
    }

    /// The address in `b[start..<end]`.
    static func parse(bytes b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> IPAddress? {
        var i = start
        while i < end {
            if b[i] == colon { return parseV6(b, start, end).map { .v6($0) } }
            i += 1
        }
        return parseV4(b, start, end).map { .v4($0) }
    }

    /// Four decimal parts of 1–3 digits, each at most 255, no leading zero (an octal-looking
    /// form is refused rather than guessed at).
    static func parseV4(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var i = start
        while true {
            let first = i
            var n: UInt32 = 0
            while i < end, b[i] >= 0x30, b[i] <= 0x39 {
                guard i - first < 3 else { return nil }
                n = n * 10 + UInt32(b[i] - 0x30)
                i += 1
            }
            let digits = i - first
            guard digits > 0, n <= 255, digits == 1 || b[first] != 0x30 else { return nil }
            value = value << 8 | n
            parts += 1
            if i == end { break }
            guard b[i] == dot, parts < 4 else { return nil }
            i += 1
        }
        return parts == 4 ? value : nil
    }

    /// Eight groups of 1–4 hex digits, at most one `::` standing for one or more zero
    /// groups, and optionally an IPv4 address as the last 32 bits.
    static func parseV6(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> UInt128? {
        var gap = -1
        var i = start
        while i + 1 < end {
            if b[i] == colon && b[i + 1] == colon {
                if gap >= 0 { return nil }
                gap = i
            }
            i += 1
        }
        guard gap >= 0 else {
            guard let all = groups(b, start, end, allowV4Tail: true), all.count == 8 else { return nil }
            return all.value
        }
        if gap + 2 < end && b[gap + 2] == colon { return nil }
        guard let head = groups(b, start, gap, allowV4Tail: false),
              let tail = groups(b, gap + 2, end, allowV4Tail: true),
              head.count + tail.count <= 7
        else { return nil }
        return head.value << UInt128(16 * (8 - head.count)) | tail.value
    }

    /// Colon-separated hex groups in `b[start..<end]` as one number, and how many 16-bit
    /// groups they make (an IPv4 tail counts two).
    private static func groups(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, allowV4Tail: Bool)
        -> (value: UInt128, count: Int)?
    {
        if start == end { return (0, 0) }
        var value: UInt128 = 0
        var count = 0
        var i = start
        while true {
            var j = i
            var hasDot = false
            while j < end && b[j] != colon {
                if b[j] == dot { hasDot = true }
                j += 1
            }
            let last = j == end
            if last && allowV4Tail && hasDot {
                guard count <= 6, let v4 = parseV4(b, i, j) else { return nil }
                return (value << 32 | UInt128(v4), count + 2)
            }
            guard j > i, j - i <= 4, count < 8 else { return nil }
            var n: UInt128 = 0
            for k in i..<j {
                guard let h = hexValue(b[k]) else { return nil }
                n = n << 4 | UInt128(h)
            }
            value = value << 16 | n
            count += 1
            if last { return (value, count) }
            i = j + 1
        }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
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
        guard let parsed = IPNetwork.parse(utf8: text.utf8, allowBareAddress: allowBareAddress) else { return nil }
        self = parsed
    }

    /// `init?(_:allowBareAddress:)` for the common argument types, without the generic dispatch.
    public init?(_ text: String, allowBareAddress: Bool = false) {
        guard let parsed = IPNetwork.parse(utf8: text.utf8, allowBareAddress: allowBareAddress) else { return nil }
        self = parsed
    }

    public init?(_ text: Substring, allowBareAddress: Bool = false) {
        guard let parsed = IPNetwork.parse(utf8: text.utf8, allowBareAddress: allowBareAddress) else { return nil }
        self = parsed
    }

    static func parse(utf8: some Collection<UInt8>, allowBareAddress: Bool) -> IPNetwork? {
        if let parsed = utf8.withContiguousStorageIfAvailable({ parse(bytes: $0, allowBareAddress: allowBareAddress) }) {
            return parsed
        }
        return Array(utf8).withUnsafeBufferPointer { parse(bytes: $0, allowBareAddress: allowBareAddress) }
    }

    static func parse(bytes b: UnsafeBufferPointer<UInt8>, allowBareAddress: Bool) -> IPNetwork? {
        var slash = 0
        while slash < b.count && b[slash] != UInt8(ascii: "/") { slash += 1 }
        guard let address = IPAddress.parse(bytes: b, 0, slash) else { return nil }
        if slash == b.count {
            guard allowBareAddress else { return nil }
            return IPNetwork(address: address, prefixLength: address.bitWidth)
        }
        var length = 0
        var i = slash + 1
        guard i < b.count else { return nil }
        while i < b.count {
            guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
            length = length * 10 + Int(b[i] - 0x30)
            guard length <= address.bitWidth else { return nil }
            i += 1
        }
        return IPNetwork(address: address, prefixLength: length)
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

private let colon = UInt8(ascii: ":")
private let dot = UInt8(ascii: ".")
