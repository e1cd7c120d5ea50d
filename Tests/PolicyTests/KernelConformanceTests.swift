import Foundation
import IPAddress
import Policy
import Testing
import TestSupport

let canRunKernelConformance = TestEnvironment.canUseNamespaces && TestEnvironment.has("nft") && TestEnvironment.has("curl")
    && TestEnvironment.has("busybox")

/// The fixture cluster built from namespaces: a host, one namespace per local endpoint
/// behind its `cali-*` veth, and an "outside" namespace behind `ext0` holding the remote
/// endpoint's and the internet's addresses.
final class KernelCluster {
    let host: TestNamespace
    var byInterface: [String: TestNamespace] = [:]
    let outside: TestNamespace
    var servers: [ChildProcess] = []
    static let ports: [UInt16] = [22, 23, 53, 80, 81, 443, 8080, 9001]

    init(webRoot: URL) throws {
        host = try TestNamespace("kh")
        outside = try TestNamespace("ko")
        try host.check(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        try Command.check(["ip", "-n", host.name, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", outside.name])
        try Command.check(["ip", "-n", host.name, "addr", "add", "192.0.2.1/24", "dev", "ext0"])
        try Command.check(["ip", "-n", host.name, "link", "set", "ext0", "up"])
        try Command.check(["ip", "-n", outside.name, "addr", "add", "192.0.2.2/24", "dev", "eth0"])
        for a in ["172.29.1.5/32", "8.8.8.8/32"] {
            try Command.check(["ip", "-n", outside.name, "addr", "add", a, "dev", "eth0"])
            try Command.check(["ip", "-n", host.name, "route", "add", a, "via", "192.0.2.2"])
        }
        try Command.check(["ip", "-n", outside.name, "link", "set", "eth0", "up"])
        try Command.check(["ip", "-n", outside.name, "route", "add", "default", "via", "192.0.2.1"])
        try Command.check(["ip", "-n", host.name, "route", "add", "default", "via", "192.0.2.2"])
        for ep in Cluster.endpoints where ep.node == Cluster.node {
            let ifname = ep.interfaceName!
            let c = try TestNamespace("kc")
            let ip = ep.addresses.first { !$0.isIPv6 }!.address.description
            try Command.check(["ip", "-n", host.name, "link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", c.name])
            try Command.check(["ip", "-n", c.name, "addr", "add", ip + "/32", "dev", "eth0"])
            try Command.check(["ip", "-n", c.name, "link", "set", "eth0", "up"])
            try Command.check(["ip", "-n", c.name, "route", "add", "169.254.1.1/32", "dev", "eth0", "scope", "link"])
            try Command.check(["ip", "-n", c.name, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"])
            try host.check(["sysctl", "-qw", "net.ipv4.conf.\(ifname).proxy_arp=1", "net.ipv4.neigh.\(ifname).proxy_delay=0"])
            try Command.check(["ip", "-n", host.name, "link", "set", ifname, "up"])
            try Command.check(["ip", "-n", host.name, "route", "add", ip + "/32", "dev", ifname, "scope", "link"])
            byInterface[ifname] = c
        }
        for ns in Array(byInterface.values) + [outside] {
            for port in Self.ports {
                let p = ChildProcess()
                p.executableURL = URL(fileURLWithPath: TestEnvironment.which("ip")!)
                p.arguments = ["netns", "exec", ns.name, "busybox", "httpd", "-f", "-p", String(port), "-h", webRoot.path]
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                try p.run()
                servers.append(p)
            }
        }
    }

    /// The namespace a packet of the table starts in, when a real socket can send it.
    func sender(of p: Packet) -> TestNamespace? {
        guard let i = p.inInterface else { return nil }
        if i.hasPrefix("cali") {
            guard let ns = byInterface[i], let ep = Cluster.endpoints.first(where: { $0.interfaceName == i }),
                  ep.addresses.contains(where: { $0.contains(p.source) }) else { return nil }
            return ns
        }
        return [ip("172.29.1.5"), ip("8.8.8.8")].contains(p.source) ? outside : nil
    }

    /// Whether a namespace answers on the packet's destination address.
    func serves(_ p: Packet) -> Bool {
        if [ip("172.29.1.5"), ip("8.8.8.8")].contains(p.destination) { return true }
        return Cluster.endpoints.contains { e in
            e.node == Cluster.node && byInterface[e.interfaceName ?? ""] != nil && e.addresses.contains { $0.contains(p.destination) }
        }
    }

    /// Whether a TCP connection like `p` gets through the host's kernel.
    func connects(_ p: Packet, from ns: TestNamespace) throws -> Bool {
        let r = try Command.run(["ip", "netns", "exec", ns.name, "curl", "-s", "-o", "/dev/null", "-m", "1",
                                 "--local-port", "40000-40009", "--interface", p.source.description,
                                 "http://\(p.destination):\(p.destinationPort!)/id"])
        return r.status == 0
    }

    func remove() {
        // SIGKILL: a child of the test runner may inherit a mask that blocks SIGTERM.
        for s in servers where s.isRunning { kill(s.processIdentifier, SIGKILL) }
        for s in servers { s.waitUntilExit() }
        for ns in byInterface.values { ns.remove() }
        outside.remove()
        host.remove()
    }
}

/// The evaluator and the kernel must agree. Every row of the table that a real TCP
/// connection can reproduce (IPv4, a new connection, between namespaces, from the
/// endpoint's own address) is loaded into a real host namespace and tried.
@Suite(.enabled(if: canRunKernelConformance, "needs root, ip, nft, curl and busybox"))
struct KernelConformanceTests {
    @Test func kernelAgreesWithTheEvaluatorOnEveryTCPCase() throws {
        let web = TestEnvironment.temporaryDirectory("policy-web")
        defer { try? FileManager.default.removeItem(at: web) }
        try "ok\n".write(to: web.appendingPathComponent("id"), atomically: true, encoding: .utf8)
        let cluster = try KernelCluster(webRoot: web)
        defer { cluster.remove() }
        usleep(300_000)

        var tried = 0
        var disagreements: [String] = []
        for c in policyCases where c.packet.protocolNumber == 6 && c.packet.state == .new && !c.packet.source.isIPv6
            && c.packet.outInterface != nil && KernelCluster.ports.contains(c.packet.destinationPort ?? 0) {
            guard let from = cluster.sender(of: c.packet), cluster.serves(c.packet) else { continue }
            let dp = Cluster.index(c.policies, profiles: c.profiles, endpoints: c.endpoints, endpointToHostAction: c.toHost).dataplane()
            // Cases that change endpoints move interfaces the namespaces cannot follow.
            guard Set(dp.endpoints.keys).isSubset(of: Set(cluster.byInterface.keys)) else { continue }
            try cluster.host.check(["nft", "-f", "-"], stdin: NFTRenderer.render(dp).replacementScript())
            let kernel = try cluster.connects(c.packet, from: from)
            let evaluator = dp.decide(c.packet).isAccepted
            tried += 1
            if kernel != evaluator || evaluator != c.accepted {
                disagreements.append("\(c.name): kernel \(kernel), evaluator \(evaluator), table \(c.accepted)")
            }
        }
        print("kernel conformance: \(tried) table cases tried over real TCP")
        #expect(tried >= 40, "only \(tried) cases could be tried")
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }
}

struct NFTLoadError: Error, CustomStringConvertible {
    var description: String
}

extension TestNamespace {
    func check(_ argv: [String], stdin: String) throws {
        let r = try run(argv, stdin: Data(stdin.utf8))
        guard r.status == 0 else { throw NFTLoadError(description: "\(argv.joined(separator: " ")): \(r.stderrText)") }
    }
}
