import Datastore
import JSON

/// The registry of Calico resource kinds: names, plurals (the key segment), scope and
/// calicoctl's aliases.
public enum ResourceKind: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case ipPool = "IPPool"
    case node = "Node"
    case clusterInformation = "ClusterInformation"
    case profile = "Profile"
    case workloadEndpoint = "WorkloadEndpoint"
    case networkPolicy = "NetworkPolicy"
    case globalNetworkPolicy = "GlobalNetworkPolicy"
    case hostEndpoint = "HostEndpoint"
    case felixConfiguration = "FelixConfiguration"

    /// The kind as written in `kind:` (`NetworkPolicy`).
    public var name: String { rawValue }
    public var description: String { rawValue }

    /// `NetworkPolicyList`, the kind of a list document.
    public var listName: String { rawValue + "List" }

    /// The lower-case plural used in the etcd key (`networkpolicies`).
    public var plural: String {
        switch self {
        case .ipPool: return "ippools"
        case .node: return "nodes"
        case .clusterInformation: return "clusterinformations"
        case .profile: return "profiles"
        case .workloadEndpoint: return "workloadendpoints"
        case .networkPolicy: return "networkpolicies"
        case .globalNetworkPolicy: return "globalnetworkpolicies"
        case .hostEndpoint: return "hostendpoints"
        case .felixConfiguration: return "felixconfigurations"
        }
    }

    /// Whether resources of this kind live in a namespace (key `<plural>/<ns>/<name>`).
    public var isNamespaced: Bool { self == .networkPolicy || self == .workloadEndpoint }

    /// Every lower-case name calicoctl accepts for the kind (singular, plural, short forms).
    public var aliases: [String] {
        switch self {
        case .ipPool: return ["ippool", "ippools", "ipp", "ipps", "pool", "pools"]
        case .node: return ["node", "nodes", "no", "nos"]
        case .clusterInformation: return ["clusterinformation", "clusterinformations", "clusterinfo", "clusterinfos"]
        case .profile: return ["profile", "profiles", "pro", "pros"]
        case .workloadEndpoint: return ["workloadendpoint", "workloadendpoints", "wep", "weps"]
        case .networkPolicy: return ["networkpolicy", "networkpolicies", "policy", "policies", "np", "nps", "pol", "pols"]
        case .globalNetworkPolicy: return ["globalnetworkpolicy", "globalnetworkpolicies", "gnp", "gnps"]
        case .hostEndpoint: return ["hostendpoint", "hostendpoints", "hep", "heps"]
        case .felixConfiguration: return ["felixconfiguration", "felixconfigurations", "felixconfig", "felixconfigs"]
        }
    }

    /// Finds a kind by any of its names or aliases, case-insensitively (`NP`, `ippools`,
    /// `GlobalNetworkPolicy`).
    public init?(alias: String) {
        let lower = alias.lowercased()
        guard let k = ResourceKind.allCases.first(where: { $0.aliases.contains(lower) }) else { return nil }
        self = k
    }

    /// The Swift type modelling the kind.
    public var resourceType: any CalicoResource.Type {
        switch self {
        case .ipPool: return IPPool.self
        case .node: return Node.self
        case .clusterInformation: return ClusterInformation.self
        case .profile: return Profile.self
        case .workloadEndpoint: return WorkloadEndpoint.self
        case .networkPolicy: return NetworkPolicy.self
        case .globalNetworkPolicy: return GlobalNetworkPolicy.self
        case .hostEndpoint: return HostEndpoint.self
        case .felixConfiguration: return FelixConfiguration.self
        }
    }

    /// The etcd key of one resource. A namespaced kind without a namespace uses `default`.
    public func key(name: String, namespace: String? = nil) -> String {
        CalicoKeys.resource(plural: plural, namespace: isNamespaced ? (namespace ?? "default") : nil, name: name)
    }

    /// The prefix holding every resource of the kind; for namespaced kinds, `namespace`
    /// narrows it to one namespace (nil: all namespaces).
    public func keyPrefix(namespace: String? = nil) -> String {
        CalicoKeys.resourcePrefix(plural: plural, namespace: isNamespaced ? namespace : nil)
    }

    /// Decodes a value of this kind, recording unknown fields in `context`.
    public func decode(_ json: JSON, context: DecodingContext = DecodingContext()) throws(CalicoAPIError) -> any CalicoResource {
        try resourceType.init(json: json, context: context)
    }

    /// Decodes any Calico resource by its `kind` member. With `strict`, an unknown field is
    /// an error (calicoctl's behaviour for user input).
    public static func decodeResource(_ json: JSON, strict: Bool = false) throws(CalicoAPIError) -> any CalicoResource {
        guard let kindName = json["kind"]?.stringValue else { throw .missingField("kind") }
        guard let kind = ResourceKind(rawValue: kindName) else { throw .unknownKind(kindName) }
        let context = DecodingContext()
        let r = try kind.decode(json, context: context)
        if strict, let first = context.unknownFields.first { throw .unknownField(first) }
        return r
    }
}
