import IPAddress

/// Renders successive dataplanes, re-rendering only the chains and sets whose inputs
/// changed since the previous call.
///
/// felix keeps one: after a single policy change, every other chain's rules come back as
/// the very arrays of the previous ruleset, so ``NFTRuleset/changes(from:)`` compares them
/// by identity and the whole step costs little more than the change itself.
public final class NFTRenderCache {
    private var policies: [String: (program: PolicyProgram, ingress: [String], egress: [String])] = [:]
    private var profiles: [String: (program: ProfileProgram, ingress: [String], egress: [String])] = [:]
    private var endpoints: [String: (program: EndpointProgram, missing: [String], ingress: [String], egress: [String])] = [:]
    private var addressSets: [String: (members: [IPNetwork], v4: Set<String>, v6: Set<String>)] = [:]
    private var portSets: [String: (members: [NamedPortMember], v4: Set<String>, v6: Set<String>)] = [:]
    private var base: (action: EndpointToHostAction, chains: [String: NFTRuleset.ChainSpec])?

    public init() {}

    /// The ruleset for `dp` (equal to what ``NFTRenderer/render(_:)`` returns).
    public func render(_ dp: Dataplane) -> NFTRuleset {
        var rs = NFTRuleset()
        if base?.action != dp.endpointToHostAction {
            base = (dp.endpointToHostAction, NFTRenderer.baseChains(dp.endpointToHostAction))
        }
        rs.chains = base!.chains

        var fromMap = NFTRuleset.MapSpec(keyType: "ifname"), toMap = NFTRuleset.MapSpec(keyType: "ifname")
        var ifaces = NFTRuleset.SetSpec(type: "ifname", interval: false)
        var nextEndpoints: [String: (program: EndpointProgram, missing: [String], ingress: [String], egress: [String])] = [:]
        for (ifname, ep) in dp.endpoints {
            let q = NFTNames.quoted(ifname)
            ifaces.elements.insert(q)
            let fw = NFTNames.fromWorkload(ifname), tw = NFTNames.toWorkload(ifname)
            fromMap.elements[q] = "goto \(fw)"
            toMap.elements[q] = "goto \(tw)"
            let missing = ep.profiles.filter { dp.profiles[$0] == nil }
            var entry = endpoints[ifname]
            if entry == nil || entry!.program != ep || entry!.missing != missing {
                let exists: (String) -> Bool = { dp.profiles[$0] != nil }
                entry = (ep, missing, NFTRenderer.endpointChain(ep, .ingress, profileExists: exists),
                         NFTRenderer.endpointChain(ep, .egress, profileExists: exists))
            }
            nextEndpoints[ifname] = entry
            rs.chains[tw] = .init(rules: entry!.ingress)
            rs.chains[fw] = .init(rules: entry!.egress)
        }
        endpoints = nextEndpoints
        rs.maps[NFTNames.fromWorkloadMap] = fromMap
        rs.maps[NFTNames.toWorkloadMap] = toMap
        rs.sets[NFTNames.workloadInterfaces] = ifaces

        var nextPolicies: [String: (program: PolicyProgram, ingress: [String], egress: [String])] = [:]
        for (id, p) in dp.policies {
            var entry = policies[id]
            if entry == nil || entry!.program != p {
                entry = (p, NFTRenderer.ruleChain(p.ingress, inProfile: false), NFTRenderer.ruleChain(p.egress, inProfile: false))
            }
            nextPolicies[id] = entry
            // A direction outside the policy's `types` is never jumped to: no chain.
            if p.directions.contains(.ingress) { rs.chains[NFTNames.policyIngress(id)] = .init(rules: entry!.ingress) }
            if p.directions.contains(.egress) { rs.chains[NFTNames.policyEgress(id)] = .init(rules: entry!.egress) }
        }
        policies = nextPolicies

        var nextProfiles: [String: (program: ProfileProgram, ingress: [String], egress: [String])] = [:]
        for (name, p) in dp.profiles {
            var entry = profiles[name]
            if entry == nil || entry!.program != p {
                entry = (p, NFTRenderer.ruleChain(p.ingress, inProfile: true), NFTRenderer.ruleChain(p.egress, inProfile: true))
            }
            nextProfiles[name] = entry
            rs.chains[NFTNames.profileIngress(name)] = .init(rules: entry!.ingress)
            rs.chains[NFTNames.profileEgress(name)] = .init(rules: entry!.egress)
        }
        profiles = nextProfiles

        var nextAddressSets: [String: (members: [IPNetwork], v4: Set<String>, v6: Set<String>)] = [:]
        for (id, nets) in dp.addressSets {
            var entry = addressSets[id]
            if entry == nil || entry!.members != nets {
                entry = (nets, Set(nets.filter { !$0.isIPv6 }.map(NFTRenderer.element)),
                         Set(nets.filter { $0.isIPv6 }.map(NFTRenderer.element)))
            }
            nextAddressSets[id] = entry
            rs.sets[NFTNames.set(id, ipv6: false)] = .init(type: "ipv4_addr", interval: true, elements: entry!.v4)
            rs.sets[NFTNames.set(id, ipv6: true)] = .init(type: "ipv6_addr", interval: true, elements: entry!.v6)
        }
        addressSets = nextAddressSets

        var nextPortSets: [String: (members: [NamedPortMember], v4: Set<String>, v6: Set<String>)] = [:]
        for (id, members) in dp.namedPortSets {
            var entry = portSets[id]
            if entry == nil || entry!.members != members {
                func elements(_ v6: Bool) -> Set<String> {
                    Set(members.filter { $0.address.isIPv6 == v6 }.map {
                        "\(NFTRenderer.element($0.address)) . \($0.protocolNumber) . \($0.port)"
                    })
                }
                entry = (members, elements(false), elements(true))
            }
            nextPortSets[id] = entry
            rs.sets[NFTNames.set(id, ipv6: false)] = .init(type: "ipv4_addr . inet_proto . inet_service", interval: true, elements: entry!.v4)
            rs.sets[NFTNames.set(id, ipv6: true)] = .init(type: "ipv6_addr . inet_proto . inet_service", interval: true, elements: entry!.v6)
        }
        portSets = nextPortSets
        return rs
    }
}
