import Foundation
import IPAddress
import NetNS
import POSIX
import Netlink
import TestSupport
import Testing

@Suite("Netlink against the kernel", .enabled(if: namespaceTests, "needs root and the ip tool"))
struct NetlinkKernelTests {
    @Test func vethPairAcrossNamespacesAndLinkChanges() throws {
        let a = try TestNamespace("nl-a")
        let b = try TestNamespace("nl-b")
        let socket = try openSocket(in: a)
        let bHandle = try NetworkNamespace(path: b.path)
        let mac = MACAddress("ee:ee:ee:ee:ee:ee")!
        let peerMAC = MACAddress("02:11:22:33:44:55")!

        let created = try withExtendedLifetime(bHandle) { try socket.addVethPair(
            VethPair(
                name: "va0", peerName: "vb0", mtu: 1450, macAddress: mac, peerMACAddress: peerMAC,
                peerNamespaceDescriptor: bHandle.descriptor, isUp: true)) }
        #expect(created.name == "va0")
        #expect(created.mtu == 1450)
        #expect(created.macAddress == mac)
        #expect(created.kind == "veth")
        #expect(created.isUp)
        try Command.check(["ip", "-n", b.name, "link", "set", "vb0", "up"])

        // What ip sees: the host end in a, the peer in b (not in a), both with the MTU.
        let hostEnd = try #require(try ipLink(a, "va0"))
        #expect(hostEnd["mtu"] as? Int == 1450)
        #expect(hostEnd["address"] as? String == "ee:ee:ee:ee:ee:ee")
        #expect((hostEnd["flags"] as? [String])?.contains("UP") == true)
        #expect(try ipLink(a, "vb0") == nil)
        let peerEnd = try #require(try ipLink(b, "vb0"))
        #expect(peerEnd["mtu"] as? Int == 1450)
        #expect(peerEnd["address"] as? String == "02:11:22:33:44:55")
        #expect((peerEnd["flags"] as? [String])?.contains("UP") == true)
        #expect(created.linkIndex == peerEnd["ifindex"] as? Int32 ?? (peerEnd["ifindex"] as? Int).map(Int32.init))

        // Reading back by name, by index and by listing.
        #expect(try socket.link(named: "va0").index == created.index)
        #expect(try socket.link(index: created.index).name == "va0")
        #expect(try socket.links().map(\.name).sorted() == ["lo", "va0"])

        // Changes in one request, then one at a time.
        try socket.perform(.changeLink(index: created.index, LinkChanges(name: "va1", mtu: 1400, isUp: false)))
        let renamed = try #require(try ipLink(a, "va1"))
        #expect(renamed["mtu"] as? Int == 1400)
        #expect((renamed["flags"] as? [String])?.contains("UP") == false)
        try socket.perform([
            .setMACAddress(MACAddress("02:00:00:00:00:01")!, linkIndex: created.index),
            .setMTU(9000, linkIndex: created.index),
            .setLinkUp(index: created.index),
        ])
        let changed = try #require(try ipLink(a, "va1"))
        #expect(changed["address"] as? String == "02:00:00:00:00:01")
        #expect(changed["mtu"] as? Int == 9000)
        #expect((changed["flags"] as? [String])?.contains("UP") == true)

        // Deleting one end removes both; deleting again says "not found".
        try socket.perform(.deleteLink(named: "va1"))
        #expect(try ipLink(a, "va1") == nil)
        #expect(try ipLink(b, "vb0") == nil)
        let again = #expect(throws: NetlinkError.self) { try socket.perform(.deleteLink(named: "va1")) }
        #expect(again?.isNotFound == true)
        let missing = #expect(throws: NetlinkError.self) { try socket.link(named: "va1") }
        #expect(missing?.code == ENODEV)
    }

    @Test func moveLinkIntoAnotherNamespace() throws {
        let a = try TestNamespace("nl-a")
        let b = try TestNamespace("nl-b")
        let socket = try openSocket(in: a)
        let link = try socket.addVethPair(VethPair(name: "mv0", peerName: "mv1"))
        let peer = try socket.link(named: "mv1")
        let bHandle = try NetworkNamespace(path: b.path)
        try withExtendedLifetime(bHandle) { try socket.perform(.moveLink(index: peer.index, toNamespace: bHandle.descriptor)) }
        #expect(try ipLink(a, "mv1") == nil)
        #expect(try ipLink(b, "mv1") != nil)
        // From a, the host end now points at a peer in another namespace.
        let after = try socket.link(index: link.index)
        #expect(after.linkNamespaceID != nil)
    }

