import CalicoCNI
import Foundation
import IPAddress
import NetNS
import Netlink
import POSIX
import TestSupport
import Testing

/// A simulated agent: a "host" namespace with forwarding on and an address on `lo` that
/// containers can reach through their default route.
final class TestHost {
    let namespace: TestNamespace
    let handle: NetworkNamespace
    let dataplane: WorkloadDataplane
    static let loopbackIPv4 = "10.99.0.1"
    static let loopbackIPv6 = "fd00:99::1"

    init() throws {
        namespace = try TestNamespace("dp-host")
        try namespace.check(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        try Command.check(["ip", "-n", namespace.name, "addr", "add", "\(Self.loopbackIPv4)/32", "dev", "lo"])
        try Command.check(["ip", "-n", namespace.name, "addr", "add", "\(Self.loopbackIPv6)/128", "dev", "lo"])
        handle = try NetworkNamespace(path: namespace.path)
        dataplane = try WorkloadDataplane(hostNamespace: handle)
    }

    func caliLinks() throws -> [String] { try namespace.linkNames().filter { $0.hasPrefix("cali") } }
}

/// Reachability from inside `from`: busybox/iputils ping when present, else a TCP connect
/// to a listener opened in `to` (so the check never depends on an external tool).
func reachable(from: TestNamespace, _ address: String, listenerIn to: TestNamespace) throws -> Bool {
    let v6 = address.contains(":")
    if TestEnvironment.has("busybox") {
        let r = try from.run(["busybox", "ping", v6 ? "-6" : "-4", "-c", "1", "-W", "3", address], timeout: 10)
        return r.status == 0
    }
    if TestEnvironment.has("ping") {
        return try from.run(["ping", v6 ? "-6" : "-4", "-c", "1", "-W", "3", address], timeout: 10).status == 0
    }
    return try tcpConnects(from: from, to: address, listenerIn: to)
}

/// Opens a listening TCP socket on `address` inside `listenerIn` and connects to it from `from`.
func tcpConnects(from: TestNamespace, to address: String, listenerIn: TestNamespace) throws -> Bool {
    let v6 = address.contains(":")
    let family = v6 ? AF_INET6 : AF_INET
    let port: UInt16 = 40000 + UInt16.random(in: 0..<2000)
    func withAddress<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            inet_pton(AF_INET6, address, &a.sin6_addr)
            return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &a.sin_addr)
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }
    let listener = try NetworkNamespace(path: listenerIn.path).run { () -> Int32 in
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        let ok = withAddress { bind(fd, $0, $1) } == 0 && listen(fd, 4) == 0
        return ok ? fd : -1
    }
    defer { if listener >= 0 { close(listener) } }
    guard listener >= 0 else { return false }
    return try NetworkNamespace(path: from.path).run { () -> Bool in
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return withAddress { connect(fd, $0, $1) } == 0
    }
}

