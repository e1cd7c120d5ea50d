import CNI
import CNIHarness
import Foundation
import JSON
import POSIX
import Testing

/// The recorded invocations of Fixtures/invocations.
let invocationsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../Fixtures/invocations").standardized.path

let canReplay = TestNamespace.isAvailable
let hasDebianPlugins = access("/usr/lib/cni/ptp", X_OK) == 0 && access("/usr/lib/cni/host-local", X_OK) == 0

@Suite struct JSONMatcherTests {
    func diff(_ expected: String, _ actual: String) throws -> [String] {
        JSONMatcher.differences(expected: try JSON(parsing: expected), actual: try JSON(parsing: actual))
    }

    @Test func equalValuesMatch() throws {
        #expect(try diff(#"{"a":[1,"x",true,null],"b":{"c":2.0}}"#, #"{"b":{"c":2},"a":[1,"x",true,null]}"#).isEmpty)
    }

    @Test func differencesNameTheirPath() throws {
        #expect(try diff(#"{"a":{"b":[1,2]}}"#, #"{"a":{"b":[1,3]}}"#) == ["$.a.b[1]: expected 2, got 3"])
        #expect(try diff(#"{"a":1}"#, #"{"a":1,"b":2}"#) == ["$.b: unexpected member 2"])
        #expect(try diff(#"{"a":1,"b":2}"#, #"{"a":1}"#) == ["$.b: expected 2, got nothing"])
        #expect(try diff(#"[1,2]"#, #"[1]"#) == ["$: expected 2 elements, got 1: [1]"])
    }

