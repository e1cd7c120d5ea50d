import IPAddress
import NetNS
import Netlink
import POSIX

/// The kernel side of Calico workloads: the veth between a container and its host, the
/// container's addresses and routes, and the host's routes and settings towards it
/// (REFERENCE.md §5).
///
/// Every operation works in an explicit *host* namespace: the process's own by default (the
/// plugin as Mesos runs it), or a given one (tests simulate one host namespace per agent).
/// One netlink socket is opened in the host namespace when the value is created and reused;
/// container namespaces get their own socket per call, opened from a short-lived thread that
/// enters the namespace (no thread the caller owns ever switches namespace).
public final class WorkloadDataplane: Sendable {
    /// The host namespace; nil means the calling process's own.
    public let hostNamespace: NetworkNamespace?
    let hostSocket: NetlinkSocket

    /// The host veth's MAC: every Calico host veth answers as `ee:ee:ee:ee:ee:ee`, so the
    /// container's neighbour entry for its gateway is the same everywhere.
    public static let hostSideMAC = MACAddress(value: 0xEEEE_EEEE_EEEE)
    /// The IPv4 gateway containers route through. Nothing owns it: the host veth answers
    /// ARP for it by proxy ARP, and the container also gets a permanent neighbour entry.
    public static let gatewayIPv4 = IPAddress.v4(0xA9FE_0101)  // 169.254.1.1
    /// The IPv6 gateway: the host veth's link-local address, derived from its fixed MAC
    /// (`fe80::ecee:eeff:feee:eeee`).
    public static let gatewayIPv6 = hostSideMAC.ipv6LinkLocalAddress

    /// Opens the host-side netlink socket, inside `hostNamespace` when one is given.
    public init(hostNamespace: NetworkNamespace? = nil) throws(DataplaneError) {
        self.hostNamespace = hostNamespace
        do {
            if let hostNamespace {
                hostSocket = try hostNamespace.run { try NetlinkSocket() }
            } else {
                hostSocket = try NetlinkSocket()
            }
        } catch {
            throw DataplaneError.wrapping(error)
        }
    }

    /// Runs `body` in the host namespace: directly when it is the process's own, else on a
    /// thread that enters it (needed for `/proc/sys/net`, which follows the opener's namespace).
    func inHostNamespace<T>(_ body: () throws -> T) throws(DataplaneError) -> T {
        do {
            if let hostNamespace { return try hostNamespace.run(body) }
            return try body()
        } catch {
            throw DataplaneError.wrapping(error)
        }
    }

    /// Opens a netlink socket inside the container namespace, after running `setup` there.
    static func containerSocket(
        _ namespace: NetworkNamespace, setup: () throws -> Void = {}
    ) throws(DataplaneError) -> NetlinkSocket {
        do {
            return try namespace.run {
                try setup()
                return try NetlinkSocket()
            }
        } catch {
            throw DataplaneError.wrapping(error)
        }
    }

    static func openNamespace(_ path: String) throws(DataplaneError) -> NetworkNamespace {
        do { return try NetworkNamespace(path: path) } catch { throw .namespace(error) }
    }
}

/// One workload interface to attach: what the plugin knows after IPAM.
public struct WorkloadAttachment: Sendable, Hashable {
    public var containerID: String
    /// The interface name inside the container (`CNI_IFNAME`).
    public var interfaceName: String
    /// The container's network namespace (`CNI_NETNS`).
    public var containerNamespacePath: String
    /// The workload's addresses; each is configured as a single host (`/32`, `/128`)
    /// whatever prefix IPAM reported, as Calico routes every workload individually.
    public var addresses: [IPAddress]
    /// MTU of both veth ends.
    public var mtu: Int
    /// Leave forwarding on inside the container (`container_settings.allow_ip_forwarding`).
    public var allowIPForwarding: Bool
    /// The host veth's name; `WorkloadDataplane.hostVethName(containerID:interfaceName:)`
    /// unless told.
    public var hostVethName: String
    /// The container interface's MAC; nil lets the kernel pick one. The plugin picks it
    /// itself, so that the WorkloadEndpoint can be written before the interface exists.
    public var containerMAC: MACAddress?

    public init(
        containerID: String, interfaceName: String, containerNamespacePath: String, addresses: [IPAddress],
        mtu: Int = 1500, allowIPForwarding: Bool = false, hostVethName: String? = nil, containerMAC: MACAddress? = nil
    ) {
        self.containerMAC = containerMAC
        self.containerID = containerID
        self.interfaceName = interfaceName
        self.containerNamespacePath = containerNamespacePath
        self.addresses = addresses
        self.mtu = mtu
        self.allowIPForwarding = allowIPForwarding
        self.hostVethName =
            hostVethName ?? WorkloadDataplane.hostVethName(containerID: containerID, interfaceName: interfaceName)
    }

    /// The families of `addresses`.
    var families: AddressFamilies { AddressFamilies(addresses) }
}

/// What an attached workload looks like, for the CNI result's `interfaces`.
public struct AttachedWorkload: Sendable, Hashable {
    public var hostVethName: String
    public var hostVethMAC: MACAddress
    public var hostVethIndex: Int32
    public var containerInterfaceName: String
    public var containerMAC: MACAddress
    public var containerInterfaceIndex: Int32
}