@Suite("Workload dataplane", .enabled(if: namespaceTests, "needs root and the ip tool"))
struct DataplaneTests {
    @Test func attachIPv4ConfiguresBothSidesAndPings() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr", loopbackDown: true)
        // The container inherited forwarding on; attach must turn it off.
        try ctr.check(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        let workload = WorkloadAttachment(
            containerID: "c0ffee-1", interfaceName: "eth0", containerNamespacePath: ctr.path,
            addresses: [IPAddress("10.65.0.2")!], mtu: 1450)
        let attached = try host.dataplane.attach(workload)
        let hostName = WorkloadDataplane.hostVethName(containerID: "c0ffee-1", interfaceName: "eth0")
        #expect(attached.hostVethName == hostName)
        #expect(attached.containerInterfaceName == "eth0")

        // Container side, as ip shows it.
        let eth0 = try #require(try ipLink(ctr, "eth0"))
        #expect(eth0["mtu"] as? Int == 1450)
        #expect((eth0["flags"] as? [String])?.contains("UP") == true)
        #expect(eth0["address"] as? String == attached.containerMAC.description)
        #expect(eth0["ifindex"] as? Int == Int(attached.containerInterfaceIndex))
        #expect(try ipAddresses(ctr, "eth0").filter { !$0.hasPrefix("fe80") } == ["10.65.0.2/32"])
        let routes = try ipRoutes(ctr)
        #expect(routes.contains { $0["dst"] as? String == "169.254.1.1" && $0["dev"] as? String == "eth0" && $0["scope"] as? String == "link" })
        #expect(routes.contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "169.254.1.1" && $0["dev"] as? String == "eth0" })
        let neighbors = try ctr.ipJSON(["neigh", "show", "dev", "eth0"])
        #expect(neighbors.contains { $0["dst"] as? String == "169.254.1.1" && $0["lladdr"] as? String == "ee:ee:ee:ee:ee:ee" && ($0["state"] as? [String]) == ["PERMANENT"] })
        #expect(try sysctlInside(ctr, "net/ipv4/ip_forward") == "0")

        // Host side.
        let cali = try #require(try ipLink(host.namespace, hostName))
        #expect(cali["mtu"] as? Int == 1450)
        #expect(cali["address"] as? String == "ee:ee:ee:ee:ee:ee")
        #expect((cali["flags"] as? [String])?.contains("UP") == true)
        #expect(cali["ifindex"] as? Int == Int(attached.hostVethIndex))
        #expect(attached.hostVethMAC.description == "ee:ee:ee:ee:ee:ee")
        #expect(try sysctlInside(host.namespace, "net/ipv4/conf/\(hostName)/proxy_arp") == "1")
        #expect(try sysctlInside(host.namespace, "net/ipv4/neigh/\(hostName)/proxy_delay") == "0")
        #expect(try sysctlInside(host.namespace, "net/ipv4/conf/\(hostName)/forwarding") == "1")
        #expect(try ipRoutes(host.namespace).contains { $0["dst"] as? String == "10.65.0.2" && $0["dev"] as? String == hostName && $0["scope"] as? String == "link" })
        // An IPv4 workload's host end has no IPv6: no address, no route in any table.
        #expect(try sysctlInside(host.namespace, "net/ipv6/conf/\(hostName)/disable_ipv6") == "1")
        #expect(try ipAddresses(host.namespace, hostName).isEmpty)
        #expect(try host.namespace.ipJSON(["-6", "route", "show", "table", "all", "dev", hostName]).isEmpty)
        #expect(try host.dataplane.check(workload) == [])

        // Container → host, then a second container on the same host, container → container.
        #expect(try reachable(from: ctr, TestHost.loopbackIPv4, listenerIn: host.namespace))
        let ctr2 = try TestNamespace("dp-ctr")
        let second = WorkloadAttachment(
            containerID: "c0ffee-2", interfaceName: "eth0", containerNamespacePath: ctr2.path,
            addresses: [IPAddress("10.65.0.3")!], mtu: 1450)
        _ = try host.dataplane.attach(second)
        #expect(try reachable(from: ctr, "10.65.0.3", listenerIn: ctr2))
        #expect(try tcpConnects(from: ctr2, to: "10.65.0.2", listenerIn: ctr))

        // Detach removes everything; twice is fine.
        try host.dataplane.detach(hostVethName: hostName, containerNamespacePath: ctr.path, interfaceName: "eth0")
        try host.dataplane.detach(hostVethName: second.hostVethName, containerNamespacePath: ctr2.path, interfaceName: "eth0")
        #expect(try host.caliLinks() == [])
        #expect(try ipLink(ctr, "eth0") == nil)
        #expect(try !ipRoutes(host.namespace).contains { ($0["dst"] as? String)?.hasPrefix("10.65.") == true })
        try host.dataplane.detach(hostVethName: hostName, containerNamespacePath: ctr.path, interfaceName: "eth0")
        try host.dataplane.detach(hostVethName: hostName, containerNamespacePath: nil, interfaceName: "eth0")
        #expect(try host.dataplane.check(workload).contains("host veth \(hostName) does not exist"))
    }

    @Test func attachDualStack() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        let ctr2 = try TestNamespace("dp-ctr")
        let workload = WorkloadAttachment(
            containerID: "dual-1", interfaceName: "eth0", containerNamespacePath: ctr.path,
            addresses: [IPAddress("10.66.0.2")!, IPAddress("fd00:66::2")!], mtu: 1400, allowIPForwarding: true)
        let attached = try host.dataplane.attach(workload)
        let hostName = attached.hostVethName

