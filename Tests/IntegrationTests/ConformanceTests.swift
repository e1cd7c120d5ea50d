import Foundation
import Testing
import TestSupport

/// Running the built `cni-harness conformance` the way a user does, and reading its lines.
enum ConformanceRun {
    static let harness = TestEnvironment.product("cni-harness")
    static let debianPlugins = "/usr/lib/cni"
    static let configs = TestEnvironment.repositoryRoot.appendingPathComponent("Fixtures/conformance").path

    static let canRun = TestEnvironment.canUseNamespaces && TestEnvironment.has("nsenter") && TestEnvironment.hasProduct("cni-harness")
    static let hasDebianPlugins = ["ptp", "host-local"].allSatisfy { FileManager.default.isExecutableFile(atPath: "\(debianPlugins)/\($0)") }
    static let hasOurPlugins = TestEnvironment.hasProduct("calico") && TestEnvironment.hasProduct("calico-ipam")

    /// One case line: `ok   0.4.0 DEL twice — detail`.
    struct Line: Hashable {
        var status: String
        var version: String
        var name: String
    }

    struct Outcome {
        var status: Int32
        var text: String
        var lines: [Line]
        var summary: (passed: Int, failed: Int, skipped: Int)?

        func with(_ status: String) -> Set<String> {
            Set(lines.filter { $0.status == status }.map { "\($0.version) \($0.name)" })
        }
    }

    /// Runs `cni-harness conformance <arguments>` with a minimal environment.
    static func run(_ arguments: [String]) throws -> Outcome {
        let r = try Command.run([harness, "conformance"] + arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], timeout: 900)
        var lines: [Line] = []
        var summary: (Int, Int, Int)?
        for raw in r.stdoutText.split(separator: "\n").map(String.init) {
            let words = raw.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if !raw.hasPrefix(" "), let status = words.first, ["ok", "FAIL", "skip"].contains(status), words.count >= 3 {
                // "<status padded to 4> <version> <name>[ — <detail>]"
                let rest = raw.dropFirst(5).split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
                let name = rest.components(separatedBy: " — ").first ?? rest
                lines.append(Line(status: status, version: words[1], name: name))
            }
            let parts = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 3, parts[0].hasSuffix(" passed"), parts[1].hasSuffix(" failed"), parts[2].hasSuffix(" skipped"),
               let p = Int(parts[0].dropLast(7)), let f = Int(parts[1].dropLast(7)), let s = Int(parts[2].dropLast(8)) {
                summary = (p, f, s)
            }
        }
        return Outcome(status: r.status, text: r.stdoutText + r.stderrText, lines: lines, summary: summary)
    }

    /// The cases that must be skipped for a plugin claiming `versions` (of the seven), and
    /// why each cannot apply: CHECK below 0.4.0; GC and STATUS below 1.1.0 (or without
    /// 1.1.0 at all); the old-version refusals at versions where they do not apply.
    static func expectedSkips(versions: [String], unclaimedExists: Bool) -> Set<String> {
        var out: Set<String> = []
        if !unclaimedExists { out.insert("any ADD at an unclaimed version → code 1") }
        for v in versions {
            let preCheck = ["0.1.0", "0.2.0", "0.3.0", "0.3.1"].contains(v)
            if preCheck {
                out.formUnion(["\(v) error: CHECK without CNI_NETNS → code 4", "\(v) CHECK with prevResult passes and changes nothing",
                               "\(v) CHECK detects a removed address", "\(v) CHECK detects a removed route"])
            } else {
                out.insert("\(v) error: CHECK at \(v) → code 1")
            }
            if v == "1.1.0" {
                out.formUnion(["1.1.0 error: GC at 1.1.0 → code 1", "1.1.0 error: STATUS at 1.1.0 → code 1"])
            } else {
                out.formUnion(["\(v) GC keeps the valid attachment and releases a leaked one", "\(v) STATUS succeeds and changes nothing"])
            }
        }
        return out
    }

    /// The versions with a `VERSION` case line, in order.
    static func versionsRun(_ o: Outcome) -> [String] {
        o.lines.filter { $0.name == "VERSION" }.map(\.version)
    }
}

