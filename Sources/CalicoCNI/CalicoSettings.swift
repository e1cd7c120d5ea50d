import CNI
import CalicoAPI
import JSON

/// What the `calico` plugin reads from its network config besides the datastore and IPAM
/// settings (which `IPAMPluginSettings` reads): upstream's keys.
///
/// ```json
/// {"name": "calico", "type": "calico", "mtu": 1450, "nodename": "agent-1",
///  "container_settings": {"allow_ip_forwarding": false},
///  "ipam": {"type": "calico-ipam"}, "datastore_type": "sqlite", "sqlite_path": "..."}
/// ```
public struct CalicoSettings: Sendable, Hashable {
    /// MTU of both veth ends (`mtu`, default 1500).
    public var mtu: Int
    /// Leave forwarding on inside the container (`container_settings.allow_ip_forwarding`).
    public var allowIPForwarding: Bool
    /// The IPAM plugin's name (`ipam.type`).
    public var ipamType: String
    /// The WorkloadEndpoint's namespace: the Mesos label `projectcalico.org/namespace`, else
    /// `default`.
    public var namespace: String
    /// The endpoint's labels: the task's NetworkInfo labels sanitised, plus Calico's own.
    public var labels: [String: String]

    /// The label Mesos tasks use to pick the endpoint's namespace.
    public static let namespaceLabel = "projectcalico.org/namespace"
    public static let orchestratorLabel = "projectcalico.org/orchestrator"

    public init(conf: NetConf) throws(CNIError) {
        switch conf["mtu"] {
        case nil, .null?: mtu = 1500
        case let v?:
            guard let m = v.intValue, (68...65535).contains(m) else {
                throw .invalidNetworkConfig("mtu must be a number from 68 to 65535", details: v.compactText)
            }
            mtu = m
        }
        switch conf["container_settings"]?["allow_ip_forwarding"] {
        case nil, .null?: allowIPForwarding = false
        case .bool(let b)?: allowIPForwarding = b
        case let v?: throw .invalidNetworkConfig("container_settings.allow_ip_forwarding must be true or false", details: v.compactText)
        }
        guard let type = conf.ipam?["type"]?.stringValue, !type.isEmpty else {
            throw .invalidNetworkConfig("ipam.type is missing: the calico plugin needs an IPAM plugin (\"calico-ipam\")")
        }
        ipamType = type

        var labels: [String: String] = [:]
        var namespace = "default"
        for label in conf.mesosNetworkInfo?.labels ?? [] {
            if label.key == Self.namespaceLabel {
                namespace = MesosLabels.sanitize(label.value)
                continue
            }
            let key = MesosLabels.sanitize(label.key)
            guard !key.isEmpty else {
                throw .invalidNetworkConfig("Mesos label key \"\(label.key)\" has no character Calico can use in a label name")
            }
            labels[key] = MesosLabels.sanitize(label.value)
        }
        guard Self.isDNSLabel(namespace) else {
            throw .invalidNetworkConfig("label \(Self.namespaceLabel) must name a namespace (lowercase letters, digits, '-'), got \"\(namespace)\"")
        }
        labels[Self.namespaceLabel] = namespace
        labels[Self.orchestratorLabel] = "cni"
        self.namespace = namespace
        self.labels = labels
    }

    /// A Kubernetes-style namespace name (DNS-1123 label): 1–63 of `[a-z0-9-]`, alphanumeric ends.
    static func isDNSLabel(_ s: String) -> Bool {
        let b = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (0x61...0x7A).contains(c) || (0x30...0x39).contains(c) }
        guard (1...63).contains(b.count), alnum(b.first!), alnum(b.last!) else { return false }
        return b.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// Whether IPAM is our own `calico-ipam`, which runs in process.
    public var usesCalicoIPAM: Bool { ipamType == "calico-ipam" }
}