        #expect(try ipAddresses(ctr, "eth0").filter { !$0.hasPrefix("fe80") }.sorted() == ["10.66.0.2/32", "fd00:66::2/128"])
        #expect(try ipRoutes(ctr, "-6").contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "fe80::ecee:eeff:feee:eeee" })
        #expect(try ctr.ipJSON(["-6", "neigh", "show", "dev", "eth0"]).contains { $0["dst"] as? String == "fe80::ecee:eeff:feee:eeee" && ($0["state"] as? [String]) == ["PERMANENT"] })
        // allowIPForwarding leaves forwarding on.
        #expect(try sysctlInside(ctr, "net/ipv4/ip_forward") == "1")
        #expect(try sysctlInside(ctr, "net/ipv6/conf/all/forwarding") == "1")

        // The host veth's link-local gateway address exists at once, not tentative.
        let info = try host.namespace.ipJSON(["-6", "addr", "show", "dev", hostName]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
        let linkLocal = try #require(info.first { $0["local"] as? String == "fe80::ecee:eeff:feee:eeee" })
        #expect(linkLocal["tentative"] == nil)
        #expect(try sysctlInside(host.namespace, "net/ipv6/conf/\(hostName)/proxy_ndp") == "1")
        #expect(try sysctlInside(host.namespace, "net/ipv6/conf/\(hostName)/forwarding") == "1")
        #expect(try sysctlInside(host.namespace, "net/ipv6/conf/\(hostName)/accept_ra") == "0")
        #expect(try sysctlInside(host.namespace, "net/ipv6/conf/\(hostName)/disable_ipv6") == "0")
        #expect(try ipRoutes(host.namespace, "-6").contains { $0["dst"] as? String == "fd00:66::2" && $0["dev"] as? String == hostName })
        #expect(try ipRoutes(host.namespace).contains { $0["dst"] as? String == "10.66.0.2" && $0["dev"] as? String == hostName })
        #expect(try host.dataplane.check(workload) == [])

        _ = try host.dataplane.attach(
            WorkloadAttachment(
                containerID: "dual-2", interfaceName: "eth0", containerNamespacePath: ctr2.path,
                addresses: [IPAddress("10.66.0.3")!, IPAddress("fd00:66::3")!], mtu: 1400))
        #expect(try reachable(from: ctr, TestHost.loopbackIPv6, listenerIn: host.namespace))
        #expect(try reachable(from: ctr, "fd00:66::3", listenerIn: ctr2))
        #expect(try reachable(from: ctr2, "10.66.0.2", listenerIn: ctr))
    }

    /// The plugin's two halves: the veth prepared for IPv4 before IPAM answered, then
    /// completed with what another IPAM plugin returned, IPv6 included. The family nobody
    /// expected gets everything `attach` would have given it: the link-local gateway on the
    /// host (valid at once), the container's default route and neighbour, forwarding off.
    @Test func preparedForIPv4CompletedWithIPv6Too() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        let workload = WorkloadAttachment(
            containerID: "late-v6", interfaceName: "eth0", containerNamespacePath: ctr.path, addresses: [], mtu: 1400,
            containerMAC: MACAddress("02:00:00:aa:bb:cc")!)
        let veth = try host.dataplane.prepareVeth(workload, families: AddressFamilies(ipv4: true, ipv6: false), replacingLeftovers: false)
        // Before the addresses: the pair exists, the container end is up with the chosen MAC,
        // its IPv4 gateway route is in place, it has no address yet.
        let hostName = workload.hostVethName
        #expect(try ipLink(host.namespace, hostName) != nil)
        #expect(try ipLink(ctr, "eth0")?["address"] as? String == "02:00:00:aa:bb:cc")
        #expect(try ipAddresses(ctr, "eth0").filter { !$0.hasPrefix("fe80") }.isEmpty)
        #expect(try ipRoutes(ctr).contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "169.254.1.1" })
        // Prepared for IPv4 only: the host end has IPv6 disabled, until IPv6 turns up.
        #expect(try sysctlInside(host.namespace, "net/ipv6/conf/\(hostName)/disable_ipv6") == "1")

