import Foundation
import IPAddress
import NetNS
import Netlink
import TestSupport

/// Opens a netlink socket inside a test namespace (the way product code does it).
func openSocket(in namespace: TestNamespace) throws -> NetlinkSocket {
    try NetworkNamespace(path: namespace.path).run { try NetlinkSocket() }
}

/// One link of `ip -j link show dev NAME` in the namespace, or nil when absent.
func ipLink(_ namespace: TestNamespace, _ name: String) throws -> [String: Any]? {
    let result = try Command.run(["ip", "-n", namespace.name, "-j", "-d", "link", "show", "dev", name])
    guard result.status == 0 else { return nil }
    return (try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]])?.first
}

/// `ip -j addr show dev NAME` as "address/prefix" strings.
func ipAddresses(_ namespace: TestNamespace, _ name: String) throws -> [String] {
    let links = try namespace.ipJSON(["addr", "show", "dev", name])
    return links.flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }.compactMap { info in
        guard let local = info["local"] as? String, let length = info["prefixlen"] as? Int else { return nil }
        return "\(local)/\(length)"
    }
}

/// `ip -j route show [args]` of one family, as dictionaries.
func ipRoutes(_ namespace: TestNamespace, _ family: String = "-4", _ extra: [String] = []) throws -> [[String: Any]] {
    let out = try Command.check(["ip", "-n", namespace.name, "-j", family, "route", "show"] + extra)
    if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
    return (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]]) ?? []
}

/// Reads a /proc/sys file as seen from inside the namespace.
func sysctlInside(_ namespace: TestNamespace, _ relative: String) throws -> String {
    try namespace.check(["cat", "/proc/sys/" + relative]).trimmingCharacters(in: .whitespacesAndNewlines)
}

let namespaceTests = TestEnvironment.canUseNamespaces
