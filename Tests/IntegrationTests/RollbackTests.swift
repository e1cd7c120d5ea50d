import Foundation
import JSON
import Testing
import TestSupport

/// A failed ADD undoes itself: the address is released, no veth and no endpoint remain, and
/// the error object is on stdout. Faults are natural ones: an interface the container already
/// has, a datastore that refuses one write (an SQLite trigger, as a full disk or a lost lock
/// would), a locked datastore, a namespace that does not exist. A repeated ADD never costs a
/// live container its address.
@Suite(.enabled(if: E2E.ready, E2E.reason))
struct RollbackTests {
    /// Makes the store refuse writes of keys matching `pattern` (SQL LIKE).
    static func refuseWrites(_ store: ClusterStore, like pattern: String) throws {
        try store.execute("""
            CREATE TRIGGER e2e_refuse_insert BEFORE INSERT ON kv WHEN NEW.key LIKE '\(pattern)'
              BEGIN SELECT RAISE(ABORT, 'e2e: write refused'); END;
            CREATE TRIGGER e2e_refuse_update BEFORE UPDATE ON kv WHEN NEW.key LIKE '\(pattern)'
              BEGIN SELECT RAISE(ABORT, 'e2e: write refused'); END;
            """)
    }

    static func allowWrites(_ store: ClusterStore) throws {
        try store.execute("DROP TRIGGER e2e_refuse_insert; DROP TRIGGER e2e_refuse_update;")
    }

    @Test func containerAlreadyHasAForeignEth0() throws {
        let agent = try Agent(store: ClusterStore())
        let bystander = try Container()
        let bystanderIP = try agent.attach(bystander)
        let container = try Container()
        try Command.check(["ip", "-n", container.namespace.name, "link", "add", "eth0", "type", "veth", "peer", "name", "foreign0"])
        let before = try #require(try container.link("eth0"))

        let add = try agent.add(container)
        #expect(add.status != 0)
        let error = try #require(add.cniError, "error object on stdout: \(add.stdoutText)")
        #expect(error.msg.contains("eth0"), "\(error)")
        // The foreign interface is untouched; no veth, no address, no record of ours.
        let after = try #require(try container.link("eth0"))
        #expect(after["ifindex"] == before["ifindex"] && after["address"] == before["address"])
        #expect(try container.linkNames() == ["eth0", "foreign0", "lo"])
        #expect(try agent.workloadLinks().count == 1)
        #expect(try Set(agent.store.allocations().keys) == [bystanderIP])
        #expect(try agent.store.handles().count == 1 && agent.store.endpoints().count == 1)

        // DEL after the failed ADD succeeds and leaves the bystander alone.
        let del = try agent.del(container)
        #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdoutText) \(del.stderrText)")
        try bystander.bringLoopbackUp()
        #expect(try agent.ping(bystanderIP))
        #expect(try agent.store.endpoints().count == 1)
    }

    @Test func endpointWriteRefusedAfterIPAM() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let bystander = try Container()
        let bystanderIP = try agent.attach(bystander)  // creates the store, pool, profile
        try Self.refuseWrites(store, like: "%/workloadendpoints/%")

        let container = try Container()
        let add = try agent.add(container)
        #expect(add.status != 0)
        let error = try #require(add.cniError, "error object on stdout: \(add.stdoutText) \(add.stderrText)")
        #expect(error.msg.contains("WorkloadEndpoint") || error.msg.contains("refused"), "\(error)")
        // IPAM had assigned an address and the veth existed: both are gone again.
        #expect(try container.linkNames() == ["lo"])
        #expect(try agent.workloadLinks().count == 1)
        #expect(try agent.workloadRoutes() == agent.workloadRoutes().filter { $0.hasPrefix(bystanderIP + " ") })
        #expect(try Set(store.allocations().keys) == [bystanderIP])
        #expect(try store.handles().map(\.key) == [ClusterStore.handles + "calico." + bystander.id])
        #expect(try store.endpoints().count == 1)