    @Test(arguments: [
        ("*", #""anything""#, true), ("<string>", "1", false), ("<int>", "3", true), ("<bool>", "false", true),
        ("<ip4>", #""10.0.0.1""#, true), ("<ip4>", #""fd00::1""#, false), ("<ip6>", #""fd00::1""#, true),
        ("<cidr4>", #""10.0.0.1/32""#, true), ("<cidr4>", #""10.0.0.1""#, false), ("<cidr6>", #""fd00::1/128""#, true),
        ("<cidr>", #""fd00::/8""#, true), ("<mac>", #""ee:ee:ee:ee:ee:ee""#, true), ("<mac>", #""EE:EE:EE:EE:EE:EE""#, false),
        ("<prefix:cali>", #""cali12345678901""#, true), ("<prefix:cali>", #""veth1""#, false),
        ("<contains:gc>", #""not allowed: gc""#, true), ("<regex:^[0-9.]+/32$>", #""172.29.10.66/32""#, true),
        ("<regex:^[0-9.]+/32$>", #""172.29.10.66/26""#, false), ("<object>", "{}", true), ("<array>", "{}", false),
    ])
    func matchers(pattern: String, actual: String, matches: Bool) throws {
        let d = JSONMatcher.differences(expected: .string(pattern), actual: try JSON(parsing: actual))
        #expect(d.isEmpty == matches, "\(d)")
    }

    @Test func absentAndOpenObjects() throws {
        #expect(try diff(#"{"a":1,"ips":"<absent>"}"#, #"{"a":1}"#).isEmpty)
        #expect(try diff(#"{"a":1,"ips":"<absent>"}"#, #"{"a":1,"ips":[]}"#) == ["$.ips: expected no member, got []"])
        #expect(try diff(#"{"a":1,"...":"*"}"#, #"{"a":1,"b":2,"c":3}"#).isEmpty)
        #expect(try diff(#"{"a":"*"}"#, #"{}"#) == ["$.a: expected *, got nothing"])
    }
}

@Suite struct PlaceholderTests {
    @Test func expands() throws {
        let p = Placeholders(["NETNS": "/var/run/netns/x", "ID": "c1"])
        #expect(try p.expand("${NETNS}") == "/var/run/netns/x")
        #expect(try p.expand("a ${ID}.${ID} b") == "a c1.c1 b")
        #expect(try p.expand("no placeholders $ {x}") == "no placeholders $ {x}")
        #expect(try p.expand("${NETNS:escape-slashes}") == #"\/var\/run\/netns\/x"#)
        #expect(try p.expand(JSON.object(["k": ["${ID}", 1]])) == JSON.object(["k": ["c1", 1]]))
    }

    @Test func unknownAndUnterminatedAreErrors() {
        #expect(throws: HarnessError.self) { try Placeholders(["A": "1"]).expand("${B}") }
        #expect(throws: HarnessError.self) { try Placeholders(["A": "1"]).expand("${A") }
    }
}

/// The fixtures themselves: all parse, and every outcome our dispatcher decides alone (bad
/// input, VERSION) is checked in-process here, so the calico fixtures are proven consistent
/// with the library before the plugins exist.
@Suite struct FixtureTests {
    @Test func everyFixtureParses() throws {
        let all = try Fixture.load(invocationsDirectory)
        #expect(all.count >= 60)
        for group in ["calico", "debian-ptp"] {
            #expect(all.contains { $0.path.contains("/\(group)/") })
        }
        for f in all { #expect(!f.steps.isEmpty && !f.description.isEmpty) }
    }

    @Test func calicoDispatcherOutcomesMatchTheLibrary() throws {
        let fixtures = try Fixture.load(invocationsDirectory + "/calico")
        var checked = 0
        for fixture in fixtures {
            let placeholders = Placeholders([
                "NETNS": "/var/run/netns/x", "HOST_NETNS": "/var/run/netns/h", "CNI_PATH": "/opt/cni/bin", "TMPDIR": "/tmp/x",
                "SQLITE_PATH": "/tmp/x/calico.sqlite", "CONTAINER_ID": "5baff64c-d028", "CONTAINER_ID2": "0e5a9c60", "PREV_RESULT": "{}",
            ])
            for step in fixture.steps where step.expect.errorCode != nil || step.env["CNI_COMMAND"] == "VERSION" {
                var env: [String: String] = [:]
                for (k, v) in step.env { env[k] = try placeholders.expand(v) }
                let plugin = RecordingPlugin()
                let out = CNIDispatcher.run(plugin, environment: env, stdin: Array(try placeholders.expand(step.stdin).utf8))
                let problems = try step.expect.outputProblems(exitCode: out.exitCode, stdout: out.stdout, placeholders: placeholders)
                #expect(problems.isEmpty, "\(fixture.path) \(step.description): \(problems)")
                #expect(plugin.log.calls.isEmpty, "\(fixture.path) \(step.description): the plugin ran")
                checked += 1
            }
        }
        #expect(checked >= 40)
    }
}

/// A temp dir holding fixtures and a shell-script plugin that misbehaves on purpose.
final class MisbehavingFixtures {
    let dir: PluginDirectory

    init() throws {
        dir = try PluginDirectory()
        // Prints its environment's A and HOME; with MODE=dirty it writes a file and adds a
        // link to the container namespace; with MODE=noisy it logs to stdout.
        try dir.script("misbehave", #"""
        case "$MODE" in
          dirty) echo x > "$TMPDIR/leak"; ip link add h0 type veth peer name c0 netns "$CNI_NETNS" ;;
          noisy) echo "starting"; ;;
        esac
        printf '{"a":"%s","home":"%s"}\n' "$A" "$HOME"
        """#)
    }

    func fixture(_ name: String, env: [String: String], expect: JSON) throws -> String {
        let f: JSON = ["description": .string(name), "pluginDir": .string(dir.path), "plugin": "misbehave",
                       "env": .object(env.mapValues { .string($0) }), "stdin": "", "expect": expect]
        let path = dir.path + "/" + name + ".json"
        try f.prettyText.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite(.serialized) struct ReplayTests {
    @Test(.enabled(if: canReplay && hasDebianPlugins, "needs root, ip, nsenter and /usr/lib/cni (containernetworking-plugins)"))
    func debianReferencePluginsPassTheirGroup() throws {
        let replayer = Replayer(options: ReplayOptions(pluginDirectory: "/nonexistent", timeout: 30))
        let fixtures = try Fixture.load(invocationsDirectory + "/debian-ptp")
        #expect(fixtures.count >= 20)
        for f in fixtures {
            let report = replayer.replay(f)
            #expect(report.passed, "\(report.lines().joined(separator: "\n"))")
        }
        // Nothing left behind.
        let left = try TestNamespace.ip(["netns", "list"])
        #expect(!left.contains("cnih-"))
    }

    @Test(.enabled(if: canReplay, "needs root, ip and nsenter"))
    func theHarnessSeesWhatAPluginChanged() throws {
        let m = try MisbehavingFixtures()
        let base = ["CNI_COMMAND": "ADD", "CNI_NETNS": "${NETNS}", "TMPDIR": "${TMPDIR}", "A": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let replayer = Replayer(options: ReplayOptions(pluginDirectory: "/nonexistent", timeout: 30))

        // Clean run: the environment is exactly the fixture's (no HOME from the test process).
        let clean = try m.fixture("clean", env: base, expect: ["stdout": ["a": "1", "home": ""], "unchanged": true])
        let ok = replayer.replay(try Fixture(path: clean))
        #expect(ok.passed, "\(ok.failures)")

        // A file in the temp dir and a link in the container: both reported.
        var dirtyEnv = base
        dirtyEnv["MODE"] = "dirty"
        let dirty = replayer.replay(try Fixture(path: try m.fixture("dirty", env: dirtyEnv, expect: ["unchanged": true, "containerLinks": ["lo"]])))
        #expect(!dirty.passed)
        #expect(dirty.failures.contains { $0.hasPrefix("container netns changed: + link c0") }, "\(dirty.failures)")
        #expect(dirty.failures.contains("file leak created"), "\(dirty.failures)")
        #expect(dirty.failures.contains { $0.hasPrefix("container links: expected [\"lo\"], got [\"c0\", \"lo\"]") }, "\(dirty.failures)")
        #expect(dirty.failures.contains { $0.hasPrefix("host netns changed: + link h0") }, "\(dirty.failures)")

        // Logs on stdout, a wrong value, a wrong exit expectation.
        var noisyEnv = base
        noisyEnv["MODE"] = "noisy"
        let noisy = replayer.replay(try Fixture(path: try m.fixture("noisy", env: noisyEnv, expect: ["stdout": ["a": "2", "home": ""]])))
        #expect(noisy.failures.contains { $0.hasPrefix("stdout is not one JSON value") }, "\(noisy.failures)")
        let wrong = replayer.replay(try Fixture(path: try m.fixture("wrong", env: base, expect: ["stdout": ["a": "2", "home": ""], "error": ["code": 4]])))
        #expect(wrong.failures.contains("stdout $.a: expected \"2\", got \"1\""), "\(wrong.failures)")
        #expect(wrong.failures.contains("exit status: expected non-zero, got 0"), "\(wrong.failures)")
        #expect(wrong.lines().first?.hasPrefix("FAIL ") == true)
    }

    /// A store written by SQLite: reads (which rewrite `-shm`) count as unchanged, a new row
    /// does not.
    @Test(.enabled(if: canReplay && access("/usr/bin/sqlite3", X_OK) == 0, "needs root, ip, nsenter and sqlite3"))
    func sqliteStoresAreComparedByContent() throws {
        let m = try MisbehavingFixtures()
        try m.dir.script("store", #"""
        sqlite3 "$SQLITE_PATH" "$SQL" > /dev/null
        """#)
        func step(_ sql: String, unchanged: Bool) -> JSON {
            ["env": ["SQLITE_PATH": "${SQLITE_PATH}", "SQL": .string(sql), "PATH": "/usr/bin:/bin"], "stdin": "",
             "expect": ["stdout": "", "unchanged": .bool(unchanged)]]
        }
        let f: JSON = ["description": "store", "pluginDir": .string(m.dir.path), "plugin": "store", "steps": [
            step("PRAGMA journal_mode=WAL; CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT); INSERT INTO kv VALUES ('a','1');", unchanged: false),
            step("SELECT * FROM kv;", unchanged: true),
            step("INSERT INTO kv VALUES ('calico/ipam/v2/handle/x','{}');", unchanged: true),
        ]]
        let path = m.dir.path + "/store.json"
        try f.prettyText.write(toFile: path, atomically: true, encoding: .utf8)
        let report = Replayer(options: ReplayOptions(pluginDirectory: "/nonexistent", timeout: 30)).replay(try Fixture(path: path))
        #expect(report.failures.count == 1, "\(report.failures)")
        #expect(report.failures.first?.hasPrefix("step 3 (step): file calico.sqlite changed: + INSERT INTO kv VALUES('calico/ipam/v2/handle/x','{}');") == true,
                "\(report.failures)")
    }

    /// The built `cni-harness` executable, next to the test bundle.
    static var harnessBinary: String? {
        var dirs: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            dirs.append(URL(fileURLWithPath: exe).deletingLastPathComponent().path)
        }
        for arg in CommandLine.arguments where arg.contains(".xctest") {
            var url = URL(fileURLWithPath: arg)
            while url.pathComponents.count > 1 && !url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
            dirs.append(url.deletingLastPathComponent().path)
        }
        return dirs.map { $0 + "/cni-harness" }.first { access($0, X_OK) == 0 }
    }

    @Test(.enabled(if: canReplay && hasDebianPlugins && harnessBinary != nil, "needs root, /usr/lib/cni and the built cni-harness"))
    func commandLineReplaysAGroup() throws {
        let out = try Subprocess.run(executable: Self.harnessBinary!, arguments: ["replay", invocationsDirectory + "/debian-ptp"],
                                     environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], deadline: Deadline(secondsFromNow: 120))
        let lines = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(out.termination == .exited(0), "\(lines)")
        let fixtures = try Fixture.load(invocationsDirectory + "/debian-ptp").count
        #expect(lines.last == "\(fixtures) passed, 0 failed")
        #expect(lines.dropLast().allSatisfy { $0.hasPrefix("ok   ") })
        #expect(lines.contains { $0.hasPrefix("ok   mesos-add-del-0.2.0.json — ") })
    }

    @Test(.enabled(if: canReplay && harnessBinary != nil, "needs root and the built cni-harness"))
    func commandLineReportsFailures() throws {
        let m = try MisbehavingFixtures()
        _ = try m.fixture("wrong", env: ["A": "1"], expect: ["stdout": ["a": "2", "home": ""]])
        let out = try Subprocess.run(executable: Self.harnessBinary!, arguments: ["replay", m.dir.path],
                                     environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], deadline: Deadline(secondsFromNow: 60))
        let text = String(decoding: out.stdout, as: UTF8.self)
        #expect(out.termination == .exited(1))
        #expect(text.contains("FAIL wrong.json — wrong\n       stdout $.a: expected \"2\", got \"1\""), "\(text)")
        #expect(text.hasSuffix("0 passed, 1 failed\n"))
    }
}
