import CNI
import Foundation
import JSON

/// The Mesos CNI isolator's side (REFERENCE.md §1): how it invokes a plugin and how it
/// reads the answer.
///
/// - The environment is replaced: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
///   `CNI_IFNAME`, `CNI_PATH`, `PATH`, nothing else (`CNI_NETNS` left out on a DEL whose
///   namespace is gone). `ConformanceWorld.environment` builds exactly that.
/// - stdin is the config re-serialised compactly with keys sorted, with
///   `args["org.apache.mesos"] = {"network_info": …}` injected; DEL gets the same bytes.
/// - The result is read as one JSON object in the 0.1/0.2 shape: it needs `ip4.ip`.
enum MesosInvocation {
    /// The NetworkInfo of a Marathon app on this network with the seed's labels
    /// (`port_mappings` only when host ports are asked for).
    static func networkInfo(network: String, portMappings: Bool = false) -> JSON {
        var info: [String: JSON] = [
            "name": .string(network),
            "ip_addresses": [["protocol": "IPv4"]],
            "labels": ["labels": [["key": "biz_type", "value": "bookstore"], ["key": "role", "value": "server"]]],
        ]
        if portMappings { info["port_mappings"] = [["container_port": 8080, "host_port": 31080, "protocol": "tcp"]] }
        return .object(info)
    }

    /// The stdin Mesos writes for `config`: sorted, compact, with the NetworkInfo injected;
    /// before Mesos 1.7 every `/` was written `\/`.
    static func stdin(config: JSON, networkInfo: JSON, escapeSlashes: Bool = false) -> [UInt8] {
        guard case .object(var o) = config else { return Array(config.compactText.utf8) }
        var args = o["args"]?.objectValue ?? [:]
        args["org.apache.mesos"] = ["network_info": networkInfo]
        o["args"] = .object(args)
        let text = JSON.object(o).compactText
        return Array((escapeSlashes ? text.replacingOccurrences(of: "/", with: "\\/") : text).utf8)
    }

    /// What `mesos-cni-port-mapper` hands its delegate: the `delegate` object of DC/OS's
    /// `calico.conf` (the config without `name`, at `cniVersion` 0.1.0) plus the
    /// port-mapper's network `name` and the `args` Mesos gave it (with `port_mappings`).
    static func portMapperDelegateStdin(config: JSON) -> [UInt8] {
        guard case .object(var delegate) = config else { return [] }
        let name = delegate["name"]?.stringValue ?? "calico"
        delegate["cniVersion"] = "0.1.0"
        delegate["args"] = ["org.apache.mesos": ["network_info": networkInfo(network: name, portMappings: true)]]
        return Array(JSON.object(delegate).compactText.utf8)
    }
}

extension CaseContext {
    func mesosPluginWideCases() -> [ConformanceCaseResult] {
        var results: [ConformanceCaseResult] = []
        let skip = claims.claims(.v0_1_0) ? nil : "the DC/OS delegate is at cniVersion 0.1.0, which \(options.plugin) does not claim"
        runCase(.v0_1_0, "DC/OS port-mapper delegate (0.1.0, port_mappings): ip4 back, DEL with the same stdin", skip: skip,
                progress: { _ in }, into: &results) { world in
            try mesosAddDelVerdict(world, stdin: MesosInvocation.portMapperDelegateStdin(config: world.config))
        }
        return results.map { var r = $0; r.version = "any"; return r }
    }

