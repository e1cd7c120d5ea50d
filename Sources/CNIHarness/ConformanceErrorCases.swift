import CNI
import JSON

/// A bad invocation and the error the spec requires for it (REFERENCE.md §2: the reference
/// validation order and codes).
struct ErrorCase {
    var name: String
    /// The acceptable codes; nil: any error object.
    var codes: Set<Int>?
    /// Why it cannot apply at a version, or nil.
    var skip: (CNIVersion) -> String? = { _ in nil }
    /// Names the error's `msg` or `details` must mention (all missing variables at once).
    var mustName: [String] = []
    /// Whether printing nothing (no result, no error object) is also acceptable.
    var allowsSilence = false
    /// The environment and stdin, given the world and the live attachment.
    var invocation: (ConformanceWorld, Attachment) -> (env: [String: String], stdin: [UInt8])
}

extension CaseContext {
    /// Every required error, each invoked while a live attachment exists (so "no change"
    /// also means "nothing of the live attachment was undone"): the error object on stdout,
    /// a non-zero exit, and no change to the host, the container or `${DATADIR}`.
    func errorCases(version v: CNIVersion, progress: (ConformanceCaseResult) -> Void) -> [ConformanceCaseResult] {
        let cases = errorTable(v)
        var results: [ConformanceCaseResult] = []
        let label = v.description
        func emit(_ r: ConformanceCaseResult) {
            results.append(r)
            progress(r)
        }
        let world: ConformanceWorld
        let live: Attachment
        do {
            world = try ConformanceWorld(options: options, version: v)
            let (a, _, problems) = try world.add()
            guard problems.isEmpty else {
                world.close()
                for c in cases { emit(.init(version: label, name: "error: " + c.name, status: .failed, problems: ["setup ADD of the live attachment: "] + problems)) }
                return results
            }
            live = a
        } catch {
            for c in cases { emit(.init(version: label, name: "error: " + c.name, status: .failed, problems: ["harness: \(error)"])) }
            return results
        }
        defer {
            _ = try? world.del(live)
            world.close()
        }
        var baseline: WorldState? = nil
        for c in cases {
            if let reason = c.skip(v) {
                emit(.init(version: label, name: "error: " + c.name, status: .skipped, detail: reason))
                continue
            }
            emit(Self.evaluate(label, "error: " + c.name) {
                let before = try baseline ?? world.state([live.namespace!])
                let (env, stdin) = c.invocation(world, live)
                let run = try world.run(env: env, stdin: stdin)
                var verdict = CaseVerdict()
                let silent = run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                if !(c.allowsSilence && silent) {
                    verdict.problems += Checks.error(run, c.name, codes: c.codes)
                }
                let json = try? JSON(parsing: run.stdout)
                let text = (json?["msg"]?.stringValue ?? "") + " " + (json?["details"]?.stringValue ?? "")
                for name in c.mustName where !text.contains(name) {
                    verdict.problems.append("the error does not name \(name): \(Checks.clip(run.stdoutText))")
                }
                let after = try world.state([live.namespace!])
                let changes = before.changes(to: after)
                verdict.problems += changes
                baseline = changes.isEmpty ? after : nil
                verdict.detail = json.map { "code \($0["code"]?.compactText ?? "?"): \($0["msg"]?.stringValue ?? "")" } ?? "no output, exit \(run.exitCode)"
                return verdict
            })
        }
        return results
    }

