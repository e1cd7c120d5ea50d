import CNetlinkShims
import Glibc
import IPAddress

/// A neighbour (ARP / NDP) entry (`ip neigh show`): which hardware address an IP address
/// on a link resolves to.
public struct Neighbor: Sendable, Hashable {
    public var interfaceIndex: Int32
    public var address: IPAddress
    /// The hardware address (`lladdr`); nil while unresolved.
    public var linkAddress: MACAddress?
    public var state: NeighborState

    public init(interfaceIndex: Int32, address: IPAddress, linkAddress: MACAddress?, state: NeighborState = .permanent) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.linkAddress = linkAddress
        self.state = state
    }
}

/// Neighbour states (`NUD_*`).
public struct NeighborState: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let incomplete = NeighborState(rawValue: UInt16(NUD_INCOMPLETE))
    public static let reachable = NeighborState(rawValue: UInt16(NUD_REACHABLE))
    public static let stale = NeighborState(rawValue: UInt16(NUD_STALE))
    public static let delay = NeighborState(rawValue: UInt16(NUD_DELAY))
    public static let probe = NeighborState(rawValue: UInt16(NUD_PROBE))
    public static let failed = NeighborState(rawValue: UInt16(NUD_FAILED))
    public static let noARP = NeighborState(rawValue: UInt16(NUD_NOARP))
    /// Set by hand; never expires or gets re-probed.
    public static let permanent = NeighborState(rawValue: UInt16(NUD_PERMANENT))
}

// The family header of RTM_{NEW,DEL,GET}NEIGH (linux/neighbour.h):
//
// struct ndmsg {
//     __u8   ndm_family;
//     __u8   ndm_pad1;
//     __u16  ndm_pad2;
//     __s32  ndm_ifindex;
//     __u16  ndm_state;   /* NUD_* */
//     __u8   ndm_flags;   /* NTF_* */
//     __u8   ndm_type;
// };
struct NeighborHeader {
    static let size = MemoryLayout<ndmsg>.size  // 12

    var family: UInt8
    var index: Int32 = 0
    var state: UInt16 = 0
    var flags: UInt8 = 0
    var type: UInt8 = 0

    init(family: UInt8, index: Int32 = 0, state: UInt16 = 0) {
        self.family = family
        self.index = index
        self.state = state
    }

    init?(decoding payload: ArraySlice<UInt8>) {
        guard payload.count >= Self.size else { return nil }
        family = payload.integer(at: 0)!
        index = payload.integer(at: 4)!
        state = payload.integer(at: 8)!
        flags = payload.integer(at: 10)!
        type = payload.integer(at: 11)!
    }

    var bytes: [UInt8] {
        var out: [UInt8] = [family, 0, 0, 0]
        out.appendInteger(index)
        out.appendInteger(state)
        out.append(flags)
        out.append(type)
        return out
    }
}

extension Neighbor {
    init?(_ message: ReceivedMessage) {
        guard message.type == UInt16(RTM_NEWNEIGH), let header = NeighborHeader(decoding: message.payload),
            AddressFamily(rawValue: header.family) != nil
        else { return nil }
        let attributes = Attributes(message.payload.dropFirst(NeighborHeader.size))
        guard let raw = attributes[Int(NDA_DST)], let address = IPAddress(bytes: raw) else { return nil }
        interfaceIndex = header.index
        self.address = address
        linkAddress = attributes[Int(NDA_LLADDR)].flatMap { MACAddress(bytes: $0) }
        state = NeighborState(rawValue: header.state)
    }

    fileprivate func request(type: Int, flags: Int32, verb: String) -> NetlinkRequest {
        var words = "\(address)"
        if let linkAddress { words += " lladdr \(linkAddress)" }
        words += " dev index \(interfaceIndex)"
        if state == .permanent { words += " nud permanent" }
        var request = NetlinkRequest(
            operation: "ip neigh \(verb) \(words)", type: type, flags: flags,
            header: NeighborHeader(family: AddressFamily(of: address).rawValue, index: interfaceIndex, state: state.rawValue)
                .bytes)
        request.message.addAttribute(Int(NDA_DST), bytes: address.bytes)
        if let linkAddress { request.message.addAttribute(Int(NDA_LLADDR), bytes: linkAddress.bytes) }
        return request
    }
}

