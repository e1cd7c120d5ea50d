import CNI
import Foundation
import IPAddress
import JSON

/// Thrown by a case body that finds it cannot apply (e.g. no route to remove).
struct CaseSkip: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A case's finding: problems (none: passed) and, for a pass, what was seen.
struct CaseVerdict {
    var problems: [String] = []
    var detail: String = ""
}

/// The cases, and how one runs.
struct CaseContext {
    let options: ConformanceOptions
    let claims: PluginClaims

    var claimsGC: Bool { claims.claims(.v1_1_0) }

    /// Runs `body` in a fresh world at `version`, unless `skip` says why it cannot apply.
    func runCase(_ version: CNIVersion?, _ name: String, skip: String? = nil,
                 progress: (ConformanceCaseResult) -> Void, into results: inout [ConformanceCaseResult],
                 _ body: (ConformanceWorld) throws -> CaseVerdict) {
        let label = version?.description ?? "unset"
        let result: ConformanceCaseResult
        if let skip {
            result = .init(version: label, name: name, status: .skipped, detail: skip)
        } else {
            result = Self.evaluate(label, name) {
                let world = try ConformanceWorld(options: options, version: version)
                defer { world.close() }
                return try body(world)
            }
        }
        results.append(result)
        progress(result)
    }

    static func evaluate(_ label: String, _ name: String, _ body: () throws -> CaseVerdict) -> ConformanceCaseResult {
        do {
            let verdict = try body()
            return .init(version: label, name: name, status: verdict.problems.isEmpty ? .passed : .failed,
                         detail: verdict.problems.isEmpty ? verdict.detail : "", problems: verdict.problems)
        } catch let skip as CaseSkip {
            return .init(version: label, name: name, status: .skipped, detail: skip.reason)
        } catch {
            return .init(version: label, name: name, status: .failed, problems: ["harness: \(error)"])
        }
    }

    static func needs(_ minimum: CNIVersion, _ version: CNIVersion, _ what: String) -> String? {
        version >= minimum ? nil : "\(what) needs cniVersion \(minimum) or later"
    }

    func needsGC(_ version: CNIVersion) -> String? {
        if !claimsGC { return "GC and STATUS need 1.1.0; \(options.plugin) claims \(claims.supported.joined(separator: ", "))" }
        return version >= .v1_1_0 ? nil : "GC and STATUS need cniVersion 1.1.0 or later"
    }

    // MARK: - Plugin-wide cases

