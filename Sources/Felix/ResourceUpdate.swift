import CalicoAPI
import Datastore
import JSON
import Policy

/// One datastore key that matters to felix, decoded.
enum ResourceUpdate {
    case endpoint(id: String, PolicyEndpoint?)
    case policy(scope: PolicyDefinition.Scope, name: String, PolicyDefinition?)
    case profile(name: String, ProfileDefinition?)
    case felixConfiguration(name: String, FelixConfiguration?)

    /// The resource under `key` (nil value = deleted). Nil for keys felix ignores (pools,
    /// nodes, ...). Throws when the value cannot be decoded.
    static func decode(key: String, value: String?) throws(CalicoAPIError) -> ResourceUpdate? {
        guard key.hasPrefix(CalicoKeys.root) else { return nil }
        let parts = key.dropFirst(CalicoKeys.root.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2 else { return nil }
        switch (parts[0], parts.count) {
        case ("workloadendpoints", 3):
            let id = parts[1] + "/" + parts[2]
            guard let value else { return .endpoint(id: id, nil) }
            var wep = try WorkloadEndpoint(jsonText: value)
            // The key is the truth for identity (a value copied between keys keeps its own).
            wep.metadata.namespace = parts[1]
            wep.metadata.name = parts[2]
            return .endpoint(id: id, PolicyEndpoint(wep))
        case ("networkpolicies", 3):
            let scope = PolicyDefinition.Scope.namespaced(parts[1])
            guard let value else { return .policy(scope: scope, name: parts[2], nil) }
            var p = try NetworkPolicy(jsonText: value)
            p.metadata.namespace = parts[1]
            p.metadata.name = parts[2]
            return .policy(scope: scope, name: parts[2], PolicyDefinition(p))
        case ("globalnetworkpolicies", 2):
            guard let value else { return .policy(scope: .global, name: parts[1], nil) }
            var p = try GlobalNetworkPolicy(jsonText: value)
            p.metadata.name = parts[1]
            return .policy(scope: .global, name: parts[1], PolicyDefinition(p))
        case ("profiles", 2):
            guard let value else { return .profile(name: parts[1], nil) }
            var p = try Profile(jsonText: value)
            p.metadata.name = parts[1]
            return .profile(name: parts[1], ProfileDefinition(p))
        case ("felixconfigurations", 2):
            guard let value else { return .felixConfiguration(name: parts[1], nil) }
            return .felixConfiguration(name: parts[1], try FelixConfiguration(jsonText: value))
        default:
            return nil
        }
    }

    /// The update that removes whatever `key` held (what a value that no longer decodes
    /// amounts to).
    static func removal(of key: String) -> ResourceUpdate? {
        try? decode(key: key, value: nil)
    }
}
