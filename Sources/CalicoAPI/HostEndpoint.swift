import JSON

/// A host interface under policy (`hostendpoints/<name>`).
public struct HostEndpoint: CalicoResource {
    public static var kind: ResourceKind { .hostEndpoint }

    public var metadata: ObjectMeta
    public var node: String?
    /// `*` means every host interface.
    public var interfaceName: String?
    public var expectedIPs: [String]
    public var profiles: [String]
    public var ports: [EndpointPort]

    public init(name: String, node: String? = nil, interfaceName: String? = nil, expectedIPs: [String] = [],
                profiles: [String] = []) {
        metadata = ObjectMeta(name: name)
        self.node = node
        self.interfaceName = interfaceName
        self.expectedIPs = expectedIPs
        self.profiles = profiles
        ports = []
    }

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .hostEndpoint, context: context)
        metadata = env.metadata
        node = try env.spec.string("node")
        interfaceName = try env.spec.string("interfaceName")
        expectedIPs = try env.spec.strings("expectedIPs") ?? []
        profiles = try env.spec.strings("profiles") ?? []
        ports = try env.spec.objects("ports") { (o) throws(CalicoAPIError) in try EndpointPort(reader: &o) } ?? []
        env.finish()
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.set("node", omitEmpty: node)
        w.set("interfaceName", omitEmpty: interfaceName)
        w.set("expectedIPs", omitEmpty: expectedIPs)
        w.set("profiles", omitEmpty: profiles)
        w.set("ports", omitEmpty: ports.map(\.json))
        return Envelope.json(kind: .hostEndpoint, metadata: metadata, spec: w.json)
    }
}
