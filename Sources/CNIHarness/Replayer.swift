import CNI
import Foundation
import JSON
import POSIX

/// How fixtures are replayed.
public struct ReplayOptions: Sendable {
    /// Where plugin binaries are found unless a fixture names its own `pluginDir`; also
    /// `${CNI_PATH}`.
    public var pluginDirectory: String
    /// Seconds each plugin execution may take.
    public var timeout: Double

    public init(pluginDirectory: String, timeout: Double = 60) {
        self.pluginDirectory = pluginDirectory
        self.timeout = timeout
    }
}

/// The outcome of one fixture.
public struct FixtureReport: Sendable {
    public var path: String
    public var description: String
    /// What differed, one readable line each; empty when the fixture passed.
    public var failures: [String]
    /// Each step's wall time, seconds.
    public var durations: [Double]

    public var passed: Bool { failures.isEmpty }

    /// `ok   <path> — <description>`, or `FAIL ...` followed by indented differences.
    public func lines(relativeTo root: String? = nil) -> [String] {
        var shown = path
        if let root, shown.hasPrefix(root) {
            shown = String(shown.dropFirst(root.count))
            while shown.hasPrefix("/") { shown.removeFirst() }
            if shown.isEmpty { shown = (path as NSString).lastPathComponent }
        }
        if passed { return ["ok   \(shown) — \(description)"] }
        return ["FAIL \(shown) — \(description)"] + failures.map { "       " + $0 }
    }
}

/// Replays fixtures: per fixture a temp dir, a container namespace (`${NETNS}`) and a
/// namespace playing the host in which the plugin runs (`${HOST_NETNS}`), all removed
/// afterwards.
///
/// Placeholders: `${NETNS}`, `${HOST_NETNS}`, `${CNI_PATH}` (the plugin directory),
/// `${TMPDIR}` (the fixture's temp dir), `${SQLITE_PATH}` (`${TMPDIR}/calico.sqlite`),
/// `${CONTAINER_ID}` and `${CONTAINER_ID2}` (fresh UUIDs), and `${PREV_RESULT}` (the
/// compact stdout of the fixture's last successful ADD, as libcni feeds `prevResult`).
public struct Replayer: Sendable {
    public var options: ReplayOptions

    public init(options: ReplayOptions) { self.options = options }

    /// Replays one fixture; harness problems (no root, bad fixture) are reported as failures.
    public func replay(_ fixture: Fixture) -> FixtureReport {
        var report = FixtureReport(path: fixture.path, description: fixture.description, failures: [], durations: [])
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("cni-harness-\(UUID().uuidString.lowercased())").path
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        do {
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            let container = try TestNamespace(prefix: "cnih-c")
            defer { container.delete() }
            let host = try TestNamespace(prefix: "cnih-h", loopbackUp: true)
            defer { host.delete() }
            let pluginDir = fixture.pluginDirectory ?? options.pluginDirectory
            var placeholders = Placeholders([
                "NETNS": container.path, "HOST_NETNS": host.path, "CNI_PATH": pluginDir, "TMPDIR": tmp,
                "SQLITE_PATH": tmp + "/calico.sqlite",
                "CONTAINER_ID": UUID().uuidString.lowercased(), "CONTAINER_ID2": UUID().uuidString.lowercased(),
            ])
            let runner = PluginRunner(timeout: options.timeout)
            for (i, step) in fixture.steps.enumerated() {
                let label = fixture.steps.count > 1 ? "step \(i + 1) (\(step.description)): " : ""
                let problems = try runStep(step, pluginDir: pluginDir, placeholders: &placeholders, runner: runner,
                                           container: container, host: host, tmp: tmp, durations: &report.durations)
                report.failures += problems.map { label + $0 }
            }
        } catch {
            report.failures.append("harness: \(error)")
        }
        return report
    }