        let addresses = [IPAddress("10.67.0.2")!, IPAddress("fd00:67::2")!]
        let attached = try host.dataplane.complete(veth, addresses: addresses)
        #expect(attached.containerMAC.description == "02:00:00:aa:bb:cc")
        #expect(try ipAddresses(ctr, "eth0").filter { !$0.hasPrefix("fe80") }.sorted() == ["10.67.0.2/32", "fd00:67::2/128"])
        #expect(try ipRoutes(ctr, "-6").contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "fe80::ecee:eeff:feee:eeee" })
        #expect(try sysctlInside(ctr, "net/ipv6/conf/all/forwarding") == "0")
        let info = try host.namespace.ipJSON(["-6", "addr", "show", "dev", hostName]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
        let linkLocal = try #require(info.first { $0["local"] as? String == "fe80::ecee:eeff:feee:eeee" })
        #expect(linkLocal["tentative"] == nil)
        #expect(try sysctlInside(host.namespace, "net/ipv6/conf/\(hostName)/disable_ipv6") == "0")
        #expect(try ipLink(host.namespace, hostName)?["operstate"] as? String != "DOWN")
        var full = workload
        full.addresses = addresses
        #expect(try host.dataplane.check(full) == [])
        #expect(try reachable(from: ctr, TestHost.loopbackIPv6, listenerIn: host.namespace))
    }

    @Test func failureAfterCreationRollsBack() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        // IPv6 off in the container: the veth gets created, then the v6 address is refused.
        try ctr.check(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        let workload = WorkloadAttachment(
            containerID: "rollback", interfaceName: "eth0", containerNamespacePath: ctr.path,
            addresses: [IPAddress("10.67.0.2")!, IPAddress("fd00:67::2")!])
        #expect(throws: DataplaneError.self) { try host.dataplane.attach(workload) }
        #expect(try host.caliLinks() == [])
        #expect(try ipLink(ctr, "eth0") == nil)
        #expect(try !ipRoutes(host.namespace).contains { $0["dst"] as? String == "10.67.0.2" })
    }

