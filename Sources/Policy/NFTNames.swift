/// The names felix gives nftables objects in `table inet calico`, after Calico's chain
/// names (REFERENCE.md §6).
public enum NFTNames {
    public static let family = "inet"
    public static let table = "calico"

    /// `cali-tw-<if>`: traffic to the workload (its ingress policy).
    public static func toWorkload(_ ifname: String) -> String { "cali-tw-" + ifnameTail(ifname) }
    /// `cali-fw-<if>`: traffic from the workload (its egress policy).
    public static func fromWorkload(_ ifname: String) -> String { "cali-fw-" + ifnameTail(ifname) }
    /// `cali-pi-<id>`: a policy's ingress rules.
    public static func policyIngress(_ chainID: String) -> String { "cali-pi-" + chainID }
    /// `cali-po-<id>`: a policy's egress rules.
    public static func policyEgress(_ chainID: String) -> String { "cali-po-" + chainID }
    /// `cali-pri-<name>`: a profile's ingress rules.
    public static func profileIngress(_ name: String) -> String { "cali-pri-" + (safeTail(name) ?? "_" + StableHash.hex(name)) }
    /// `cali-pro-<name>`: a profile's egress rules.
    public static func profileEgress(_ name: String) -> String { "cali-pro-" + (safeTail(name) ?? "_" + StableHash.hex(name)) }
    /// `cali-<set id>-v4` / `-v6`: one address family of a selector's members.
    public static func set(_ id: String, ipv6: Bool) -> String { "cali-" + id + (ipv6 ? "-v6" : "-v4") }

    /// Verdict map: interface → `goto cali-fw-<if>`.
    public static let fromWorkloadMap = "cali-from-wl"
    /// Verdict map: interface → `goto cali-tw-<if>`.
    public static let toWorkloadMap = "cali-to-wl"
    /// Interfaces felix programs (the host may talk to these, no others named `cali*`).
    public static let workloadInterfaces = "cali-wl-ifaces"
    public static let fromWorkloadDispatch = "cali-from-wl-dispatch"
    public static let toWorkloadDispatch = "cali-to-wl-dispatch"
    public static let workloadToHost = "cali-wl-to-host"
    public static let forward = "forward"
    public static let input = "input"
    public static let output = "output"

    /// Mark bit a policy or profile chain sets when it allows a packet.
    public static let acceptMark: UInt32 = 0x10000
    /// Mark bit a policy chain sets on `Pass`.
    public static let passMark: UInt32 = 0x20000

    /// `text` when it can follow `cali-xx-` in an nft identifier
    /// (`[a-zA-Z0-9_./-]`, at most 200 bytes); nil otherwise.
    static func safeTail(_ text: String) -> String? {
        guard !text.isEmpty, text.utf8.count <= 200 else { return nil }
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "/"), UInt8(ascii: "-"):
                continue
            default:
                return nil
            }
        }
        return text
    }

    private static func ifnameTail(_ ifname: String) -> String {
        safeTail(ifname) ?? "_" + StableHash.hex(ifname)
    }

    /// An interface name as an nft string literal.
    static func quoted(_ ifname: String) -> String {
        "\"" + String(ifname.unicodeScalars.filter { $0 != "\"" && $0 != "\\" && $0.value >= 0x20 }.map(Character.init)) + "\""
    }
}
