import Foundation
import JSON
import Testing
import TestSupport

/// DEL as Mesos sends it: after a good ADD, twice, without `CNI_NETNS` (agent restarted
/// after a reboot), after a failed ADD, and when the container's namespace is already gone.
/// Every time: exit 0, nothing on stdout, and no link, route, handle or endpoint left.
@Suite(.enabled(if: E2E.ready, E2E.reason))
struct DelTests {
    /// Nothing of any workload remains on the agent or in the store.
    static func expectNothingLeft(_ agent: Agent, _ containers: [Container], sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try agent.workloadLinks().isEmpty, "host links", sourceLocation: sourceLocation)
        #expect(try agent.workloadRoutes().isEmpty, "host routes", sourceLocation: sourceLocation)
        #expect(try agent.store.handles().isEmpty, "IPAM handles", sourceLocation: sourceLocation)
        #expect(try agent.store.allocations().isEmpty, "block allocations", sourceLocation: sourceLocation)
        #expect(try agent.store.endpoints().isEmpty, "WorkloadEndpoints", sourceLocation: sourceLocation)
        for c in containers where FileManager.default.fileExists(atPath: c.netns) {
            #expect(try c.linkNames() == ["lo"], "container links", sourceLocation: sourceLocation)
        }
    }

    static func expectCleanSuccess(_ r: CommandResult, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 0, "\(what): \(r.stdoutText) \(r.stderrText)", sourceLocation: sourceLocation)
        #expect(r.stdout.isEmpty, "\(what) prints nothing", sourceLocation: sourceLocation)
    }

    @Test func delRemovesEverythingAndCanRepeat() throws {
        let agent = try Agent(store: ClusterStore())
        let keep = try Container(), container = try Container()
        let keepIP = try agent.attach(keep)
        try agent.attach(container, labels: [("biz_type", "bookstore")])
        Self.expectCleanSuccess(try agent.del(container, labels: [("biz_type", "bookstore")]), "DEL")
        #expect(try container.linkNames() == ["lo"])
        #expect(try agent.workloadLinks().count == 1)
        #expect(try agent.store.endpoints().count == 1 && agent.store.handles().count == 1)
        #expect(try Set(agent.store.allocations().keys) == [keepIP])
        Self.expectCleanSuccess(try agent.del(container, labels: [("biz_type", "bookstore")]), "second DEL")
        Self.expectCleanSuccess(try agent.del(keep), "DEL of the other")
        try Self.expectNothingLeft(agent, [keep, container])
        Self.expectCleanSuccess(try agent.del(keep), "DEL again")
    }

    /// DEL returns once both ends of the veth are unregistered; the kernel's teardown after
    /// that goes on in a helper process. The container attached again at once gets the same
    /// veth names and a working link.
    @Test func addRightAfterDelReusesTheVethNames() throws {
        let agent = try Agent(store: ClusterStore())
        let container = try Container()
        try agent.attach(container)
        let names = try agent.workloadLinkNames()
        #expect(names.count == 1)
        Self.expectCleanSuccess(try agent.del(container), "DEL")
        #expect(try agent.workloadLinkNames().isEmpty)
        #expect(try container.linkNames() == ["lo"])
        let address = try agent.attach(container)
        #expect(try agent.workloadLinkNames() == names)
        #expect(try container.linkNames() == ["eth0", "lo"])
        #expect(try agent.ping(address), "the host reaches the re-added container")
        Self.expectCleanSuccess(try agent.del(container), "second DEL")
        try Self.expectNothingLeft(agent, [container])
    }

    @Test func delWithoutNetns() throws {
        let agent = try Agent(store: ClusterStore())
        let container = try Container()
        try agent.attach(container)
        Self.expectCleanSuccess(try agent.del(container, netns: .some(nil)), "DEL without CNI_NETNS")
        // Deleting the host end took the container's end with it.
        try Self.expectNothingLeft(agent, [container])
        Self.expectCleanSuccess(try agent.del(container, netns: .some(nil)), "second DEL without CNI_NETNS")
    }

    @Test func delWithoutAnyAdd() throws {
        let agent = try Agent(store: ClusterStore())
        let container = try Container()
        Self.expectCleanSuccess(try agent.del(container), "DEL of a container never added")
        Self.expectCleanSuccess(try agent.del(container, netns: .some(nil)), "and without CNI_NETNS")
        try Self.expectNothingLeft(agent, [container])
    }

    @Test func delAfterAFailedAdd() throws {
        let agent = try Agent(store: ClusterStore())
        let container = try Container()
        // ADD fails: the namespace path does not exist (the isolator's bind mount is missing).
        let missing = "/var/run/netns/e2e-missing-\(container.id.prefix(8))"
        let add = try agent.invoke("ADD", containerID: container.id, netns: missing, stdin: agent.network().mesosStdin())
        #expect(add.status != 0)
        #expect(add.cniError != nil, "an error object on stdout: \(add.stdoutText)")
        try Self.expectNothingLeft(agent, [container])
        // Mesos always follows with DEL (same env, same stdin).
        Self.expectCleanSuccess(try agent.invoke("DEL", containerID: container.id, netns: missing, stdin: agent.network().mesosStdin()),
                                "DEL after failed ADD")
        try Self.expectNothingLeft(agent, [container])
    }

    @Test func delWhenTheContainerNamespaceIsAlreadyGone() throws {
        let agent = try Agent(store: ClusterStore())
        let gone = try Container(), stale = try Container()
        try agent.attach(gone)
        try agent.attach(stale)

        // The namespace is destroyed (its bind mount removed): its veth end dies with it.
        gone.namespace.remove()
        #expect(!FileManager.default.fileExists(atPath: gone.netns))
        Self.expectCleanSuccess(try agent.del(gone), "DEL with a vanished CNI_NETNS")
        #expect(try agent.store.endpoints().count == 1)

        // After a reboot the isolator's path may be a plain file, no longer a namespace.
        let dir = TestEnvironment.temporaryDirectory("e2e-stale")
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = dir.appendingPathComponent("ns").path
        #expect(FileManager.default.createFile(atPath: plain, contents: Data()))
        Self.expectCleanSuccess(try agent.del(stale, netns: .some(plain)), "DEL with CNI_NETNS a plain file")
        // The host end was removed by name; the container end went with it.
        try Self.expectNothingLeft(agent, [gone, stale])
    }
}