    private func runStep(_ step: Fixture.Step, pluginDir: String, placeholders: inout Placeholders, runner: PluginRunner,
                         container: TestNamespace, host: TestNamespace, tmp: String, durations: inout [Double]) throws -> [String] {
        var env: [String: String] = [:]
        for (k, v) in step.env { env[k] = try placeholders.expand(v) }
        let stdin = try placeholders.expand(step.stdin)
        let executable = pluginDir + "/" + step.plugin
        guard access(executable, X_OK) == 0 else { throw HarnessError("plugin \(executable) not found or not executable") }

        let x = step.expect
        let before = x.unchanged ? (try container.snapshot(), try host.snapshot(), DirectorySnapshot(tmp)) : nil
        let arguments = try step.arguments.map { try placeholders.expand($0) }
        let run = try runner.run(executable: executable, arguments: arguments, environment: env, stdin: Array(stdin.utf8), namespace: host)
        durations.append(run.duration)
        var problems: [String] = []
        if run.timedOut { problems.append("killed after \(options.timeout) s") }
        problems += try x.outputProblems(exitCode: run.exitCode, stdout: run.stdout, placeholders: placeholders)
        let stdoutTrimmed = run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let parsed: JSON? = stdoutTrimmed.isEmpty ? nil : try? JSON(parsing: stdoutTrimmed)
        // Kernel and file state.
        if let before {
            let after = (try container.snapshot(), try host.snapshot(), DirectorySnapshot(tmp))
            problems += Self.diff(before.0, after.0).map { "container netns changed: " + $0 }
            problems += Self.diff(before.1, after.1).map { "host netns changed: " + $0 }
            problems += after.2.changes(since: before.2)
        }
        if let links = x.containerLinks {
            let actual = try container.linkNames()
            if actual != links { problems.append("container links: expected \(links), got \(actual)") }
        }
        if !x.containerMTU.isEmpty {
            let mtus = try container.mtus()
            for (name, want) in x.containerMTU.sorted(by: { $0.key < $1.key }) where mtus[name] != want {
                problems.append("container link \(name): expected MTU \(want), got \(mtus[name].map(String.init) ?? "no such link")")
            }
        }
        if x.containerHasResultAddresses {
            if let parsed, let result = try? CNIResult(parsing: parsed) {
                let present = Set(try container.addresses().map { String($0.split(separator: " ").last ?? "") })
                for ip in result.ips where !present.contains(ip.address.description) {
                    problems.append("address \(ip.address) of the result is not in the container netns (has \(present.sorted()))")
                }
                if result.ips.isEmpty { problems.append("the result has no addresses") }
            } else {
                problems.append("stdout is not a result: \(Self.clip(run.stdoutText))")
            }
        }
        if !problems.isEmpty && !run.stderr.isEmpty { problems.append("stderr: \(Self.clip(run.stderrText))") }
        if env["CNI_COMMAND"] == "ADD", run.exitCode == 0, let parsed { placeholders.values["PREV_RESULT"] = parsed.compactText }
        return problems
    }

    /// `+ line` / `- line` for what appeared / disappeared.
    static func diff(_ a: [String], _ b: [String]) -> [String] {
        let sa = Set(a), sb = Set(b)
        return b.filter { !sa.contains($0) }.map { "+ " + $0 } + a.filter { !sb.contains($0) }.map { "- " + $0 }
    }

    static func clip(_ s: String) -> String {
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "⏎")
        return t.count > 400 ? String(t.prefix(400)) + "…" : t
    }
}

extension Fixture.Expectation {
    /// What differs between this expectation and a plugin's exit status and stdout (the
    /// parts that need no kernel: exit status, "empty or one JSON value", the error object,
    /// the stdout matchers). Usable without namespaces, e.g. against an in-process dispatcher.
    public func outputProblems(exitCode: Int32, stdout: [UInt8], placeholders: Placeholders) throws -> [String] {
        var problems: [String] = []
        let text = String(decoding: stdout, as: UTF8.self)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let parsed: JSON? = trimmed.isEmpty ? nil : try? JSON(parsing: trimmed)
        if let want = self.exitCode {
            if exitCode != want { problems.append("exit status: expected \(want), got \(exitCode)") }
        } else if errorCode != nil {
            if exitCode == 0 { problems.append("exit status: expected non-zero, got 0") }
        } else if exitCode != 0 {
            problems.append("exit status: expected 0, got \(exitCode)")
        }
        // stdout: nothing, or exactly one JSON value (logs belong on stderr).
        if !trimmed.isEmpty && parsed == nil { problems.append("stdout is not one JSON value: \(Replayer.clip(text))") }
        if let code = errorCode {
            if let parsed, parsed.objectValue != nil {
                if parsed["code"]?.intValue != code { problems.append("error code: expected \(code), got \(parsed["code"]?.compactText ?? "none")") }
                if let m = errorMessage, !(parsed["msg"]?.stringValue ?? "").contains(try placeholders.expand(m)) {
                    problems.append("error msg: expected to contain \"\(m)\", got \(parsed["msg"]?.compactText ?? "none")")
                }
                if let v = errorVersion, parsed["cniVersion"]?.stringValue != v {
                    problems.append("error cniVersion: expected \(v), got \(parsed["cniVersion"]?.compactText ?? "none")")
                }
            } else {
                problems.append("expected an error object with code \(code), stdout: \(Replayer.clip(text))")
            }
        }
        if let want = self.stdout {
            if want == .string("") {
                if !trimmed.isEmpty { problems.append("stdout: expected nothing, got \(Replayer.clip(text))") }
            } else if let parsed {
                problems += JSONMatcher.differences(expected: try placeholders.expand(want), actual: parsed).map { "stdout " + $0 }
            } else if trimmed.isEmpty {
                problems.append("stdout: expected \(want.compactText), got nothing")
            }
        }
        return problems
    }
}
