import CNetlinkShims
import Glibc
import IPAddress

/// An address assigned to an interface (`ip addr show`): `10.1.2.3/32 dev eth0`.
public struct InterfaceAddress: Sendable, Hashable {
    /// The interface the address is on.
    public var interfaceIndex: Int32
    /// The address with its prefix length (`IFA_LOCAL`, `ifa_prefixlen`).
    public var network: IPNetwork
    /// The kernel's `IFA_F_*` flags.
    public var flags: AddressFlags
    /// `RT_SCOPE_*` (0 global, 253 link, 254 host).
    public var scope: RouteScope

    /// An address to add; IPv6 addresses skip duplicate address detection by default, so
    /// they are usable at once instead of "tentative" for a second or more.
    public init(interfaceIndex: Int32, network: IPNetwork, flags: AddressFlags? = nil, scope: RouteScope = .universe) {
        self.interfaceIndex = interfaceIndex
        self.network = network
        self.flags = flags ?? (network.isIPv6 ? .noDAD : [])
        self.scope = scope
    }
}

/// Address flags (`IFA_F_*`).
public struct AddressFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let secondary = AddressFlags(rawValue: UInt32(IFA_F_SECONDARY))
    /// Skip duplicate address detection (`nodad`).
    public static let noDAD = AddressFlags(rawValue: UInt32(IFA_F_NODAD))
    public static let deprecated = AddressFlags(rawValue: UInt32(IFA_F_DEPRECATED))
    /// Still in duplicate address detection: not usable as a source yet.
    public static let tentative = AddressFlags(rawValue: UInt32(IFA_F_TENTATIVE))
    public static let permanent = AddressFlags(rawValue: UInt32(IFA_F_PERMANENT))
    public static let dadFailed = AddressFlags(rawValue: UInt32(IFA_F_DADFAILED))
    /// Do not add the prefix route for the address (`noprefixroute`).
    public static let noPrefixRoute = AddressFlags(rawValue: UInt32(IFA_F_NOPREFIXROUTE))
}

/// An address family for listing.
public enum AddressFamily: Sendable, Hashable {
    case ipv4, ipv6

    var rawValue: UInt8 { self == .ipv4 ? UInt8(AF_INET) : UInt8(AF_INET6) }

    init?(rawValue: UInt8) {
        switch Int32(rawValue) {
        case AF_INET: self = .ipv4
        case AF_INET6: self = .ipv6
        default: return nil
        }
    }

    init(of address: IPAddress) { self = address.isIPv6 ? .ipv6 : .ipv4 }
}

// The family header of RTM_{NEW,DEL,GET}ADDR (linux/if_addr.h):
//
// struct ifaddrmsg {
//     __u8  ifa_family;     /* AF_INET, AF_INET6 */
//     __u8  ifa_prefixlen;  /* The prefix length */
//     __u8  ifa_flags;      /* Flags (the low 8; IFA_FLAGS carries all 32) */
//     __u8  ifa_scope;      /* Address scope */
//     __u32 ifa_index;      /* Link index */
// };
struct InterfaceAddressHeader {
    static let size = MemoryLayout<ifaddrmsg>.size  // 8

    var family: UInt8 = UInt8(AF_UNSPEC)
    var prefixLength: UInt8 = 0
    var flags: UInt8 = 0
    var scope: UInt8 = 0
    var index: UInt32 = 0

    init(family: UInt8, prefixLength: UInt8 = 0, flags: UInt8 = 0, scope: UInt8 = 0, index: UInt32 = 0) {
        self.family = family
        self.prefixLength = prefixLength
        self.flags = flags
        self.scope = scope
        self.index = index
    }

    init?(decoding payload: ArraySlice<UInt8>) {
        guard payload.count >= Self.size else { return nil }
        family = payload.integer(at: 0)!
        prefixLength = payload.integer(at: 1)!
        flags = payload.integer(at: 2)!
        scope = payload.integer(at: 3)!
        index = payload.integer(at: 4)!
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.appendInteger(family)
        out.appendInteger(prefixLength)
        out.appendInteger(flags)
        out.appendInteger(scope)
        out.appendInteger(index)
        return out
    }
}

