import CNetlinkShims
import Glibc
import IPAddress

/// A network interface as the kernel reports it (`ip link show`).
public struct Link: Sendable, Hashable {
    /// The interface index in its namespace.
    public var index: Int32
    public var name: String
    public var flags: InterfaceFlags
    public var mtu: Int
    /// The hardware address; nil for links without one.
    public var macAddress: MACAddress?
    /// The link type's name (`IFLA_INFO_KIND`: "veth", "bridge", "vxlan"); nil for
    /// physical devices and loopback.
    public var kind: String?
    /// For a veth, the index of its peer in the peer's namespace (`IFLA_LINK`; what
    /// `ip link` shows after `@`).
    public var linkIndex: Int32?
    /// Set when the peer (`linkIndex`) lives in another namespace: that namespace's id as
    /// seen from this one (`IFLA_LINK_NETNSID`).
    public var linkNamespaceID: Int32?
    /// RFC 2863 operational state (`IFLA_OPERSTATE`: 6 = up, 2 = down, 7 = lower layer down).
    public var operationalState: UInt8

    /// Administratively up (`IFF_UP`).
    public var isUp: Bool { flags.contains(.up) }
}

/// Interface flags (`IFF_*`, `ip link` prints them between `<` and `>`).
public struct InterfaceFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let up = InterfaceFlags(rawValue: 0x1)
    public static let broadcast = InterfaceFlags(rawValue: 0x2)
    public static let loopback = InterfaceFlags(rawValue: 0x8)
    public static let pointToPoint = InterfaceFlags(rawValue: 0x10)
    public static let running = InterfaceFlags(rawValue: 0x40)
    public static let noARP = InterfaceFlags(rawValue: 0x80)
    public static let promiscuous = InterfaceFlags(rawValue: 0x100)
    public static let multicast = InterfaceFlags(rawValue: 0x1000)
    /// The carrier is on (`IFF_LOWER_UP`): for a veth, the peer is up.
    public static let lowerUp = InterfaceFlags(rawValue: 0x10000)
}

/// A veth pair to create: two links joined back to back, the peer optionally created
/// directly inside another namespace (which saves moving it there afterwards).
public struct VethPair: Sendable, Hashable {
    /// The end created in the socket's namespace.
    public var name: String
    /// The other end.
    public var peerName: String
    /// MTU for both ends; nil keeps the kernel default (1500).
    public var mtu: Int?
    public var macAddress: MACAddress?
    public var peerMACAddress: MACAddress?
    /// An open namespace descriptor (`/proc/<pid>/ns/net`, `/var/run/netns/<name>`) in which
    /// the peer is created; nil creates it beside `name`. The caller keeps it open until
    /// the request has been performed.
    public var peerNamespaceDescriptor: CInt?
    /// Transmit and receive queues of each end; nil takes the kernel's default, which for
    /// veth is one per possible CPU (each a set of sysfs objects that creation and deletion
    /// must build and tear down). Queues matter only to veth XDP/GRO.
    public var queueCount: Int?
    /// Bring `name` up as it is created. (The peer cannot be: the kernel configures it
    /// before the two ends are joined, and opening an unjoined veth fails with `ENOTCONN`;
    /// bring it up with `setLinkUp` afterwards.)
    public var isUp: Bool

    public init(
        name: String, peerName: String, mtu: Int? = nil, macAddress: MACAddress? = nil,
        peerMACAddress: MACAddress? = nil, peerNamespaceDescriptor: CInt? = nil, queueCount: Int? = nil,
        isUp: Bool = false
    ) {
        self.name = name
        self.peerName = peerName
        self.mtu = mtu
        self.macAddress = macAddress
        self.peerMACAddress = peerMACAddress
        self.peerNamespaceDescriptor = peerNamespaceDescriptor
        self.queueCount = queueCount
        self.isUp = isUp
    }
}

