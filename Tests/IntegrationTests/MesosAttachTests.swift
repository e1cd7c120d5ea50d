import Foundation
import JSON
import Testing
import TestSupport

/// The built `calico` run exactly as a Mesos agent runs it (replaced environment, sorted
/// compact stdin carrying `network_info`, the plugin inside the agent's namespace, the
/// container's `lo` down), checked the way an operator would: stdout, `ip -j` and the
/// records in the datastore.
@Suite(.enabled(if: E2E.ready, E2E.reason))
struct MesosAttachTests {
    /// An 80-character label value with spaces, as a Marathon user might write one.
    static let longValue = "Serves the bookstore catalogue and orders to frontends in every region of the DC"

    /// `sha256[:7]...last53` of the sanitised text, computed with coreutils' sha256sum.
    static func shortened(_ sanitised: String) throws -> String {
        guard sanitised.utf8.count > 63 else { return sanitised }
        let digest = try Command.check(["sh", "-c", "printf %s \"$0\" | sha256sum", sanitised])
        return String(digest.prefix(7)) + "..." + String(sanitised.suffix(53))
    }

    /// Drops empty objects, so `{"action":"Allow","source":{}}` and `{"action":"Allow"}`
    /// compare equal (Go writes empty structs, other writers may not).
    static func pruned(_ j: JSON) -> JSON {
        switch j {
        case .object(let o):
            var out: [String: JSON] = [:]
            for (k, v) in o {
                let p = pruned(v)
                if case .object(let inner) = p, inner.isEmpty { continue }
                out[k] = p
            }
            return .object(out)
        case .array(let a): return .array(a.map(pruned))
        default: return j
        }
    }

    @Test func labelsAreSanitisedIntoTheWorkloadEndpoint() throws {
        #expect(Self.longValue.count == 80)
        let store = ClusterStore()
        let agent = try Agent(node: "agent-1", store: store)
        let container = try Container()
        let labels = [
            ("biz_type", "bookstore"),
            ("com.example/tier", "front end"),
            ("owner name", "Ops Team / Payments"),
            ("description", Self.longValue),
        ]
        let r = try agent.add(container, labels: labels)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderrText)")

        // Kernel: eth0 holds one /32; the plugin left lo down (Mesos brings it up later).
        let address = try #require(try container.addresses("eth0").first)
        #expect(address.hasSuffix("/32") && address.hasPrefix("192.168."))
        #expect(try container.addresses("eth0").count == 1)
        #expect(try container.link("lo")?["flags"]?.arrayValue?.contains("UP") == false)
        let ip = String(address.dropLast(3))

        // stdout: one JSON object in the 0.2.0 shape, nothing else.
        #expect(r.stdoutText.split(separator: "\n").count == 1)
        #expect(try E2E.json(r) == ["cniVersion": "0.2.0", "dns": [:], "ip4": ["ip": .string(address)]])

        // Container routes and the gateway's permanent neighbour entry.
        let routes = try container.ipJSON(["-4", "route", "show"]).map { r in
            "\(r["dst"]?.stringValue ?? "") \(r["gateway"]?.stringValue ?? "-") \(r["dev"]?.stringValue ?? "") \(r["scope"]?.stringValue ?? "global")"
        }.sorted()
        #expect(routes == ["169.254.1.1 - eth0 link", "default 169.254.1.1 eth0 global"])
        let neigh = try container.ipJSON(["neigh", "show", "dev", "eth0"])
        #expect(neigh.count == 1)
        #expect(neigh.first?["dst"] == "169.254.1.1" && neigh.first?["lladdr"] == "ee:ee:ee:ee:ee:ee")
        #expect(neigh.first?["state"]?.arrayValue?.contains("PERMANENT") == true)

        // Host: one cali veth with the fixed MAC, up, and the route to the workload.
        let links = try agent.workloadLinks()
        #expect(links.count == 1)
        let veth = try #require(links.first?["ifname"]?.stringValue)
        #expect(veth.count == 15)
        #expect(links.first?["address"] == "ee:ee:ee:ee:ee:ee")
        #expect(links.first?["flags"]?.arrayValue?.contains("UP") == true)
        #expect(try agent.workloadRoutes() == ["\(ip) \(veth)"])

