import IPAddress
import NetNS
import Netlink
import POSIX

extension WorkloadDataplane {
    /// Creates the workload's veth and configures both sides (REFERENCE.md §5).
    ///
    /// Container side: the veth end created directly inside the container namespace as
    /// `interfaceName`, up, with the MTU; each address as `/32` (`/128`, no DAD); IPv4:
    /// `169.254.1.1/32 dev IF scope link`, `default via 169.254.1.1`, a permanent neighbour
    /// entry `169.254.1.1 → ee:ee:ee:ee:ee:ee` (so the container works where proxy ARP cannot
    /// answer); IPv6: `default via fe80::ecee:eeff:feee:eeee dev IF` and its permanent
    /// neighbour entry; `ip_forward` (IPv6 `all.forwarding`) off unless `allowIPForwarding`.
    /// When the container already has a default route (its first network's interface), this
    /// interface's gateway routes get metric `1024 + ifindex` rather than taking it over.
    ///
    /// Host side: MAC `ee:ee:ee:ee:ee:ee`, the MTU, one queue per direction on both ends
    /// (the kernel's default is one per possible CPU, which makes creation and deletion
    /// slower on big hosts and only serves veth XDP), `proxy_arp=1`, `neigh proxy_delay=0`,
    /// `forwarding=1` (IPv6: `proxy_ndp=1`, `forwarding=1`, `accept_ra=0`, and the link-local
    /// `fe80::ecee:eeff:feee:eeee/64` added without DAD before the link comes up, so the
    /// gateway address is valid at once instead of tentative for a second), up, and
    /// `ADDR/32 dev caliX scope link` (`/128`) per address. Host routes are *replaced*: the
    /// address belongs to this workload now, even if a leaked veth still routes it.
    ///
    /// An existing host veth of the same name (a repeated ADD, or what a crashed ADD left)
    /// is deleted, with its container end, and the pair is created afresh: the plugin's IPAM
    /// returns the same address for the same handle, so the result is the same workload.
    /// If the container has `interfaceName` but our host veth does not exist, the interface
    /// is someone else's and the call fails with `.containerInterfaceExists`.
    ///
    /// On any failure after the veth exists it is deleted again (its peer and every route
    /// through it go with it), so a failed attach leaves no link behind.
    ///
    /// Equivalent to:
    /// ```
    /// ip link add caliX mtu M address ee:ee:ee:ee:ee:ee numtxqueues 1 numrxqueues 1 \
    ///     type veth peer name eth0 mtu M numtxqueues 1 numrxqueues 1 netns CTR
    /// ip -n CTR link set eth0 up; ip -n CTR addr add A/32 dev eth0
    /// ip -n CTR route add 169.254.1.1 dev eth0 scope link; ip -n CTR route add default via 169.254.1.1
    /// ip -n CTR neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent
    /// sysctl net.ipv4.conf.caliX.proxy_arp=1 net.ipv4.neigh.caliX.proxy_delay=0 net.ipv4.conf.caliX.forwarding=1
    ///   (set through netlink: IFLA_INET_CONF and RTM_SETNEIGHTBL)
    /// ip link set caliX up; ip route replace A/32 dev caliX scope link
    /// ```
    public func attach(_ workload: WorkloadAttachment) throws(DataplaneError) -> AttachedWorkload {
        let container = try Self.openNamespace(workload.containerNamespacePath)
        let forwarding = workload.allowIPForwarding ? "1" : "0"
        let containerSocket = try Self.containerSocket(container) {
            if workload.hasIPv4 { try Sysctl.ipForward.write(forwarding) }
            if workload.hasIPv6 { try Sysctl.ipv6Forwarding(interface: "all").write(forwarding) }
        }
        // With IPv6 the host end stays down until its link-local address is in place;
        // otherwise it comes up as it is created, saving a request.
        let pair = VethPair(
            name: workload.hostVethName, peerName: workload.interfaceName, mtu: workload.mtu,
            macAddress: Self.hostSideMAC, peerNamespaceDescriptor: container.descriptor, queueCount: 1,
            isUp: !workload.hasIPv6)
        // The request carries the namespace's descriptor: keep the handle (and so the
        // descriptor) alive until the kernel has it.
        let hostLink = try withExtendedLifetime(container) { () throws(DataplaneError) -> Link in
            try createVeth(pair, containerPath: workload.containerNamespacePath)
        }

        do {
            let containerLink = try configureContainer(workload, socket: containerSocket)
            try configureHost(workload, link: hostLink)
            return AttachedWorkload(
                hostVethName: hostLink.name, hostVethMAC: hostLink.macAddress ?? Self.hostSideMAC,
                hostVethIndex: hostLink.index, containerInterfaceName: containerLink.name,
                containerMAC: containerLink.macAddress ?? MACAddress(value: 0),
                containerInterfaceIndex: containerLink.index)
        } catch {
            // Best effort: if even this fails the next ADD or DEL deletes the link by name.
            try? hostSocket.perform(.deleteLink(index: hostLink.index))
            throw error
        }
    }