/// A per-interface IPv4 setting (`net.ipv4.conf.<if>.<name>`), by its `IPV4_DEVCONF_*`
/// number (linux/ip.h).
public struct IPv4DeviceSetting: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `forwarding` (`IPV4_DEVCONF_FORWARDING`).
    public static let forwarding = IPv4DeviceSetting(rawValue: 1)
    /// `proxy_arp` (`IPV4_DEVCONF_PROXY_ARP`).
    public static let proxyARP = IPv4DeviceSetting(rawValue: 3)
    /// `rp_filter` (`IPV4_DEVCONF_RP_FILTER`).
    public static let reversePathFilter = IPv4DeviceSetting(rawValue: 8)

    public var description: String {
        switch rawValue {
        case 1: return "forwarding"
        case 3: return "proxy_arp"
        case 8: return "rp_filter"
        default: return "devconf\(rawValue)"
        }
    }
}

/// Changes to an existing link, applied together by one `RTM_SETLINK`.
public struct LinkChanges: Sendable, Hashable {
    public var name: String?
    public var mtu: Int?
    public var macAddress: MACAddress?
    /// true = up, false = down, nil = unchanged.
    public var isUp: Bool?
    /// Move the link into the namespace this descriptor refers to.
    public var namespaceDescriptor: CInt?

    public init(
        name: String? = nil, mtu: Int? = nil, macAddress: MACAddress? = nil, isUp: Bool? = nil,
        namespaceDescriptor: CInt? = nil
    ) {
        self.name = name
        self.mtu = mtu
        self.macAddress = macAddress
        self.isUp = isUp
        self.namespaceDescriptor = namespaceDescriptor
    }
}

// The family header of RTM_{NEW,DEL,GET,SET}LINK (linux/rtnetlink.h):
//
// struct ifinfomsg {
//     unsigned char  ifi_family;   /* AF_UNSPEC */
//     unsigned char  __ifi_pad;
//     unsigned short ifi_type;     /* ARPHRD_* */
//     int            ifi_index;    /* Link index */
//     unsigned       ifi_flags;    /* IFF_* flags */
//     unsigned       ifi_change;   /* IFF_* change mask */
// };
struct InterfaceInfoHeader {
    static let size = MemoryLayout<ifinfomsg>.size  // 16

    var family: UInt8 = UInt8(AF_UNSPEC)
    var deviceType: UInt16 = 0
    var index: Int32 = 0
    var flags: UInt32 = 0
    var change: UInt32 = 0

    init(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) {
        self.index = index
        self.flags = flags
        self.change = change
    }

    init?(decoding payload: ArraySlice<UInt8>) {
        guard payload.count >= Self.size else { return nil }
        family = payload.integer(at: 0)!
        deviceType = payload.integer(at: 2)!
        index = payload.integer(at: 4)!
        flags = payload.integer(at: 8)!
        change = payload.integer(at: 12)!
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        out.appendInteger(family)
        out.appendInteger(UInt8(0))
        out.appendInteger(deviceType)
        out.appendInteger(index)
        out.appendInteger(flags)
        out.appendInteger(change)
        return out
    }
}

/// `IFLA_EXT_MASK` value asking the kernel to leave statistics out of link replies:
/// they are most of a reply's size and nobody here reads them.
private let skipStatistics = UInt32(RTEXT_FILTER_SKIP_STATS)

extension Link {
    init?(_ message: ReceivedMessage) {
        guard message.type == UInt16(RTM_NEWLINK), let header = InterfaceInfoHeader(decoding: message.payload) else {
            return nil
        }
        let attributes = Attributes(message.payload.dropFirst(InterfaceInfoHeader.size))
        index = header.index
        flags = InterfaceFlags(rawValue: header.flags)
        name = attributes.string(Int(IFLA_IFNAME)) ?? ""
        mtu = Int(attributes.integer(Int(IFLA_MTU), as: UInt32.self) ?? 0)
        macAddress = attributes[Int(IFLA_ADDRESS)].flatMap { MACAddress(bytes: $0) }
        kind = attributes.nested(Int(IFLA_LINKINFO))?.string(Int(IFLA_INFO_KIND))
        linkIndex = attributes.integer(Int(IFLA_LINK), as: Int32.self)
        linkNamespaceID = attributes.integer(Int(IFLA_LINK_NETNSID), as: Int32.self)
        operationalState = attributes.integer(Int(IFLA_OPERSTATE), as: UInt8.self) ?? 0
    }
}