        // With the fault gone the same container attaches normally (and DEL cleans up).
        try Self.allowWrites(store)
        let ip = try agent.attach(container)
        #expect(try container.addresses("eth0") == [ip + "/32"])
        #expect(try agent.del(container).status == 0 && agent.del(bystander).status == 0)
        try DelTests.expectNothingLeft(agent, [container, bystander])
    }

    @Test func profileWriteRefused() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let bystander = try Container()
        try agent.attach(bystander, network: agent.network("other"))
        try Self.refuseWrites(store, like: "%/profiles/calico")

        let container = try Container()
        let add = try agent.add(container)
        #expect(add.status != 0)
        #expect(add.cniError != nil, "\(add.stdoutText)")
        #expect(try container.linkNames() == ["lo"])
        #expect(try agent.workloadLinks().count == 1)
        #expect(try store.handles().map(\.key) == [ClusterStore.handles + "other." + bystander.id])
        #expect(try store.allocations().count == 1)
        #expect(try store.endpoints().count == 1)
        #expect(try store.rows(ClusterStore.profiles).map(\.key) == [ClusterStore.profiles + "other"])
    }

    /// A datastore locked by another writer for longer than the configured timeout: ADD gives
    /// up in bounded time with "try again later" (11) and leaves nothing; DEL still cleans the
    /// kernel and asks to be retried.
    @Test func lockedDatastore() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let network = agent.network(extra: ["datastore_timeout": 0.1])
        let live = try Container()
        let liveIP = try agent.attach(live, network: network)

        // sqlite3 holds an exclusive write lock until its stdin closes.
        let holder = ChildProcess()
        holder.executableURL = URL(fileURLWithPath: TestEnvironment.which("sqlite3")!)
        holder.arguments = [store.path]
        let input = Pipe()
        holder.standardInput = input
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        input.fileHandleForWriting.write(Data("BEGIN EXCLUSIVE;\nSELECT count(*) FROM kv;\n".utf8))
        usleep(300_000)
        defer {
            try? input.fileHandleForWriting.close()
            holder.waitUntilExit()
        }

        let container = try Container()
        let start = Date()
        let add = try agent.add(container, network: network)
        let took = Date().timeIntervalSince(start)
        #expect(add.status != 0)
        #expect(add.cniError?.code == 11, "\(add.stdoutText) \(add.stderrText)")
        #expect(took < 2, "ADD gave up after \(took) s with datastore_timeout 0.1")
        #expect(try container.linkNames() == ["lo"])
        #expect(try agent.workloadLinks().count == 1)

        // DEL of the live container: the kernel side goes at once; the records wait for a retry.
        let delStart = Date()
        let del = try agent.del(live, network: network)
        let delTook = Date().timeIntervalSince(delStart)
        #expect(del.status != 0 && del.cniError?.code == 11, "\(del.stdoutText)")
        #expect(delTook < 2, "DEL gave up after \(delTook) s with datastore_timeout 0.1")
        #expect(try agent.workloadLinks().isEmpty && live.linkNames() == ["lo"])

        try input.fileHandleForWriting.close()
        holder.waitUntilExit()
        #expect(try Set(store.allocations().keys) == [liveIP], "the failed ADD took no address")
        let retry = try agent.del(live, network: network)
        #expect(retry.status == 0 && retry.stdout.isEmpty, "\(retry.stdoutText)")
        #expect(try agent.del(container, network: network).status == 0)
        try DelTests.expectNothingLeft(agent, [live, container])
    }

    @Test func nonexistentNetns() throws {
        let agent = try Agent(store: ClusterStore())
        let add = try agent.invoke("ADD", containerID: E2E.containerID(), netns: "/var/run/mesos/isolators/network/cni/nope/ns",
                                   stdin: agent.network().mesosStdin())
        #expect(add.status != 0)
        #expect(add.cniError != nil, "\(add.stdoutText)")
        try DelTests.expectNothingLeft(agent, [])
    }

    @Test func repeatedAddKeepsTheLiveAddress() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let container = try Container()
        let ip = try agent.attach(container, labels: [("biz_type", "bookstore")])
        try container.bringLoopbackUp()
        let veth = try #require(try agent.workloadLinks().first)
        let endpointBefore = try #require(try store.endpoints().first)
        let handleBefore = try #require(try store.handles().first)

        // The same container and interface again (even with other labels).
        let again = try agent.add(container, labels: [("biz_type", "fruitstore")])
        #expect(again.status != 0)
        #expect(again.cniError != nil, "\(again.stdoutText)")
        // Same veth (same ifindex), same address, same records, one allocation.
        let vethAfter = try #require(try agent.workloadLinks().first)
        #expect(vethAfter["ifindex"] == veth["ifindex"] && vethAfter["ifname"] == veth["ifname"])
        #expect(try agent.workloadLinks().count == 1)
        #expect(try container.addresses("eth0") == [ip + "/32"])
        #expect(try store.allocations() == [ip: "calico." + container.id])
        let endpointAfter = try #require(try store.endpoints().first)
        #expect(endpointAfter.modRevision == endpointBefore.modRevision && endpointAfter.value == endpointBefore.value)
        #expect(try store.handles().first?.modRevision == handleBefore.modRevision)
        // The live container still works.
        #expect(try agent.ping(ip))
        let other = try Container()
        let otherIP = try agent.attach(other)
        #expect(otherIP != ip)
        #expect(try other.ping(ip))
    }

    /// What a crashed ADD leaves: the container's veth, but no address, handle or endpoint
    /// for it (here: the records are in another store). IPAM gives the new ADD an address,
    /// so the veth is nobody's and is replaced, not refused; the container ends with one
    /// interface, the new address, and an endpoint naming the MAC it really has.
    @Test func leftoverVethOfACrashedAddIsReplaced() throws {
        let agent = try Agent(store: ClusterStore())
        let container = try Container()
        let elsewhere = ClusterStore()
        let first = try agent.attach(container, network: NetworkConfig(store: elsewhere, node: agent.node))
        let leftover = try #require(try agent.workloadLinks().first)

        let ip = try agent.attach(container)
        let veth = try #require(try agent.workloadLinks().first)
        #expect(try agent.workloadLinks().count == 1)
        #expect(veth["ifname"] == leftover["ifname"] && veth["ifindex"] != leftover["ifindex"], "the veth was made afresh")
        #expect(try container.linkNames() == ["eth0", "lo"])
        #expect(try container.addresses("eth0") == [ip + "/32"])
        #expect(try agent.workloadRoutes() == ["\(ip) \(veth["ifname"]?.stringValue ?? "")"], "no route to \(first) is left")
        let endpoint = try #require(try agent.store.endpoints().first).value
        #expect(endpoint["spec"]?["mac"]?.stringValue == (try container.link("eth0"))?["address"]?.stringValue)
        try container.bringLoopbackUp()
        #expect(try agent.ping(ip))
        #expect(try agent.del(container).status == 0)
        try DelTests.expectNothingLeft(agent, [container])
    }
}
