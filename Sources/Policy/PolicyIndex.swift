import CalicoAPI
import IPAddress
import Selector

/// The policy state of the cluster as one host sees it, kept up to date one change at a
/// time, from which ``dataplane()`` computes what this host must enforce.
///
/// Selector membership is maintained incrementally: a changed endpoint is re-evaluated
/// against the selectors in use, a new selector against the endpoints. So a change costs
/// work proportional to what it touches, not to the cluster.
///
/// Not thread-safe: felix drives it from one loop.
public final class PolicyIndex {
    /// This host's node name: endpoints with `node` equal to it are local.
    public let nodeName: String
    public var endpointToHostAction: EndpointToHostAction

    private var endpoints: [String: PolicyEndpoint] = [:]
    /// Own labels over profile `labelsToApply`, plus the labels Calico adds.
    private var labels: [String: [String: String]] = [:]
    private var policies: [String: PolicyEntry] = [:]
    private var profiles: [String: ProfileEntry] = [:]
    private var tracked: [Selector: TrackedSelector] = [:]
    private var setDefinitions: [String: SetDefinition] = [:]
    private var compiler = RuleCompiler()
    /// Policies sorted by (order, id); rebuilt lazily.
    private var sortedPolicies: [PolicyEntry]? = nil
    /// Problems found while compiling (bad selectors), for felix to log.
    public private(set) var warnings: [String] = []

    private final class TrackedSelector {
        let selector: Selector
        var references = 0
        var members: Set<String> = []
        /// Changes whenever a member joins or leaves or a member's addresses or ports
        /// change: the key for ``PolicyIndex/setCache``.
        var version = 0
        init(_ s: Selector) { selector = s }
    }

    /// Source of ``TrackedSelector/version`` values, unique across selectors' lifetimes.
    private var versionCounter = 0
    private func nextVersion() -> Int {
        versionCounter += 1
        return versionCounter
    }

    /// Set contents computed by earlier ``dataplane()`` calls, by set ID.
    private var setCache: [String: (version: Int, addresses: [IPNetwork], ports: [NamedPortMember])] = [:]

    private struct PolicyEntry {
        var definition: PolicyDefinition
        var appliesTo: Selector?
        var program: PolicyProgram
        var selectors: [Selector]
    }

    private struct ProfileEntry {
        var definition: ProfileDefinition
        var program: ProfileProgram
        var selectors: [Selector]
    }

    public init(nodeName: String, endpointToHostAction: EndpointToHostAction = .drop) {
        self.nodeName = nodeName
        self.endpointToHostAction = endpointToHostAction
    }

    /// Numbers of known objects (for felix's status record).
    public var endpointCount: Int { endpoints.count }
    public var localEndpointCount: Int { endpoints.values.filter { $0.node == nodeName }.count }
    public var policyCount: Int { policies.count }
    public var profileCount: Int { profiles.count }

    /// Clears warnings collected so far and returns them.
    public func takeWarnings() -> [String] {
        defer { warnings = [] }
        return warnings
    }

    // MARK: - Endpoints

    /// Adds or replaces an endpoint (any node).
    public func upsert(_ endpoint: PolicyEndpoint) {
        let old = endpoints.updateValue(endpoint, forKey: endpoint.id)
        if old == endpoint { return }
        refreshMembership(of: endpoint.id, dataChanged: old?.addresses != endpoint.addresses || old?.ports != endpoint.ports)
    }

    /// Removes an endpoint; unknown IDs are ignored.
    public func removeEndpoint(id: String) {
        guard endpoints.removeValue(forKey: id) != nil else { return }
        labels[id] = nil
        for t in tracked.values where t.members.remove(id) != nil { t.version = nextVersion() }
    }

    // MARK: - Policies

    /// Adds or replaces a NetworkPolicy or GlobalNetworkPolicy (by ``PolicyDefinition/id``).
    public func upsert(_ policy: PolicyDefinition) {
        let key = Self.policyKey(policy.scope, policy.name)
        if let old = policies[key], old.definition == policy { return }
        var sets = Set<SetDefinition>()
        let applies = compiler.appliesTo(policy)
        if applies == nil { warnings.append("policy \(policy.id): invalid selector \"\(policy.selector)\"; it selects nothing") }
        let ns = policy.namespace
        let ingress = compileRules(policy.ingress, namespace: ns, owner: "policy \(policy.id)", sets: &sets)
        let egress = compileRules(policy.egress, namespace: ns, owner: "policy \(policy.id)", sets: &sets)
        let directions = Set(policy.types.map { $0 == .ingress ? Direction.ingress : Direction.egress })
        let program = PolicyProgram(chainID: Self.chainID(for: policy), name: policy.id, ingress: ingress, egress: egress,
                                    directions: directions)
        var selectors = sets.map { register($0) }
        if let applies { selectors.append(retain(applies)) }
        if let old = policies[key] { old.selectors.forEach(release) }
        policies[key] = PolicyEntry(definition: policy, appliesTo: applies, program: program, selectors: selectors)
        sortedPolicies = nil
    }