extension InterfaceAddress {
    init?(_ message: ReceivedMessage) {
        guard message.type == UInt16(RTM_NEWADDR), let header = InterfaceAddressHeader(decoding: message.payload)
        else { return nil }
        let attributes = Attributes(message.payload.dropFirst(InterfaceAddressHeader.size))
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
        // point-to-point links and equals IFA_LOCAL otherwise (IPv6 sends only IFA_ADDRESS).
        guard let raw = attributes[Int(IFA_LOCAL)] ?? attributes[Int(IFA_ADDRESS)], let address = IPAddress(bytes: raw),
            Int(header.prefixLength) <= address.bitWidth
        else { return nil }
        interfaceIndex = Int32(bitPattern: header.index)
        network = IPNetwork(address: address, prefixLength: Int(header.prefixLength))
        flags = AddressFlags(rawValue: attributes.integer(Int(IFA_FLAGS), as: UInt32.self) ?? UInt32(header.flags))
        scope = RouteScope(rawValue: header.scope)
    }

    fileprivate func request(type: Int, flags requestFlags: Int32, verb: String) -> NetlinkRequest {
        let family = AddressFamily(of: network.address).rawValue
        var request = NetlinkRequest(
            operation: "ip addr \(verb) \(network) dev index \(interfaceIndex)" + (flags.contains(.noDAD) ? " nodad" : ""),
            type: type, flags: requestFlags,
            header: InterfaceAddressHeader(
                family: family, prefixLength: UInt8(network.prefixLength), flags: UInt8(truncatingIfNeeded: flags.rawValue),
                scope: scope.rawValue, index: UInt32(bitPattern: interfaceIndex)
            ).bytes)
        let bytes = network.address.bytes
        request.message.addAttribute(Int(IFA_LOCAL), bytes: bytes)
        request.message.addAttribute(Int(IFA_ADDRESS), bytes: bytes)
        if flags.rawValue > 0xFF { request.message.addAttribute(Int(IFA_FLAGS), integer: flags.rawValue) }
        return request
    }
}

extension NetlinkRequest {
    /// `ip addr add ADDRESS/LEN dev IFINDEX [nodad]`. Fails with `EEXIST` when present.
    public static func addAddress(_ address: InterfaceAddress) -> NetlinkRequest {
        address.request(type: Int(RTM_NEWADDR), flags: Int32(NLM_F_CREATE | NLM_F_EXCL), verb: "add")
    }

    /// `ip addr replace ADDRESS/LEN dev IFINDEX [nodad]`: adds, or updates flags of an
    /// existing address.
    public static func replaceAddress(_ address: InterfaceAddress) -> NetlinkRequest {
        address.request(type: Int(RTM_NEWADDR), flags: Int32(NLM_F_CREATE | NLM_F_REPLACE), verb: "replace")
    }

    /// `ip addr del ADDRESS/LEN dev IFINDEX`. Fails with `EADDRNOTAVAIL` when absent.
    public static func deleteAddress(_ address: InterfaceAddress) -> NetlinkRequest {
        address.request(type: Int(RTM_DELADDR), flags: 0, verb: "del")
    }
}

extension NetlinkSocket {
    /// The addresses in the socket's namespace, optionally of one family and one interface.
    /// `ip [-4|-6] addr show [dev IFINDEX]`.
    public func addresses(family: AddressFamily? = nil, interfaceIndex: Int32? = nil) throws(NetlinkError)
        -> [InterfaceAddress]
    {
        // With strict checking on, the header's index makes the kernel filter; we filter
        // again for kernels without it.
        let request = NetlinkRequest(
            operation: "ip addr show", type: Int(RTM_GETADDR), kind: .dump,
            header: InterfaceAddressHeader(
                family: family?.rawValue ?? UInt8(AF_UNSPEC), index: UInt32(bitPattern: interfaceIndex ?? 0)
            ).bytes)
        return try dump(request).compactMap(InterfaceAddress.init).filter {
            (interfaceIndex == nil || $0.interfaceIndex == interfaceIndex)
                && (family == nil || AddressFamily(of: $0.network.address) == family)
        }
    }
}
