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
        let veth = try prepareVeth(workload, families: workload.families, replacingLeftovers: true)
        return try complete(veth, addresses: workload.addresses)
    }

    /// The first half of `attach`, which needs no address: the pair, the container's
    /// gateway neighbour entries and routes and forwarding setting, the host end's settings,
    /// for the address `families` the workload is expected to get. The plugin runs it on
    /// its own thread while IPAM picks the addresses; `complete` adds them.
    ///
    /// With `replacingLeftovers` false an existing host veth of this name is left alone and
    /// the call fails with `.hostVethExists`: until IPAM has answered it may belong to a
    /// live attachment (a duplicate ADD), which IPAM then refuses.
    ///
    /// On failure after the pair exists it is deleted again.
    public func prepareVeth(
        _ workload: WorkloadAttachment, families: AddressFamilies, replacingLeftovers: Bool
    ) throws(DataplaneError) -> PreparedVeth {
        let container = try Self.openNamespace(workload.containerNamespacePath)
        let containerSocket = try Self.containerSocket(container) {
            try Self.setContainerForwarding(workload, families: families)
        }
        // The host end stays down until its IPv6 is settled (see `prepareHost`).
        let pair = VethPair(
            name: workload.hostVethName, peerName: workload.interfaceName, mtu: workload.mtu,
            macAddress: Self.hostSideMAC, peerMACAddress: workload.containerMAC,
            peerNamespaceDescriptor: container.descriptor, queueCount: 1, isUp: false)
        // The request carries the namespace's descriptor: keep the handle (and so the
        // descriptor) alive until the kernel has it.
        let hostLink = try withExtendedLifetime(container) { () throws(DataplaneError) -> Link in
            try createVeth(pair, containerPath: workload.containerNamespacePath, replacingLeftovers: replacingLeftovers)
        }
        do {
            let containerLink = try prepareContainer(workload, families: families, socket: containerSocket, bringUp: true)
            try prepareHost(workload, families: families, link: hostLink, isUp: false)
            return PreparedVeth(
                workload: workload, families: families, container: container, containerSocket: containerSocket,
                hostLink: hostLink, containerLink: containerLink)
        } catch {
            // Best effort: if even this fails the next ADD or DEL deletes the link by name.
            try? hostSocket.perform(.deleteLink(index: hostLink.index))
            throw error
        }
    }

    /// The second half of `attach`: the addresses in the container and the host routes to
    /// them (and whatever a family `prepareVeth` did not expect needs first). On failure
    /// the veth is deleted.
    public func complete(_ veth: PreparedVeth, addresses: [IPAddress]) throws(DataplaneError) -> AttachedWorkload {
        var workload = veth.workload
        workload.addresses = addresses
        let actual = workload.families
        let missing = AddressFamilies(ipv4: actual.ipv4 && !veth.families.ipv4, ipv6: actual.ipv6 && !veth.families.ipv6)
        let hostLink = veth.hostLink
        do throws(DataplaneError) {
            if missing.ipv4 || missing.ipv6 {
                // Only with an IPAM plugin other than ours, which may return any family.
                do {
                    try veth.container.run { try Self.setContainerForwarding(workload, families: missing) }
                } catch {
                    throw DataplaneError.wrapping(error)
                }
                _ = try prepareContainer(workload, families: missing, socket: veth.containerSocket, bringUp: false)
                try prepareHost(workload, families: missing, link: hostLink, isUp: true)
            }
            let containerLink = veth.containerLink
            do {
                try veth.containerSocket.perform(addresses.map {
                    .addAddress(InterfaceAddress(interfaceIndex: containerLink.index, network: IPNetwork(host: $0)))
                })
                // Host routes are *replaced*: the address belongs to this workload now,
                // even if a leaked veth still routes it.
                try hostSocket.perform(addresses.map {
                    .replaceRoute(Route(destination: IPNetwork(host: $0), interfaceIndex: hostLink.index, scope: .link))
                })
            } catch {
                throw DataplaneError.netlink(error)
            }
            return AttachedWorkload(
                hostVethName: hostLink.name, hostVethMAC: hostLink.macAddress ?? Self.hostSideMAC,
                hostVethIndex: hostLink.index, containerInterfaceName: containerLink.name,
                containerMAC: containerLink.macAddress ?? MACAddress(value: 0),
                containerInterfaceIndex: containerLink.index)
        } catch {
            discard(veth)
            throw error
        }
    }

    /// Deletes a prepared veth (its peer and every route through it go with it): the ADD
    /// failed elsewhere. Best effort: the next ADD or DEL deletes it by name otherwise.
    public func discard(_ veth: PreparedVeth) {
        try? hostSocket.perform(.deleteLink(index: veth.hostLink.index))
    }

    /// `ip_forward` (IPv6 `all.forwarding`) inside the container, off unless allowed. Runs
    /// on a thread inside the container's namespace.
    private static func setContainerForwarding(_ workload: WorkloadAttachment, families: AddressFamilies) throws {
        let forwarding = workload.allowIPForwarding ? "1" : "0"
        if families.ipv4 { try Sysctl.ipForward.write(forwarding) }
        if families.ipv6 { try Sysctl.ipv6Forwarding(interface: "all").write(forwarding) }
    }

    /// Creates the pair; on a name clash, replaces our own leftovers or reports the
    /// container's foreign interface.
    private func createVeth(_ pair: VethPair, containerPath: String, replacingLeftovers: Bool) throws(DataplaneError) -> Link {
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
            guard replacingLeftovers else { throw .hostVethExists(name: pair.name) }
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

    /// Inside the container, in one batch: the interface up (when `bringUp`), the
    /// gateway's neighbour entries and routes for `families`. Addresses come later
    /// (`complete`): none of this needs them.
    ///
    /// A container can be on several Calico networks (Mesos: `eth0`, `eth1`, one per
    /// network) or on another plugin's network too. The first interface to arrive owns the
    /// default route (metric 0, IPv6 1024); when a route already exists, this interface's
    /// gateway routes are added with metric `1024 + ifindex` instead of replacing the
    /// other's, so each interface keeps working routes and deleting one leaves the other's.
    private func prepareContainer(
        _ workload: WorkloadAttachment, families: AddressFamilies, socket: NetlinkSocket, bringUp: Bool
    ) throws(DataplaneError) -> Link {
        do throws(NetlinkError) {
            let link = try socket.link(named: workload.interfaceName)
            let index = link.index
            // The peer cannot come up as it is created (the kernel opens it before the ends
            // are joined), so it comes up first thing here.
            var requests: [NetlinkRequest] = bringUp ? [.setLinkUp(index: index)] : []
            if families.ipv4 {
                requests.append(.replaceNeighbor(Neighbor(interfaceIndex: index, address: Self.gatewayIPv4, linkAddress: Self.hostSideMAC)))
            }
            if families.ipv6 {
                requests.append(.replaceNeighbor(Neighbor(interfaceIndex: index, address: Self.gatewayIPv6, linkAddress: Self.hostSideMAC)))
            }
            let fixed = requests.count
            let v4 = families.ipv4 ? Self.gatewayRoutesIPv4(index: index, metric: nil) : []
            let v6 = families.ipv6 ? Self.gatewayRoutesIPv6(index: index, metric: nil) : []
            requests += v4 + v6
            let outcomes = try socket.performEach(requests)
            if let error = outcomes[..<fixed].lazy.compactMap({ $0 }).first { throw error }

            let fallback = 1024 + UInt32(index)
            var retry: [NetlinkRequest] = []
            if families.ipv4 {
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

    /// Host settings for `families`, and the link up: for IPv6 with the link-local gateway
    /// address (the link was created down, or is taken down first when `isUp`, so that the
    /// kernel never makes its own tentative copy of that address). `isUp` says the link was
    /// prepared and brought up before for other families (`complete`, when an IPAM plugin
    /// other than ours returned a family nobody expected); then IPv6 was disabled unless
    /// it was among them. The routes to the workload come later (`complete`).
    ///
    /// The IPv4 settings go through netlink in one batch (`/proc/sys` writes cost ~30 µs
    /// each); IPv6 has no netlink equivalent, so those are `/proc/sys` writes in the host
    /// namespace, before the link comes up.
    ///
    /// A host end without IPv6 addresses gets IPv6 disabled before it comes up, so it
    /// never has a link-local address, its /64 or a multicast route. Upstream leaves them,
    /// and on a busy host they add up: every link event on the host walks the whole IPv6
    /// routing table, three routes per workload (an ADD with 300 live workloads took 1.12x
    /// the time of one on an empty host, 1.04x without them).
    private func prepareHost(
        _ workload: WorkloadAttachment, families: AddressFamilies, link: Link, isUp: Bool
    ) throws(DataplaneError) {
        let name = link.name
        var requests: [NetlinkRequest] = []
        if families.ipv4 {
            requests.append(.setIPv4Configuration(linkIndex: link.index, [.proxyARP: 1, .forwarding: 1]))
            requests.append(.setARPParameters(linkIndex: link.index, proxyDelayMilliseconds: 0))
        }
        if families.ipv6 {
            if isUp { requests.append(.setLinkDown(index: link.index)) }
            try inHostNamespace {
                // Enabled again if an earlier preparation disabled it.
                if isUp { try Sysctl.disableIPv6(interface: name).write("0") }
                try Sysctl.acceptRouterAdvertisements(interface: name).write("0")
                try Sysctl.proxyNDP(interface: name).write("1")
                try Sysctl.ipv6Forwarding(interface: name).write("1")
            }
            requests.append(
                .addAddress(
                    InterfaceAddress(
                        interfaceIndex: link.index, network: IPNetwork(address: Self.gatewayIPv6, prefixLength: 64),
                        flags: .noDAD, scope: .link)))
        } else if !isUp {
            // Best effort: the workload does not need it. Without IPv6 in the kernel
            // (ipv6.disable=1) there is nothing to disable; where the setting cannot be
            // written, the host end keeps the IPv6 upstream leaves it.
            try inHostNamespace { try? Sysctl.disableIPv6(interface: name).write("1") }
        }
        if families.ipv6 || !isUp { requests.append(.setLinkUp(index: link.index)) }
        do { try hostSocket.perform(requests) } catch { throw .netlink(error) }
    }
}

/// Which address families a workload has (or is expected to get).
public struct AddressFamilies: Sendable, Hashable {
    public var ipv4: Bool
    public var ipv6: Bool

    public init(ipv4: Bool, ipv6: Bool) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    /// The families of `addresses`.
    public init(_ addresses: [IPAddress]) {
        self.init(ipv4: addresses.contains { !$0.isIPv6 }, ipv6: addresses.contains { $0.isIPv6 })
    }
}

/// A workload's veth made by `WorkloadDataplane.prepareVeth`, waiting for its addresses.
public struct PreparedVeth: Sendable {
    /// What it was made for (its `addresses` are not used).
    public let workload: WorkloadAttachment
    /// The families it was prepared for.
    public let families: AddressFamilies
    let container: NetworkNamespace
    let containerSocket: NetlinkSocket
    let hostLink: Link
    let containerLink: Link
}