    func pluginWideCases() -> [ConformanceCaseResult] {
        if options.mesos { return mesosPluginWideCases() }
        var results: [ConformanceCaseResult] = []
        let runnable = claims.versionsToRun.compactMap { if case .run(let v) = $0 { return v } else { return nil } }
        let first = runnable.first ?? .v0_2_0
        runCase(first, "IPAM VERSION claims the plugin's versions", progress: { _ in }, into: &results) { world in
            guard let ipam = world.ipamType else { throw HarnessError("no ipam.type") }
            let run = try world.run(ipam, env: ["CNI_COMMAND": "VERSION", "PATH": ConformanceWorld.path], stdin: Array(#"{"cniVersion":"1.0.0"}"#.utf8))
            var v = CaseVerdict(problems: Checks.success(run, "IPAM VERSION"))
            let list = (try? JSON(parsing: run.stdout))?["supportedVersions"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let missing = runnable.map(\.description).filter { !list.contains($0) }
            if !missing.isEmpty { v.problems.append("\(ipam) does not claim \(missing.joined(separator: ", ")) (claims \(list))") }
            v.detail = "\(ipam): \(list.joined(separator: ", "))"
            return v
        }
        let unclaimed = CNIVersion.all.first { !claims.claims($0) }
        runCase(first, "ADD at an unclaimed version → code 1",
                skip: unclaimed == nil ? "\(options.plugin) claims every version the harness knows" : nil,
                progress: { _ in }, into: &results) { world in
            try unclaimedVersionVerdict(world, version: unclaimed!.description)
        }
        runCase(first, "ADD with cniVersion 9.9.9 → code 1", progress: { _ in }, into: &results) { world in
            try unclaimedVersionVerdict(world, version: "9.9.9")
        }
        return results.map { var r = $0; r.version = "any"; return r }
    }

    /// ADD with the config's `cniVersion` replaced: code 1, nothing changed.
    func unclaimedVersionVerdict(_ world: ConformanceWorld, version: String) throws -> CaseVerdict {
        let ns = try world.newContainer()
        guard case .object(var o) = world.config else { throw HarnessError("config is not an object") }
        o["cniVersion"] = .string(version)
        let before = try world.state([ns])
        let run = try world.run(env: world.environment(command: "ADD", containerID: ConformanceWorld.newContainerID(), netns: ns.path, ifname: "eth0"),
                                stdin: Array(JSON.object(o).compactText.utf8))
        var v = CaseVerdict(problems: Checks.error(run, "ADD at \(version)", codes: [1]))
        v.problems += before.changes(to: try world.state([ns]))
        return v
    }

    // MARK: - Spec cases at one version

    func specCases(version v: CNIVersion, progress: (ConformanceCaseResult) -> Void) -> [ConformanceCaseResult] {
        var results: [ConformanceCaseResult] = []
        runCase(v, "VERSION", progress: progress, into: &results) { world in
            let run = try world.run(env: ["CNI_COMMAND": "VERSION", "PATH": ConformanceWorld.path], stdin: Array(#"{"cniVersion":"\#(v)"}"#.utf8))
            var verdict = CaseVerdict(problems: Checks.success(run, "VERSION"))
            guard verdict.problems.isEmpty, let json = try? JSON(parsing: run.stdout) else { return verdict }
            let list = json["supportedVersions"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if !list.contains(v.description) { verdict.problems.append("supportedVersions \(list) lacks \(v)") }
            if let answered = json["cniVersion"]?.stringValue {
                if CNIVersion(answered)?.isKnown != true { verdict.problems.append("VERSION's cniVersion \(answered) is not a CNI version") }
            } else {
                verdict.problems.append("VERSION printed no cniVersion: \(json.compactText)")
            }
            verdict.detail = list.joined(separator: ", ")
            return verdict
        }
        results += errorCases(version: v, progress: progress)
        addCases(v, progress: progress, into: &results)
        checkCases(v, progress: progress, into: &results)
        delCases(v, progress: progress, into: &results)
        repeatedAddCase(v, progress: progress, into: &results)
        gcCases(v, progress: progress, into: &results)
        concurrencyCase(v, progress: progress, into: &results)
        return results
    }

    // MARK: ADD

    func addCases(_ v: CNIVersion, progress: (ConformanceCaseResult) -> Void, into results: inout [ConformanceCaseResult]) {
        runCase(v, "ADD: \(v) result shape, addresses and routes in the container", progress: progress, into: &results) { world in
            let before = try world.state()
            let (a, _, addProblems) = try world.add()
            var verdict = CaseVerdict(problems: addProblems)
            guard let result = a.result else { return verdict }
            verdict.problems += ResultShape.problems(result, version: v, interfaceName: a.interfaceName, sandbox: a.netnsPath)
            verdict.problems += try Checks.addressesConfigured(a)
            verdict.problems += try Checks.routesConfigured(a)
            let links = try a.namespace!.linkNames()
            if !links.contains(a.interfaceName) { verdict.problems.append("the container has no \(a.interfaceName) (links \(links))") }
            if try world.host.snapshot() == before.host { verdict.problems.append("ADD changed nothing in the host namespace") }
            verdict.detail = a.addresses.map(\.description).joined(separator: ", ")
            return verdict
        }
        runCase(v, "ADD with CNI_ARGS IgnoreUnknown=1 and an unknown key (as Podman sends)", progress: progress, into: &results) { world in
            let ns = try world.newContainer()
            var a = Attachment(containerID: ConformanceWorld.newContainerID(), interfaceName: "eth0", namespace: ns, netnsPath: ns.path, result: nil)
            let args = "IgnoreUnknown=1;K8S_POD_NAME=conformance-\(a.containerID.prefix(8))"
            var env = world.environment(command: "ADD", containerID: a.containerID, netns: ns.path, ifname: "eth0", cniArgs: args)
            let (added, _, problems) = try world.add(a, env: env)
            a = added
            var verdict = CaseVerdict(problems: problems)
            if problems.isEmpty { verdict.problems += try Checks.addressesConfigured(a) }
            env["CNI_COMMAND"] = "DEL"
            verdict.problems += Checks.silentSuccess(try world.run(env: env, stdin: world.stdin(prevResult: world.prevResult(for: a))), "DEL with the same CNI_ARGS")
            return verdict
        }
    }

    // MARK: CHECK

    func checkCases(_ v: CNIVersion, progress: (ConformanceCaseResult) -> Void, into results: inout [ConformanceCaseResult]) {
        let skip = Self.needs(.v0_4_0, v, "CHECK")
        runCase(v, "CHECK with prevResult passes and changes nothing", skip: skip, progress: progress, into: &results) { world in
            let (a, _, problems) = try world.add()
            guard problems.isEmpty else { return CaseVerdict(problems: problems) }
            let before = try world.state([a.namespace!])
            let run = try world.run(env: world.environment("CHECK", a), stdin: world.stdin(prevResult: a.result))
            var verdict = CaseVerdict(problems: Checks.silentSuccess(run, "CHECK"))
            verdict.problems += before.changes(to: try world.state([a.namespace!]))
            return verdict
        }
        runCase(v, "CHECK detects a removed address", skip: skip, progress: progress, into: &results) { world in
            try driftVerdict(world) { a in
                guard let address = a.addresses.first else { throw CaseSkip("the result has no address") }
                try a.namespace!.ip(["addr", "del", address.description, "dev", a.interfaceName])
                return "removed \(address) from \(a.interfaceName)"
            }
        }
        runCase(v, "CHECK detects a removed route", skip: skip, progress: progress, into: &results) { world in
            try driftVerdict(world) { a in
                let ns = a.namespace!
                for family in ["-4", "-6"] {
                    let routes = try JSON(parsing: try ns.ip(["-j", family, "route", "show", "default"]))
                    if let first = routes.arrayValue?.first, let dev = first["dev"]?.stringValue, dev == a.interfaceName {
                        var args = [family, "route", "del", "default"]
                        if let gw = first["gateway"]?.stringValue { args += ["via", gw] }
                        try ns.ip(args + ["dev", dev])
                        return "removed the \(family == "-4" ? "IPv4" : "IPv6") default route"
                    }
                }
                throw CaseSkip("the attachment has no default route to remove")
            }
        }
    }

    /// ADD, break something (`drift` says what), CHECK must fail; DEL must still clean up.
    func driftVerdict(_ world: ConformanceWorld, drift: (Attachment) throws -> String) throws -> CaseVerdict {
        let before = try world.state()
        let (a, _, problems) = try world.add()
        guard problems.isEmpty else { return CaseVerdict(problems: problems) }
        let what = try drift(a)
        let run = try world.run(env: world.environment("CHECK", a), stdin: world.stdin(prevResult: a.result))
        var verdict = CaseVerdict(problems: Checks.error(run, "CHECK after drift (\(what))"))
        verdict.problems += try delCleansUp(world, a, hostBefore: before.host)
        verdict.detail = "\(what): " + ((try? JSON(parsing: run.stdout))?["msg"]?.stringValue ?? "")
        return verdict
    }

    /// DEL of `a` succeeds silently and leaves the container with `lo` only, the host as it
    /// was before ADD, and no address held.
    func delCleansUp(_ world: ConformanceWorld, _ a: Attachment, hostBefore: [String], netns: Bool = true) throws -> [String] {
        let run = try world.del(a, netns: netns)
        var out = Checks.silentSuccess(run, netns ? "DEL" : "DEL without CNI_NETNS")
        out += try leftovers(world, a, hostBefore: hostBefore)
        return out
    }

    /// What an attachment left after its DEL: links in its container, host changes, an
    /// address still held.
    /// `hostBefore` nil: the host is compared by the caller (several attachments at once).
    func leftovers(_ world: ConformanceWorld, _ a: Attachment, hostBefore: [String]?, probe: [UInt8]? = nil) throws -> [String] {
        var out: [String] = []
        if let ns = a.namespace {
            let links = try ns.linkNames()
            if links != ["lo"] { out.append("after DEL the container still has links \(links)") }
        }
        if let hostBefore {
            out += Replayer.diff(hostBefore, try world.host.snapshot()).map { "after DEL the host differs from before ADD: " + $0 }
        }
        if case .held(let why) = try world.holding(a, stdin: probe) { out.append("after DEL IPAM still holds an address for the container: \(why)") }
        return out
    }

    // MARK: DEL

    func delCases(_ v: CNIVersion, progress: (ConformanceCaseResult) -> Void, into results: inout [ConformanceCaseResult]) {
        runCase(v, "DEL twice", progress: progress, into: &results) { world in
            let before = try world.state()
            let (a, _, problems) = try world.add()
            guard problems.isEmpty else { return CaseVerdict(problems: problems) }
            var verdict = CaseVerdict(problems: try delCleansUp(world, a, hostBefore: before.host))
            let middle = try world.state([a.namespace!])
            verdict.problems += Checks.silentSuccess(try world.del(a), "the second DEL")
            verdict.problems += middle.changes(to: try world.state([a.namespace!])).map { "the second DEL: " + $0 }
            return verdict
        }
        runCase(v, "DEL without CNI_NETNS (the namespace is gone), unset and exported empty", progress: progress, into: &results) { world in
            let before = try world.state()
            var (a, _, problems) = try world.add()
            guard problems.isEmpty else { return CaseVerdict(problems: problems) }
            try world.lose(&a)
            var verdict = CaseVerdict(problems: try delCleansUp(world, a, hostBefore: before.host, netns: false))
            var env = world.environment("DEL", a, netns: false)
            env["CNI_NETNS"] = ""
            verdict.problems += Checks.silentSuccess(try world.run(env: env, stdin: world.stdin(prevResult: world.prevResult(for: a))), "DEL with CNI_NETNS=\"\"")
            return verdict
        }
        runCase(v, "DEL after a failed ADD (CNI_NETNS does not exist)", progress: progress, into: &results) { world in
            let before = try world.state()
            let missing = "/var/run/netns/cnic-missing-\(UUID().uuidString.lowercased().prefix(8))"
            let a = Attachment(containerID: ConformanceWorld.newContainerID(), interfaceName: "eth0", namespace: nil, netnsPath: missing, result: nil)
            let add = try world.run(env: world.environment("ADD", a), stdin: world.stdin())
            var verdict = CaseVerdict(problems: Checks.error(add, "ADD into a missing namespace"))
            verdict.problems += Replayer.diff(before.host, try world.host.snapshot()).map { "the failed ADD left the host changed: " + $0 }
            if case .held(let why) = try world.holding(a) { verdict.problems.append("the failed ADD left an address held: \(why)") }
            let hostAfterAdd = try world.host.snapshot()
            verdict.problems += Checks.silentSuccess(try world.run(env: world.environment("DEL", a), stdin: world.stdin()), "DEL after the failed ADD")
            verdict.problems += Checks.silentSuccess(try world.run(env: world.environment("DEL", a, netns: false), stdin: world.stdin()), "DEL without CNI_NETNS after the failed ADD")
            verdict.problems += Replayer.diff(hostAfterAdd, try world.host.snapshot()).map { "DEL changed the host: " + $0 }
            verdict.detail = (try? JSON(parsing: add.stdout))?["msg"]?.stringValue ?? ""
            return verdict
        }
        runCase(v, "a failed ADD (interface name taken) rolls back", progress: progress, into: &results) { world in
            let ns = try world.newContainer()
            try ns.ip(["link", "add", "eth0", "type", "veth", "peer", "name", "taken0"])
            let before = try world.state([ns])
            let a = Attachment(containerID: ConformanceWorld.newContainerID(), interfaceName: "eth0", namespace: ns, netnsPath: ns.path, result: nil)
            let add = try world.run(env: world.environment("ADD", a), stdin: world.stdin())
            var verdict = CaseVerdict(problems: Checks.error(add, "ADD into a namespace that has eth0"))
            verdict.problems += before.changes(to: try world.state([ns]), files: false).map { "the failed ADD left: " + $0 }
            if case .held(let why) = try world.holding(a) { verdict.problems.append("the failed ADD left an address held: \(why)") }
            verdict.detail = (try? JSON(parsing: add.stdout))?["msg"]?.stringValue ?? ""
            return verdict
        }
    }

    // MARK: Repeated ADD

    func repeatedAddCase(_ v: CNIVersion, progress: (ConformanceCaseResult) -> Void, into results: inout [ConformanceCaseResult]) {
        runCase(v, "repeated ADD for a live attachment keeps its address, once", progress: progress, into: &results) { world in
            let before = try world.state()
            let (a, _, problems) = try world.add()
            guard problems.isEmpty else { return CaseVerdict(problems: problems) }
            let live = try world.state([a.namespace!])
            let again = try world.run(env: world.environment("ADD", a), stdin: world.stdin())
            var verdict = CaseVerdict()
            var outcome: String
            if again.exitCode == 0 {
                outcome = "the second ADD succeeded"
                verdict.problems += Checks.success(again, "the second ADD")
                let second = (try? CNIResult(parsing: again.stdout))?.ips.map(\.address) ?? []
                if Set(second.map(\.address)) != Set(a.addresses.map(\.address)) {
                    verdict.problems.append("the second ADD returned \(second.map(\.description)), the live attachment has \(a.addresses.map(\.description))")
                }
            } else {
                outcome = "the second ADD failed: " + ((try? JSON(parsing: again.stdout))?["msg"]?.stringValue ?? "")
                verdict.problems += Checks.error(again, "the second ADD")
            }
            verdict.problems += live.changes(to: try world.state([a.namespace!]), files: false)
            verdict.problems += try Checks.addressesConfigured(a)
            if case .free = try world.holding(a) { verdict.problems.append("after the second ADD IPAM no longer holds the live address") }
            if v >= .v0_4_0 {
                verdict.problems += Checks.silentSuccess(try world.run(env: world.environment("CHECK", a), stdin: world.stdin(prevResult: a.result)),
                                                         "CHECK of the live attachment")
            }
            verdict.problems += try delCleansUp(world, a, hostBefore: before.host)
            verdict.detail = outcome
            return verdict
        }
    }

    // MARK: GC and STATUS

    func gcCases(_ v: CNIVersion, progress: (ConformanceCaseResult) -> Void, into results: inout [ConformanceCaseResult]) {
        runCase(v, "GC keeps the valid attachment and releases a leaked one", skip: needsGC(v), progress: progress, into: &results) { world in
            let before = try world.state()
            let (live, _, p1) = try world.add()
            guard p1.isEmpty else { return CaseVerdict(problems: p1) }
            let hostLive = try world.host.snapshot()
            var (leaked, _, p2) = try world.add()
            guard p2.isEmpty else { return CaseVerdict(problems: p2) }
            // The runtime lost the container without a DEL: its namespace (and veth) are gone.
            try world.lose(&leaked)
            let liveState = try world.state([live.namespace!])
            let valid: JSON = [["containerID": .string(live.containerID), "ifname": .string(live.interfaceName)]]
            let gc = try world.run(env: world.environment(command: "GC", containerID: nil, netns: nil, ifname: nil),
                                   stdin: world.stdin(extra: ["cni.dev/valid-attachments": valid, "cni.dev/attachments": valid]))
            var verdict = CaseVerdict(problems: Checks.silentSuccess(gc, "GC"))
            verdict.problems += liveState.changes(to: try world.state([live.namespace!]), files: false).map { "GC: " + $0 }
            verdict.problems += Replayer.diff(hostLive, try world.host.snapshot()).map { "after GC the host differs from the live attachment's: " + $0 }
            if case .free = try world.holding(live) { verdict.problems.append("GC released the valid attachment's address") }
            verdict.problems += Checks.silentSuccess(try world.run(env: world.environment("CHECK", live), stdin: world.stdin(prevResult: live.result)),
                                                     "CHECK of the valid attachment after GC")
            if case .held(let why) = try world.holding(leaked) { verdict.problems.append("GC did not release the leaked attachment: \(why)") }
            verdict.problems += try delCleansUp(world, live, hostBefore: before.host)
            verdict.detail = "kept \(live.addresses.map(\.description).joined(separator: ", ")), released \(leaked.addresses.map(\.description).joined(separator: ", "))"
            return verdict
        }
        runCase(v, "STATUS succeeds and changes nothing", skip: needsGC(v), progress: progress, into: &results) { world in
            let (a, _, problems) = try world.add()
            guard problems.isEmpty else { return CaseVerdict(problems: problems) }
            let before = try world.state([a.namespace!])
            let run = try world.run(env: world.environment(command: "STATUS", containerID: nil, netns: nil, ifname: nil), stdin: world.stdin())
            var verdict = CaseVerdict(problems: Checks.silentSuccess(run, "STATUS"))
            verdict.problems += before.changes(to: try world.state([a.namespace!]))
            return verdict
        }
    }

    // MARK: Concurrency

    func concurrencyCase(_ v: CNIVersion, progress: (ConformanceCaseResult) -> Void, into results: inout [ConformanceCaseResult]) {
        let n = max(2, options.concurrency)
        runCase(v, "\(n) concurrent ADDs on one network get distinct addresses; concurrent DELs", progress: progress, into: &results) { world in
            let before = try world.state()
            var attachments: [Attachment] = []
            for _ in 0..<n {
                let ns = try world.newContainer()
                attachments.append(Attachment(containerID: ConformanceWorld.newContainerID(), interfaceName: "eth0", namespace: ns, netnsPath: ns.path, result: nil))
            }
            let added = Concurrently.map(attachments) { a in Result { try world.add(a) } }
            var verdict = CaseVerdict()
            var live: [Attachment] = []
            for (i, r) in added.enumerated() {
                switch r {
                case .success(let (a, _, problems)):
                    verdict.problems += problems.map { "container \(i): " + $0 }
                    if a.result != nil { live.append(a) }
                case .failure(let e): verdict.problems.append("container \(i): harness: \(e)")
                }
            }
            let all = live.flatMap(\.addresses).map(\.address)
            let duplicates = Dictionary(grouping: all, by: { $0 }).filter { $0.value.count > 1 }.keys
            if !duplicates.isEmpty { verdict.problems.append("addresses given to more than one container: \(duplicates.map(\.description).sorted())") }
            for a in live { verdict.problems += try Checks.addressesConfigured(a) }
            let deleted = Concurrently.map(live) { a in Result { try world.del(a) } }
            for (i, r) in deleted.enumerated() {
                switch r {
                case .success(let run): verdict.problems += Checks.silentSuccess(run, "DEL of container \(i)")
                case .failure(let e): verdict.problems.append("DEL of container \(i): harness: \(e)")
                }
            }
            for a in live { verdict.problems += try leftovers(world, a, hostBefore: nil) }
            verdict.problems += Replayer.diff(before.host, try world.host.snapshot()).map { "after the DELs the host differs from before the ADDs: " + $0 }
            verdict.detail = "\(Set(all).count) distinct addresses"
            return verdict
        }
    }
}

/// Runs a closure over elements, each on its own thread, all started together (a runtime
/// launching many containers at once; a thread pool sized to the cores would serialise
/// them on a small machine), keeping the order.
enum Concurrently {
    static func map<T, R>(_ items: [T], _ body: @escaping (T) -> R) -> [R] {
        let boxes = items.map { _ in ResultBox<R>() }
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        nonisolated(unsafe) let body = body
        for (item, box) in zip(items, boxes) {
            nonisolated(unsafe) let item = item
            done.enter()
            let thread = Thread {
                start.wait()
                box.value = body(item)
                done.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        for _ in items { start.signal() }
        done.wait()
        return boxes.map { $0.value! }
    }
}

/// One thread's result slot; each slot is written by one thread and read after all joined.
final class ResultBox<R>: @unchecked Sendable {
    var value: R?
}
