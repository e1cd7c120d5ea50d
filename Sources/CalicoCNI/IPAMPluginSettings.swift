import CNI
import Datastore
import Datastores
import JSON

/// The `ipam` section of a network config as calico-ipam reads it (upstream's keys):
///
/// ```json
/// "ipam": {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "false",
///          "ipv4_pools": ["default-ipv4-ippool"], "ipv6_pools": ["fd00::/64"]}
/// ```
///
/// `assign_ipv4` / `assign_ipv6` are the strings `"true"` / `"false"` (booleans are accepted
/// too); pools are named by pool name or CIDR. The node name is the config's `nodename`,
/// else the file `nodename_file` (default `/var/lib/calico/nodename`), else the host name.
public struct IPAMPluginSettings: Sendable, Hashable {
    public var assignIPv4: Bool
    public var assignIPv6: Bool
    public var ipv4Pools: [String]
    public var ipv6Pools: [String]
    /// The node this host is in Calico's data.
    public var node: String
    /// Where the datastore is.
    public var datastore: DatastoreSettings

    public init(assignIPv4: Bool = true, assignIPv6: Bool = false, ipv4Pools: [String] = [], ipv6Pools: [String] = [],
                node: String, datastore: DatastoreSettings) {
        self.assignIPv4 = assignIPv4
        self.assignIPv6 = assignIPv6
        self.ipv4Pools = ipv4Pools
        self.ipv6Pools = ipv6Pools
        self.node = node
        self.datastore = datastore
    }

    /// Reads the settings from a network config. Invalid values are code 7 naming the key.
    public init(conf: NetConf) throws(CNIError) {
        let ipam = conf.ipam ?? .object([:])
        assignIPv4 = try Self.flag(ipam["assign_ipv4"], key: "ipam.assign_ipv4", default: true)
        assignIPv6 = try Self.flag(ipam["assign_ipv6"], key: "ipam.assign_ipv6", default: false)
        guard assignIPv4 || assignIPv6 else {
            throw .invalidNetworkConfig("ipam.assign_ipv4 and ipam.assign_ipv6 are both false: no address to assign")
        }
        ipv4Pools = try Self.strings(ipam["ipv4_pools"], key: "ipam.ipv4_pools")
        ipv6Pools = try Self.strings(ipam["ipv6_pools"], key: "ipam.ipv6_pools")
        let configured = try Self.optionalString(conf["nodename"], key: "nodename")
        let file = try Self.optionalString(conf["nodename_file"], key: "nodename_file") ?? NodeName.defaultFile
        node = NodeName.resolve(configured: configured, nodenameFile: file)
        do {
            datastore = try DatastoreSettings(cniConfig: conf.raw)
        } catch {
            throw .invalidNetworkConfig(error.description)
        }
    }

    private static func flag(_ value: JSON?, key: String, default fallback: Bool) throws(CNIError) -> Bool {
        switch value {
        case nil, .null?: return fallback
        case .bool(let b)?: return b
        case .string(let s)?:
            switch s.lowercased() {
            case "true": return true
            case "false": return false
            case "": return fallback
            default: throw .invalidNetworkConfig("\(key) must be \"true\" or \"false\", not \"\(s)\"")
            }
        case let other?:
            throw .invalidNetworkConfig("\(key) must be \"true\" or \"false\"", details: other.compactText)
        }
    }

    private static func strings(_ value: JSON?, key: String) throws(CNIError) -> [String] {
        guard let value, !value.isNull else { return [] }
        guard let items = value.arrayValue else { throw .invalidNetworkConfig("\(key) must be a list of pool names or CIDRs") }
        var out: [String] = []
        for item in items {
            guard let s = item.stringValue, !s.isEmpty else {
                throw .invalidNetworkConfig("\(key) must be a list of pool names or CIDRs", details: item.compactText)
            }
            out.append(s)
        }
        return out
    }

    private static func optionalString(_ value: JSON?, key: String) throws(CNIError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?: return s.isEmpty ? nil : s
        case let other?: throw .invalidNetworkConfig("\(key) must be a string", details: other.compactText)
        }
    }
}
