import CalicoAPI
import Foundation
import JSON
import Policy
import Testing
import TestSupport

/// `nft` runs in a namespace of its own (`unshare -n`), never the machine's.
let canRunNFT = TestEnvironment.isRoot && TestEnvironment.has("nft") && TestEnvironment.has("unshare")

/// Runs a shell script with `nft` in a fresh network namespace.
func inFreshNamespace(_ script: String, files: [String: String] = [:]) throws -> CommandResult {
    let dir = TestEnvironment.temporaryDirectory("policy-nft")
    defer { try? FileManager.default.removeItem(at: dir) }
    for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
    return try Command.run(["unshare", "-n", "sh", "-c", "cd \(dir.path) && " + script])
}

/// `nft -c -f`: the kernel checks the whole script as a transaction without applying it.
func nftAccepts(_ script: String) throws -> (Bool, String) {
    let r = try inFreshNamespace("nft -c -f ruleset.nft", files: ["ruleset.nft": script])
    return (r.status == 0, r.stderrText)
}

/// The table as the kernel lists it, without handles: each chain's rules in order, and
/// every other object.
struct KernelTable: Equatable {
    var chains: [String: [String]] = [:]
    var objects: Set<String> = []

    init(listing: String) throws {
        let json = try JSON(parsing: listing)
        for item in json["nftables"]?.arrayValue ?? [] {
            guard case .object(let o) = item, let (kind, value) = o.first else { continue }
            if kind == "metainfo" { continue }
            let clean = Self.withoutHandles(value)
            if kind == "rule" {
                chains[clean["chain"]?.stringValue ?? "", default: []].append(clean["expr"]?.compactText ?? "")
            } else {
                objects.insert(kind + ":" + clean.compactText)
            }
        }
    }

    static func withoutHandles(_ j: JSON) -> JSON {
        switch j {
        case .object(let o):
            var out: [String: JSON] = [:]
            for (k, v) in o where k != "handle" { out[k] = withoutHandles(v) }
            return .object(out)
        case .array(let a): return .array(a.map(withoutHandles))
        default: return j
        }
    }
}

struct RendererTests {
    @Test func chainsFollowCalicosNames() {
        let rs = NFTRenderer.render(Cluster.index([Cluster.seedPolicy]).dataplane())
        for name in ["cali-tw-cali-bs", "cali-fw-cali-bs", "cali-tw-cali-bf", "cali-fw-cali-ff",
                     "cali-pi-default/allow-bookstore-cliient-to-server",
                     "cali-pri-calico", "cali-pro-calico", "cali-from-wl-dispatch", "cali-to-wl-dispatch", "forward", "input", "output"] {
            #expect(rs.chains[name] != nil, "missing chain \(name)")
        }
        // The seed's policy is Ingress only: no egress chain for it.
        #expect(rs.chains["cali-po-default/allow-bookstore-cliient-to-server"] == nil)
        // The remote endpoint is not local: no chains for it.
        #expect(rs.chains["cali-tw-cali-rb"] == nil)
        #expect(rs.maps[NFTNames.toWorkloadMap]?.elements["\"cali-bs\""] == "goto cali-tw-cali-bs")
        // The server's ingress chain runs the seed policy, then its profile.
        let tw = rs.chains["cali-tw-cali-bs"]!.rules
        #expect(tw.first == "ct state established,related accept")
        #expect(tw.contains("meta mark & 0x20000 == 0 jump cali-pi-default/allow-bookstore-cliient-to-server"))
        #expect(tw.contains("jump cali-pri-calico"))
        #expect(tw.last == "drop")
        // Selector sets hold the members' addresses, remote ones included.
        let bookstore = rs.sets.first { $0.value.elements == ["172.29.0.2", "172.29.0.3", "172.29.1.5"] }
        #expect(bookstore != nil, "no set with the bookstore members")
    }