    func errorTable(_ v: CNIVersion) -> [ErrorCase] {
        let attachmentVariables = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]
        func add(_ w: ConformanceWorld, _ a: Attachment, containerID: String? = nil, ifname: String? = nil, stdin: [UInt8]? = nil)
            -> (env: [String: String], stdin: [UInt8]) {
            (w.environment(command: "ADD", containerID: containerID ?? a.containerID, netns: a.netnsPath, ifname: ifname ?? a.interfaceName),
             stdin ?? w.stdin())
        }
        func withConfig(_ w: ConformanceWorld, _ change: (inout [String: JSON]) -> Void) -> [UInt8] {
            guard case .object(var o) = w.config else { return [] }
            change(&o)
            return Array(JSON.object(o).compactText.utf8)
        }
        var table: [ErrorCase] = [
            ErrorCase(name: "ADD without CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME → code 4 naming all three", codes: [4],
                      mustName: attachmentVariables) { w, _ in
                (w.environment(command: "ADD", containerID: nil, netns: nil, ifname: nil), w.stdin())
            },
            ErrorCase(name: "ADD with them exported empty (as libcni runtimes do) → code 4", codes: [4], mustName: attachmentVariables) { w, _ in
                (w.environment(command: "ADD", containerID: "", netns: "", ifname: ""), w.stdin())
            },
            ErrorCase(name: "DEL without CNI_IFNAME → code 4", codes: [4]) { w, a in
                (w.environment(command: "DEL", containerID: a.containerID, netns: a.netnsPath, ifname: nil), w.stdin(prevResult: w.prevResult(for: a)))
            },
            ErrorCase(name: "CHECK without CNI_NETNS → code 4", codes: [4], skip: { Self.needs(.v0_4_0, $0, "CHECK") }) { w, a in
                (w.environment(command: "CHECK", containerID: a.containerID, netns: nil, ifname: a.interfaceName), w.stdin(prevResult: a.result))
            },
            ErrorCase(name: "ADD with empty stdin → code 6", codes: [6]) { w, a in add(w, a, stdin: []) },
            ErrorCase(name: "ADD with malformed JSON → code 6", codes: [6]) { w, a in add(w, a, stdin: Array(w.stdin().dropLast())) },
            ErrorCase(name: "ADD without a network name → code 7", codes: [7]) { w, a in
                add(w, a, stdin: withConfig(w) { $0["name"] = nil })
            },
            ErrorCase(name: "ADD with network name \"bad/name\" → code 7", codes: [7]) { w, a in
                add(w, a, stdin: withConfig(w) { $0["name"] = "bad/name" })
            },
            ErrorCase(name: "ADD with container id \"bad/id\" → code 4", codes: [4]) { w, a in add(w, a, containerID: "bad/id") },
            ErrorCase(name: "DEL with container id \"bad/id\" → code 4", codes: [4]) { w, a in
                (w.environment(command: "DEL", containerID: "bad/id", netns: a.netnsPath, ifname: a.interfaceName), w.stdin())
            },
        ]
        for (label, ifname) in [("16 bytes", "eth0123456789abc"), ("\".\"", "."), ("\"..\"", ".."), ("\"eth/0\"", "eth/0"),
                                ("\"eth:0\"", "eth:0"), ("\"eth 0\"", "eth 0")] {
            table.append(ErrorCase(name: "ADD with interface name \(label) → code 4", codes: [4]) { w, a in add(w, a, ifname: ifname) })
        }
        table += [
            ErrorCase(name: "CHECK at \(v) → code 1", codes: [1], skip: { $0 < .v0_4_0 ? nil : "applies below 0.4.0" }) { w, a in
                (w.environment("CHECK", a), w.stdin())
            },
            ErrorCase(name: "GC at \(v) → " + (claimsGC ? "code 1" : "an error (the plugin predates GC)"), codes: claimsGC ? [1] : nil,
                      skip: { $0 < .v1_1_0 ? nil : "applies below 1.1.0" }) { w, _ in
                (w.environment(command: "GC", containerID: nil, netns: nil, ifname: nil), w.stdin(extra: ["cni.dev/valid-attachments": []]))
            },
            ErrorCase(name: "STATUS at \(v) → " + (claimsGC ? "code 1" : "an error (the plugin predates STATUS)"), codes: claimsGC ? [1] : nil,
                      skip: { $0 < .v1_1_0 ? nil : "applies below 1.1.0" }) { w, _ in
                (w.environment(command: "STATUS", containerID: nil, netns: nil, ifname: nil), w.stdin())
            },
            ErrorCase(name: "unknown command FOO → code 4", codes: [4]) { w, a in (w.environment("FOO", a), w.stdin()) },
            ErrorCase(name: "ADD with an unknown CNI_ARGS key → an error", codes: nil) { w, a in
                (w.environment(command: "ADD", containerID: a.containerID, netns: a.netnsPath, ifname: a.interfaceName, cniArgs: "CONFORMANCE_UNKNOWN=1"), w.stdin())
            },
            ErrorCase(name: "no CNI_COMMAND → code 4 or nothing at all", codes: [4], allowsSilence: true) { w, a in
                (w.environment(command: nil, containerID: a.containerID, netns: a.netnsPath, ifname: a.interfaceName), w.stdin())
            },
        ]
        return table
    }
}
