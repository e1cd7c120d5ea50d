import CalicoAPI
import IPAddress

/// A port an endpoint names (`spec.ports` of a WorkloadEndpoint), so rules can say
/// `ports: ["http"]` instead of a number.
public struct NamedPort: Sendable, Hashable {
    public var name: String
    /// IANA protocol number (6 TCP, 17 UDP, 132 SCTP).
    public var protocolNumber: UInt8
    public var port: UInt16

    public init(name: String, protocolNumber: UInt8, port: UInt16) {
        self.name = name
        self.protocolNumber = protocolNumber
        self.port = port
    }
}

/// What policy needs to know about one workload endpoint, on this host or any other.
///
/// Endpoints on other hosts matter too: a rule's `selector` stands for the addresses of
/// every endpoint it selects, wherever it runs.
public struct PolicyEndpoint: Sendable, Hashable {
    /// Unique among endpoints: `<namespace>/<name>`.
    public var id: String
    public var namespace: String
    /// The node it runs on (`spec.node`).
    public var node: String
    /// The host-side interface (`spec.interfaceName`, `cali…`); nil when not yet known.
    public var interfaceName: String?
    /// `spec.ipNetworks`, usually one /32 (and one /128).
    public var addresses: [IPNetwork]
    /// The endpoint's own labels (`metadata.labels`).
    public var labels: [String: String]
    /// Profile names, in the order they apply (`spec.profiles`).
    public var profiles: [String]
    public var ports: [NamedPort]
    /// `spec.orchestrator` (Calico adds `projectcalico.org/orchestrator` from it).
    public var orchestrator: String?

    public init(id: String, namespace: String, node: String, interfaceName: String?, addresses: [IPNetwork],
                labels: [String: String] = [:], profiles: [String] = [], ports: [NamedPort] = [], orchestrator: String? = nil) {
        self.id = id
        self.namespace = namespace
        self.node = node
        self.interfaceName = interfaceName
        self.addresses = addresses
        self.labels = labels
        self.profiles = profiles
        self.ports = ports
        self.orchestrator = orchestrator
    }
}

/// A NetworkPolicy or GlobalNetworkPolicy, reduced to what decides traffic.
public struct PolicyDefinition: Sendable, Hashable {
    public enum Scope: Sendable, Hashable {
        /// A NetworkPolicy: applies to, and scopes its rule selectors to, one namespace.
        case namespaced(String)
        /// A GlobalNetworkPolicy.
        case global
    }

    public var scope: Scope
    public var name: String
    /// Lower runs first; nil runs after every ordered policy.
    public var order: Double?
    /// Which endpoints the policy applies to (empty = `all()`).
    public var selector: String
    /// A GlobalNetworkPolicy's `namespaceSelector` (further limits `selector`).
    public var namespaceSelector: String?
    /// `serviceAccountSelector` (further limits `selector` to endpoints whose service
    /// account matches; Mesos endpoints have none).
    public var serviceAccountSelector: String?
    /// Directions it applies to, after libcalico-go's defaulting.
    public var types: [PolicyType]
    public var ingress: [Rule]
    public var egress: [Rule]
    /// Host-endpoint-only policies (`doNotTrack`, `preDNAT`) never apply to workloads.
    public var appliesToWorkloads: Bool

    public init(scope: Scope, name: String, order: Double? = nil, selector: String = "", namespaceSelector: String? = nil,
                serviceAccountSelector: String? = nil, types: [PolicyType]? = nil, ingress: [Rule] = [], egress: [Rule] = [],
                appliesToWorkloads: Bool = true) {
        self.scope = scope
        self.name = name
        self.order = order
        self.selector = selector
        self.namespaceSelector = namespaceSelector
        self.serviceAccountSelector = serviceAccountSelector
        self.types = (types?.isEmpty ?? true) ? PolicyType.defaults(ingress: ingress, egress: egress) : types!
        self.ingress = ingress
        self.egress = egress
        self.appliesToWorkloads = appliesToWorkloads
    }

    /// `<namespace>/<name>` for a NetworkPolicy, `<name>` for a global one: unique, and the
    /// tie-breaker after `order` (as felix's policy ID).
    public var id: String {
        switch scope {
        case .namespaced(let ns): return ns + "/" + name
        case .global: return name
        }
    }

    public var namespace: String? {
        if case .namespaced(let ns) = scope { return ns }
        return nil
    }
}

/// A Profile reduced to what decides traffic.
public struct ProfileDefinition: Sendable, Hashable {
    public var name: String
    public var ingress: [Rule]
    public var egress: [Rule]
    public var labelsToApply: [String: String]

    public init(name: String, ingress: [Rule] = [], egress: [Rule] = [], labelsToApply: [String: String] = [:]) {
        self.name = name
        self.ingress = ingress
        self.egress = egress
        self.labelsToApply = labelsToApply
    }

    public init(_ profile: Profile) {
        self.init(name: profile.metadata.name, ingress: profile.ingress, egress: profile.egress,
                  labelsToApply: profile.labelsToApply)
    }
}

/// Traffic direction as seen from a workload: ingress is traffic to it, egress from it.
public enum Direction: String, Sendable, Hashable, CaseIterable {
    case ingress, egress
}
