import CNI
import Foundation
import JSON

/// What `cni-harness conformance` runs.
public struct ConformanceOptions: Sendable {
    /// The main plugin's name (a file in `pluginDirectory`).
    public var plugin: String
    /// Where the plugin and its IPAM are; also `CNI_PATH`.
    public var pluginDirectory: String
    /// The network config (without `cniVersion`, which each case sets). Strings may hold
    /// `${DATADIR}` (a fresh temp dir per case) and `${CNI_PATH}`.
    public var config: JSON
    /// The versions to run; nil: every version the plugin claims in VERSION.
    public var versions: [String]?
    /// Invoke and judge as the Mesos CNI isolator does (REFERENCE.md §1) instead of the
    /// spec cases.
    public var mesos: Bool
    /// Seconds one plugin execution may take.
    public var timeout: Double
    /// How many ADDs the concurrency case starts at once.
    public var concurrency: Int

    public init(plugin: String, pluginDirectory: String, config: JSON, versions: [String]? = nil, mesos: Bool = false,
                timeout: Double = 60, concurrency: Int = 8) {
        self.plugin = plugin
        self.pluginDirectory = pluginDirectory
        self.config = config
        self.versions = versions
        self.mesos = mesos
        self.timeout = timeout
        self.concurrency = concurrency
    }

    /// Reads a config file: one JSON object with `name`, `type` and `ipam.type`.
    public static func loadConfig(path: String) throws -> JSON {
        guard let data = FileManager.default.contents(atPath: path) else { throw HarnessError("\(path): cannot read") }
        let json: JSON
        do { json = try JSON(parsing: [UInt8](data)) } catch { throw HarnessError("\(path): \(error)") }
        guard json.objectValue != nil else { throw HarnessError("\(path): not a JSON object") }
        guard json["name"]?.stringValue != nil, json["type"]?.stringValue != nil else {
            throw HarnessError("\(path): a network config needs \"name\" and \"type\"")
        }
        guard json["ipam"]?["type"]?.stringValue != nil else { throw HarnessError("\(path): the harness needs an \"ipam\" with a \"type\"") }
        return json
    }
}

/// The outcome of one case.
public struct ConformanceCaseResult: Sendable {
    /// How a case ended; the raw value starts its line.
    public enum Status: String, Sendable {
        /// Everything the case checks held.
        case passed = "ok"
        /// Something differed (listed in `problems`), or the harness itself failed.
        case failed = "FAIL"
        /// The case cannot apply to this plugin or version (the reason is in `detail`).
        case skipped = "skip"
    }

    /// The `cniVersion` the case ran at (`unset`: the config had none; `any`: not
    /// version-specific).
    public var version: String
    public var name: String
    public var status: Status
    /// For a pass: what was seen (e.g. the address); for a skip: why.
    public var detail: String
    /// For a failure: what differed, one line each.
    public var problems: [String]

    public init(version: String, name: String, status: Status, detail: String = "", problems: [String] = []) {
        self.version = version
        self.name = name
        self.status = status
        self.detail = detail
        self.problems = problems
    }

    /// `ok   0.4.0 DEL twice — detail`, or `FAIL …` followed by indented problems.
    public var lines: [String] {
        let status = self.status.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0)
        let head = "\(status) \(version) \(name)" + (detail.isEmpty ? "" : " — \(detail)")
        return [head] + problems.map { "       " + $0 }
    }
}

/// Every case's outcome, in the order they ran.
public struct ConformanceReport: Sendable {
    public var results: [ConformanceCaseResult] = []

    public var passed: Int { results.filter { $0.status == .passed }.count }
    public var failed: Int { results.filter { $0.status == .failed }.count }
    public var skipped: Int { results.filter { $0.status == .skipped }.count }

    /// `N passed, N failed, N skipped`.
    public var summary: String { "\(passed) passed, \(failed) failed, \(skipped) skipped" }
}