@Suite(.serialized, .enabled(if: ConformanceRun.canRun, "needs root, ip, nsenter and the built cni-harness"))
struct ConformanceTests {
    static let earlyVersions = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]
    static let allVersions = earlyVersions + ["1.1.0"]

    @Test("Debian ptp + host-local pass 0.1.0–1.0.0; what cannot apply is skipped, not passed",
          .enabled(if: ConformanceRun.hasDebianPlugins, "needs /usr/lib/cni/ptp and host-local (containernetworking-plugins)"))
    func debianPTP() throws {
        let o = try ConformanceRun.run(["--plugin", "ptp", "--plugins", ConformanceRun.debianPlugins,
                                        "--config", ConformanceRun.configs + "/ptp.conf"])
        #expect(o.status == 0, "\(o.text)")
        let summary = try #require(o.summary, "no summary line: \(o.text)")
        #expect(summary.failed == 0, "\(o.text)")
        #expect(summary.passed == o.with("ok").count && summary.skipped == o.with("skip").count)
        #expect(ConformanceRun.versionsRun(o) == Self.earlyVersions, "ptp 1.1.1 claims 0.1.0–1.0.0")
        #expect(o.with("skip") == ConformanceRun.expectedSkips(versions: Self.earlyVersions, unclaimedExists: true), "\(o.text)")
        // The spec's hard parts were exercised, not skipped.
        for passed in ["any ADD at an unclaimed version → code 1", "1.0.0 DEL twice", "0.4.0 CHECK detects a removed route",
                       "0.2.0 repeated ADD for a live attachment keeps its address, once",
                       "0.1.0 8 concurrent ADDs on one network get distinct addresses; concurrent DELs",
                       "1.0.0 error: GC at 1.0.0 → an error (the plugin predates GC)"] {
            #expect(o.with("ok").contains(passed), "\(passed)")
        }
        #expect(summary.passed >= 180)
    }

    @Test("calico + calico-ipam pass all seven versions, GC and STATUS included",
          .enabled(if: ConformanceRun.hasOurPlugins, "needs the built calico and calico-ipam"))
    func calico() throws {
        let o = try ConformanceRun.run(["--plugin", "calico", "--plugins", TestEnvironment.productsDirectory.path,
                                        "--config", ConformanceRun.configs + "/calico.conf"])
        #expect(o.status == 0, "\(o.text)")
        let summary = try #require(o.summary, "no summary line: \(o.text)")
        #expect(summary.failed == 0, "\(o.text)")
        #expect(ConformanceRun.versionsRun(o) == Self.allVersions)
        #expect(o.with("skip") == ConformanceRun.expectedSkips(versions: Self.allVersions, unclaimedExists: false), "\(o.text)")
        for passed in ["1.1.0 GC keeps the valid attachment and releases a leaked one", "1.1.0 STATUS succeeds and changes nothing",
                       "1.0.0 error: GC at 1.0.0 → code 1", "0.3.1 error: STATUS at 0.3.1 → code 1",
                       "0.2.0 error: CHECK at 0.2.0 → code 1", "1.1.0 a failed ADD (interface name taken) rolls back"] {
            #expect(o.with("ok").contains(passed), "\(passed)")
        }
        #expect(summary.passed >= 210)
    }

    @Test("calico passes the Mesos mode, DC/OS port-mapper delegate included",
          .enabled(if: ConformanceRun.hasOurPlugins, "needs the built calico and calico-ipam"))
    func calicoMesos() throws {
        let o = try ConformanceRun.run(["--plugin", "calico", "--plugins", TestEnvironment.productsDirectory.path,
                                        "--config", ConformanceRun.configs + "/calico.conf", "--mesos"])
        #expect(o.status == 0, "\(o.text)")
        let summary = try #require(o.summary, "no summary line: \(o.text)")
        #expect(summary.failed == 0 && summary.skipped == 0, "\(o.text)")
        // cniVersion left out, 0.1.0 and 0.2.0: what a Mesos agent can use.
        #expect(Set(o.lines.map(\.version)) == ["any", "unset", "0.1.0", "0.2.0"])
        #expect(o.with("ok").contains("any DC/OS port-mapper delegate (0.1.0, port_mappings): ip4 back, DEL with the same stdin"))
        #expect(o.with("ok").contains("unset DEL without CNI_NETNS after the namespace is gone (agent reboot)"))
        #expect(summary.passed == 22)
    }

    @Test("a 0.3+ config in Mesos mode fails as Mesos would fail it (no ip4)",
          .enabled(if: ConformanceRun.hasOurPlugins, "needs the built calico and calico-ipam"))
    func mesosRejectsCurrentResults() throws {
        let o = try ConformanceRun.run(["--plugin", "calico", "--plugins", TestEnvironment.productsDirectory.path,
                                        "--config", ConformanceRun.configs + "/calico.conf", "--mesos", "--versions", "1.0.0"])
        #expect(o.status == 1)
        #expect(o.text.contains("no ip4 in the result (a 0.3+ result: Mesos reads no address from ips): the task would get no IP"), "\(o.text)")
        #expect(o.with("FAIL").contains("1.0.0 ADD with labels {} (no inner list)"))
    }
}