    /// Removes a policy; unknown names are ignored.
    public func removePolicy(scope: PolicyDefinition.Scope, name: String) {
        guard let old = policies.removeValue(forKey: Self.policyKey(scope, name)) else { return }
        old.selectors.forEach(release)
        sortedPolicies = nil
    }

    // MARK: - Profiles

    /// Adds or replaces a profile.
    public func upsert(_ profile: ProfileDefinition) {
        let old = profiles[profile.name]
        if let old, old.definition == profile { return }
        var sets = Set<SetDefinition>()
        let ingress = compileRules(profile.ingress, namespace: nil, owner: "profile \(profile.name)", sets: &sets)
        let egress = compileRules(profile.egress, namespace: nil, owner: "profile \(profile.name)", sets: &sets)
        let selectors = sets.map { register($0) }
        old?.selectors.forEach(release)
        profiles[profile.name] = ProfileEntry(definition: profile,
                                              program: ProfileProgram(name: profile.name, ingress: ingress, egress: egress),
                                              selectors: selectors)
        if old?.definition.labelsToApply != profile.labelsToApply { refreshEndpoints(usingProfile: profile.name) }
    }

    /// Removes a profile; endpoints naming it are then denied by it.
    public func removeProfile(name: String) {
        guard let old = profiles.removeValue(forKey: name) else { return }
        old.selectors.forEach(release)
        if !old.definition.labelsToApply.isEmpty { refreshEndpoints(usingProfile: name) }
    }

    // MARK: - The result

    /// What this host must enforce now.
    public func dataplane() -> Dataplane {
        var dp = Dataplane(endpointToHostAction: endpointToHostAction)
        var localByID: [String: PolicyEndpoint] = [:]
        for e in endpoints.values where e.node == nodeName {
            guard let ifname = e.interfaceName, !ifname.isEmpty else { continue }
            // Two records claiming one interface (a stale one left behind): the later ID
            // wins, deterministically.
            if let other = dp.endpoints[ifname], other.id > e.id { continue }
            if let other = dp.endpoints[ifname] { localByID[other.id] = nil }
            dp.endpoints[ifname] = EndpointProgram(id: e.id, interfaceName: ifname, addresses: e.addresses, profiles: e.profiles)
            localByID[e.id] = e
        }
        var ifnameByID: [String: String] = [:]
        for (ifname, p) in dp.endpoints { ifnameByID[p.id] = ifname }

        var usedSets = Set<String>()
        if sortedPolicies == nil {
            sortedPolicies = policies.values.sorted { a, b in
                let oa = a.definition.order ?? .infinity, ob = b.definition.order ?? .infinity
                if oa != ob { return oa < ob }
                return a.definition.id < b.definition.id
            }
        }
        for entry in sortedPolicies! where entry.definition.appliesToWorkloads {
            guard let applies = entry.appliesTo, let t = tracked[applies] else { continue }
            let ingress = entry.definition.types.contains(.ingress), egress = entry.definition.types.contains(.egress)
            var used = false
            for id in t.members {
                guard let ifname = ifnameByID[id] else { continue }
                if ingress { dp.endpoints[ifname]!.ingressPolicies.append(entry.program.chainID); used = true }
                if egress { dp.endpoints[ifname]!.egressPolicies.append(entry.program.chainID); used = true }
            }
            if used {
                dp.policies[entry.program.chainID] = entry.program
                Self.collectSets(entry.program.ingress + entry.program.egress, into: &usedSets)
            }
        }
        for ep in dp.endpoints.values {
            for name in ep.profiles where dp.profiles[name] == nil {
                guard let p = profiles[name] else { continue }
                dp.profiles[name] = p.program
                Self.collectSets(p.program.ingress + p.program.egress, into: &usedSets)
            }
        }
        var nextCache: [String: (version: Int, addresses: [IPNetwork], ports: [NamedPortMember])] = [:]
        for id in usedSets {
            guard let def = setDefinitions[id], let t = tracked[def.selector] else { continue }
            if let c = setCache[id], c.version == t.version {
                nextCache[id] = c
                if case .addresses = def { dp.addressSets[id] = c.addresses } else { dp.namedPortSets[id] = c.ports }
                continue
            }
            switch def {
            case .addresses:
                var nets: [IPNetwork] = []
                for m in t.members { nets += endpoints[m]?.addresses ?? [] }
                dp.addressSets[id] = Self.normalized(nets)
                nextCache[id] = (t.version, dp.addressSets[id]!, [])
            case .namedPort(_, let name):
                var members = Set<NamedPortMember>()
                for m in t.members {
                    guard let e = endpoints[m] else { continue }
                    for p in e.ports where p.name == name {
                        for a in e.addresses { members.insert(NamedPortMember(address: a.masked, protocolNumber: p.protocolNumber, port: p.port)) }
                    }
                }
                dp.namedPortSets[id] = members.sorted()
                nextCache[id] = (t.version, [], dp.namedPortSets[id]!)
            }
        }
        setCache = nextCache
        return dp
    }