extension NetlinkRequest {
    /// Creates a veth pair. `ip link add NAME [mtu M] [address MAC] type veth peer name
    /// PEER [mtu M] [address MAC] [netns FD]` (plus `ip link set NAME up` when `isUp`).
    ///
    /// Fails with `EEXIST` when either name is taken (in its namespace).
    public static func addVethPair(_ pair: VethPair) -> NetlinkRequest {
        let up = UInt32(InterfaceFlags.up.rawValue)
        var request = NetlinkRequest(
            operation: "ip link add \(pair.name) type veth peer name \(pair.peerName)"
                + (pair.peerNamespaceDescriptor != nil ? " netns <fd>" : ""),
            type: Int(RTM_NEWLINK), flags: Int32(NLM_F_CREATE | NLM_F_EXCL),
            header: InterfaceInfoHeader(flags: pair.isUp ? up : 0, change: pair.isUp ? up : 0).bytes)
        request.message.addAttribute(Int(IFLA_IFNAME), string: pair.name)
        if let mtu = pair.mtu { request.message.addAttribute(Int(IFLA_MTU), integer: UInt32(mtu)) }
        if let mac = pair.macAddress { request.message.addAttribute(Int(IFLA_ADDRESS), bytes: mac.bytes) }
        if let queues = pair.queueCount {
            request.message.addAttribute(Int(IFLA_NUM_TX_QUEUES), integer: UInt32(queues))
            request.message.addAttribute(Int(IFLA_NUM_RX_QUEUES), integer: UInt32(queues))
        }
        let linkInfo = request.message.beginNested(Int(IFLA_LINKINFO))
        request.message.addAttribute(Int(IFLA_INFO_KIND), string: "veth")
        let data = request.message.beginNested(Int(IFLA_INFO_DATA))
        // VETH_INFO_PEER holds a whole ifinfomsg followed by the peer's own IFLA_* attributes.
        let peer = request.message.beginNested(Int(VETH_INFO_PEER))
        request.message.appendHeader(InterfaceInfoHeader().bytes)
        request.message.addAttribute(Int(IFLA_IFNAME), string: pair.peerName)
        if let mtu = pair.mtu { request.message.addAttribute(Int(IFLA_MTU), integer: UInt32(mtu)) }
        if let mac = pair.peerMACAddress { request.message.addAttribute(Int(IFLA_ADDRESS), bytes: mac.bytes) }
        if let queues = pair.queueCount {
            request.message.addAttribute(Int(IFLA_NUM_TX_QUEUES), integer: UInt32(queues))
            request.message.addAttribute(Int(IFLA_NUM_RX_QUEUES), integer: UInt32(queues))
        }
        if let fd = pair.peerNamespaceDescriptor {
            request.message.addAttribute(Int(IFLA_NET_NS_FD), integer: UInt32(bitPattern: fd))
        }
        request.message.endNested(peer)
        request.message.endNested(data)
        request.message.endNested(linkInfo)
        return request
    }

