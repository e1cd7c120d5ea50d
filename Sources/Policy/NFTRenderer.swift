import CalicoAPI
import IPAddress

/// Renders a ``Dataplane`` as the content of `table inet calico`.
///
/// The shape follows felix (REFERENCE.md §6): base chains on the forward, input and
/// output hooks send traffic of `cali*` interfaces to dispatch chains; a verdict map per
/// direction sends each known interface to its `cali-fw-<if>` / `cali-tw-<if>` chain, and
/// an interface with no entry is dropped (fail closed: a workload felix has not
/// programmed yet is cut off, never open). Endpoint chains accept established traffic,
/// drop invalid, then jump to each policy chain in order and to the profile chains.
/// Policy and profile chains signal Allow and Pass to the endpoint chain with two mark
/// bits (``NFTNames/acceptMark``, ``NFTNames/passMark``), as felix's iptables rules do.
public enum NFTRenderer {
    /// The table with no endpoints: what felix installs at start, before its first sync,
    /// so `cali*` traffic is dropped rather than open until policy is programmed.
    public static func base(endpointToHostAction: EndpointToHostAction = .drop) -> NFTRuleset {
        render(Dataplane(endpointToHostAction: endpointToHostAction))
    }

    /// The full ruleset for `dataplane`.
    public static func render(_ dp: Dataplane) -> NFTRuleset {
        NFTRenderCache().render(dp)
    }

    static let acceptHex = "0x" + String(NFTNames.acceptMark, radix: 16)
    static let passHex = "0x" + String(NFTNames.passMark, radix: 16)
    static let clearHex = "0x" + String(~(NFTNames.acceptMark | NFTNames.passMark), radix: 16)

    /// The static chains: hooks, dispatch, workload-to-host.
    static func baseChains(_ action: EndpointToHostAction) -> [String: NFTRuleset.ChainSpec] {
        var chains: [String: NFTRuleset.ChainSpec] = [:]
        chains[NFTNames.forward] = .init(hook: "type filter hook forward priority filter; policy accept;", rules: [
            "iifname \"cali*\" jump \(NFTNames.fromWorkloadDispatch)",
            "oifname \"cali*\" jump \(NFTNames.toWorkloadDispatch)",
        ])
        chains[NFTNames.input] = .init(hook: "type filter hook input priority filter; policy accept;", rules: [
            "iifname \"cali*\" jump \(NFTNames.workloadToHost)",
        ])
        chains[NFTNames.output] = .init(hook: "type filter hook output priority filter; policy accept;", rules: [
            // The host may reach its own workloads (felix's default); an unknown cali* is
            // not a workload yet.
            "oifname \"cali*\" oifname != @\(NFTNames.workloadInterfaces) drop",
        ])
        let toHost: String
        switch action {
        case .drop: toHost = "drop"
        case .accept: toHost = "accept"
        case .return: toHost = "return"
        }
        chains[NFTNames.workloadToHost] = .init(rules: [
            // Router solicitation, neighbour discovery and MLD must reach the host for IPv6
            // to work at all (felix allows them before policy too).
            "meta l4proto 58 icmpv6 type { 130, 131, 132, 133, 135, 136 } accept",
            "jump \(NFTNames.fromWorkloadDispatch)",
            toHost,
        ])
        chains[NFTNames.fromWorkloadDispatch] = .init(rules: ["iifname vmap @\(NFTNames.fromWorkloadMap)", "drop"])
        chains[NFTNames.toWorkloadDispatch] = .init(rules: ["oifname vmap @\(NFTNames.toWorkloadMap)", "drop"])
        return chains
    }

    /// `cali-tw-<if>` (ingress) or `cali-fw-<if>` (egress) of one endpoint.
    static func endpointChain(_ ep: EndpointProgram, _ direction: Direction, profileExists: (String) -> Bool) -> [String] {
        var rules = ["ct state established,related accept", "ct state invalid drop"]
        if direction == .egress {
            // Anti-spoofing: a workload may only send from its own addresses.
            for v6 in [false, true] {
                let own = ep.addresses.filter { $0.isIPv6 == v6 }.map(\.masked)
                let fam = v6 ? "ipv6" : "ipv4", ip = v6 ? "ip6" : "ip"
                rules.append(own.isEmpty ? "meta nfproto \(fam) drop"
                             : "meta nfproto \(fam) \(ip) saddr != \(anonymousSet(own.map(element))) drop")
            }
        }
        rules.append("meta mark set meta mark & \(clearHex)")
        let policies = ep.policies(direction)
        for id in policies {
            let chain = direction == .ingress ? NFTNames.policyIngress(id) : NFTNames.policyEgress(id)
            rules.append("meta mark & \(passHex) == 0 jump \(chain)")
            rules.append("meta mark & \(acceptHex) == \(acceptHex) return")
        }
        if !policies.isEmpty {
            // Falling off the end of the policies drops, unless one said Pass.
            rules.append("meta mark & \(passHex) == 0 drop")
        }
        for name in ep.profiles {
            guard profileExists(name) else {
                rules.append("drop")  // a missing profile denies
                break
            }
            let chain = direction == .ingress ? NFTNames.profileIngress(name) : NFTNames.profileEgress(name)
            rules.append("jump \(chain)")
            rules.append("meta mark & \(acceptHex) == \(acceptHex) return")
        }
        if rules.last != "drop" { rules.append("drop") }
        return rules
    }