    @Test func addressesBothFamilies() throws {
        let a = try TestNamespace("nl-a")
        let socket = try openSocket(in: a)
        let link = try socket.addVethPair(VethPair(name: "ad0", peerName: "ad1", isUp: true))
        let v4 = InterfaceAddress(interfaceIndex: link.index, network: IPNetwork("10.20.30.40/32")!)
        let v6 = InterfaceAddress(interfaceIndex: link.index, network: IPNetwork("fd00:1::5/128")!)
        #expect(v6.flags.contains(.noDAD))
        try socket.perform([.addAddress(v4), .addAddress(v6)])

        let seen = try ipAddresses(a, "ad0")
        #expect(seen.contains("10.20.30.40/32"))
        #expect(seen.contains("fd00:1::5/128"))
        // nodad: the v6 address is usable at once, not tentative.
        let info = try a.ipJSON(["-6", "addr", "show", "dev", "ad0"]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
        let global = try #require(info.first { $0["local"] as? String == "fd00:1::5" })
        #expect(global["tentative"] == nil)

        let listed = try socket.addresses(interfaceIndex: link.index)
        #expect(listed.contains { $0.network == IPNetwork("10.20.30.40/32")! })
        #expect(listed.contains { $0.network == IPNetwork("fd00:1::5/128")! && $0.flags.contains(.noDAD) })
        #expect(try socket.addresses(family: .ipv4, interfaceIndex: link.index).map(\.network) == [IPNetwork("10.20.30.40/32")!])

        let duplicate = #expect(throws: NetlinkError.self) { try socket.perform(.addAddress(v4)) }
        #expect(duplicate?.isAlreadyExists == true)
        try socket.perform(.deleteAddress(v4))
        #expect(try !ipAddresses(a, "ad0").contains("10.20.30.40/32"))
    }

    @Test func routesAddReplaceListDelete() throws {
        let a = try TestNamespace("nl-a")
        let socket = try openSocket(in: a)
        let link = try socket.addVethPair(VethPair(name: "rt0", peerName: "rt1", isUp: true))
        let gatewayRoute = Route(destination: IPNetwork("169.254.1.1/32")!, interfaceIndex: link.index)
        #expect(gatewayRoute.scope == .link)
        try socket.perform([
            .addRoute(gatewayRoute),
            .addRoute(.defaultRoute(via: IPAddress("169.254.1.1")!, interfaceIndex: link.index)),
            .addRoute(Route(destination: IPNetwork("10.9.0.0/16")!, gateway: IPAddress("192.0.2.1")!, interfaceIndex: link.index, isOnLink: true)),
        ])
        let routes = try ipRoutes(a)
        let linkRoute = try #require(routes.first { $0["dst"] as? String == "169.254.1.1" })
        #expect(linkRoute["scope"] as? String == "link")
        #expect(linkRoute["dev"] as? String == "rt0")
        let defaultRoute = try #require(routes.first { $0["dst"] as? String == "default" })
        #expect(defaultRoute["gateway"] as? String == "169.254.1.1")
        let onLink = try #require(routes.first { $0["dst"] as? String == "10.9.0.0/16" })
        #expect((onLink["flags"] as? [String])?.contains("onlink") == true)

        // Replace changes the gateway of the existing route instead of failing.
        try socket.perform(.replaceRoute(Route(destination: IPNetwork("10.9.0.0/16")!, gateway: IPAddress("192.0.2.2")!, interfaceIndex: link.index, isOnLink: true)))
        #expect(try ipRoutes(a).first { $0["dst"] as? String == "10.9.0.0/16" }?["gateway"] as? String == "192.0.2.2")
        let exists = #expect(throws: NetlinkError.self) { try socket.perform(.addRoute(gatewayRoute)) }
        #expect(exists?.isAlreadyExists == true)

        let listed = try socket.routes(family: .ipv4, interfaceIndex: link.index)
        #expect(listed.contains { $0.destination == IPNetwork("169.254.1.1/32")! && $0.scope == .link && $0.gateway == nil })
        #expect(listed.contains { $0.isDefault && $0.gateway == IPAddress("169.254.1.1")! })
        #expect(listed.allSatisfy { $0.table == Route.mainTable && $0.interfaceIndex == link.index })

        // IPv6 default via a link-local gateway.
        try socket.perform(.addRoute(.defaultRoute(via: IPAddress("fe80::ecee:eeff:feee:eeee")!, interfaceIndex: link.index)))
        let v6 = try ipRoutes(a, "-6")
        #expect(v6.contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "fe80::ecee:eeff:feee:eeee" })

        try socket.perform(.deleteRoute(gatewayRoute))
        #expect(try !ipRoutes(a).contains { $0["dst"] as? String == "169.254.1.1" })
        let gone = #expect(throws: NetlinkError.self) { try socket.perform(.deleteRoute(gatewayRoute)) }
        #expect(gone?.isNotFound == true)
    }

    @Test func permanentNeighbors() throws {
        let a = try TestNamespace("nl-a")
        let socket = try openSocket(in: a)
        let link = try socket.addVethPair(VethPair(name: "nb0", peerName: "nb1", isUp: true))
        let mac = MACAddress("ee:ee:ee:ee:ee:ee")!
        try socket.perform([
            .replaceNeighbor(Neighbor(interfaceIndex: link.index, address: IPAddress("169.254.1.1")!, linkAddress: mac)),
            .replaceNeighbor(Neighbor(interfaceIndex: link.index, address: IPAddress("fe80::ecee:eeff:feee:eeee")!, linkAddress: mac)),
        ])
        // Replacing twice is fine (a repeated ADD).
        try socket.perform(.replaceNeighbor(Neighbor(interfaceIndex: link.index, address: IPAddress("169.254.1.1")!, linkAddress: mac)))
        let entries = try a.ipJSON(["neigh", "show", "dev", "nb0"])
        let v4 = try #require(entries.first { $0["dst"] as? String == "169.254.1.1" })
        #expect(v4["lladdr"] as? String == "ee:ee:ee:ee:ee:ee")
        #expect((v4["state"] as? [String]) == ["PERMANENT"])
        #expect(entries.contains { $0["dst"] as? String == "fe80::ecee:eeff:feee:eeee" })

        let listed = try socket.neighbors(interfaceIndex: link.index)
        #expect(listed.filter { $0.state == .permanent && $0.linkAddress == mac }.count == 2)
        try socket.perform(.deleteNeighbor(Neighbor(interfaceIndex: link.index, address: IPAddress("169.254.1.1")!, linkAddress: nil)))
        #expect(try socket.neighbors(family: .ipv4, interfaceIndex: link.index).isEmpty)
    }

    @Test func batchReportsTheFirstFailureByOperation() throws {
        let a = try TestNamespace("nl-a")
        let socket = try openSocket(in: a)
        let link = try socket.addVethPair(VethPair(name: "bt0", peerName: "bt1"))
        // The link is down, so the route is refused ("Nexthop device is not up").
        let error = #expect(throws: NetlinkError.self) {
            try socket.perform([
                .setMTU(1300, linkIndex: link.index),
                .addRoute(Route(destination: IPNetwork("10.1.0.0/16")!, interfaceIndex: link.index)),
            ])
        }
        #expect(error?.code == ENETDOWN)
        #expect(error?.operation.hasPrefix("ip route add 10.1.0.0/16") == true)
        #expect(error?.description.contains("ip route add 10.1.0.0/16") == true)
        // The request before it still ran: the kernel does not stop at a failure.
        #expect(try ipLink(a, "bt0")?["mtu"] as? Int == 1300)
        // The socket remains usable after an error.
        #expect(try socket.link(named: "bt0").mtu == 1300)
    }