    @Test(.enabled(if: canRunNFT, "needs root, nft and unshare"))
    func everyCaseRendersToARulesetTheKernelAccepts() throws {
        var failures: [String] = []
        for c in policyCases {
            let dp = Cluster.index(c.policies, profiles: c.profiles, endpoints: c.endpoints, endpointToHostAction: c.toHost).dataplane()
            let script = NFTRenderer.render(dp).replacementScript()
            let (ok, err) = try nftAccepts(script)
            if !ok { failures.append("\(c.name): \(err)\n\(script)") }
        }
        #expect(failures.isEmpty, "\(failures.first ?? "")")
    }

    @Test(.enabled(if: canRunNFT, "needs root, nft and unshare"))
    func incrementalChangesReachTheSameKernelStateAsAFullLoad() throws {
        // A sequence of states felix goes through; each step is applied as a diff on top
        // of the previous one, and must leave exactly what loading the state afresh does.
        let idx = PolicyIndex(nodeName: Cluster.node)
        var states: [NFTRuleset] = [NFTRenderer.base()]
        let cache = NFTRenderCache()
        func snapshot() {
            let dp = idx.dataplane()
            let fresh = NFTRenderer.render(dp)
            // The cache re-renders only what changed; the result must not differ.
            #expect(cache.render(dp) == fresh)
            states.append(fresh)
        }
        idx.upsert(Cluster.calicoProfile)
        for e in Cluster.endpoints { idx.upsert(e) }; snapshot()
        idx.upsert(Cluster.seedPolicy); snapshot()
        idx.upsert(networkPolicy("web", #"{"order":5,"selector":"biz_type == 'bookstore'","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":["http",443]}}],"egress":[{"action":"Deny","destination":{"nets":["10.0.0.0/8","fd00:1::/64"]}},{"action":"Pass"}]}"#)); snapshot()
        var relabelled = Cluster.fruitstoreFrontend
        relabelled.labels["biz_type"] = "bookstore"
        idx.upsert(relabelled); snapshot()
        idx.removeEndpoint(id: Cluster.bookstoreServer.id); snapshot()
        idx.removePolicy(scope: .namespaced("default"), name: "web"); snapshot()
        idx.removeProfile(name: "calico"); snapshot()

        for i in 1..<states.count {
            let (old, new) = (states[i - 1], states[i])
            let diff = try #require(new.changes(from: old), "step \(i) needs a full replace")
            #expect(!diff.isEmpty, "step \(i) changed nothing")
            let r = try inFreshNamespace(
                "nft -f old.nft && nft -f diff.nft && nft -j list table inet calico > inc.json && nft -f new.nft && nft -j list table inet calico > full.json && cat inc.json && echo && cat full.json",
                files: ["old.nft": old.replacementScript(), "diff.nft": diff, "new.nft": new.replacementScript()])
            try #require(r.status == 0, "step \(i): \(r.stderrText)\n--- diff:\n\(diff)")
            let lines = r.stdoutText.split(separator: "\n", omittingEmptySubsequences: true)
            try #require(lines.count == 2)
            #expect(try KernelTable(listing: String(lines[0])) == KernelTable(listing: String(lines[1])), "step \(i) differs\n\(diff)")
        }
    }

    @Test func unchangedStateNeedsNoCommands() {
        let rs = NFTRenderer.render(Cluster.index([Cluster.seedPolicy]).dataplane())
        #expect(rs.changes(from: rs) == "")
    }

    @Test func aPolicyChangeTouchesOnlyItsChain() throws {
        let before = NFTRenderer.render(Cluster.index([Cluster.seedPolicy]).dataplane())
        let changed = networkPolicy("allow-bookstore-cliient-to-server", """
            {"selector":"biz_type == 'bookstore' && role == 'server'","types":["Ingress"],
             "ingress":[{"action":"Allow","protocol":"TCP","source":{"selector":"biz_type == 'bookstore'"},"destination":{"ports":[8080]}}]}
            """)
        let after = NFTRenderer.render(Cluster.index([changed]).dataplane())
        let diff = try #require(after.changes(from: before))
        let touched = Set(diff.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            return words.count > 4 ? String(words[4]) : nil
        })
        #expect(touched.contains("cali-pi-default/allow-bookstore-cliient-to-server"))
        #expect(!touched.contains { $0.hasPrefix("cali-tw-") || $0.hasPrefix("cali-fw-") }, "\(diff)")
    }
}