    private static let logVerdict = "log prefix \"calico-packet: \""
    private static let policyVerdicts: [RuleAction: String] = [
        .allow: "meta mark set meta mark | \(acceptHex) return", .deny: "drop",
        .pass: "meta mark set meta mark | \(passHex) return", .log: logVerdict,
    ]
    /// In a profile, Pass ends this profile without a verdict: the next one runs.
    private static let profileVerdicts: [RuleAction: String] = [
        .allow: "meta mark set meta mark | \(acceptHex) return", .deny: "drop", .pass: "return", .log: logVerdict,
    ]

    /// The rules of `cali-pi-`/`cali-po-` (or, `inProfile`, `cali-pri-`/`cali-pro-`).
    static func ruleChain(_ rules: [CompiledRule], inProfile: Bool) -> [String] {
        let verdicts = inProfile ? profileVerdicts : policyVerdicts
        return rules.flatMap { rule($0, verdict: verdicts[$0.action]!) }
    }

    /// One Calico rule as nft rules: one per address family when it matches on
    /// addresses, and one per alternative when ports combine numbers and named ports
    /// (nft has no "or" between different expressions).
    static func rule(_ r: CompiledRule, verdict: String) -> [String] {
        let familySpecific = r.source.isFamilySpecific || r.destination.isFamilySpecific || r.icmp != nil || r.notICMP != nil
        var families: [Int?]
        if familySpecific {
            families = [4, 6].filter { f in
                if let v = r.ipVersion, v != f { return false }
                if r.protocolNumber == 1 && f == 6 { return false }
                if r.protocolNumber == 58 && f == 4 { return false }
                return true
            }
        } else {
            families = [r.ipVersion]
        }
        var out: [String] = []
        for f in families {
            var parts: [String] = []
            let v6 = f == 6
            let ip = v6 ? "ip6" : "ip"
            if let f { parts.append("meta nfproto ipv\(f)") }
            if let p = r.protocolNumber { parts.append("meta l4proto \(p)") }
            if let p = r.notProtocolNumber { parts.append("meta l4proto != \(p)") }
            var skip = false
            var portAlternatives: [[String]] = [[]]
            for (e, dir) in [(r.source, "s"), (r.destination, "d")] {
                let addr = "\(ip) \(dir)addr"
                if !e.nets.isEmpty {
                    let mine = e.nets.filter { $0.isIPv6 == v6 }
                    if mine.isEmpty { skip = true; break }
                    parts.append("\(addr) \(anonymousSet(mine.map(element)))")
                }
                let notMine = e.notNets.filter { $0.isIPv6 == v6 }
                if !notMine.isEmpty { parts.append("\(addr) != \(anonymousSet(notMine.map(element)))") }
                if let s = e.selectorSet { parts.append("\(addr) @\(NFTNames.set(s, ipv6: v6))") }
                if let s = e.notSelectorSet { parts.append("\(addr) != @\(NFTNames.set(s, ipv6: v6))") }
                let port = "th \(dir)port"
                if !e.notPorts.isEmpty { parts.append("\(port) != \(anonymousSet(e.notPorts.map(portElement)))") }
                for s in e.notNamedPortSets {
                    parts.append("\(addr) . meta l4proto . \(port) != @\(NFTNames.set(s, ipv6: v6))")
                }
                if e.hasPortMatch {
                    var alternatives: [String] = []
                    if !e.ports.isEmpty { alternatives.append("\(port) \(anonymousSet(e.ports.map(portElement)))") }
                    for s in e.namedPortSets { alternatives.append("\(addr) . meta l4proto . \(port) @\(NFTNames.set(s, ipv6: v6))") }
                    portAlternatives = portAlternatives.flatMap { prefix in alternatives.map { prefix + [$0] } }
                }
            }
            if skip { continue }
            let icmp = v6 ? "icmpv6" : "icmp"
            if let m = r.icmp {
                parts.append("\(icmp) type \(m.type)")
                if let c = m.code { parts.append("\(icmp) code \(c)") }
            }
            if let m = r.notICMP {
                if let c = m.code {
                    parts.append("\(icmp) type . \(icmp) code != { \(m.type) . \(c) }")
                } else {
                    parts.append("\(icmp) type != \(m.type)")
                }
            }
            for alt in portAlternatives {
                out.append((parts + alt + [verdict]).joined(separator: " "))
            }
        }
        return out
    }

    /// An address as a set element: bare for a host, CIDR otherwise.
    static func element(_ n: IPNetwork) -> String {
        n.prefixLength == n.address.bitWidth ? n.address.description : n.masked.description
    }

    static func portElement(_ r: ClosedRange<UInt16>) -> String {
        r.lowerBound == r.upperBound ? String(r.lowerBound) : "\(r.lowerBound)-\(r.upperBound)"
    }

    /// `x` alone or `{ x, y }`.
    static func anonymousSet(_ elements: [String]) -> String {
        elements.count == 1 ? elements[0] : "{ " + elements.joined(separator: ", ") + " }"
    }
}
