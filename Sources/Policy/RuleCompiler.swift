import CalicoAPI
import IPAddress
import Selector

/// A set a compiled rule refers to, and what fills it.
enum SetDefinition: Hashable {
    /// Addresses of every endpoint the selector matches.
    case addresses(Selector)
    /// Address/protocol/port of the named port `name` of every endpoint the selector matches.
    case namedPort(Selector, String)

    var selector: Selector {
        switch self {
        case .addresses(let s), .namedPort(let s, _): return s
        }
    }

    /// The set's ID: a stable hash of what defines it, so equal definitions share one set
    /// across policies and keep their name across restarts.
    var id: String {
        switch self {
        case .addresses(let s): return "s-" + StableHash.hex("addr\u{0}" + s.description)
        case .namedPort(let s, let n): return "n-" + StableHash.hex("port\u{0}" + s.description + "\u{0}" + n)
        }
    }
}

/// Turns API rules into ``CompiledRule``s with libcalico-go's selector scoping.
struct RuleCompiler {
    /// Parsed selectors by text (policies repeat the same few selectors a lot).
    private(set) var cache: [String: Selector?] = [:]

    /// Parses selector text; nil (and logged by the caller) when invalid.
    mutating func parse(_ text: String) -> Selector? {
        if let hit = cache[text] { return hit }
        let parsed = try? Selector(parsing: text)
        cache[text] = .some(parsed)
        return parsed
    }

    /// The selector of the endpoints a policy applies to, or nil when it cannot parse
    /// (then the policy selects nothing, as an invalid policy cannot be stored upstream).
    mutating func appliesTo(_ policy: PolicyDefinition) -> Selector? {
        guard var s = parse(policy.selector) else { return nil }
        if let ns = policy.namespace {
            s = s && Selector(.equal(Selector.namespaceLabel, ns))
        }
        if let nsSel = policy.namespaceSelector, !nsSel.isEmpty {
            guard let n = parse(nsSel) else { return nil }
            s = s && Self.prefixed(n, Selector.namespaceLabelPrefix)
        }
        if let saSel = policy.serviceAccountSelector, !saSel.isEmpty {
            guard let n = parse(saSel) else { return nil }
            s = s && Self.prefixed(n, "pcsa.")
        }
        return s
    }

    /// Compiles one rule. Returns nil for a rule that can never match: ports without a
    /// protocol that has ports, ICMP fields without ICMP, an unparsable net or selector.
    /// Leaving such a rule out is exactly "never matches" for every action.
    mutating func compile(_ rule: Rule, namespace: String?, sets: inout Set<SetDefinition>) -> CompiledRule? {
        // Application-layer (HTTP) matches need an L7 proxy felix does not have; a rule
        // that requires one never matches at L3/L4.
        if let http = rule.http, !http.isNull, http.objectValue?.isEmpty == false { return nil }
        var out = CompiledRule(action: rule.action, ipVersion: rule.ipVersion)
        if let p = rule.protocol {
            guard let n = p.number else { return nil }
            out.protocolNumber = n
        }
        if let p = rule.notProtocol {
            guard let n = p.number else { return nil }
            out.notProtocolNumber = n
        }
        let isICMP = out.protocolNumber == 1 || out.protocolNumber == 58
        for (field, target) in [(rule.icmp, \CompiledRule.icmp), (rule.notICMP, \CompiledRule.notICMP)] {
            guard let f = field, f.type != nil || f.code != nil else { continue }
            guard isICMP, let t = f.type, (0...255).contains(t) else { return nil }
            if let c = f.code, !(0...255).contains(c) { return nil }
            out[keyPath: target] = ICMPMatch(type: UInt8(t), code: f.code.map { UInt8($0) })
        }
        let portsAllowed = out.protocolNumber.map { [6, 17, 132, 136].contains($0) } ?? false
        for (entity, target) in [(rule.source, \CompiledRule.source), (rule.destination, \CompiledRule.destination)] {
            guard let e = compile(entity, namespace: namespace, portsAllowed: portsAllowed, sets: &sets) else { return nil }
            out[keyPath: target] = e
        }
        return out
    }