    @Test func missingNamespace() throws {
        let host = try TestHost()
        let path = "/var/run/netns/dp-missing-\(getpid())"
        let error = #expect(throws: DataplaneError.self) {
            try host.dataplane.attach(
                WorkloadAttachment(containerID: "gone", interfaceName: "eth0", containerNamespacePath: path, addresses: [IPAddress("10.68.0.2")!]))
        }
        guard case .namespace(.notFound(let reported)) = error else {
            Issue.record("expected namespace not found, got \(String(describing: error))")
            return
        }
        #expect(reported == path)
        #expect(try host.caliLinks() == [])
        // DEL with a missing namespace, or none at all, is a success.
        try host.dataplane.detach(hostVethName: "cali0123456789a", containerNamespacePath: path, interfaceName: "eth0")
        try host.dataplane.detach(hostVethName: "cali0123456789a", containerNamespacePath: nil, interfaceName: "eth0")
        let drift = try host.dataplane.check(
            WorkloadAttachment(containerID: "gone", interfaceName: "eth0", containerNamespacePath: path, addresses: []))
        #expect(drift == ["container network namespace \(path) does not exist"])
    }

    @Test func repeatedAddAndLeftoversAreReplaced() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        let workload = WorkloadAttachment(
            containerID: "again", interfaceName: "eth0", containerNamespacePath: ctr.path, addresses: [IPAddress("10.69.0.2")!])
        let first = try host.dataplane.attach(workload)
        let second = try host.dataplane.attach(workload)
        #expect(try host.caliLinks() == [workload.hostVethName])
        #expect(second.hostVethIndex != first.hostVethIndex)  // a fresh pair
        #expect(try ipAddresses(ctr, "eth0").filter { !$0.hasPrefix("fe80") } == ["10.69.0.2/32"])
        #expect(try host.dataplane.check(workload) == [])

        // Leftovers of a crashed ADD: a host veth with our name whose peer is elsewhere.
        try host.dataplane.detach(hostVethName: workload.hostVethName, containerNamespacePath: ctr.path, interfaceName: "eth0")
        try Command.check(["ip", "-n", host.namespace.name, "link", "add", workload.hostVethName, "type", "veth", "peer", "name", "stray0"])
        _ = try host.dataplane.attach(workload)
        #expect(try host.namespace.linkNames().contains("stray0") == false)
        #expect(try host.dataplane.check(workload) == [])
        #expect(try reachable(from: ctr, TestHost.loopbackIPv4, listenerIn: host.namespace))
    }

    @Test func foreignContainerInterfaceIsRefused() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        try Command.check(["ip", "-n", ctr.name, "link", "add", "eth0", "type", "veth", "peer", "name", "other0"])
        let workload = WorkloadAttachment(
            containerID: "foreign", interfaceName: "eth0", containerNamespacePath: ctr.path, addresses: [IPAddress("10.70.0.2")!])
        let error = #expect(throws: DataplaneError.self) { try host.dataplane.attach(workload) }
        guard case .containerInterfaceExists(let name, let path) = error else {
            Issue.record("expected containerInterfaceExists, got \(String(describing: error))")
            return
        }
        #expect(name == "eth0" && path == ctr.path)
        #expect(try host.caliLinks() == [])
        #expect(try ctr.linkNames().sorted() == ["eth0", "lo", "other0"])
    }

    @Test func detachAfterHalfDoneAdd() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        // Only the container end is left (its host end lives in another namespace).
        try Command.check(["ip", "-n", ctr.name, "link", "add", "eth0", "type", "veth", "peer", "name", "x0"])
        let name = WorkloadDataplane.hostVethName(containerID: "half", interfaceName: "eth0")
        try host.dataplane.detach(hostVethName: name, containerNamespacePath: ctr.path, interfaceName: "eth0")
        #expect(try ipLink(ctr, "eth0") == nil)
        try host.dataplane.detach(hostVethName: name, containerNamespacePath: ctr.path, interfaceName: "eth0")
    }

    @Test func checkReportsDrift() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        let workload = WorkloadAttachment(
            containerID: "drift", interfaceName: "eth0", containerNamespacePath: ctr.path,
            addresses: [IPAddress("10.71.0.2")!], mtu: 1450)
        let attached = try host.dataplane.attach(workload)
        try Command.check(["ip", "-n", ctr.name, "route", "del", "default"])
        try Command.check(["ip", "-n", host.namespace.name, "route", "del", "10.71.0.2/32"])
        try Command.check(["ip", "-n", host.namespace.name, "link", "set", attached.hostVethName, "down"])
        let drift = try host.dataplane.check(workload)
        #expect(drift.contains("container lacks route default via 169.254.1.1 dev eth0"))
        #expect(drift.contains("no host route 10.71.0.2/32 dev \(attached.hostVethName)"))
        #expect(drift.contains("host veth \(attached.hostVethName) is down"))
        var other = workload
        other.addresses = [IPAddress("10.71.0.9")!]
        other.mtu = 1500
        let more = try host.dataplane.check(other)
        #expect(more.contains("container interface eth0 lacks address 10.71.0.9/32"))
        #expect(more.contains("container interface eth0 has unexpected address 10.71.0.2/32"))
        #expect(more.contains("container interface eth0 has MTU 1450, expected 1500"))
    }

    @Test func secondInterfaceOfOneContainer() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        let eth0 = WorkloadAttachment(containerID: "multi", interfaceName: "eth0", containerNamespacePath: ctr.path, addresses: [IPAddress("10.72.0.2")!, IPAddress("fd00:72::2")!])
        let eth1 = WorkloadAttachment(containerID: "multi", interfaceName: "eth1", containerNamespacePath: ctr.path, addresses: [IPAddress("10.72.1.2")!, IPAddress("fd00:72::1:2")!])
        #expect(eth0.hostVethName != eth1.hostVethName)
        _ = try host.dataplane.attach(eth0)
        let second = try host.dataplane.attach(eth1)
        #expect(Set(try host.caliLinks()) == [eth0.hostVethName, eth1.hostVethName])
        #expect(Set(try ctr.linkNames()) == ["lo", "eth0", "eth1"])
        #expect(try host.dataplane.check(eth0) == [])
        #expect(try host.dataplane.check(eth1) == [])
        // eth0 keeps the default route; eth1's comes after it.
        let defaults = try ipRoutes(ctr).filter { $0["dst"] as? String == "default" }
        #expect(defaults.count == 2)
        #expect(defaults.first?["dev"] as? String == "eth0")
        #expect(defaults.contains { $0["dev"] as? String == "eth1" && $0["metric"] as? Int == 1024 + Int(second.containerInterfaceIndex) })
        #expect(try ipRoutes(ctr, "-6").filter { $0["dst"] as? String == "default" }.count == 2)

        // Removing the first network leaves the second one working on its own.
        try host.dataplane.detach(hostVethName: eth0.hostVethName, containerNamespacePath: ctr.path, interfaceName: "eth0")
        #expect(Set(try ctr.linkNames()) == ["lo", "eth1"])
        #expect(try host.dataplane.check(eth1) == [])
        #expect(try reachable(from: ctr, TestHost.loopbackIPv4, listenerIn: host.namespace))
        #expect(try reachable(from: ctr, TestHost.loopbackIPv6, listenerIn: host.namespace))
    }

    @Test func anotherNetworksDefaultRouteIsKept() throws {
        let host = try TestHost()
        let ctr = try TestNamespace("dp-ctr")
        // A first network from another plugin: net0 with the default route.
        try Command.check(["ip", "-n", ctr.name, "link", "add", "net0", "type", "veth", "peer", "name", "net0p"])
        try Command.check(["ip", "-n", ctr.name, "link", "set", "net0", "up"])
        try Command.check(["ip", "-n", ctr.name, "addr", "add", "192.168.50.2/24", "dev", "net0"])
        try Command.check(["ip", "-n", ctr.name, "route", "add", "default", "via", "192.168.50.1"])
        let workload = WorkloadAttachment(containerID: "second-net", interfaceName: "eth1", containerNamespacePath: ctr.path, addresses: [IPAddress("10.74.0.2")!])
        let attached = try host.dataplane.attach(workload)
        let defaults = try ipRoutes(ctr).filter { $0["dst"] as? String == "default" }
        #expect(defaults.first?["gateway"] as? String == "192.168.50.1")
        #expect(defaults.contains { $0["dev"] as? String == "eth1" && $0["metric"] as? Int == 1024 + Int(attached.containerInterfaceIndex) })
        #expect(try host.dataplane.check(workload) == [])
    }

    /// Not a pass/fail benchmark: prints what one attach and one detach cost here.
    @Test func timing() throws {
        let host = try TestHost()
        var attach: [Double] = []
        var detach: [Double] = []
        for i in 0..<15 {
            let ctr = try TestNamespace("dp-time")
            let workload = WorkloadAttachment(
                containerID: "time-\(i)", interfaceName: "eth0", containerNamespacePath: ctr.path,
                addresses: [IPAddress("10.73.0.\(i + 2)")!], mtu: 1450)
            let t0 = MonotonicClock.now()
            _ = try host.dataplane.attach(workload)
            let t1 = MonotonicClock.now()
            try host.dataplane.detach(hostVethName: workload.hostVethName, containerNamespacePath: ctr.path, interfaceName: "eth0")
            let t2 = MonotonicClock.now()
            attach.append((t1 - t0) * 1e6)
            detach.append((t2 - t1) * 1e6)
        }
        func median(_ v: [Double]) -> Int { Int(v.sorted()[v.count / 2]) }
        print("dataplane timing (host namespace given, IPv4): attach median \(median(attach)) µs, detach median \(median(detach)) µs")
        #expect(try host.caliLinks() == [])
    }
}

