/// The contents of `table inet calico` as felix wants it: sets, verdict maps and chains,
/// each rule in nft's own syntax.
///
/// Two rulesets can be turned into the commands that take the kernel from one to the
/// other (``changes(from:)``), or one into a script that replaces the table outright
/// (``replacementScript()``). Either way, `nft -f -` applies the whole script as one
/// transaction: the kernel never holds a half-applied state.
public struct NFTRuleset: Sendable, Hashable {
    /// A named set.
    public struct SetSpec: Sendable, Hashable {
        /// `ipv4_addr`, `ipv6_addr . inet_proto . inet_service`, `ifname`, ...
        public var type: String
        public var interval: Bool
        /// Elements in nft syntax (`172.29.0.1`, `10.0.0.0/8 . 6 . 80`), unique.
        public var elements: Set<String>

        public init(type: String, interval: Bool, elements: Set<String> = []) {
            self.type = type
            self.interval = interval
            self.elements = elements
        }
    }

    /// A verdict map keyed by interface name.
    public struct MapSpec: Sendable, Hashable {
        public var keyType: String
        /// Key (nft syntax, quoted) → verdict (`goto cali-fw-cali123`).
        public var elements: [String: String]

        public init(keyType: String, elements: [String: String] = [:]) {
            self.keyType = keyType
            self.elements = elements
        }
    }

    /// A chain; base chains carry their hook declaration.
    public struct ChainSpec: Sendable, Hashable {
        /// `type filter hook forward priority filter; policy accept;` for a base chain.
        public var hook: String?
        public var rules: [String]

        public init(hook: String? = nil, rules: [String]) {
            self.hook = hook
            self.rules = rules
        }
    }

    public var sets: [String: SetSpec]
    public var maps: [String: MapSpec]
    public var chains: [String: ChainSpec]

    public init(sets: [String: SetSpec] = [:], maps: [String: MapSpec] = [:], chains: [String: ChainSpec] = [:]) {
        self.sets = sets
        self.maps = maps
        self.chains = chains
    }

    private static let table = "\(NFTNames.family) \(NFTNames.table)"

    /// A script that deletes `table inet calico` (if present) and recreates it with this
    /// content, as one transaction.
    public func replacementScript() -> String {
        var out = "add table \(Self.table)\ndelete table \(Self.table)\ntable \(Self.table) {\n"
        for name in sets.keys.sorted() {
            let s = sets[name]!
            out += "\tset \(name) {\n\t\ttype \(s.type)\n"
            if s.interval { out += "\t\tflags interval\n" }
            if !s.elements.isEmpty { out += "\t\telements = { " + s.elements.sorted().joined(separator: ", ") + " }\n" }
            out += "\t}\n"
        }
        for name in maps.keys.sorted() {
            let m = maps[name]!
            out += "\tmap \(name) {\n\t\ttype \(m.keyType) : verdict\n"
            if !m.elements.isEmpty {
                out += "\t\telements = { " + m.elements.keys.sorted().map { "\($0) : \(m.elements[$0]!)" }.joined(separator: ", ") + " }\n"
            }
            out += "\t}\n"
        }
        for name in chains.keys.sorted() {
            let c = chains[name]!
            out += "\tchain \(name) {\n"
            if let hook = c.hook { out += "\t\t\(hook)\n" }
            for r in c.rules { out += "\t\t\(r)\n" }
            out += "\t}\n"
        }
        return out + "}\n"
    }

    /// The commands that turn `old` (what the kernel holds) into this ruleset, touching
    /// only what differs; "" when nothing does. Nil when the difference cannot be applied
    /// in place (a set's type or a base chain's hook changed): replace the table instead.
    public func changes(from old: NFTRuleset) -> String? {
        let t = Self.table
        var create = "", elements = "", rules = "", remove = ""

        // Element changes are written as "flush the set, declare it again with all its
        // elements", never as `add element`/`delete element`: nft 1.0.x answers those by
        // first fetching the elements of every set in the table — including the anonymous
        // sets of every rule — which costs ~150 ms on a table of 1,000 policies, where this
        // form costs a few. The flush and the refill are one transaction, so the kernel
        // never sees the set empty.
        for (name, s) in sets.sorted(by: { $0.key < $1.key }) {
            if let o = old.sets[name] {
                guard o.type == s.type, o.interval == s.interval else { return nil }
                if o.elements == s.elements { continue }
                elements += "flush set \(t) \(name)\n"
                if !s.elements.isEmpty { elements += Self.declaration(set: name, s) }
            } else {
                create += Self.declaration(set: name, s)
            }
        }
        for (name, m) in maps.sorted(by: { $0.key < $1.key }) {
            if let o = old.maps[name] {
                guard o.keyType == m.keyType else { return nil }
                if o.elements == m.elements { continue }
                elements += "flush map \(t) \(name)\n"
                if !m.elements.isEmpty { elements += Self.declaration(map: name, m) }
            } else {
                // Its verdicts name chains created below: add it empty, fill it after.
                create += "add map \(t) \(name) { type \(m.keyType) : verdict; }\n"
                if !m.elements.isEmpty { elements += Self.declaration(map: name, m) }
            }
        }
        for (name, c) in chains.sorted(by: { $0.key < $1.key }) {
            if let o = old.chains[name] {
                guard o.hook == c.hook else { return nil }
                if o.rules == c.rules { continue }
                rules += "flush chain \(t) \(name)\n"
            } else {
                create += "add chain \(t) \(name)" + (c.hook.map { " { \($0) }" } ?? "") + "\n"
            }
            for r in c.rules { rules += "add rule \(t) \(name) \(r)\n" }
        }
        // What goes: empty the chains first (their jumps hold references), then delete
        // chains, maps and sets, which nothing references any more.
        let goneChains = old.chains.keys.filter { chains[$0] == nil }.sorted()
        for name in goneChains { rules += "flush chain \(t) \(name)\n" }
        for name in goneChains { remove += "delete chain \(t) \(name)\n" }
        for name in old.maps.keys.sorted() where maps[name] == nil { remove += "delete map \(t) \(name)\n" }
        for name in old.sets.keys.sorted() where sets[name] == nil { remove += "delete set \(t) \(name)\n" }
        return create + elements + rules + remove
    }

    private static func declaration(set name: String, _ s: SetSpec) -> String {
        "add set \(table) \(name) { type \(s.type);\(s.interval ? " flags interval;" : "")"
            + (s.elements.isEmpty ? "" : " elements = { \(s.elements.sorted().joined(separator: ", ")) };") + " }\n"
    }

    private static func declaration(map name: String, _ m: MapSpec) -> String {
        "add map \(table) \(name) { type \(m.keyType) : verdict; elements = { "
            + m.elements.keys.sorted().map { "\($0) : \(m.elements[$0]!)" }.joined(separator: ", ") + " }; }\n"
    }

    /// Total number of rules, for logs and benchmarks.
    public var ruleCount: Int { chains.values.reduce(0) { $0 + $1.rules.count } }
}