        // The WorkloadEndpoint, key and value.
        let name = expectedEndpointName(node: "agent-1", containerID: container.id, ifname: "eth0")
        #expect(name.hasPrefix("agent--1-cni-") && name.contains("--") && name.hasSuffix("-eth0"))
        let keys = try store.endpoints().map(\.key)
        let wep = try #require(try store.endpoint(name: name), "no endpoint \(name); have \(keys)")
        #expect(wep["kind"] == "WorkloadEndpoint" && wep["apiVersion"] == "projectcalico.org/v3")
        #expect(wep["metadata"]?["name"]?.stringValue == name)
        #expect(wep["metadata"]?["namespace"] == "default")
        #expect(wep["metadata"]?["uid"]?.stringValue?.isEmpty == false)
        #expect(wep["metadata"]?["creationTimestamp"]?.stringValue?.hasSuffix("Z") == true)
        let expectedLabels: JSON = [
            "biz_type": "bookstore",
            "com.example.tier": "front-end",
            "owner-name": "Ops-Team.Payments",
            "description": .string(try Self.shortened(Self.longValue.replacingOccurrences(of: " ", with: "-"))),
            "projectcalico.org/namespace": "default",
            "projectcalico.org/orchestrator": "cni",
        ]
        #expect(wep["metadata"]?["labels"] == expectedLabels)
        #expect(wep["metadata"]?["labels"]?["description"]?.stringValue?.count == 63)
        let containerMAC = try #require(try container.link("eth0")?["address"]?.stringValue)
        #expect(Self.pruned(wep["spec"] ?? .null) == [
            "orchestrator": "cni", "node": "agent-1", "containerID": .string(container.id), "endpoint": "eth0",
            "ipNetworks": [.string(address)], "profiles": ["calico"], "interfaceName": .string(veth),
            "mac": .string(containerMAC),
        ])

        // The network's profile, created with upstream's default rules.
        let profiles = try store.rows(ClusterStore.profiles)
        #expect(profiles.map(\.key) == [ClusterStore.profiles + "calico"])
        let profile = try #require(profiles.first)
        #expect(profile.value["kind"] == "Profile" && profile.value["metadata"]?["name"] == "calico")
        #expect(Self.pruned(profile.value["spec"] ?? .null) == [
            "ingress": [["action": "Allow", "source": ["selector": "has(calico)"]]],
            "egress": [["action": "Allow"]],
            "labelsToApply": ["calico": ""],
        ])

        // A second container: the profile is created once, never rewritten.
        let second = try Container()
        try agent.attach(second, labels: [("biz_type", "bookstore")])
        let after = try store.rows(ClusterStore.profiles)
        #expect(after.count == 1)
        #expect(after.first?.version == 1 && after.first?.modRevision == profile.modRevision)
        #expect(try store.endpoints().count == 2)

        // DEL with the identical stdin removes everything of the first.
        let del = try agent.invoke("DEL", containerID: container.id, netns: container.netns, stdin: agent.network().mesosStdin(labels: labels))
        #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdoutText) \(del.stderrText)")
        #expect(try store.endpoint(name: name) == nil)
        #expect(try container.linkNames() == ["lo"])
        #expect(try agent.workloadLinks().count == 1)
        #expect(try store.allocations()[ip] == nil)
    }

    @Test func namespaceComesFromTheMesosLabel() throws {
        let store = ClusterStore()
        let agent = try Agent(node: "agent-ns", store: store)
        let container = try Container()
        let labels = [("projectcalico.org/namespace", "bookstore"), ("role", "server")]
        let ip = try agent.attach(container, labels: labels)
        let name = expectedEndpointName(node: "agent-ns", containerID: container.id, ifname: "eth0")
        #expect(try store.endpoints().map(\.key) == [ClusterStore.endpoints + "bookstore/" + name])
        let wep = try #require(try store.endpoint(namespace: "bookstore", name: name))
        #expect(wep["metadata"]?["namespace"] == "bookstore")
        #expect(wep["metadata"]?["labels"] == [
            "role": "server", "projectcalico.org/namespace": "bookstore", "projectcalico.org/orchestrator": "cni",
        ])
        #expect(wep["spec"]?["ipNetworks"] == [.string(ip + "/32")])

        // DEL (same stdin) finds it in that namespace.
        let del = try agent.del(container, labels: labels)
        #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdoutText)")
        #expect(try store.endpoints().isEmpty)
        #expect(try store.handles().isEmpty)
    }

    @Test func nestedContainersAndASecondNetwork() throws {
        let store = ClusterStore()
        let agent = try Agent(node: "agent-1", store: store)
        let parent = try Container()
        let child = try Container(id: parent.id + "." + E2E.containerID())
        let calico2 = agent.network("calico2")

        let parentIP = try agent.attach(parent)
        let childIP = try agent.attach(child)
        let secondIP = try agent.attach(parent, ifname: "eth1", network: calico2)
        #expect(Set([parentIP, childIP, secondIP]).count == 3)

        // Three host veths, distinct names, each routing its own address.
        let veths = try agent.workloadLinkNames()
        #expect(veths.count == 3)
        #expect(try agent.workloadRoutes().map { $0.split(separator: " ")[0] }.sorted() == [parentIP, childIP, secondIP].sorted().map { Substring($0) })

        // The parent has eth0 and eth1; both default routes exist, eth0's first.
        #expect(try parent.linkNames() == ["eth0", "eth1", "lo"])
        #expect(try parent.addresses("eth1") == [secondIP + "/32"])
        let defaults = try parent.ipJSON(["-4", "route", "show", "default"])
        #expect(defaults.count == 2)
        #expect(defaults.first?["dev"] == "eth0" && defaults.first?["metric"] == nil)

        // Records: names keep the dot of the nested id; the second network has its own profile.
        let names = try store.endpoints().map { String($0.key.dropFirst(ClusterStore.endpoints.count)) }.sorted()
        #expect(names == [
            "default/" + expectedEndpointName(node: "agent-1", containerID: parent.id, ifname: "eth0"),
            "default/" + expectedEndpointName(node: "agent-1", containerID: parent.id, ifname: "eth1"),
            "default/" + expectedEndpointName(node: "agent-1", containerID: child.id, ifname: "eth0"),
        ].sorted())
        let second = try #require(try store.endpoint(name: expectedEndpointName(node: "agent-1", containerID: parent.id, ifname: "eth1")))
        #expect(second["spec"]?["profiles"] == ["calico2"] && second["spec"]?["endpoint"] == "eth1")
        #expect(try store.rows(ClusterStore.profiles).map(\.key).sorted() == [ClusterStore.profiles + "calico", ClusterStore.profiles + "calico2"])
        #expect(try store.handles().map(\.key).sorted() == [
            ClusterStore.handles + "calico." + parent.id, ClusterStore.handles + "calico." + child.id,
            ClusterStore.handles + "calico2." + parent.id,
        ].sorted())

        // Everyone reaches everyone, the host reaches all three addresses.
        try parent.bringLoopbackUp()
        try child.bringLoopbackUp()
        #expect(try child.ping(parentIP))
        #expect(try child.ping(secondIP))
        #expect(try parent.ping(childIP))
        for ip in [parentIP, childIP, secondIP] { #expect(try agent.ping(ip), "host -> \(ip)") }

        // Removing the nested container leaves the parent's attachments alone.
        #expect(try agent.del(child).status == 0)
        #expect(try agent.workloadLinkNames().count == 2)
        #expect(try child.linkNames() == ["lo"])
        #expect(try agent.ping(parentIP) && agent.ping(secondIP))
        #expect(try store.endpoints().count == 2)

        // eth1's DEL leaves eth0 and its default route.
        #expect(try agent.del(parent, ifname: "eth1", network: calico2).status == 0)
        #expect(try parent.linkNames() == ["eth0", "lo"])
        #expect(try parent.ipJSON(["-4", "route", "show", "default"]).first?["dev"] == "eth0")
        #expect(try agent.ping(parentIP))
        #expect(try agent.del(parent).status == 0)
        #expect(try agent.workloadLinks().isEmpty && agent.workloadRoutes().isEmpty)
        #expect(try store.endpoints().isEmpty && store.handles().isEmpty && store.allocations().isEmpty)
    }

    @Test func resultShapeOfEveryVersion() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let versions: [String?] = [nil, "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        for version in versions {
            let container = try Container()
            let r = try agent.add(container, network: agent.network(version: version), labels: [])
            let label = version ?? "no cniVersion"
            #expect(r.status == 0, "\(label): \(r.stdoutText) \(r.stderrText)")
            #expect(r.stdoutText.split(separator: "\n").count == 1, "\(label): one JSON object on one line")
            let address = try #require(try container.addresses("eth0").first, "\(label)")
            let containerMAC = try #require(try container.link("eth0")?["address"]?.stringValue)
            let hostRoutes = try agent.workloadRoutes()
            let veth = try #require(try agent.workloadLinks().first {
                hostRoutes.contains("\(address.dropLast(3)) \($0["ifname"]?.stringValue ?? "")")
            })
            let expected: JSON
            switch version {
            case nil, "0.1.0"?, "0.2.0"?:
                expected = ["cniVersion": .string(version ?? "0.1.0"), "dns": [:], "ip4": ["ip": .string(address)]]
            default:
                var ip: JSON = ["address": .string(address), "interface": 1]
                if version!.hasPrefix("0.") { ip["version"] = "4" }
                expected = [
                    "cniVersion": .string(version!), "dns": [:],
                    "interfaces": [
                        ["name": veth["ifname"] ?? .null, "mac": "ee:ee:ee:ee:ee:ee"],
                        ["name": "eth0", "mac": .string(containerMAC), "sandbox": .string(container.netns)],
                    ],
                    "ips": [ip],
                ]
            }
            #expect(try E2E.json(r) == expected, "\(label)")
            #expect(try agent.del(container, network: agent.network(version: version), labels: []).status == 0)
        }
        #expect(try agent.workloadLinks().isEmpty && store.endpoints().isEmpty && store.handles().isEmpty)
    }

    @Test func escapedSlashesFromMesosBefore17() throws {
        let store = ClusterStore()
        let agent = try Agent(store: store)
        let container = try Container()
        let labels = [("com.example/tier", "web/front"), ("biz_type", "bookstore")]
        let stdin = agent.network(extra: ["etcd_endpoints": "http://127.0.0.1:2379"]).mesosStdin(labels: labels, escapedSlashes: true)
        let text = String(decoding: stdin, as: UTF8.self)
        #expect(text.contains(#"\/"#) && text.contains(#"http:\/\/127.0.0.1"#))
        #expect(!text.replacingOccurrences(of: #"\/"#, with: "").contains("/"))

        let r = try agent.invoke("ADD", containerID: container.id, netns: container.netns, stdin: stdin)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderrText)")
        let address = try #require(try container.addresses("eth0").first)
        #expect(try E2E.json(r) == ["cniVersion": "0.2.0", "dns": [:], "ip4": ["ip": .string(address)]])
        // The datastore is the file at the unescaped path; labels carry the real slash.
        let wep = try #require(try store.endpoint(name: expectedEndpointName(node: "agent-1", containerID: container.id, ifname: "eth0")))
        #expect(wep["metadata"]?["labels"]?["com.example.tier"] == "web.front")

        let del = try agent.invoke("DEL", containerID: container.id, netns: container.netns, stdin: stdin)
        #expect(del.status == 0 && del.stdout.isEmpty)
        #expect(try store.endpoints().isEmpty && store.handles().isEmpty && agent.workloadLinks().isEmpty)
    }

    /// DC/OS runs `mesos-cni-port-mapper`, which passes `calico` its `delegate` object plus the
    /// outer `name` and `args`, at cniVersion 0.1.0, and needs an `ip4` back.
    @Test func dcosPortMapperDelegate() throws {
        let store = ClusterStore()
        let agent = try Agent(node: "dcos-agent", store: store)
        let container = try Container()
        let delegate: JSON = [
            "cniVersion": "0.1.0", "type": "calico", "mtu": 1450,
            "etcd_endpoints": "http://master.dcos.thisdcos.directory:2379", "ipam": ["type": "calico-ipam"],
            "datastore_type": "sqlite", "sqlite_path": .string(store.path), "nodename": "dcos-agent",
        ]
        let outer = NetworkConfig(name: "calico", store: store, node: "dcos-agent")
        let mesos = outer.mesosJSON(labels: [("DCOS_SPACE", "/bookstore/server")],
                                    portMappings: [["container_port": 80, "host_port": 31000, "protocol": "tcp"]])
        var passed = delegate
        passed["name"] = "calico"
        passed["args"] = mesos["args"]
        let r = try agent.invoke("ADD", containerID: container.id, netns: container.netns, stdin: Data(passed.compactText.utf8))
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderrText)")
        let address = try #require(try container.addresses("eth0").first)
        #expect(try E2E.json(r) == ["cniVersion": "0.1.0", "dns": [:], "ip4": ["ip": .string(address)]])
        #expect(try container.link("eth0")?["mtu"] == 1450)
        #expect(try agent.workloadLinks().first?["mtu"] == 1450)
        let wep = try #require(try store.endpoint(name: expectedEndpointName(node: "dcos-agent", containerID: container.id, ifname: "eth0")))
        #expect(wep["metadata"]?["labels"]?["DCOS_SPACE"] == "bookstore.server")
        #expect(wep["spec"]?["profiles"] == ["calico"])

        let del = try agent.invoke("DEL", containerID: container.id, netns: container.netns, stdin: Data(passed.compactText.utf8))
        #expect(del.status == 0 && del.stdout.isEmpty)
        #expect(try container.linkNames() == ["lo"] && agent.workloadLinks().isEmpty && store.endpoints().isEmpty)
    }
}