    private mutating func compile(_ e: EntityRule, namespace: String?, portsAllowed: Bool,
                                  sets: inout Set<SetDefinition>) -> CompiledEntity? {
        var out = CompiledEntity()
        guard let nets = Self.networks(e.nets), let notNets = Self.networks(e.notNets) else { return nil }
        out.nets = nets
        out.notNets = notNets

        // The positive selector: `selector`, scoped by `namespaceSelector` when given, else
        // (in a NetworkPolicy) by the policy's own namespace; service accounts likewise
        // become labels Calico puts on endpoints.
        var parts: [Selector] = []
        if let text = e.selector {
            guard let s = parse(text) else { return nil }
            parts.append(s)
        }
        if let sa = e.serviceAccounts {
            if !sa.names.isEmpty {
                parts.append(Selector(.in("projectcalico.org/serviceaccount", sa.names)))
            }
            if let text = sa.selector, !text.isEmpty {
                guard let s = parse(text) else { return nil }
                parts.append(Self.prefixed(s, "pcsa."))
            }
        }
        if let text = e.namespaceSelector {
            guard let s = parse(text) else { return nil }
            parts.append(Self.prefixed(s, Selector.namespaceLabelPrefix))
        } else if let ns = namespace, !parts.isEmpty || e.notSelector != nil {
            parts.append(Selector(.equal(Selector.namespaceLabel, ns)))
        }
        let positive: Selector? = parts.isEmpty ? nil : parts.dropFirst().reduce(parts[0]) { $0 && $1 }
        if let positive {
            let d = SetDefinition.addresses(positive)
            sets.insert(d)
            out.selectorSet = d.id
        }
        if let text = e.notSelector {
            guard let s = parse(text) else { return nil }
            let d = SetDefinition.addresses(s)
            sets.insert(d)
            out.notSelectorSet = d.id
        }

        for (list, ranges, named) in [(e.ports, \CompiledEntity.ports, \CompiledEntity.namedPortSets),
                                      (e.notPorts, \CompiledEntity.notPorts, \CompiledEntity.notNamedPortSets)] {
            guard !list.isEmpty else { continue }
            guard portsAllowed else { return nil }
            for p in list {
                switch p {
                case .range(let a, let b):
                    out[keyPath: ranges].append(a...b)
                case .named(let name):
                    // Named ports resolve over the same endpoints the side selects (all
                    // endpoints when no selector), as felix's named-port IP sets do.
                    let d = SetDefinition.namedPort(positive ?? .all, name)
                    sets.insert(d)
                    if !out[keyPath: named].contains(d.id) { out[keyPath: named].append(d.id) }
                }
            }
        }
        out.ports = Self.mergedPorts(out.ports)
        out.notPorts = Self.mergedPorts(out.notPorts)
        return out
    }

    /// Parses nets (a bare address is a host network), masking host bits as Calico does.
    static func networks(_ texts: [String]) -> [IPNetwork]? {
        var out: [IPNetwork] = []
        for t in texts {
            guard let n = IPNetwork(t, allowBareAddress: true) else { return nil }
            out.append(n.masked)
        }
        return PolicyIndex.normalized(out)
    }

    /// Port ranges sorted, overlapping and adjacent ones merged (nft refuses overlapping
    /// elements in one set; the union is the same).
    static func mergedPorts(_ ranges: [ClosedRange<UInt16>]) -> [ClosedRange<UInt16>] {
        var out: [ClosedRange<UInt16>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, Int(r.lowerBound) <= Int(last.upperBound) + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// `selector` with every label key prefixed: how Calico matches a namespace selector
    /// (`pcns.`) or service-account selector (`pcsa.`) against labels it copies onto
    /// endpoints.
    static func prefixed(_ s: Selector, _ prefix: String) -> Selector {
        func walk(_ e: Selector.Expression) -> Selector.Expression {
            switch e {
            case .all, .global: return e
            case .has(let k): return .has(prefix + k)
            case .equal(let k, let v): return .equal(prefix + k, v)
            case .notEqual(let k, let v): return .notEqual(prefix + k, v)
            case .in(let k, let v): return .in(prefix + k, v)
            case .notIn(let k, let v): return .notIn(prefix + k, v)
            case .contains(let k, let v): return .contains(prefix + k, v)
            case .startsWith(let k, let v): return .startsWith(prefix + k, v)
            case .endsWith(let k, let v): return .endsWith(prefix + k, v)
            case .not(let x): return .not(walk(x))
            case .and(let xs): return .and(xs.map(walk))
            case .or(let xs): return .or(xs.map(walk))
            }
        }
        return Selector(walk(s.expression))
    }
}

/// FNV-1a 64-bit: a stable (unlike `Hasher`) short hash for kernel object names.
enum StableHash {
    static func hex(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        let digits = String(h, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