    @Test func ipv4DeviceSettingsAndQueuesThroughNetlink() throws {
        let a = try TestNamespace("nl-a")
        let socket = try openSocket(in: a)
        let link = try socket.addVethPair(VethPair(name: "dc0", peerName: "dc1", queueCount: 1))
        let details = try #require(try ipLink(a, "dc0"))
        #expect(details["num_tx_queues"] as? Int == 1)
        #expect(details["num_rx_queues"] as? Int == 1)
        #expect(try sysctlInside(a, "net/ipv4/conf/dc0/proxy_arp") == "0")
        #expect(try sysctlInside(a, "net/ipv4/neigh/dc0/proxy_delay") != "0")
        try socket.perform([
            .setIPv4Configuration(linkIndex: link.index, [.proxyARP: 1, .forwarding: 1]),
            .setARPParameters(linkIndex: link.index, proxyDelayMilliseconds: 0),
        ])
        // The same settings /proc/sys shows (and sysctl would have written).
        #expect(try sysctlInside(a, "net/ipv4/conf/dc0/proxy_arp") == "1")
        #expect(try sysctlInside(a, "net/ipv4/conf/dc0/forwarding") == "1")
        #expect(try sysctlInside(a, "net/ipv4/neigh/dc0/proxy_delay") == "0")
        #expect(try sysctlInside(a, "net/ipv4/conf/dc1/proxy_arp") == "0")
        let missing = #expect(throws: NetlinkError.self) {
            try socket.perform(.setARPParameters(linkIndex: 9999, proxyDelayMilliseconds: 0))
        }
        #expect(missing?.isNotFound == true)
    }

    @Test func socketStaysInItsNamespaceFromAnyThread() async throws {
        let a = try TestNamespace("nl-a")
        let socket = try openSocket(in: a)
        _ = try socket.addVethPair(VethPair(name: "th0", peerName: "th1"))
        // Used concurrently from other threads, it still talks to namespace a.
        try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { try socket.links().map(\.name) } }
            for try await names in group { #expect(names.sorted() == ["lo", "th0", "th1"]) }
        }
        // And this process's own namespace has no such link.
        let own = try NetlinkSocket()
        #expect(try own.links().allSatisfy { $0.name != "th0" })
    }

    @Test func sysctlsInsideANamespace() throws {
        let a = try TestNamespace("nl-a")
        let socket = try openSocket(in: a)
        _ = try socket.addVethPair(VethPair(name: "sy0", peerName: "sy1"))
        let handle = try NetworkNamespace(path: a.path)
        try handle.run {
            try Sysctl.proxyARP(interface: "sy0").write("1")
            try Sysctl.proxyDelay(interface: "sy0").write("0")
            try Sysctl.ipv4Forwarding(interface: "sy0").write("1")
            try Sysctl.ipForward.write("1")
            try Sysctl.proxyNDP(interface: "sy0").write("1")
            try Sysctl.ipv6Forwarding(interface: "sy0").write("1")
            try Sysctl.acceptRouterAdvertisements(interface: "sy0").write("0")
        }
        #expect(try sysctlInside(a, "net/ipv4/conf/sy0/proxy_arp") == "1")
        #expect(try sysctlInside(a, "net/ipv4/neigh/sy0/proxy_delay") == "0")
        #expect(try sysctlInside(a, "net/ipv4/conf/sy0/forwarding") == "1")
        #expect(try sysctlInside(a, "net/ipv4/ip_forward") == "1")
        #expect(try sysctlInside(a, "net/ipv6/conf/sy0/proxy_ndp") == "1")
        #expect(try sysctlInside(a, "net/ipv6/conf/sy0/accept_ra") == "0")
        #expect(try handle.run { try Sysctl.ipForward.read() } == "1")
        // From this thread (the test process's namespace) the interface does not exist.
        let missing = #expect(throws: Errno.self) { try Sysctl.proxyARP(interface: "sy0").read() }
        #expect(missing?.code == ENOENT)
    }
}

