import POSIX

/// A kernel setting under `/proc/sys`, read and written as text (what `sysctl` does).
///
/// Everything under `/proc/sys/net` belongs to a network namespace: the one of the thread
/// that *opens* the file. To change a setting inside a container, open it from a thread that
/// has entered the container's namespace (`NetworkNamespace.run`); a netlink socket cannot
/// do it for you.
public struct Sysctl: Sendable, Hashable, CustomStringConvertible {
    /// The absolute path, `/proc/sys/net/ipv4/ip_forward`.
    public let path: String

    /// A setting by its dotted or slashed name relative to `/proc/sys`
    /// (`net/ipv4/ip_forward`).
    public init(_ relativePath: String) {
        // (Component comparison, not a substring search: this runs at every plugin start, and
        // String.contains(String) pulls in _StringProcessing's generic searcher.)
        precondition(!relativePath.hasPrefix("/") && !relativePath.split(separator: "/").contains(".."),
                     "relative /proc/sys path expected")
        path = "/proc/sys/" + relativePath
    }

    /// The current value without the trailing newline. `sysctl -n NAME`.
    public func read() throws(Errno) -> String {
        var text = try Files.readText(path)
        while let last = text.last, last == "\n" || last == " " { text.removeLast() }
        return text
    }

    /// Sets the value. `sysctl -w NAME=VALUE`. Throws `ENOENT` when the setting does not
    /// exist (no such interface, or IPv6 disabled).
    public func write(_ value: String) throws(Errno) {
        try Files.write(path, value)
    }

    public var description: String { path }

    private static func checked(_ interface: String) -> String {
        precondition(!interface.isEmpty && !interface.contains("/") && interface != "." && interface != "..",
            "not an interface name: \(interface)")
        return interface
    }

    /// `net.ipv4.ip_forward`: forwarding for the whole namespace (also sets every
    /// interface's `forwarding`).
    public static let ipForward = Sysctl("net/ipv4/ip_forward")

    /// `net.ipv4.conf.<if>.forwarding` (`<if>` may be `all` or `default`).
    public static func ipv4Forwarding(interface: String) -> Sysctl {
        Sysctl("net/ipv4/conf/\(checked(interface))/forwarding")
    }

    /// `net.ipv4.conf.<if>.proxy_arp`: answer ARP requests for addresses routed elsewhere.
    public static func proxyARP(interface: String) -> Sysctl {
        Sysctl("net/ipv4/conf/\(checked(interface))/proxy_arp")
    }

    /// `net.ipv4.neigh.<if>.proxy_delay`: how long proxy ARP waits before answering
    /// (in jiffies; 0 answers at once).
    public static func proxyDelay(interface: String) -> Sysctl {
        Sysctl("net/ipv4/neigh/\(checked(interface))/proxy_delay")
    }

    /// `net.ipv6.conf.<if>.forwarding` (`all` for the namespace).
    public static func ipv6Forwarding(interface: String) -> Sysctl {
        Sysctl("net/ipv6/conf/\(checked(interface))/forwarding")
    }

    /// `net.ipv6.conf.<if>.proxy_ndp`: answer neighbour solicitations for proxied addresses.
    public static func proxyNDP(interface: String) -> Sysctl {
        Sysctl("net/ipv6/conf/\(checked(interface))/proxy_ndp")
    }

    /// `net.ipv6.conf.<if>.accept_ra`: whether router advertisements configure the interface.
    public static func acceptRouterAdvertisements(interface: String) -> Sysctl {
        Sysctl("net/ipv6/conf/\(checked(interface))/accept_ra")
    }

    /// `net.ipv6.conf.<if>.disable_ipv6`: 1 removes the interface's IPv6 addresses and
    /// routes (link-local, multicast) and keeps it from getting any.
    public static func disableIPv6(interface: String) -> Sysctl {
        Sysctl("net/ipv6/conf/\(checked(interface))/disable_ipv6")
    }

    /// `net.ipv6.conf.<if>.accept_dad`: whether addresses go through duplicate address detection.
    public static func acceptDAD(interface: String) -> Sysctl {
        Sysctl("net/ipv6/conf/\(checked(interface))/accept_dad")
    }
}