extension NetlinkRequest {
    /// `ip neigh replace ADDRESS lladdr MAC dev IFINDEX nud STATE`: creates the entry or
    /// overwrites whatever the kernel had learnt.
    public static func replaceNeighbor(_ neighbor: Neighbor) -> NetlinkRequest {
        neighbor.request(type: Int(RTM_NEWNEIGH), flags: Int32(NLM_F_CREATE | NLM_F_REPLACE), verb: "replace")
    }

    /// `ip neigh add ADDRESS lladdr MAC dev IFINDEX nud STATE`. Fails with `EEXIST` when present.
    public static func addNeighbor(_ neighbor: Neighbor) -> NetlinkRequest {
        neighbor.request(type: Int(RTM_NEWNEIGH), flags: Int32(NLM_F_CREATE | NLM_F_EXCL), verb: "add")
    }

    /// `ip neigh del ADDRESS dev IFINDEX`. Fails with `ENOENT` when absent.
    public static func deleteNeighbor(_ neighbor: Neighbor) -> NetlinkRequest {
        var entry = neighbor
        entry.linkAddress = nil
        entry.state = []
        return entry.request(type: Int(RTM_DELNEIGH), flags: 0, verb: "del")
    }
}

// The family header of RTM_{GET,SET}NEIGHTBL (linux/neighbour.h):
//
// struct ndtmsg {
//     __u8  ndtm_family;
//     __u8  ndtm_pad1;
//     __u16 ndtm_pad2;
// };

extension NetlinkRequest {
    /// Sets the IPv4 neighbour (ARP) parameters of one interface, the ones under
    /// `net.ipv4.neigh.<if>`: `ip ntable change name arp_cache dev IFINDEX proxy_delay MS`
    /// (`sysctl -w net.ipv4.neigh.IF.proxy_delay=…`, which counts in 1/100 s).
    public static func setARPParameters(linkIndex: Int32, proxyDelayMilliseconds: UInt64) -> NetlinkRequest {
        var request = NetlinkRequest(
            operation: "ip ntable change name arp_cache dev index \(linkIndex) proxy_delay \(proxyDelayMilliseconds)",
            type: Int(RTM_SETNEIGHTBL), header: [UInt8(AF_INET), 0, 0, 0])
        request.message.addAttribute(Int(NDTA_NAME), string: "arp_cache")
        let parameters = request.message.beginNested(Int(NDTA_PARMS))
        request.message.addAttribute(Int(NDTPA_IFINDEX), integer: UInt32(bitPattern: linkIndex))
        request.message.addAttribute(Int(NDTPA_PROXY_DELAY), integer: proxyDelayMilliseconds)
        request.message.endNested(parameters)
        return request
    }
}

extension NetlinkSocket {
    /// The neighbour entries, optionally of one family and one interface.
    /// `ip [-4|-6] neigh show [dev IFINDEX]`.
    public func neighbors(family: AddressFamily? = nil, interfaceIndex: Int32? = nil) throws(NetlinkError) -> [Neighbor] {
        var request = NetlinkRequest(
            operation: "ip neigh show", type: Int(RTM_GETNEIGH), kind: .dump,
            header: NeighborHeader(family: family?.rawValue ?? UInt8(AF_UNSPEC)).bytes)
        if let interfaceIndex {
            request.message.addAttribute(Int(NDA_IFINDEX), integer: UInt32(bitPattern: interfaceIndex))
        }
        return try dump(request).compactMap(Neighbor.init).filter {
            (interfaceIndex == nil || $0.interfaceIndex == interfaceIndex)
                && (family == nil || AddressFamily(of: $0.address) == family)
        }
    }
}
