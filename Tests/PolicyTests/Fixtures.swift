import CalicoAPI
import IPAddress
import Policy

/// The seed's cluster on host `hostA`, plus a remote bookstore endpoint on `hostB` and a
/// bookstore endpoint in another namespace.
enum Cluster {
    static let node = "hostA"

    static let bookstoreFrontend = PolicyEndpoint(
        id: "default/bf", namespace: "default", node: node, interfaceName: "cali-bf",
        addresses: [net("172.29.0.2/32")], labels: ["biz_type": "bookstore"], profiles: ["calico"], orchestrator: "cni")
    static let bookstoreServer = PolicyEndpoint(
        id: "default/bs", namespace: "default", node: node, interfaceName: "cali-bs",
        addresses: [net("172.29.0.3/32"), net("fd00::3/128")], labels: ["biz_type": "bookstore", "role": "server"],
        profiles: ["calico"], ports: [NamedPort(name: "http", protocolNumber: 6, port: 80)], orchestrator: "cni")
    static let fruitstoreFrontend = PolicyEndpoint(
        id: "default/ff", namespace: "default", node: node, interfaceName: "cali-ff",
        addresses: [net("172.29.0.4/32"), net("fd00::4/128")], labels: ["biz_type": "fruitstore"], profiles: ["calico"],
        orchestrator: "cni")
    static let remoteBookstore = PolicyEndpoint(
        id: "default/rb", namespace: "default", node: "hostB", interfaceName: "cali-rb",
        addresses: [net("172.29.1.5/32")], labels: ["biz_type": "bookstore"], profiles: ["calico"], orchestrator: "cni")
    static let otherNamespaceBookstore = PolicyEndpoint(
        id: "other/ob", namespace: "other", node: node, interfaceName: "cali-ob",
        addresses: [net("172.29.0.9/32")], labels: ["biz_type": "bookstore"], profiles: ["calico"], orchestrator: "cni")

    static let endpoints = [bookstoreFrontend, bookstoreServer, fruitstoreFrontend, remoteBookstore, otherNamespaceBookstore]
    static let calicoProfile = ProfileDefinition(Profile.networkDefault(name: "calico"))

    /// The seed's policy, verbatim (REFERENCE.md §8), as calicoctl stores it.
    static let seedPolicy = networkPolicy("allow-bookstore-cliient-to-server", """
        {"selector":"biz_type == 'bookstore' && role == 'server'","types":["Ingress"],
         "ingress":[{"action":"Allow","protocol":"TCP","source":{"selector":"biz_type == 'bookstore'"},"destination":{"ports":[80]}},
                    {"action":"Deny","protocol":"TCP","source":{"selector":"biz_type == 'fruitstore'"},"destination":{"ports":[80]}}]}
        """)

    static func index(_ policies: [PolicyDefinition] = [], profiles: [ProfileDefinition] = [calicoProfile],
                      endpoints: [PolicyEndpoint] = endpoints, endpointToHostAction: EndpointToHostAction = .drop) -> PolicyIndex {
        let idx = PolicyIndex(nodeName: node, endpointToHostAction: endpointToHostAction)
        for p in profiles { idx.upsert(p) }
        for e in endpoints { idx.upsert(e) }
        for p in policies { idx.upsert(p) }
        return idx
    }
}

func net(_ s: String) -> IPNetwork { IPNetwork(s, allowBareAddress: true)! }
func ip(_ s: String) -> IPAddress { IPAddress(s)! }

func networkPolicy(_ name: String, namespace: String = "default", _ spec: String) -> PolicyDefinition {
    let text = #"{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"\#(name)","namespace":"\#(namespace)"},"spec":\#(spec)}"#
    do { return PolicyDefinition(try NetworkPolicy(strictJSON: try JSONText.parse(text))) } catch { fatalError("bad fixture \(name): \(error)") }
}

func globalPolicy(_ name: String, _ spec: String) -> PolicyDefinition {
    let text = #"{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"\#(name)"},"spec":\#(spec)}"#
    do { return PolicyDefinition(try GlobalNetworkPolicy(strictJSON: try JSONText.parse(text))) } catch { fatalError("bad fixture \(name): \(error)") }
}

func profile(_ name: String, _ spec: String) -> ProfileDefinition {
    let text = #"{"kind":"Profile","apiVersion":"projectcalico.org/v3","metadata":{"name":"\#(name)"},"spec":\#(spec)}"#
    do { return ProfileDefinition(try Profile(strictJSON: try JSONText.parse(text))) } catch { fatalError("bad fixture \(name): \(error)") }
}

import JSON
enum JSONText {
    static func parse(_ s: String) throws -> JSON { try JSON(parsing: s) }
}
