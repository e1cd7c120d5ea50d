import POSIX

/// The name this host has in Calico's data (the `nodes/<name>` resource, IPAM affinities,
/// workload endpoint names).
public enum NodeName {
    /// Where calico-node (and our setup) records the node name.
    public static let defaultFile = "/var/lib/calico/nodename"

    /// Calico's order: the configured name (CNI config `nodename`), else the trimmed
    /// content of `nodenameFile`, else the host name lowercased (as libcalico-go does, since
    /// resource names must be lowercase).
    ///
    /// - Parameter hostname: the host name source, injected for tests.
    public static func resolve(configured: String?, nodenameFile: String = defaultFile,
                               hostname: () -> String = Files.hostname) -> String {
        if let name = configured.flatMap(nonEmpty) { return name }
        if let text = try? Files.readText(nodenameFile), let name = nonEmpty(text) { return name }
        return asciiLowercased(trimmed(hostname()))
    }

    private static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}
