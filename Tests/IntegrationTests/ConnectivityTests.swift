import Foundation
import JSON
import Testing
import TestSupport

/// Containers attached by the built plugin talk to each other and to their host, on one
/// agent and across two agents (two host namespaces joined by a veth with routes to each
/// other's IPAM blocks, standing in for BGP).
@Suite(.enabled(if: E2E.ready, E2E.reason))
struct ConnectivityTests {
    /// `busybox httpd` serving `/id` in `container` until `stop()`.
    final class Server {
        let process = ChildProcess()
        let root = TestEnvironment.temporaryDirectory("e2e-www")

        init(in container: Container, id: String) throws {
            try Data(id.utf8).write(to: root.appendingPathComponent("id"))
            // nsenter execs httpd itself, so the process we hold is the server.
            process.executableURL = URL(fileURLWithPath: E2E.nsenter!)
            process.arguments = ["--net=\(container.netns)", "busybox", "httpd", "-f", "-p", "80", "-h", root.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// SIGKILL: the test runner may leave SIGTERM ignored, and children inherit that.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: root)
        }
    }

    /// `busybox wget -O - http://ADDRESS/id` from `namespace`, retried while httpd starts.
    /// (busybox's `wget -T` crashes; the Command timeout bounds it instead.)
    static func fetch(_ namespace: TestNamespace, _ address: String) throws -> String? {
        for _ in 0..<20 {
            let r = try namespace.run(["busybox", "wget", "-q", "-O", "-", "http://\(address)/id"], timeout: 5)
            if r.status == 0 { return r.stdoutText }
            usleep(100_000)
        }
        return nil
    }

    @Test func containersOnOneAgentReachEachOtherAndTheHost() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        // Forwarding off in the whole host namespace: the plugin's per-veth settings alone
        // must route between its workloads.
        try agent.host.check(["sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/all/forwarding"])
        let frontend = try Container(), server = try Container(), other = try Container()
        let frontendIP = try agent.attach(frontend, labels: [("biz_type", "bookstore")])
        let serverIP = try agent.attach(server, labels: [("biz_type", "bookstore"), ("role", "server")])
        let otherIP = try agent.attach(other, labels: [("biz_type", "fruitstore")])
        for c in [frontend, server, other] { try c.bringLoopbackUp() }
        for veth in try agent.workloadLinkNames() {
            let settings = try agent.host.check(["sh", "-c", "cat /proc/sys/net/ipv4/conf/\(veth)/forwarding "
                + "/proc/sys/net/ipv4/conf/\(veth)/proxy_arp /proc/sys/net/ipv4/neigh/\(veth)/proxy_delay"])
            #expect(settings.split(separator: "\n") == ["1", "1", "0"], "\(veth): forwarding, proxy_arp, proxy_delay")
        }
        #expect(try agent.host.check(["cat", "/proc/sys/net/ipv4/ip_forward"]) == "0\n")

        #expect(try frontend.ping(serverIP))
        #expect(try other.ping(serverIP))
        #expect(try server.ping(frontendIP))
        #expect(try frontend.ping(otherIP))
        for ip in [frontendIP, serverIP, otherIP] { #expect(try agent.ping(ip), "host -> \(ip)") }
        // And a container reaches its host's own address.
        #expect(try frontend.ping(agent.address))

        // TCP: the seed's server answers /id to both frontends.
        let httpd = try Server(in: server, id: "bookstore-server")
        defer { httpd.stop() }
        #expect(try Self.fetch(frontend.namespace, serverIP) == "bookstore-server")
        #expect(try Self.fetch(other.namespace, serverIP) == "bookstore-server")
        #expect(try Self.fetch(agent.host, serverIP) == "bookstore-server")
    }

    @Test func containersOnTwoAgentsReachEachOther() throws {
        let store = ClusterStore()
        let a = try Agent(node: "agent-a", store: store, address: "10.254.0.1")
        let b = try Agent(node: "agent-b", store: store, address: "10.254.0.2")
        let a1 = try Container(), a2 = try Container(), b1 = try Container()
        let a1IP = try a.attach(a1), a2IP = try a.attach(a2), b1IP = try b.attach(b1)
        for c in [a1, a2, b1] { try c.bringLoopbackUp() }

        // Each node got its own block.
        let blocksA = try store.blockCIDRs(node: "agent-a"), blocksB = try store.blockCIDRs(node: "agent-b")
        #expect(blocksA.count == 1 && blocksB.count == 1 && blocksA != blocksB)

        // The fabric: a veth between the two host namespaces, forwarding on it, and a route
        // to the other agent's block and host address (what BGP would announce).
        try Command.check(["ip", "-n", a.host.name, "link", "add", "fabric", "type", "veth", "peer", "name", "fabric", "netns", b.host.name])
        for (agent, mine, peer, blocks) in [(a, "10.255.0.1", "10.255.0.2", blocksB), (b, "10.255.0.2", "10.255.0.1", blocksA)] {
            try Command.check(["ip", "-n", agent.host.name, "addr", "add", "\(mine)/30", "dev", "fabric"])
            try Command.check(["ip", "-n", agent.host.name, "link", "set", "fabric", "up"])
            try agent.host.check(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/fabric/forwarding"])
            for cidr in blocks { try Command.check(["ip", "-n", agent.host.name, "route", "add", cidr, "via", peer]) }
            let otherHost = agent === a ? b.address : a.address
            try Command.check(["ip", "-n", agent.host.name, "route", "add", "\(otherHost)/32", "via", peer])
        }

        #expect(try a1.ping(b1IP))
        #expect(try b1.ping(a1IP))
        #expect(try b1.ping(a2IP))
        #expect(try a1.ping(a2IP))
        #expect(try a.ping(b1IP), "agent-a's host -> a container on agent-b")
        let httpd = try Server(in: b1, id: "on-agent-b")
        defer { httpd.stop() }
        #expect(try Self.fetch(a2.namespace, b1IP) == "on-agent-b")

        // DEL on each agent removes only that agent's state.
        #expect(try a.del(a1).status == 0)
        #expect(try b.workloadLinkNames().count == 1 && a.workloadLinkNames().count == 1)
        #expect(try b1.ping(a2IP))
        #expect(try a.del(a2).status == 0 && b.del(b1).status == 0)
        #expect(try store.endpoints().isEmpty && store.handles().isEmpty && store.allocations().isEmpty)
    }
}
