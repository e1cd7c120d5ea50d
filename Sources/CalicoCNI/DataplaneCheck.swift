import IPAddress
import NetNS
import Netlink
import POSIX

extension WorkloadDataplane {
    /// Compares the kernel with what `attach` sets up and describes every difference in
    /// words (empty = as expected). For CNI CHECK.
    ///
    /// Checks: the container namespace and `interfaceName` exist, it is up with the MTU and
    /// each address as `/32` (`/128`); its `169.254.1.1` link route and default route (IPv6:
    /// default via `fe80::ecee:eeff:feee:eeee`); the host veth exists, is up, has the MAC
    /// `ee:ee:ee:ee:ee:ee` and is the container interface's peer; each address has a host
    /// route pointing at it; proxy ARP is on. Throws only when the kernel cannot be asked.
    public func check(_ workload: WorkloadAttachment) throws(DataplaneError) -> [String] {
        var drift: [String] = []
        let ifname = workload.interfaceName
        let hostName = workload.hostVethName

        // Container side.
        let container: NetworkNamespace
        do {
            container = try NetworkNamespace(path: workload.containerNamespacePath)
        } catch .notFound, .notANamespace {
            return ["container network namespace \(workload.containerNamespacePath) does not exist"]
        } catch {
            throw .namespace(error)
        }
        let socket = try Self.containerSocket(container)
        var containerLink: Link?
        do {
            containerLink = try socket.link(named: ifname)
        } catch let error where error.isNotFound {
            drift.append("container interface \(ifname) does not exist")
        } catch {
            throw .netlink(error)
        }
        if let link = containerLink {
            do {
                try checkContainer(workload, link: link, socket: socket, into: &drift)
            } catch {
                throw .netlink(error)
            }
        }

        // Host side.
        let hostLink: Link
        do {
            hostLink = try hostSocket.link(named: hostName)
        } catch let error where error.isNotFound {
            drift.append("host veth \(hostName) does not exist")
            return drift
        } catch {
            throw .netlink(error)
        }
        if !hostLink.isUp { drift.append("host veth \(hostName) is down") }
        if hostLink.macAddress != Self.hostSideMAC {
            drift.append("host veth \(hostName) has MAC \(hostLink.macAddress.map { "\($0)" } ?? "none"), expected \(Self.hostSideMAC)")
        }
        if let link = containerLink, hostLink.linkIndex != link.index || link.linkIndex != hostLink.index {
            drift.append("host veth \(hostName) is not the peer of container interface \(ifname)")
        }
        do {
            let routes = try hostSocket.routes()
            for address in workload.addresses {
                let host = IPNetwork(host: address)
                let matching = routes.filter { $0.destination == host }
                if matching.isEmpty {
                    drift.append("no host route \(host) dev \(hostName)")
                } else if !matching.contains(where: { $0.interfaceIndex == hostLink.index && $0.gateway == nil }) {
                    drift.append("host route \(host) does not point at \(hostName)")
                }
            }
        } catch {
            throw .netlink(error)
        }
        if workload.families.ipv4 {
            let proxyARP = try inHostNamespace { try Sysctl.proxyARP(interface: hostName).read() }
            if proxyARP != "1" { drift.append("proxy_arp is \(proxyARP) on \(hostName), expected 1") }
        }
        return drift
    }

    private func checkContainer(
        _ workload: WorkloadAttachment, link: Link, socket: NetlinkSocket, into drift: inout [String]
    ) throws(NetlinkError) {
        let ifname = workload.interfaceName
        if !link.isUp { drift.append("container interface \(ifname) is down") }
        if link.mtu != workload.mtu {
            drift.append("container interface \(ifname) has MTU \(link.mtu), expected \(workload.mtu)")
        }
        let present = try socket.addresses(interfaceIndex: link.index).map(\.network)
        for address in workload.addresses where !present.contains(IPNetwork(host: address)) {
            drift.append("container interface \(ifname) lacks address \(IPNetwork(host: address))")
        }
        for network in present where !network.address.isLinkLocal && !workload.addresses.contains(network.address) {
            drift.append("container interface \(ifname) has unexpected address \(network)")
        }
        let routes = try socket.routes(interfaceIndex: link.index)
        if workload.families.ipv4 {
            let gateway = IPNetwork(host: Self.gatewayIPv4)
            if !routes.contains(where: { $0.destination == gateway && $0.gateway == nil && $0.scope == .link }) {
                drift.append("container lacks route \(Self.gatewayIPv4) dev \(ifname) scope link")
            }
            if !routes.contains(where: { $0.isDefault && $0.gateway == Self.gatewayIPv4 }) {
                drift.append("container lacks route default via \(Self.gatewayIPv4) dev \(ifname)")
            }
        }
        if workload.families.ipv6 {
            if !routes.contains(where: { $0.isDefault && $0.gateway == Self.gatewayIPv6 }) {
                drift.append("container lacks route default via \(Self.gatewayIPv6) dev \(ifname)")
            }
        }
    }
}

extension IPAddress {
    /// `169.254.0.0/16` or `fe80::/10`.
    var isLinkLocal: Bool {
        switch self {
        case .v4(let v): return v >> 16 == 0xA9FE
        case .v6(let v): return v >> 118 == 0x3FA
        }
    }
}