@Suite("Host veth names")
struct HostVethNameTests {
    @Test func shapeAndStability() {
        let name = WorkloadDataplane.hostVethName(containerID: "5f3c1a8e-2d4b-4c6e-9a1f-0b2c3d4e5f60", interfaceName: "eth0")
        #expect(name.count == 15)
        #expect(name.hasPrefix("cali"))
        #expect(name.dropFirst(4).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        // DEL and felix recompute the name, so it must never change. These values come from
        // an independent implementation (Python) of FNV-1a 64 + fmix64 over "id\0ifname".
        #expect(name == "calide040a4880d")
        #expect(WorkloadDataplane.hostVethName(containerID: "abc", interfaceName: "eth0") == "cali674a0633c93")
    }

    @Test func distinctForNestedIDsAndInterfaces() {
        let parent = "5f3c1a8e-2d4b-4c6e-9a1f-0b2c3d4e5f60"
        let names = [
            WorkloadDataplane.hostVethName(containerID: parent, interfaceName: "eth0"),
            WorkloadDataplane.hostVethName(containerID: parent, interfaceName: "eth1"),
            WorkloadDataplane.hostVethName(containerID: parent + ".0a1b2c3d-aaaa-bbbb-cccc-000000000001", interfaceName: "eth0"),
            WorkloadDataplane.hostVethName(containerID: parent + ".0a1b2c3d-aaaa-bbbb-cccc-000000000002", interfaceName: "eth0"),
            WorkloadDataplane.hostVethName(containerID: parent + "e", interfaceName: "th0"),
        ]
        #expect(Set(names).count == names.count)
        // Many ids sharing a long prefix (nested containers of one parent) never collide.
        let many = (0..<5000).map { WorkloadDataplane.hostVethName(containerID: "\(parent).\($0)", interfaceName: "eth0") }
        #expect(Set(many).count == many.count)
    }
}