    /// Creates the pair; on a name clash, replaces our own leftovers or reports the
    /// container's foreign interface.
    private func createVeth(_ pair: VethPair, containerPath: String) throws(DataplaneError) -> Link {
        do {
            return try hostSocket.addVethPair(pair)
        } catch let error where error.isAlreadyExists {
            // EEXIST names neither end. Ours if the host name is taken.
            let existing: Link
            do {
                existing = try hostSocket.link(named: pair.name)
            } catch let lookup where lookup.isNotFound {
                throw .containerInterfaceExists(name: pair.peerName, namespacePath: containerPath)
            } catch {
                throw .netlink(error)
            }
            do {
                try hostSocket.perform(.deleteLink(index: existing.index))
                return try hostSocket.addVethPair(pair)
            } catch let retry where retry.isAlreadyExists {
                throw .containerInterfaceExists(name: pair.peerName, namespacePath: containerPath)
            } catch {
                throw .netlink(error)
            }
        } catch {
            throw .netlink(error)
        }
    }

    /// Addresses, the gateway's neighbour entries and routes inside the container, in one
    /// batch.
    ///
    /// A container can be on several Calico networks (Mesos: `eth0`, `eth1`, one per
    /// network) or on another plugin's network too. The first interface to arrive owns the
    /// default route (metric 0, IPv6 1024); when a route already exists, this interface's
    /// gateway routes are added with metric `1024 + ifindex` instead of replacing the
    /// other's, so each interface keeps working routes and deleting one leaves the other's.
    private func configureContainer(_ workload: WorkloadAttachment, socket: NetlinkSocket) throws(DataplaneError)
        -> Link
    {
        do throws(NetlinkError) {
            let link = try socket.link(named: workload.interfaceName)
            let index = link.index
            // The peer cannot come up as it is created (the kernel opens it before the ends
            // are joined), so it comes up first thing here.
            var requests: [NetlinkRequest] = [.setLinkUp(index: index)]
            requests += workload.addresses.map {
                .addAddress(InterfaceAddress(interfaceIndex: index, network: IPNetwork(host: $0)))
            }
            if workload.hasIPv4 {
                requests.append(.replaceNeighbor(Neighbor(interfaceIndex: index, address: Self.gatewayIPv4, linkAddress: Self.hostSideMAC)))
            }
            if workload.hasIPv6 {
                requests.append(.replaceNeighbor(Neighbor(interfaceIndex: index, address: Self.gatewayIPv6, linkAddress: Self.hostSideMAC)))
            }
            let fixed = requests.count
            let v4 = workload.hasIPv4 ? Self.gatewayRoutesIPv4(index: index, metric: nil) : []
            let v6 = workload.hasIPv6 ? Self.gatewayRoutesIPv6(index: index, metric: nil) : []
            requests += v4 + v6
            let outcomes = try socket.performEach(requests)
            if let error = outcomes[..<fixed].lazy.compactMap({ $0 }).first { throw error }

            let fallback = 1024 + UInt32(index)
            var retry: [NetlinkRequest] = []
            if workload.hasIPv4 {
                if let linkRoute = outcomes[fixed] {
                    // Another interface has the gateway's link route: add ours, and the
                    // default through it, at our own metric. (The default in the batch
                    // failed with it: its gateway was unreachable through this interface.)
                    guard linkRoute.isAlreadyExists else { throw linkRoute }
                    retry += Self.gatewayRoutesIPv4(index: index, metric: fallback)
                } else if let defaultRoute = outcomes[fixed + 1] {
                    // Another network's interface has the default route.
                    guard defaultRoute.isAlreadyExists else { throw defaultRoute }
                    retry.append(Self.gatewayRoutesIPv4(index: index, metric: fallback)[1])
                }
            }
            if let failure = outcomes[(fixed + v4.count)...].lazy.compactMap({ $0 }).first {
                guard failure.isAlreadyExists else { throw failure }
                retry += Self.gatewayRoutesIPv6(index: index, metric: fallback)
            }
            try socket.perform(retry)
            return link
        } catch {
            throw .netlink(error)
        }
    }

