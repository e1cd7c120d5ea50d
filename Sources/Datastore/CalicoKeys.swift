/// Calico's etcd v3 key layout (libcalico-go), the same under every backend so upstream
/// tools read what we write.
public enum CalicoKeys {
    public static let root = "/calico/resources/v3/projectcalico.org/"

    /// `/calico/resources/v3/projectcalico.org/<plural>/<name>` (cluster-scoped) or
    /// `.../<plural>/<namespace>/<name>` (namespaced).
    public static func resource(plural: String, namespace: String? = nil, name: String) -> String {
        if let namespace { return root + plural + "/" + namespace + "/" + name }
        return root + plural + "/" + name
    }

    /// The prefix holding every resource of `plural` (optionally in one namespace).
    public static func resourcePrefix(plural: String, namespace: String? = nil) -> String {
        if let namespace { return root + plural + "/" + namespace + "/" }
        return root + plural + "/"
    }

    public static let ipamRoot = "/calico/ipam/v2/"

    /// `/calico/ipam/v2/assignment/ipv4/block/172.29.10.64-26`
    public static func block(cidr: String) -> String {
        ipamRoot + "assignment/" + family(cidr) + "/block/" + cidr.replacingSlash()
    }

    public static func blockPrefix(ipv6: Bool) -> String {
        ipamRoot + "assignment/" + (ipv6 ? "ipv6" : "ipv4") + "/block/"
    }

    /// `/calico/ipam/v2/host/<node>/ipv4/block/172.29.10.64-26`
    public static func affinity(node: String, cidr: String) -> String {
        ipamRoot + "host/" + node + "/" + family(cidr) + "/block/" + cidr.replacingSlash()
    }

    public static func affinityPrefix(node: String, ipv6: Bool) -> String {
        ipamRoot + "host/" + node + "/" + (ipv6 ? "ipv6" : "ipv4") + "/block/"
    }

    public static let affinityRoot = ipamRoot + "host/"

    /// `/calico/ipam/v2/handle/<handleID>`
    public static func handle(_ id: String) -> String { ipamRoot + "handle/" + id }
    public static let handlePrefix = ipamRoot + "handle/"

    /// `/calico/ipam/v2/config`
    public static let ipamConfig = ipamRoot + "config"

    /// Block CIDR text from a key's last segment: `172.29.10.64-26` → `172.29.10.64/26`.
    public static func cidr(fromKeySegment s: Substring) -> String {
        guard let dash = s.lastIndex(of: "-") else { return String(s) }
        return s[..<dash] + "/" + s[s.index(after: dash)...]
    }

    private static func family(_ cidr: String) -> String { cidr.contains(":") ? "ipv6" : "ipv4" }
}

extension String {
    fileprivate func replacingSlash() -> String {
        String(self.map { $0 == "/" ? "-" : $0 })
    }
}
