import Foundation
import JSON
import Testing
import TestSupport

/// What an operator sees with `calicoctl` right after Mesos attached a container on the
/// embedded store (issue 4's check): the node, the endpoint with its address, the default
/// pool in use, and the seed's policy applied against the task's labels.
@Suite(.enabled(if: E2E.ready && TestEnvironment.hasProduct("calicoctl"), "needs root, ip, nsenter, sqlite3 and the built calico, calico-ipam, calicoctl"))
struct CalicoctlAfterAddTests {
    func calicoctl(_ store: ClusterStore, _ args: [String], stdin: Data = Data()) throws -> CommandResult {
        let cfg = store.directory.appendingPathComponent("calicoctl.cfg")
        try "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: sqlite\n  sqlitePath: \(store.path)\n"
            .write(to: cfg, atomically: true, encoding: .utf8)
        return try Command.run([TestEnvironment.product("calicoctl")] + args + ["-c", cfg.path],
                               environment: ["PATH": "/usr/bin:/bin"], stdin: stdin)
    }

    @Test func operatorViewAfterAMesosAdd() throws {
        let store = ClusterStore()
        let agent = try Agent(node: "agent-7", store: store)
        let container = try Container()
        let ip = try agent.attach(container, labels: [("biz_type", "bookstore"), ("role", "server")])

        #expect(try calicoctl(store, ["get", "nodes"]).stdoutText == "NAME\nagent-7\n")

        let weps = try calicoctl(store, ["get", "workloadendpoints"])
        #expect(weps.status == 0, "\(weps.stderrText)")
        let lines = weps.stdoutText.split(separator: "\n")
        #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"])
        #expect(lines.count == 2)
        #expect(lines.last?.contains("agent-7") == true)
        #expect(lines.last?.contains("\(ip)/32") == true)

        let show = try calicoctl(store, ["ipam", "show"]).stdoutText
        #expect(show.contains("| IP Pool  | 192.168.0.0/16 |     65536 | 1 (0%)"), "\(show)")

        let policy = try Data(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("Fixtures/resources/seed-networkpolicy.yaml"))
        let applied = try calicoctl(store, ["apply", "-f", "-"], stdin: policy)
        #expect(applied.stdoutText == "Successfully applied 1 'NetworkPolicy' resource(s)\n", "\(applied.stderrText)")

        #expect(try agent.del(container).status == 0)
        #expect(try calicoctl(store, ["get", "workloadendpoints"]).stdoutText.split(separator: "\n").count == 1)
        #expect(try calicoctl(store, ["ipam", "show"]).stdoutText.contains("| IP Pool  | 192.168.0.0/16 |     65536 | 0 (0%)"))
    }
}