/// Plugins that break the spec on purpose: the harness must fail them, and say why.
@Suite(.serialized, .enabled(if: ConformanceRun.canRun && ConformanceRun.hasDebianPlugins,
                             "needs root, ip, nsenter, the built cni-harness and /usr/lib/cni"))
struct ConformanceHarnessSensitivityTests {
    /// A plugin directory holding host-local and a `ptp` shell wrapper around Debian's ptp.
    static func wrapped(_ script: String) throws -> (dir: URL, config: String) {
        let dir = TestEnvironment.temporaryDirectory("conformance-wrapped")
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("host-local").path, withDestinationPath: "/usr/lib/cni/host-local")
        let wrapper = dir.appendingPathComponent("ptp").path
        try ("#!/bin/sh\n" + script + "\n").write(toFile: wrapper, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper)
        return (dir, ConformanceRun.configs + "/ptp.conf")
    }

    @Test("a plugin whose DEL does nothing fails DEL twice, DEL without CNI_NETNS and the concurrency case")
    func delThatLeaks() throws {
        let (dir, config) = try Self.wrapped(#"[ "$CNI_COMMAND" = DEL ] && exit 0; exec /usr/lib/cni/ptp"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        let o = try ConformanceRun.run(["--plugin", "ptp", "--plugins", dir.path, "--config", config, "--versions", "1.0.0"])
        #expect(o.status == 1)
        let failed = o.with("FAIL")
        for name in ["1.0.0 DEL twice", "1.0.0 DEL without CNI_NETNS (the namespace is gone), unset and exported empty",
                     "1.0.0 8 concurrent ADDs on one network get distinct addresses; concurrent DELs"] {
            #expect(failed.contains(name), "\(o.text)")
        }
        #expect(o.text.contains("after DEL the container still has links [\"eth0\", \"lo\"]"))
        #expect(o.text.contains("after DEL IPAM still holds an address for the container: IPAM ADD refused"))
        // What the wrapper does not touch still passes.
        #expect(o.with("ok").contains("1.0.0 error: ADD with empty stdin → code 6"))
        #expect(o.summary?.failed == failed.count)
    }

    @Test("a plugin that logs on stdout fails every ADD, and Mesos would get no result")
    func logsOnStdout() throws {
        let (dir, config) = try Self.wrapped(#"[ "$CNI_COMMAND" = ADD ] && echo "ptp: adding $CNI_CONTAINERID"; exec /usr/lib/cni/ptp"#)
        defer { try? FileManager.default.removeItem(at: dir) }
        let o = try ConformanceRun.run(["--plugin", "ptp", "--plugins", dir.path, "--config", config, "--versions", "0.4.0"])
        #expect(o.status == 1)
        #expect(o.with("FAIL").contains("0.4.0 ADD: 0.4.0 result shape, addresses and routes in the container"), "\(o.text)")
        #expect(o.text.contains("ADD stdout is not one JSON value: ptp: adding"))
        let m = try ConformanceRun.run(["--plugin", "ptp", "--plugins", dir.path, "--config", config, "--mesos", "--versions", "0.2.0"])
        #expect(m.status == 1)
        #expect(m.with("FAIL").contains("0.2.0 ADD as Mesos (six variables, sorted stdin with network_info): one object with ip4, DEL with identical stdin"), "\(m.text)")
    }

    @Test("a plugin that answers a bad ifname with success and a bad error code is caught, and its change is seen")
    func ignoresValidation() throws {
        // Accepts any CNI_IFNAME by renaming it, and reports a missing variable with code 999.
        let (dir, config) = try Self.wrapped(#"""
        if [ -z "$CNI_CONTAINERID" ] && [ "$CNI_COMMAND" = ADD ]; then echo '{"code":999,"msg":"nope"}'; exit 1; fi
        case "$CNI_IFNAME" in *[/:\ ]*|.|..) CNI_IFNAME=eth9 ;; esac
        export CNI_IFNAME
        exec /usr/lib/cni/ptp
        """#)
        defer { try? FileManager.default.removeItem(at: dir) }
        let o = try ConformanceRun.run(["--plugin", "ptp", "--plugins", dir.path, "--config", config, "--versions", "1.0.0"])
        #expect(o.status == 1)
        let failed = o.with("FAIL")
        #expect(failed.contains("1.0.0 error: ADD with interface name \"eth:0\" → code 4"), "\(o.text)")
        #expect(failed.contains("1.0.0 error: ADD without CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME → code 4 naming all three"))
        #expect(o.text.contains("error code 999, expected 4"))
        #expect(o.text.contains("changed: + link eth9"), "the link the bad ADD made is reported")
    }
}
