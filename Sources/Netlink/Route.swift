import CNetlinkShims
import Glibc
import IPAddress

/// A route (`ip route show`): where packets for `destination` go.
public struct Route: Sendable, Hashable {
    /// The destination prefix; `0.0.0.0/0` or `::/0` is the default route.
    public var destination: IPNetwork
    /// The next hop (`via`); nil for a route straight out of `interfaceIndex`.
    public var gateway: IPAddress?
    /// The output interface (`dev`).
    public var interfaceIndex: Int32?
    public var scope: RouteScope
    /// The routing table (`RT_TABLE_MAIN` = 254 unless told).
    public var table: UInt32
    /// Who installed the route (`proto`: 2 kernel, 3 boot, 4 static).
    public var origin: UInt8
    /// `RTN_*`: 1 unicast, 2 local, 3 broadcast, 6 blackhole, 7 unreachable.
    public var type: UInt8
    /// The gateway is on the link even though no interface address covers it (`onlink`).
    public var isOnLink: Bool
    /// The metric (`RTA_PRIORITY`).
    public var priority: UInt32?
    /// The preferred source address (`src`).
    public var preferredSource: IPAddress?

    public static let mainTable: UInt32 = 254
    /// `RTPROT_BOOT`, what `ip route add` uses.
    public static let bootOrigin = UInt8(RTPROT_BOOT)
    public static let unicast = UInt8(RTN_UNICAST)

    /// A unicast route. With no `scope`, it is chosen as `ip route add` does: `link` for an
    /// IPv4 route without a gateway, `universe` otherwise.
    public init(
        destination: IPNetwork, gateway: IPAddress? = nil, interfaceIndex: Int32? = nil, scope: RouteScope? = nil,
        table: UInt32 = Route.mainTable, isOnLink: Bool = false, priority: UInt32? = nil,
        preferredSource: IPAddress? = nil, origin: UInt8 = Route.bootOrigin
    ) {
        precondition(gateway == nil || gateway!.isIPv6 == destination.isIPv6, "gateway family differs from destination")
        self.destination = destination
        self.gateway = gateway
        self.interfaceIndex = interfaceIndex
        self.scope = scope ?? ((destination.isIPv6 || gateway != nil) ? .universe : .link)
        self.table = table
        self.origin = origin
        self.type = Route.unicast
        self.isOnLink = isOnLink
        self.priority = priority
        self.preferredSource = preferredSource
    }

    /// The default route of a family via `gateway` out of `interfaceIndex`.
    public static func defaultRoute(via gateway: IPAddress, interfaceIndex: Int32? = nil, isOnLink: Bool = false) -> Route {
        Route(
            destination: IPNetwork(address: gateway.isIPv6 ? .v6(0) : .v4(0), prefixLength: 0), gateway: gateway,
            interfaceIndex: interfaceIndex, isOnLink: isOnLink)
    }

    /// Whether this is a default route (`/0`).
    public var isDefault: Bool { destination.prefixLength == 0 }
}

/// How far an address or route reaches (`RT_SCOPE_*`).
public struct RouteScope: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Everywhere (`global`).
    public static let universe = RouteScope(rawValue: 0)
    public static let site = RouteScope(rawValue: 200)
    /// Only on the directly attached link.
    public static let link = RouteScope(rawValue: 253)
    /// Only on this host.
    public static let host = RouteScope(rawValue: 254)
    /// No destination; in a delete request it matches any scope.
    public static let nowhere = RouteScope(rawValue: 255)

    public var description: String {
        switch rawValue {
        case 0: return "global"
        case 200: return "site"
        case 253: return "link"
        case 254: return "host"
        case 255: return "nowhere"
        default: return "\(rawValue)"
        }
    }
}