/// Runs a CNI main plugin and its IPAM through the specification (REFERENCE.md §2), or
/// through the Mesos isolator's invocations (§1), for each version the plugin claims.
///
/// Every case gets its own world (`ConformanceWorld`): a temp `${DATADIR}`, a namespace
/// playing the host in which the plugin runs, and fresh container namespaces. Cases that
/// cannot apply (CHECK below 0.4.0, GC without 1.1.0) are skipped with the reason, never
/// counted as passed.
public struct ConformanceSuite: Sendable {
    public var options: ConformanceOptions

    public init(options: ConformanceOptions) { self.options = options }

    /// Runs every case, handing each result to `progress` as it completes.
    public func run(progress: (ConformanceCaseResult) -> Void = { _ in }) -> ConformanceReport {
        var report = ConformanceReport()
        func record(_ r: ConformanceCaseResult) {
            report.results.append(r)
            progress(r)
        }
        guard TestNamespace.isAvailable else {
            record(.init(version: "any", name: "setup", status: .failed, problems: ["needs root, ip and nsenter (it creates network namespaces)"]))
            return report
        }
        let claims: PluginClaims
        do {
            claims = try PluginClaims.discover(options: options)
        } catch {
            record(.init(version: "any", name: "VERSION of \(options.plugin)", status: .failed, problems: ["\(error)"]))
            return report
        }
        let cases = CaseContext(options: options, claims: claims)
        for r in cases.pluginWideCases() { record(r) }
        for v in claims.versionsToRun {
            switch v {
            case .unclaimed(let label):
                record(.init(version: label, name: "every case", status: .skipped, detail: "\(options.plugin) does not claim \(label) (it claims \(claims.supported.joined(separator: ", ")))"))
            case .unknown(let label):
                record(.init(version: label, name: "every case", status: .skipped, detail: "the harness does not know CNI version \(label)"))
            case .run(let version):
                let results = options.mesos ? cases.mesosCases(version: version, progress: progress) : cases.specCases(version: version!, progress: progress)
                report.results += results
            }
        }
        return report
    }
}

/// What VERSION said, and which versions to run.
struct PluginClaims {
    enum Planned {
        /// Run at this version (nil: the config without `cniVersion`, Mesos only).
        case run(CNIVersion?)
        case unclaimed(String)
        case unknown(String)
    }

    /// `supportedVersions` of the main plugin.
    var supported: [String]
    var versionsToRun: [Planned]

    func claims(_ v: CNIVersion) -> Bool { supported.contains(v.description) }

    /// Asks the plugin with VERSION (as libcni does: only `CNI_COMMAND` and `PATH`, stdin
    /// `{"cniVersion":"1.0.0"}`) and plans the versions to run.
    static func discover(options: ConformanceOptions) throws -> PluginClaims {
        let executable = options.pluginDirectory + "/" + options.plugin
        guard access(executable, X_OK) == 0 else { throw HarnessError("plugin \(executable) not found or not executable") }
        let run = try PluginRunner(timeout: options.timeout).run(
            executable: executable, environment: ["CNI_COMMAND": "VERSION", "PATH": ConformanceWorld.path],
            stdin: Array(#"{"cniVersion":"1.0.0"}"#.utf8))
        guard run.exitCode == 0, let json = try? JSON(parsing: run.stdout),
              let list = json["supportedVersions"]?.arrayValue?.compactMap(\.stringValue), !list.isEmpty
        else {
            throw HarnessError("VERSION did not print supportedVersions (exit \(run.exitCode)): \(Checks.clip(run.stdoutText))")
        }
        var planned: [Planned] = []
        let requested: [String]
        if let asked = options.versions {
            requested = asked
        } else if options.mesos {
            // What a Mesos agent can use: the 0.1/0.2 result shape, and no cniVersion at all.
            requested = ["unset"] + ["0.1.0", "0.2.0"].filter { list.contains($0) }
        } else {
            requested = list
        }
        for label in requested {
            if label == "unset" && options.mesos {
                if list.contains("0.1.0") { planned.append(.run(nil)) } else { planned.append(.unclaimed("0.1.0 (cniVersion unset)")) }
            } else if let v = CNIVersion(label), v.isKnown {
                planned.append(list.contains(label) ? .run(v) : .unclaimed(label))
            } else {
                planned.append(.unknown(label))
            }
        }
        return PluginClaims(supported: list, versionsToRun: planned)
    }
}
