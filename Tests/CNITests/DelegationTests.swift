import CNI
import Foundation
import IPAddress
import JSON
import POSIX
import Testing

/// A temporary CNI_PATH directory holding shell-script plugins.
final class PluginDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("cni-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes an executable `/bin/sh` script named `name`.
    @discardableResult
    func script(_ name: String, _ body: String) throws -> String {
        let file = path + "/" + name
        try ("#!/bin/sh\n" + body).write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file)
        return file
    }

    func read(_ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path + "/" + name).map { [UInt8]($0) }
    }
}

/// An IPAM plugin in shell: records stdin and environment per command, answers ADD with a
/// 0.2.0 result (what host-local prints for a 0.2.0 config), logs to stderr.
let recordingIPAM = #"""
dir=$(dirname "$0")
cat > "$dir/stdin.$CNI_COMMAND"
env > "$dir/env.$CNI_COMMAND"
echo "fake-ipam: $CNI_COMMAND for $CNI_CONTAINERID" >&2
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{"cniVersion":"0.2.0","ip4":{"ip":"10.9.0.5/24","gateway":"10.9.0.1","routes":[{"dst":"0.0.0.0/0"}]},"dns":{}}'
fi
"""#

@Suite struct DelegationTests {
    let config = #"{"cniVersion":"0.2.0","ipam":{"type":"fake-ipam"},"name":"calico","type":"calico"}"#

    func delegate(_ dir: PluginDirectory, type: String = "fake-ipam", timeout: Double = 10, log: CNILogger? = nil) -> IPAMDelegate {
        IPAMDelegate(type: type, searchPath: ["/nonexistent", dir.path], environment: addEnvironment(["CNI_PATH": "/nonexistent:" + dir.path]),
                     stdin: bytes(config), timeout: timeout, log: log)
    }

    @Test func addPassesIdenticalStdinAndEnvironment() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", recordingIPAM)
        let result = try delegate(dir).add()
        #expect(result.ips == [.init(address: IPNetwork("10.9.0.5/24")!, gateway: IPAddress("10.9.0.1"))])
        #expect(result.routes == [.init(destination: IPNetwork("0.0.0.0/0")!)])
        #expect(dir.read("stdin.ADD") == bytes(config))
        let env = String(decoding: dir.read("env.ADD") ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
        for (k, v) in addEnvironment(["CNI_PATH": "/nonexistent:" + dir.path]) { #expect(env.contains("\(k)=\(v)")) }
        // Replaced, not extended: nothing of the test process leaks in.
        #expect(!env.contains { $0.hasPrefix("HOME=") })
    }

    @Test func commandIsOverriddenPerCall() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", recordingIPAM)
        try delegate(dir).del()
        let env = String(decoding: dir.read("env.DEL") ?? [], as: UTF8.self)
        #expect(env.contains("CNI_COMMAND=DEL\n"))
        #expect(dir.read("stdin.DEL") == bytes(config))
        try delegate(dir).check()
        #expect(dir.read("env.CHECK") != nil)
    }

    @Test func stderrIsPassedToTheLog() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", recordingIPAM)
        let sink = ByteSink()
        _ = try delegate(dir, log: CNILogger(stderr: { sink.bytes += $0 })).add()
        #expect(sink.text.contains("fake-ipam: ADD for 5baff64c-d028-4f47-a2c6-26c2bdd2b8a2"))
    }

    @Test func duplicateRefusalIsFlaggedAndUnchanged() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", #"printf '{"cniVersion":"0.2.0","code":100,"msg":"already allocated","details":"handle calico.c1 holds 10.9.0.5"}'; exit 1"#)
        do {
            _ = try delegate(dir).add()
            Issue.record("IPAM ADD succeeded")
        } catch {
            #expect(error.refusedAsDuplicate)
            #expect(error.error == CNIError(code: 100, msg: "already allocated", details: "handle calico.c1 holds 10.9.0.5"))
        }
    }

    @Test func otherIPAMErrorsAreUnchangedAndNotRefusals() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", #"printf '{"code":11,"msg":"datastore timeout"}'; exit 1"#)
        do {
            _ = try delegate(dir).add()
            Issue.record("IPAM ADD succeeded")
        } catch {
            #expect(!error.refusedAsDuplicate)
            #expect(error.error == CNIError(code: 11, msg: "datastore timeout"))
        }
        #expect(throws: CNIError(code: 11, msg: "datastore timeout")) { try delegate(dir).del() }
    }

    @Test func crashWithoutErrorObjectIsCode5() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", "echo 'panic: nil map' >&2; exit 2")
        do { try delegate(dir).del() } catch {
            #expect(error.code == 5)
            #expect(error.msg.contains("exit status 2"))
            #expect(error.details.contains("panic: nil map"))
        }
    }

    @Test func invalidResultIsCode6() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", "echo 'not json'")
        do { _ = try delegate(dir).add(); Issue.record("accepted") } catch { #expect(error.error.code == 6, "\(error.error)") }
    }

    @Test func typeWithSlashIsRefused() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", recordingIPAM)
        #expect(throws: CNIError.self) { try delegate(dir, type: "../" + URL(fileURLWithPath: dir.path).lastPathComponent + "/fake-ipam").del() }
        do { try delegate(dir, type: dir.path + "/fake-ipam").del() } catch { #expect(error.code == 7) }
        #expect(dir.read("env.DEL") == nil)
    }

    @Test func missingPluginAndMissingPath() throws {
        let dir = try PluginDirectory()
        do { try delegate(dir, type: "nope").del() } catch { #expect(error.code == 7); #expect(error.msg.contains("nope")) }
        var d = delegate(dir)
        d.searchPath = []
        do { try d.del() } catch { #expect(error.code == 4); #expect(error.msg.contains("CNI_PATH")) }
    }

    @Test func hangingPluginIsKilledAtTheDeadline() throws {
        let dir = try PluginDirectory()
        // The script and the sleep it starts (which holds the pipes) must both die.
        try dir.script("fake-ipam", #"""
        sleep 60 &
        echo $! > "$(dirname "$0")/sleeper.pid"
        wait
        """#)
        let start = MonotonicClock.now()
        do {
            _ = try delegate(dir, timeout: 0.5).add()
            Issue.record("IPAM ADD succeeded")
        } catch {
            #expect(error.error.code == 11)
            #expect(error.error.msg.contains("did not finish"))
            #expect(!error.refusedAsDuplicate)
        }
        let elapsed = MonotonicClock.now() - start
        #expect(elapsed >= 0.5 && elapsed < 5, "took \(elapsed) s")
        let pidText = String(decoding: dir.read("sleeper.pid") ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let sleeper = try #require(Int32(pidText))
        #expect(processGone(sleeper), "the grandchild \(sleeper) survived")
    }

    /// The whole path through the dispatcher: a plugin delegating to IPAM, printing 0.2.0.
    @Test func pluginDelegatingThroughTheDispatcher() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", recordingIPAM)
        let env = addEnvironment(["CNI_PATH": dir.path])
        let out = CNIDispatcher.run(DelegatingPlugin(), environment: env, stdin: bytes(config))
        #expect(out.exitCode == 0, "\(out.stdoutText)")
        #expect(out.stdoutText == #"{"cniVersion":"0.2.0","dns":{},"ip4":{"gateway":"10.9.0.1","ip":"10.9.0.5/24","routes":[{"dst":"0.0.0.0/0"}]}}"# + "\n")
        #expect(dir.read("stdin.ADD") == bytes(config))
        #expect(out.stderrText.contains("fake-ipam: ADD"))
    }

    @Test func ipamErrorReachesStdoutUnwrapped() throws {
        let dir = try PluginDirectory()
        try dir.script("fake-ipam", #"printf '{"cniVersion":"0.2.0","code":100,"msg":"already allocated"}'; exit 1"#)
        let out = CNIDispatcher.run(DelegatingPlugin(), environment: addEnvironment(["CNI_PATH": dir.path]), stdin: bytes(config))
        #expect(out.exitCode == 1)
        #expect(out.stdoutText == #"{"cniVersion":"0.2.0","code":100,"msg":"already allocated"}"# + "\n")
    }
}

/// ADD = IPAM ADD, plus an interface; DEL = IPAM DEL.
struct DelegatingPlugin: CNIPlugin {
    func add(_ request: CNIRequest) throws(CNIError) -> CNIResult {
        let ipam = try IPAMDelegate(request: request)
        var result: CNIResult
        do { result = try ipam.add() } catch { throw error.error }
        result.interfaces = [.init(name: request.ifName, sandbox: request.netns ?? "")]
        for i in result.ips.indices { result.ips[i].interface = 0 }
        return result
    }
    func del(_ request: CNIRequest) throws(CNIError) { try IPAMDelegate(request: request).del() }
    func check(_ request: CNIRequest) throws(CNIError) { try IPAMDelegate(request: request).check() }
}

final class ByteSink: @unchecked Sendable {
    var bytes: [UInt8] = []
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// Whether `pid` has exited (polling up to 2 s for its new parent to reap it).
func processGone(_ pid: Int32) -> Bool {
    let until = MonotonicClock.now() + 2
    while MonotonicClock.now() < until {
        if kill(pid, 0) != 0 { return true }
        // A zombie still answers kill(0); its state in /proc tells.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { return true }
        usleep(20_000)
    }
    return false
}

@Suite struct SubprocessTests {
    @Test func environmentIsReplaced() throws {
        let out = try Subprocess.run(executable: "/usr/bin/env", environment: ["A": "b", "C": "d=e"])
        #expect(out.termination == .exited(0))
        #expect(String(decoding: out.stdout, as: UTF8.self) == "A=b\nC=d=e\n")
    }

    @Test func bigStdinAndBothOutputsDoNotDeadlock() throws {
        let input = [UInt8](repeating: 0x61, count: 1_000_000)
        let out = try Subprocess.run(executable: "/bin/sh", arguments: ["-c", "cat; head -c 300000 /dev/zero >&2; exit 7"],
                                     environment: ["PATH": "/usr/bin:/bin"], stdin: input, deadline: Deadline(secondsFromNow: 20))
        #expect(out.termination == .exited(7))
        #expect(out.stdout == input)
        #expect(out.stderr.count == 300_000)
        #expect(!out.timedOut)
    }

    @Test func childThatIgnoresStdin() throws {
        let out = try Subprocess.run(executable: "/bin/sh", arguments: ["-c", "exit 3"], environment: [:],
                                     stdin: [UInt8](repeating: 0, count: 2_000_000))
        #expect(out.termination == .exited(3))
    }

    @Test func helperHoldingThePipesDoesNotHoldUsUp() throws {
        let start = MonotonicClock.now()
        let out = try Subprocess.run(executable: "/bin/sh", arguments: ["-c", "sleep 30 & echo done"],
                                     environment: ["PATH": "/usr/bin:/bin"], deadline: Deadline(secondsFromNow: 20))
        #expect(MonotonicClock.now() - start < 3)
        #expect(out.termination == .exited(0))
        #expect(String(decoding: out.stdout, as: UTF8.self) == "done\n")
    }

    @Test func childThatClosesItsOutputsButKeepsRunning() throws {
        let start = MonotonicClock.now()
        let out = try Subprocess.run(executable: "/bin/sh", arguments: ["-c", "exec >&- 2>&-; sleep 30"],
                                     environment: ["PATH": "/usr/bin:/bin"], deadline: Deadline(secondsFromNow: 0.5))
        #expect(out.timedOut)
        #expect(out.termination == .signaled(SIGKILL))
        #expect(MonotonicClock.now() - start < 3)
    }

    @Test func signalTermination() throws {
        let out = try Subprocess.run(executable: "/bin/sh", arguments: ["-c", "kill -TERM $$"], environment: [:])
        #expect(out.termination == .signaled(SIGTERM))
        #expect(out.exitStatus == nil)
    }

    @Test func missingExecutable() {
        #expect(throws: Errno.self) { try Subprocess.run(executable: "/nonexistent/plugin", environment: [:]) }
    }

    @Test func findSearchesDirectoriesInOrder() throws {
        let a = try PluginDirectory(), b = try PluginDirectory()
        try b.script("p", "true")
        try a.script("q", "true")
        try "not executable".write(toFile: a.path + "/p", atomically: true, encoding: .utf8)
        #expect(Subprocess.find("p", in: [a.path, b.path]) == b.path + "/p")
        #expect(Subprocess.find("q", in: [a.path, b.path]) == a.path + "/q")
        #expect(Subprocess.find("../p", in: [a.path]) == nil)
        #expect(Subprocess.find("", in: [a.path]) == nil)
    }
}