    /// The labels selectors see for an endpoint: its own, then its profiles'
    /// `labelsToApply` in profile order (the first to define a key wins), then the labels
    /// Calico itself adds (namespace, orchestrator, the namespace's `pcns.` labels).
    public func effectiveLabels(of endpointID: String) -> [String: String]? {
        labels[endpointID]
    }

    // MARK: - Internals

    private func compileRules(_ rules: [Rule], namespace: String?, owner: String, sets: inout Set<SetDefinition>) -> [CompiledRule] {
        var out: [CompiledRule] = []
        for (i, r) in rules.enumerated() {
            if let c = compiler.compile(r, namespace: namespace, sets: &sets) {
                out.append(c)
            } else {
                warnings.append("\(owner): rule \(i + 1) can never match (unsupported or invalid match); skipped")
            }
        }
        return out
    }

    private func computeLabels(_ e: PolicyEndpoint) -> [String: String] {
        var l = e.labels
        for name in e.profiles {
            guard let p = profiles[name] else { continue }
            for (k, v) in p.definition.labelsToApply where l[k] == nil { l[k] = v }
        }
        if l[Selector.namespaceLabel] == nil { l[Selector.namespaceLabel] = e.namespace }
        if let o = e.orchestrator, l["projectcalico.org/orchestrator"] == nil { l["projectcalico.org/orchestrator"] = o }
        l[Selector.namespaceLabelPrefix + "projectcalico.org/name"] = e.namespace
        return l
    }

    private func refreshMembership(of id: String, dataChanged: Bool) {
        guard let e = endpoints[id] else { return }
        let l = computeLabels(e)
        if labels.updateValue(l, forKey: id) == l && !dataChanged { return }
        for t in tracked.values {
            let member = t.selector.matches(l)
            if member {
                if t.members.insert(id).inserted || dataChanged { t.version = nextVersion() }
            } else if t.members.remove(id) != nil {
                t.version = nextVersion()
            }
        }
    }

    private func refreshEndpoints(usingProfile name: String) {
        for e in endpoints.values where e.profiles.contains(name) { refreshMembership(of: e.id, dataChanged: false) }
    }

    private func register(_ d: SetDefinition) -> Selector {
        setDefinitions[d.id] = d
        return retain(d.selector)
    }

    private func retain(_ s: Selector) -> Selector {
        if let t = tracked[s] {
            t.references += 1
        } else {
            let t = TrackedSelector(s)
            t.references = 1
            t.version = nextVersion()
            for (id, l) in labels where s.matches(l) { t.members.insert(id) }
            tracked[s] = t
        }
        return s
    }

    private func release(_ s: Selector) {
        guard let t = tracked[s] else { return }
        t.references -= 1
        if t.references <= 0 {
            tracked[s] = nil
            // Set definitions are tiny; drop the ones whose selector is gone.
            for (id, d) in setDefinitions where d.selector == s { setDefinitions[id] = nil }
        }
    }

    private static func collectSets(_ rules: [CompiledRule], into used: inout Set<String>) {
        for r in rules {
            for e in [r.source, r.destination] {
                if let s = e.selectorSet { used.insert(s) }
                if let s = e.notSelectorSet { used.insert(s) }
                used.formUnion(e.namedPortSets)
                used.formUnion(e.notNamedPortSets)
            }
        }
    }

    private static func policyKey(_ scope: PolicyDefinition.Scope, _ name: String) -> String {
        switch scope {
        case .namespaced(let ns): return "np:" + ns + "/" + name
        case .global: return "gnp:" + name
        }
    }

    /// The `<id>` of `cali-pi-<id>`/`cali-po-<id>`: the policy's ID when it is a safe nft
    /// identifier tail and short, else a hash. A NetworkPolicy's ID has a `/`, a global
    /// one's never does, so the two kinds cannot collide.
    static func chainID(for policy: PolicyDefinition) -> String {
        NFTNames.safeTail(policy.id) ?? "_" + StableHash.hex(policyKey(policy.scope, policy.name))
    }

    /// Addresses masked, sorted, without duplicates or networks inside another (nft
    /// interval sets refuse overlapping elements).
    static func normalized(_ nets: [IPNetwork]) -> [IPNetwork] {
        let sorted = Set(nets.map(\.masked)).sorted { a, b in
            a.address != b.address ? a.address < b.address : a.prefixLength < b.prefixLength
        }
        var out: [IPNetwork] = []
        for n in sorted {
            if let last = out.last, last.contains(n) { continue }
            out.append(n)
        }
        return out
    }
}
