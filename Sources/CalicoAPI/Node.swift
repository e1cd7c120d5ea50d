import JSON

/// A Calico node (`nodes/<name>`), written by calico-node or, on Mesos without it, by the
/// first CNI ADD on the host.
public struct Node: CalicoResource {
    public static var kind: ResourceKind { .node }

    /// `spec.bgp`.
    public struct BGP: Sendable, Hashable {
        /// `asNumber` (a number, or a dotted string), verbatim.
        public var asNumber: JSON?
        public var ipv4Address: String?
        public var ipv6Address: String?
        public var ipv4IPIPTunnelAddr: String?
        public var routeReflectorClusterID: String?

        public init(asNumber: JSON? = nil, ipv4Address: String? = nil, ipv6Address: String? = nil,
                    ipv4IPIPTunnelAddr: String? = nil, routeReflectorClusterID: String? = nil) {
            self.asNumber = asNumber
            self.ipv4Address = ipv4Address
            self.ipv6Address = ipv6Address
            self.ipv4IPIPTunnelAddr = ipv4IPIPTunnelAddr
            self.routeReflectorClusterID = routeReflectorClusterID
        }

        var json: JSON {
            var w = ObjectWriter()
            w.set("asNumber", omitNil: asNumber)
            w.set("ipv4Address", omitEmpty: ipv4Address)
            w.set("ipv6Address", omitEmpty: ipv6Address)
            w.set("ipv4IPIPTunnelAddr", omitEmpty: ipv4IPIPTunnelAddr)
            w.set("routeReflectorClusterID", omitEmpty: routeReflectorClusterID)
            return w.json
        }
    }

    /// `spec.orchRefs[]`: the node's name in an orchestrator.
    public struct OrchRef: Sendable, Hashable {
        public var nodeName: String?
        public var orchestrator: String

        public init(nodeName: String? = nil, orchestrator: String) {
            self.nodeName = nodeName
            self.orchestrator = orchestrator
        }
    }

    public var metadata: ObjectMeta
    public var bgp: BGP?
    public var ipv4VXLANTunnelAddr: String?
    public var vxlanTunnelMACAddr: String?
    public var ipv6VXLANTunnelAddr: String?
    public var vxlanTunnelMACAddrV6: String?
    public var orchRefs: [OrchRef]
    /// `spec.wireguard` and `spec.addresses`, verbatim.
    public var otherSpecFields: [String: JSON]
    /// `status` (`wireguardPublicKey`, …), verbatim.
    public var status: [String: JSON]

    public init(name: String, bgp: BGP? = nil, orchRefs: [OrchRef] = []) {
        metadata = ObjectMeta(name: name)
        self.bgp = bgp
        ipv4VXLANTunnelAddr = nil
        vxlanTunnelMACAddr = nil
        ipv6VXLANTunnelAddr = nil
        vxlanTunnelMACAddrV6 = nil
        self.orchRefs = orchRefs
        otherSpecFields = [:]
        status = [:]
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .node, context: context)
        metadata = env.metadata
        if var b = try env.spec.object("bgp") {
            bgp = BGP(asNumber: b.raw("asNumber"), ipv4Address: try b.string("ipv4Address"),
                      ipv6Address: try b.string("ipv6Address"), ipv4IPIPTunnelAddr: try b.string("ipv4IPIPTunnelAddr"),
                      routeReflectorClusterID: try b.string("routeReflectorClusterID"))
            b.finish()
        } else {
            bgp = nil
        }
        ipv4VXLANTunnelAddr = try env.spec.string("ipv4VXLANTunnelAddr")
        vxlanTunnelMACAddr = try env.spec.string("vxlanTunnelMACAddr")
        ipv6VXLANTunnelAddr = try env.spec.string("ipv6VXLANTunnelAddr")
        vxlanTunnelMACAddrV6 = try env.spec.string("vxlanTunnelMACAddrV6")
        orchRefs = try env.spec.objects("orchRefs") { (o) throws(CalicoAPIError) in
            OrchRef(nodeName: try o.string("nodeName"), orchestrator: try o.string("orchestrator") ?? "")
        } ?? []
        var other: [String: JSON] = [:]
        for k in ["wireguard", "addresses"] { if let v = env.spec.raw(k) { other[k] = v } }
        otherSpecFields = other
        status = env.root.raw("status")?.objectValue ?? [:]
        env.finish()
    }

    /// Calico's JSON; `status` is always written (`{}` when empty), as Go does for a struct.
    public var json: JSON {
        var w = ObjectWriter()
        w.fields = otherSpecFields
        w.set("bgp", omitNil: bgp?.json)
        w.set("ipv4VXLANTunnelAddr", omitEmpty: ipv4VXLANTunnelAddr)
        w.set("vxlanTunnelMACAddr", omitEmpty: vxlanTunnelMACAddr)
        w.set("ipv6VXLANTunnelAddr", omitEmpty: ipv6VXLANTunnelAddr)
        w.set("vxlanTunnelMACAddrV6", omitEmpty: vxlanTunnelMACAddrV6)
        w.set("orchRefs", omitEmpty: orchRefs.map { r -> JSON in
            var o = ObjectWriter()
            o.set("nodeName", omitEmpty: r.nodeName)
            o.set("orchestrator", .string(r.orchestrator))
            return o.json
        })
        return Envelope.json(kind: .node, metadata: metadata, spec: w.json, extra: ["status": .object(status)])
    }
}