@Suite("Netlink values")
struct NetlinkValueTests {
    @Test func macAddresses() {
        let mac = MACAddress("EE:ee:ee:ee:ee:ee")
        #expect(mac?.description == "ee:ee:ee:ee:ee:ee")
        #expect(mac?.ipv6LinkLocalAddress.description == "fe80::ecee:eeff:feee:eeee")
        #expect(MACAddress("02:00:00:00:00:0a")?.bytes == [2, 0, 0, 0, 0, 10])
        #expect(MACAddress("02:00:00:00:00") == nil)
        #expect(MACAddress("02:00:00:00:00:0g") == nil)
        let random = MACAddress.random()
        #expect(random.bytes[0] & 0x01 == 0)  // unicast
        #expect(random.bytes[0] & 0x02 == 2)  // locally administered
    }

    @Test func errorsReadWell() {
        let error = NetlinkError(code: ENODEV, operation: "ip link del cali0", kernelMessage: nil)
        #expect(error.isNotFound)
        #expect(error.description == "ip link del cali0: No such device")
        let withKernel = NetlinkError(code: ENETDOWN, operation: "ip route add x", kernelMessage: "Nexthop device is not up")
        #expect(withKernel.description == "ip route add x: Network is down (Nexthop device is not up)")
    }
}
