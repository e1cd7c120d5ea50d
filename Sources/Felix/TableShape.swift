import JSON
import Policy

/// What `table inet calico` holds, reduced to counts: rules per chain, elements per set
/// and map. Enough to notice someone deleting the table, a chain, a rule or an element
/// (the drift felix repairs) without comparing nft's re-printed rule text to ours.
struct TableShape: Equatable, CustomStringConvertible {
    var chains: [String: Int] = [:]
    var sets: [String: Int] = [:]
    var maps: [String: Int] = [:]

    init(_ rs: NFTRuleset) {
        for (n, c) in rs.chains { chains[n] = c.rules.count }
        for (n, s) in rs.sets { sets[n] = s.elements.count }
        for (n, m) in rs.maps { maps[n] = m.elements.count }
    }

    /// From `nft -j list table inet calico`.
    init(listing: String) throws(JSONParseError) {
        let json = try JSON(parsing: listing)
        for item in json["nftables"]?.arrayValue ?? [] {
            if let c = item["chain"], let n = c["name"]?.stringValue {
                chains[n, default: 0] += 0
            } else if let r = item["rule"], let n = r["chain"]?.stringValue {
                chains[n, default: 0] += 1
            } else if let s = item["set"], let n = s["name"]?.stringValue {
                sets[n] = s["elem"]?.arrayValue?.count ?? 0
            } else if let m = item["map"], let n = m["name"]?.stringValue {
                maps[n] = m["elem"]?.arrayValue?.count ?? 0
            }
        }
    }

    /// The first difference, for the log.
    func difference(from other: TableShape) -> String? {
        for (kind, mine, theirs) in [("chain", chains, other.chains), ("set", sets, other.sets), ("map", maps, other.maps)] {
            for (n, c) in theirs where mine[n] != c { return "\(kind) \(n): expected \(c), found \(mine[n].map(String.init) ?? "none")" }
            for n in mine.keys where theirs[n] == nil { return "unexpected \(kind) \(n)" }
        }
        return nil
    }

    var description: String { "\(chains.count) chains, \(sets.count) sets, \(maps.count) maps" }
}
