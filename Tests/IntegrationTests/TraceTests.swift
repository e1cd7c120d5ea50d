import Foundation
import JSON
import Testing
import TestSupport

/// The plugin runs no program: no `ip`, no `sysctl`, no `iptables`, and with `calico-ipam`
/// in process not even its IPAM plugin. `strace -f` sees exactly one execve: its own start.
@Suite(.enabled(if: E2E.ready && TestEnvironment.has("strace"), "needs the E2E tools and strace"))
struct TraceTests {
    /// The execve/execveat calls `strace -f` saw while running one invocation.
    static func tracedExecs(_ agent: Agent, _ command: String, _ container: Container, netns: String?) throws -> (CommandResult, [String]) {
        let dir = TestEnvironment.temporaryDirectory("e2e-trace")
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("trace").path
        let argv = agent.hostArgv([TestEnvironment.which("strace")!, "-f", "-qq", "-e", "trace=execve,execveat", "-o", trace, E2E.calico])
        let r = try Command.run(argv, environment: agent.environment(command, containerID: container.id, netns: netns, ifname: "eth0"),
                                stdin: agent.network().mesosStdin(labels: [("biz_type", "bookstore")]))
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
        return (r, lines.filter { $0.contains("execve") })
    }

    @Test func addAndDelExecuteNothing() throws {
        let agent = try Agent(store: ClusterStore())
        let container = try Container()
        let (add, addExecs) = try Self.tracedExecs(agent, "ADD", container, netns: container.netns)
        #expect(add.status == 0, "\(add.stdoutText) \(add.stderrText)")
        #expect(try container.addresses("eth0").count == 1)
        #expect(addExecs.count == 1, "\(addExecs)")
        #expect(addExecs.first?.contains("execve(\"\(E2E.calico)\"") == true, "\(addExecs)")

        let (del, delExecs) = try Self.tracedExecs(agent, "DEL", container, netns: nil)
        #expect(del.status == 0)
        #expect(delExecs.count == 1, "\(delExecs)")
        try DelTests.expectNothingLeft(agent, [container])
    }
}