// The family header of RTM_{NEW,DEL,GET}ROUTE (linux/rtnetlink.h):
//
// struct rtmsg {
//     unsigned char rtm_family;
//     unsigned char rtm_dst_len;
//     unsigned char rtm_src_len;
//     unsigned char rtm_tos;
//     unsigned char rtm_table;     /* Routing table id (RTA_TABLE for ids > 255) */
//     unsigned char rtm_protocol;  /* Routing protocol; see below */
//     unsigned char rtm_scope;     /* See below */
//     unsigned char rtm_type;      /* See below */
//     unsigned      rtm_flags;     /* RTM_F_*, and RTNH_F_* for the single next hop */
// };
struct RouteHeader {
    static let size = MemoryLayout<rtmsg>.size  // 12

    var family: UInt8 = 0
    var destinationLength: UInt8 = 0
    var sourceLength: UInt8 = 0
    var tos: UInt8 = 0
    var table: UInt8 = 0
    var origin: UInt8 = 0
    var scope: UInt8 = 0
    var type: UInt8 = 0
    var flags: UInt32 = 0

    init(family: UInt8) { self.family = family }

    init?(decoding payload: ArraySlice<UInt8>) {
        guard payload.count >= Self.size else { return nil }
        family = payload.integer(at: 0)!
        destinationLength = payload.integer(at: 1)!
        sourceLength = payload.integer(at: 2)!
        tos = payload.integer(at: 3)!
        table = payload.integer(at: 4)!
        origin = payload.integer(at: 5)!
        scope = payload.integer(at: 6)!
        type = payload.integer(at: 7)!
        flags = payload.integer(at: 8)!
    }

    var bytes: [UInt8] {
        var out: [UInt8] = [family, destinationLength, sourceLength, tos, table, origin, scope, type]
        out.appendInteger(flags)
        return out
    }
}

private let onLinkFlag = UInt32(RTNH_F_ONLINK)

extension Route {
    init?(_ message: ReceivedMessage) {
        guard message.type == UInt16(RTM_NEWROUTE), let header = RouteHeader(decoding: message.payload),
            let family = AddressFamily(rawValue: header.family)
        else { return nil }
        let attributes = Attributes(message.payload.dropFirst(RouteHeader.size))
        let any: IPAddress = family == .ipv6 ? .v6(0) : .v4(0)
        let destinationAddress = attributes[Int(RTA_DST.rawValue)].flatMap { IPAddress(bytes: $0) } ?? any
        guard Int(header.destinationLength) <= destinationAddress.bitWidth else { return nil }
        destination = IPNetwork(address: destinationAddress, prefixLength: Int(header.destinationLength))
        gateway = attributes[Int(RTA_GATEWAY.rawValue)].flatMap { IPAddress(bytes: $0) }
        interfaceIndex = attributes.integer(Int(RTA_OIF.rawValue), as: Int32.self)
        scope = RouteScope(rawValue: header.scope)
        table = attributes.integer(Int(RTA_TABLE.rawValue), as: UInt32.self) ?? UInt32(header.table)
        origin = header.origin
        type = header.type
        isOnLink = header.flags & onLinkFlag != 0
        priority = attributes.integer(Int(RTA_PRIORITY.rawValue), as: UInt32.self)
        preferredSource = attributes[Int(RTA_PREFSRC.rawValue)].flatMap { IPAddress(bytes: $0) }
    }

    /// `ip route` words for this route, for messages.
    var commandWords: String {
        var words = isDefault ? "default" : "\(destination)"
        if let gateway { words += " via \(gateway)" }
        if let interfaceIndex { words += " dev index \(interfaceIndex)" }
        if scope != .universe { words += " scope \(scope)" }
        if isOnLink { words += " onlink" }
        if table != Route.mainTable { words += " table \(table)" }
        if let priority { words += " metric \(priority)" }
        return words
    }

