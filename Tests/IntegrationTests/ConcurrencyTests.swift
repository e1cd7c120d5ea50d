import Foundation
import JSON
import Testing
import TestSupport

/// Mesos runs the ADDs of many containers at once on one agent.
@Suite(.enabled(if: E2E.ready, E2E.reason))
struct ConcurrencyTests {
    @Test func twentyConcurrentAddsThenDels() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let containers = try (0..<20).map { _ in try Container() }
        let stdin = agent.network().mesosStdin(labels: [("biz_type", "bookstore")])

        let adds = try agent.invokeAtOnce(containers.map { ("ADD", $0, stdin, $0.netns) })
        var addresses: [String: String] = [:]  // container id -> address
        for (c, r) in zip(containers, adds) {
            #expect(r.status == 0, "\(c.id): \(r.stdoutText) \(r.stderrText)")
            if let ip = try? E2E.json(r)["ip4"]?["ip"]?.stringValue { addresses[c.id] = ip }
        }
        #expect(addresses.count == 20)
        #expect(Set(addresses.values).count == 20, "distinct addresses")

        // Each container holds the address its result named; the host routes each to its veth.
        for c in containers {
            #expect(try c.addresses("eth0") == [addresses[c.id] ?? "?"])
        }
        #expect(try agent.workloadLinks().count == 20)
        let routed = try agent.workloadRoutes().map { String($0.split(separator: " ")[0]) + "/32" }
        #expect(Set(routed) == Set(addresses.values))
        // The store agrees: 20 handles, 20 endpoints, 20 allocations, all in this node's one block.
        #expect(try store.handles().count == 20)
        let endpoints = try store.endpoints()
        #expect(endpoints.count == 20)
        #expect(Set(endpoints.compactMap { $0.value["spec"]?["ipNetworks"]?[0]?.stringValue }) == Set(addresses.values))
        let allocations = try store.allocations()
        #expect(Set(allocations.keys.map { $0 + "/32" }) == Set(addresses.values))
        #expect(Set(allocations.values) == Set(containers.map { "calico." + $0.id }))
        #expect(try store.blockCIDRs(node: agent.node).count == 1)
        #expect(try store.rows(ClusterStore.profiles).count == 1)

        // Concurrent DELs, half of them without CNI_NETNS: nothing is left.
        let dels = try agent.invokeAtOnce(containers.enumerated().map { i, c in ("DEL", c, stdin, i % 2 == 0 ? c.netns : nil) })
        for (c, r) in zip(containers, dels) {
            #expect(r.status == 0 && r.stdout.isEmpty, "\(c.id): \(r.stdoutText) \(r.stderrText)")
        }
        try DelTests.expectNothingLeft(agent, containers)
    }

    /// Two ADDs for the same container and interface at once (no runtime should, but a
    /// retrying one might): the address in the container stays reserved to its handle. One
    /// wins and the other is refused as a duplicate: IPAM gives one handle one address per
    /// family even when two first assignments race.
    @Test func concurrentDuplicateAdds() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let container = try Container()
        let stdin = agent.network().mesosStdin()
        let results = try agent.invokeAtOnce([("ADD", container, stdin, container.netns), ("ADD", container, stdin, container.netns)])
        let winners = results.filter { $0.status == 0 }
        #expect(!winners.isEmpty, "\(results.map { $0.stdoutText + $0.stderrText })")
        for r in results where r.status != 0 { #expect(r.cniError != nil, "\(r.stdoutText)") }

        // Whatever happened, the container's address is reserved to this attachment.
        let addresses = try container.addresses("eth0")
        #expect(addresses.count == 1)
        let address = try #require(addresses.first)
        let ip = String(address.dropLast(3))
        #expect(try store.allocations()[ip] == "calico." + container.id)
        #expect(try agent.workloadLinks().count == 1)
        try container.bringLoopbackUp()
        #expect(try agent.ping(ip))

        let allocated = try store.allocations().count
        let recorded = try store.endpoints().first?.value["spec"]?["ipNetworks"]
        let printed = try winners.map { try E2E.json($0)["ip4"]?["ip"]?.stringValue }
        #expect(winners.count == 1)
        #expect(allocated == 1, "no second address for the handle")
        #expect(recorded == [.string(address)])
        #expect(printed.allSatisfy { $0 == address })
        #expect(try agent.del(container).status == 0)
        try DelTests.expectNothingLeft(agent, [container])
    }
}
