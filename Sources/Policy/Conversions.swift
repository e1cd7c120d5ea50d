import CalicoAPI
import IPAddress

extension PolicyEndpoint {
    /// The policy view of a WorkloadEndpoint. Addresses that do not parse are left out
    /// (they could not be matched anyway).
    public init(_ wep: WorkloadEndpoint) {
        let ns = wep.metadata.namespace ?? "default"
        self.init(
            id: ns + "/" + wep.metadata.name, namespace: ns, node: wep.node ?? "",
            interfaceName: wep.interfaceName,
            addresses: wep.ipNetworks.compactMap { IPNetwork($0, allowBareAddress: true) },
            labels: wep.metadata.labels, profiles: wep.profiles,
            ports: wep.ports.compactMap { p in p.protocol.number.map { NamedPort(name: p.name, protocolNumber: $0, port: p.port) } },
            orchestrator: wep.orchestrator)
    }
}

extension PolicyDefinition {
    /// A NetworkPolicy, `types` defaulted as libcalico-go does.
    public init(_ p: NetworkPolicy) {
        self.init(scope: .namespaced(p.metadata.namespace ?? "default"), name: p.metadata.name, order: p.order,
                  selector: p.selector ?? "", serviceAccountSelector: p.serviceAccountSelector, types: p.types,
                  ingress: p.ingress, egress: p.egress)
    }

    /// A GlobalNetworkPolicy. `doNotTrack` and `preDNAT` policies apply to host endpoints
    /// only, so never to workloads.
    public init(_ p: GlobalNetworkPolicy) {
        self.init(scope: .global, name: p.metadata.name, order: p.order, selector: p.selector ?? "",
                  namespaceSelector: p.namespaceSelector, serviceAccountSelector: p.serviceAccountSelector,
                  types: p.types, ingress: p.ingress, egress: p.egress,
                  appliesToWorkloads: !p.doNotTrack && !p.preDNAT)
    }
}