    fileprivate func request(type messageType: Int, flags: Int32, verb: String, deleting: Bool = false) -> NetlinkRequest {
        var header = RouteHeader(family: AddressFamily(of: destination.address).rawValue)
        header.destinationLength = UInt8(destination.prefixLength)
        header.table = table <= 255 ? UInt8(table) : UInt8(RT_TABLE_UNSPEC.rawValue)
        if deleting {
            // As `ip route del`: match any origin, scope and type unless the route says more.
            header.scope = scope == .universe ? RouteScope.nowhere.rawValue : scope.rawValue
        } else {
            header.origin = origin
            header.scope = scope.rawValue
            header.type = type
        }
        if isOnLink { header.flags |= onLinkFlag }
        var request = NetlinkRequest(
            operation: "ip route \(verb) \(commandWords)", type: messageType, flags: flags, header: header.bytes)
        if destination.prefixLength > 0 {
            request.message.addAttribute(Int(RTA_DST.rawValue), bytes: destination.address.bytes)
        }
        if let gateway { request.message.addAttribute(Int(RTA_GATEWAY.rawValue), bytes: gateway.bytes) }
        if let interfaceIndex {
            request.message.addAttribute(Int(RTA_OIF.rawValue), integer: UInt32(bitPattern: interfaceIndex))
        }
        if let priority { request.message.addAttribute(Int(RTA_PRIORITY.rawValue), integer: priority) }
        if let preferredSource { request.message.addAttribute(Int(RTA_PREFSRC.rawValue), bytes: preferredSource.bytes) }
        if table > 255 { request.message.addAttribute(Int(RTA_TABLE.rawValue), integer: table) }
        return request
    }
}

extension NetlinkRequest {
    /// `ip route add DEST [via GW] [dev IFINDEX] [scope S] [onlink] [table T] [metric M]`.
    /// Fails with `EEXIST` when the same route exists.
    public static func addRoute(_ route: Route) -> NetlinkRequest {
        route.request(type: Int(RTM_NEWROUTE), flags: Int32(NLM_F_CREATE | NLM_F_EXCL), verb: "add")
    }

    /// `ip route replace DEST …`: adds the route or replaces the one with the same
    /// destination (and metric) in the table.
    public static func replaceRoute(_ route: Route) -> NetlinkRequest {
        route.request(type: Int(RTM_NEWROUTE), flags: Int32(NLM_F_CREATE | NLM_F_REPLACE), verb: "replace")
    }

    /// `ip route del DEST [via GW] [dev IFINDEX] [table T]`. Fails with `ESRCH` when absent.
    public static func deleteRoute(_ route: Route) -> NetlinkRequest {
        route.request(type: Int(RTM_DELROUTE), flags: 0, verb: "del", deleting: true)
    }
}

extension NetlinkSocket {
    /// The routes of one table (main unless told; nil = every table), optionally one
    /// family and one output interface. `ip [-4|-6] route show [table T] [dev IFINDEX]`.
    public func routes(family: AddressFamily? = nil, table: UInt32? = Route.mainTable, interfaceIndex: Int32? = nil)
        throws(NetlinkError) -> [Route]
    {
        // With strict checking on, rtm_table and RTA_OIF make the kernel filter; we filter
        // again for kernels without it.
        var header = RouteHeader(family: family?.rawValue ?? UInt8(AF_UNSPEC))
        if let table, table <= 255 { header.table = UInt8(table) }
        var request = NetlinkRequest(operation: "ip route show", type: Int(RTM_GETROUTE), kind: .dump, header: header.bytes)
        if let table, table > 255 { request.message.addAttribute(Int(RTA_TABLE.rawValue), integer: table) }
        if let interfaceIndex {
            request.message.addAttribute(Int(RTA_OIF.rawValue), integer: UInt32(bitPattern: interfaceIndex))
        }
        return try dump(request).compactMap(Route.init).filter {
            (table == nil || $0.table == table) && (interfaceIndex == nil || $0.interfaceIndex == interfaceIndex)
                && (family == nil || AddressFamily(of: $0.destination.address) == family)
        }
    }
}
