import JSON

/// A named port of an endpoint (`ports[]`: `{name, protocol, port}`).
public struct EndpointPort: Sendable, Hashable {
    public var name: String
    public var `protocol`: IPProtocol
    public var port: UInt16

    public init(name: String, protocol: IPProtocol, port: UInt16) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
    }

    init(reader r: inout FieldReader) throws(CalicoAPIError) {
        name = try r.requiredString("name")
        guard let p = r.raw("protocol") else { throw .missingField(r.fieldPath("protocol")) }
        `protocol` = try IPProtocol(json: p, path: r.fieldPath("protocol"))
        guard let n = try r.int("port"), (0...65535).contains(n) else {
            throw .invalidField(path: r.fieldPath("port"), reason: "expected a port number")
        }
        port = UInt16(n)
    }

    var json: JSON { ["name": .string(name), "protocol": `protocol`.json, "port": .int(Int(port))] }
}

/// One 1:1 NAT of a workload (`ipNATs[]`).
public struct IPNAT: Sendable, Hashable {
    public var internalIP: String
    public var externalIP: String

    public init(internalIP: String, externalIP: String) {
        self.internalIP = internalIP
        self.externalIP = externalIP
    }
}

/// A container's interface as Calico sees it (`workloadendpoints/<ns>/<name>`), written by
/// the CNI plugin on ADD and read by Felix.
public struct WorkloadEndpoint: CalicoResource {
    public static var kind: ResourceKind { .workloadEndpoint }

    public var metadata: ObjectMeta
    /// `cni` for Mesos (and any plain CNI runtime), `k8s` for Kubernetes.
    public var orchestrator: String?
    public var workload: String?
    public var node: String?
    public var containerID: String?
    public var pod: String?
    /// The interface name in the container (`eth0`).
    public var endpoint: String?
    public var serviceAccountName: String?
    /// `172.29.10.66/32`.
    public var ipNetworks: [String]
    public var ipNATs: [IPNAT]
    public var ipv4Gateway: String?
    public var ipv6Gateway: String?
    public var profiles: [String]
    /// The host-side veth (`cali…`).
    public var interfaceName: String?
    /// The container-side MAC.
    public var mac: String?
    public var ports: [EndpointPort]
    /// Fields of newer Calico releases (`allowSpoofedSourcePrefixes`, …), verbatim.
    public var otherSpecFields: [String: JSON]

    public init(name: String, namespace: String = "default", orchestrator: String? = "cni", node: String? = nil,
                containerID: String? = nil, endpoint: String? = nil, ipNetworks: [String] = [], profiles: [String] = [],
                interfaceName: String? = nil, mac: String? = nil) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.orchestrator = orchestrator
        workload = nil
        self.node = node
        self.containerID = containerID
        pod = nil
        self.endpoint = endpoint
        serviceAccountName = nil
        self.ipNetworks = ipNetworks
        ipNATs = []
        ipv4Gateway = nil
        ipv6Gateway = nil
        self.profiles = profiles
        self.interfaceName = interfaceName
        self.mac = mac
        ports = []
        otherSpecFields = [:]
    }

    static let newerSpecFields = ["allowSpoofedSourcePrefixes", "qosControls"]

    public init(json: JSON, context: DecodingContext) throws(CalicoAPIError) {
        var env = try Envelope(json, kind: .workloadEndpoint, context: context)
        metadata = env.metadata
        if metadata.namespace == nil { metadata.namespace = "default" }
        orchestrator = try env.spec.string("orchestrator")
        workload = try env.spec.string("workload")
        node = try env.spec.string("node")
        containerID = try env.spec.string("containerID")
        pod = try env.spec.string("pod")
        endpoint = try env.spec.string("endpoint")
        serviceAccountName = try env.spec.string("serviceAccountName")
        ipNetworks = try env.spec.strings("ipNetworks") ?? []
        ipNATs = try env.spec.objects("ipNATs") { (o) throws(CalicoAPIError) in
            IPNAT(internalIP: try o.requiredString("internalIP"), externalIP: try o.requiredString("externalIP"))
        } ?? []
        ipv4Gateway = try env.spec.string("ipv4Gateway")
        ipv6Gateway = try env.spec.string("ipv6Gateway")
        profiles = try env.spec.strings("profiles") ?? []
        interfaceName = try env.spec.string("interfaceName")
        mac = try env.spec.string("mac")
        ports = try env.spec.objects("ports") { (o) throws(CalicoAPIError) in try EndpointPort(reader: &o) } ?? []
        var other: [String: JSON] = [:]
        for k in Self.newerSpecFields { if let v = env.spec.raw(k) { other[k] = v } }
        otherSpecFields = other
        env.finish()
    }

    public var json: JSON {
        var w = ObjectWriter()
        w.fields = otherSpecFields
        w.set("orchestrator", omitEmpty: orchestrator)
        w.set("workload", omitEmpty: workload)
        w.set("node", omitEmpty: node)
        w.set("containerID", omitEmpty: containerID)
        w.set("pod", omitEmpty: pod)
        w.set("endpoint", omitEmpty: endpoint)
        w.set("serviceAccountName", omitEmpty: serviceAccountName)
        w.set("ipNetworks", omitEmpty: ipNetworks)
        w.set("ipNATs", omitEmpty: ipNATs.map { ["internalIP": .string($0.internalIP), "externalIP": .string($0.externalIP)] })
        w.set("ipv4Gateway", omitEmpty: ipv4Gateway)
        w.set("ipv6Gateway", omitEmpty: ipv6Gateway)
        w.set("profiles", omitEmpty: profiles)
        w.set("interfaceName", omitEmpty: interfaceName)
        w.set("mac", omitEmpty: mac)
        w.set("ports", omitEmpty: ports.map(\.json))
        return Envelope.json(kind: .workloadEndpoint, metadata: metadata, spec: w.json)
    }
}