    func mesosCases(version v: CNIVersion?, progress: (ConformanceCaseResult) -> Void) -> [ConformanceCaseResult] {
        var results: [ConformanceCaseResult] = []
        func info(_ w: ConformanceWorld) -> JSON { MesosInvocation.networkInfo(network: w.networkName) }
        runCase(v, "ADD as Mesos (six variables, sorted stdin with network_info): one object with ip4, DEL with identical stdin",
                progress: progress, into: &results) { world in
            try mesosAddDelVerdict(world, stdin: MesosInvocation.stdin(config: world.config, networkInfo: info(world)))
        }
        runCase(v, "ADD with labels {} (no inner list)", progress: progress, into: &results) { world in
            let bare: JSON = ["name": .string(world.networkName), "labels": [:]]
            return try mesosAddDelVerdict(world, stdin: MesosInvocation.stdin(config: world.config, networkInfo: bare))
        }
        runCase(v, "ADD with pre-1.7 escaping (every / written \\/)", progress: progress, into: &results) { world in
            try mesosAddDelVerdict(world, stdin: MesosInvocation.stdin(config: world.config, networkInfo: info(world), escapeSlashes: true))
        }
        runCase(v, "nested container id (<parent>.<child>)", progress: progress, into: &results) { world in
            try mesosAddDelVerdict(world, stdin: MesosInvocation.stdin(config: world.config, networkInfo: info(world)),
                                   containerID: ConformanceWorld.newContainerID() + "." + ConformanceWorld.newContainerID())
        }
        runCase(v, "DEL without CNI_NETNS after the namespace is gone (agent reboot)", progress: progress, into: &results) { world in
            let stdin = MesosInvocation.stdin(config: world.config, networkInfo: info(world))
            let before = try world.state()
            var (a, run, problems) = try world.add(stdin: stdin)
            var verdict = CaseVerdict(problems: problems + MesosJudgement.problems(stdout: run.stdout))
            guard problems.isEmpty else { return verdict }
            try world.lose(&a)
            let del = try world.run(env: world.environment("DEL", a, netns: false), stdin: stdin)
            verdict.problems += Checks.silentSuccess(del, "DEL without CNI_NETNS")
            verdict.problems += try leftovers(world, a, hostBefore: before.host, probe: stdin)
            return verdict
        }
        runCase(v, "DEL after a failed ADD (Mesos always sends it)", progress: progress, into: &results) { world in
            let stdin = MesosInvocation.stdin(config: world.config, networkInfo: info(world))
            let before = try world.state()
            let missing = "/var/run/netns/cnic-missing-\(UUID().uuidString.lowercased().prefix(8))"
            let a = Attachment(containerID: ConformanceWorld.newContainerID(), interfaceName: "eth0", namespace: nil, netnsPath: missing, result: nil)
            let add = try world.run(env: world.environment("ADD", a), stdin: stdin)
            var verdict = CaseVerdict(problems: Checks.error(add, "ADD into a missing namespace"))
            verdict.problems += Checks.silentSuccess(try world.run(env: world.environment("DEL", a), stdin: stdin), "DEL after the failed ADD")
            verdict.problems += try leftovers(world, a, hostBefore: before.host, probe: stdin)
            return verdict
        }
        let n = max(2, options.concurrency)
        runCase(v, "\(n) concurrent ADDs (Mesos launches containers in parallel): distinct ip4s", progress: progress, into: &results) { world in
            let stdin = MesosInvocation.stdin(config: world.config, networkInfo: info(world))
            let before = try world.state()
            var attachments: [Attachment] = []
            for _ in 0..<n {
                let ns = try world.newContainer()
                attachments.append(Attachment(containerID: ConformanceWorld.newContainerID(), interfaceName: "eth0", namespace: ns, netnsPath: ns.path, result: nil))
            }
            let added = Concurrently.map(attachments) { a in Result { try world.add(a, stdin: stdin) } }
            var verdict = CaseVerdict()
            var live: [Attachment] = []
            var addresses: [String] = []
            for (i, r) in added.enumerated() {
                guard case .success(let (a, run, problems)) = r else {
                    if case .failure(let e) = r { verdict.problems.append("container \(i): harness: \(e)") }
                    continue
                }
                verdict.problems += (problems + MesosJudgement.problems(stdout: run.stdout)).map { "container \(i): " + $0 }
                if let ip = MesosJudgement.address(in: run.stdout) { addresses.append(ip.address.description) }
                if a.result != nil { live.append(a) }
            }
            let duplicates = Dictionary(grouping: addresses, by: { $0 }).filter { $0.value.count > 1 }.keys
            if !duplicates.isEmpty { verdict.problems.append("ip4 given to more than one container: \(duplicates.sorted())") }
            for a in live { verdict.problems += try Checks.addressesConfigured(a) }
            let deleted = Concurrently.map(live) { a in Result { try world.run(env: world.environment("DEL", a), stdin: stdin) } }
            for (i, r) in deleted.enumerated() {
                switch r {
                case .success(let run): verdict.problems += Checks.silentSuccess(run, "DEL of container \(i)")
                case .failure(let e): verdict.problems.append("DEL of container \(i): harness: \(e)")
                }
            }
            for a in live { verdict.problems += try leftovers(world, a, hostBefore: nil, probe: stdin) }
            verdict.problems += Replayer.diff(before.host, try world.host.snapshot()).map { "after the DELs the host differs from before the ADDs: " + $0 }
            verdict.detail = "\(Set(addresses).count) distinct addresses"
            return verdict
        }
        return results
    }

    /// ADD with `stdin` as Mesos sends it, judged as Mesos reads it; then DEL with the same
    /// bytes, which must clean up.
    func mesosAddDelVerdict(_ world: ConformanceWorld, stdin: [UInt8], containerID: String? = nil) throws -> CaseVerdict {
        let before = try world.state()
        let ns = try world.newContainer()
        let a0 = Attachment(containerID: containerID ?? ConformanceWorld.newContainerID(), interfaceName: "eth0", namespace: ns, netnsPath: ns.path, result: nil)
        let (a, run, problems) = try world.add(a0, stdin: stdin)
        var verdict = CaseVerdict(problems: problems)
        guard run.exitCode == 0 else { return verdict }
        verdict.problems += MesosJudgement.problems(stdout: run.stdout)
        if let ip = MesosJudgement.address(in: run.stdout) {
            let present = try ns.addresses()
            if !present.contains("eth0 \(ip)") { verdict.problems.append("ip4 \(ip) is not on eth0 in the container (has \(present))") }
            verdict.detail = "ip4 \(ip)"
        }
        let del = try world.run(env: world.environment("DEL", a), stdin: stdin)
        verdict.problems += Checks.silentSuccess(del, "DEL")
        verdict.problems += try leftovers(world, a, hostBefore: before.host, probe: stdin)
        return verdict
    }
}