    /// Applies `changes` to the link with `index` in one request.
    /// `ip link set dev IFINDEX [name N] [mtu M] [address MAC] [up|down] [netns FD]`.
    public static func changeLink(index: Int32, _ changes: LinkChanges) -> NetlinkRequest {
        var words: [String] = []
        if let name = changes.name { words.append("name \(name)") }
        if let mtu = changes.mtu { words.append("mtu \(mtu)") }
        if let mac = changes.macAddress { words.append("address \(mac)") }
        if let up = changes.isUp { words.append(up ? "up" : "down") }
        if changes.namespaceDescriptor != nil { words.append("netns <fd>") }
        let up = UInt32(InterfaceFlags.up.rawValue)
        var request = NetlinkRequest(
            operation: "ip link set index \(index) " + words.joined(separator: " "),
            type: Int(RTM_SETLINK),
            header: InterfaceInfoHeader(
                index: index, flags: changes.isUp == true ? up : 0, change: changes.isUp != nil ? up : 0
            ).bytes)
        if let name = changes.name { request.message.addAttribute(Int(IFLA_IFNAME), string: name) }
        if let mtu = changes.mtu { request.message.addAttribute(Int(IFLA_MTU), integer: UInt32(mtu)) }
        if let mac = changes.macAddress { request.message.addAttribute(Int(IFLA_ADDRESS), bytes: mac.bytes) }
        if let fd = changes.namespaceDescriptor {
            request.message.addAttribute(Int(IFLA_NET_NS_FD), integer: UInt32(bitPattern: fd))
        }
        return request
    }

    /// Sets per-interface IPv4 settings, the ones under `net.ipv4.conf.<if>`, through
    /// netlink (`IFLA_AF_SPEC` → `AF_INET` → `IFLA_INET_CONF`) instead of `/proc/sys`: no
    /// file to open, batchable with other requests, and it works on a socket opened in
    /// another namespace. `sysctl -w net.ipv4.conf.IF.proxy_arp=1 …` has the same effect on
    /// the setting (the kernel only skips the netconf notification and LRO check that a
    /// `/proc` write of `forwarding` does).
    public static func setIPv4Configuration(linkIndex: Int32, _ settings: [IPv4DeviceSetting: UInt32]) -> NetlinkRequest {
        let words = settings.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key)=\($0.value)" }
        var request = NetlinkRequest(
            operation: "sysctl -w " + words.map { "net.ipv4.conf.<index \(linkIndex)>.\($0)" }.joined(separator: " "),
            type: Int(RTM_SETLINK), header: InterfaceInfoHeader(index: linkIndex).bytes)
        let spec = request.message.beginNested(Int(IFLA_AF_SPEC))
        let inet = request.message.beginNested(Int(AF_INET))
        let conf = request.message.beginNested(Int(IFLA_INET_CONF))
        for (setting, value) in settings.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            request.message.addAttribute(setting.rawValue, integer: value)
        }
        request.message.endNested(conf)
        request.message.endNested(inet)
        request.message.endNested(spec)
        return request
    }

    /// `ip link set dev IFINDEX up`.
    public static func setLinkUp(index: Int32) -> NetlinkRequest { changeLink(index: index, LinkChanges(isUp: true)) }

    /// `ip link set dev IFINDEX down`.
    public static func setLinkDown(index: Int32) -> NetlinkRequest { changeLink(index: index, LinkChanges(isUp: false)) }

    /// `ip link set dev IFINDEX name NAME` (the link must be down).
    public static func renameLink(index: Int32, to name: String) -> NetlinkRequest {
        changeLink(index: index, LinkChanges(name: name))
    }

    /// `ip link set dev IFINDEX mtu MTU`.
    public static func setMTU(_ mtu: Int, linkIndex: Int32) -> NetlinkRequest {
        changeLink(index: linkIndex, LinkChanges(mtu: mtu))
    }

    /// `ip link set dev IFINDEX address MAC`.
    public static func setMACAddress(_ mac: MACAddress, linkIndex: Int32) -> NetlinkRequest {
        changeLink(index: linkIndex, LinkChanges(macAddress: mac))
    }

    /// `ip link set dev IFINDEX netns FD`: moves the link into another namespace (it keeps
    /// its name there unless that is taken; its addresses and routes are dropped).
    public static func moveLink(index: Int32, toNamespace descriptor: CInt) -> NetlinkRequest {
        changeLink(index: index, LinkChanges(namespaceDescriptor: descriptor))
    }

    /// `ip link del dev IFINDEX`. Deleting one end of a veth deletes both.
    public static func deleteLink(index: Int32) -> NetlinkRequest {
        NetlinkRequest(
            operation: "ip link del index \(index)", type: Int(RTM_DELLINK),
            header: InterfaceInfoHeader(index: index).bytes)
    }

    /// `ip link del dev NAME`. Fails with `ENODEV` when there is no such link.
    public static func deleteLink(named name: String) -> NetlinkRequest {
        var request = NetlinkRequest(
            operation: "ip link del \(name)", type: Int(RTM_DELLINK), header: InterfaceInfoHeader().bytes)
        request.message.addAttribute(Int(IFLA_IFNAME), string: name)
        return request
    }

    static func getLink(named name: String) -> NetlinkRequest {
        var request = NetlinkRequest(
            operation: "ip link show \(name)", type: Int(RTM_GETLINK), kind: .get, header: InterfaceInfoHeader().bytes)
        request.message.addAttribute(Int(IFLA_IFNAME), string: name)
        request.message.addAttribute(Int(IFLA_EXT_MASK), integer: skipStatistics)
        return request
    }

    static func getLink(index: Int32) -> NetlinkRequest {
        var request = NetlinkRequest(
            operation: "ip link show index \(index)", type: Int(RTM_GETLINK), kind: .get,
            header: InterfaceInfoHeader(index: index).bytes)
        request.message.addAttribute(Int(IFLA_EXT_MASK), integer: skipStatistics)
        return request
    }
}