    /// `169.254.1.1/32 dev IF scope link` and `default via 169.254.1.1 dev IF`.
    private static func gatewayRoutesIPv4(index: Int32, metric: UInt32?) -> [NetlinkRequest] {
        [
            .addRoute(Route(destination: IPNetwork(host: gatewayIPv4), interfaceIndex: index, scope: .link, priority: metric)),
            .addRoute(Route(destination: IPNetwork(address: .v4(0), prefixLength: 0), gateway: gatewayIPv4, interfaceIndex: index, priority: metric)),
        ]
    }

    /// `default via fe80::ecee:eeff:feee:eeee dev IF`.
    private static func gatewayRoutesIPv6(index: Int32, metric: UInt32?) -> [NetlinkRequest] {
        [.addRoute(Route(destination: IPNetwork(address: .v6(0), prefixLength: 0), gateway: gatewayIPv6, interfaceIndex: index, priority: metric))]
    }

    /// Host settings, the IPv6 link-local gateway address, link up and host routes.
    ///
    /// The IPv4 settings go through netlink in the same batch as the routes (`/proc/sys`
    /// writes cost ~30 µs each); IPv6 has no netlink equivalent, so those are `/proc/sys`
    /// writes in the host namespace, before the link comes up.
    private func configureHost(_ workload: WorkloadAttachment, link: Link) throws(DataplaneError) {
        let name = link.name
        var requests: [NetlinkRequest] = []
        if workload.hasIPv4 {
            requests.append(.setIPv4Configuration(linkIndex: link.index, [.proxyARP: 1, .forwarding: 1]))
            requests.append(.setARPParameters(linkIndex: link.index, proxyDelayMilliseconds: 0))
        }
        if workload.hasIPv6 {
            try inHostNamespace {
                try Sysctl.acceptRouterAdvertisements(interface: name).write("0")
                try Sysctl.proxyNDP(interface: name).write("1")
                try Sysctl.ipv6Forwarding(interface: name).write("1")
            }
            requests.append(
                .addAddress(
                    InterfaceAddress(
                        interfaceIndex: link.index, network: IPNetwork(address: Self.gatewayIPv6, prefixLength: 64),
                        flags: .noDAD, scope: .link)))
            requests.append(.setLinkUp(index: link.index))
        }
        for address in workload.addresses {
            requests.append(.replaceRoute(Route(destination: IPNetwork(host: address), interfaceIndex: link.index, scope: .link)))
        }
        do { try hostSocket.perform(requests) } catch { throw .netlink(error) }
    }
}