extension NetlinkSocket {
    /// The link called `name`. `ip link show dev NAME`. Throws `ENODEV` (`isNotFound`)
    /// when there is none.
    public func link(named name: String) throws(NetlinkError) -> Link {
        try decodeLink(get(.getLink(named: name)), operation: "ip link show \(name)")
    }

    /// The link with `index`. `ip link show index INDEX` (no such command, but that is what
    /// it does).
    public func link(index: Int32) throws(NetlinkError) -> Link {
        try decodeLink(get(.getLink(index: index)), operation: "ip link show index \(index)")
    }

    /// Every link in the socket's namespace. `ip link show`.
    public func links() throws(NetlinkError) -> [Link] {
        var request = NetlinkRequest(
            operation: "ip link show", type: Int(RTM_GETLINK), kind: .dump, header: InterfaceInfoHeader().bytes)
        request.message.addAttribute(Int(IFLA_EXT_MASK), integer: skipStatistics)
        return try dump(request).compactMap(Link.init)
    }

    /// Creates a veth pair and returns the end created here, as the kernel reports it right
    /// after creation (index, MAC, `linkIndex` = the peer's index in its namespace).
    ///
    /// One round trip: the creation and a `RTM_GETLINK` for `pair.name` go in one datagram.
    /// `ip link add NAME type veth peer name PEER [netns FD]; ip link show NAME`.
    public func addVethPair(_ pair: VethPair) throws(NetlinkError) -> Link {
        let results = try exchange([.addVethPair(pair), .getLink(named: pair.name)])
        if case .failure(let error) = results[0] { throw error }
        switch results[1] {
        case .failure(let error):
            throw error
        case .success(let messages):
            guard let reply = messages.first else {
                throw NetlinkError(code: EPROTO, operation: "ip link show \(pair.name)", kernelMessage: "no reply")
            }
            return try decodeLink(reply, operation: "ip link show \(pair.name)")
        }
    }

    private func decodeLink(_ message: ReceivedMessage, operation: String) throws(NetlinkError) -> Link {
        guard let link = Link(message) else {
            throw NetlinkError(code: EPROTO, operation: operation, kernelMessage: "malformed RTM_NEWLINK reply")
        }
        return link
    }
}
