/// A CNI specification version ("0.2.0", "1.1.0").
///
/// A config's `cniVersion` must be exactly one of the known strings: "0.3" or "v1.0.0"
/// are not versions.
public struct CNIVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public let patch: Int

    public init(_ major: Int, _ minor: Int, _ patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses `major.minor.patch` (decimal digits only). Any of the three may be unknown
    /// to this library; `isKnown` says whether it is one of `all`.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var numbers: [Int] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 6, p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(p) else { return nil }
            numbers.append(n)
        }
        self.init(numbers[0], numbers[1], numbers[2])
    }

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (a: CNIVersion, b: CNIVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }

    public static let v0_1_0 = CNIVersion(0, 1, 0)
    public static let v0_2_0 = CNIVersion(0, 2, 0)
    public static let v0_3_0 = CNIVersion(0, 3, 0)
    public static let v0_3_1 = CNIVersion(0, 3, 1)
    public static let v0_4_0 = CNIVersion(0, 4, 0)
    public static let v1_0_0 = CNIVersion(1, 0, 0)
    public static let v1_1_0 = CNIVersion(1, 1, 0)

    /// Every version this library reads and writes, oldest first.
    public static let all: [CNIVersion] = [v0_1_0, v0_2_0, v0_3_0, v0_3_1, v0_4_0, v1_0_0, v1_1_0]

    /// The newest version: what VERSION reports when it has no config to echo.
    public static let latest = v1_1_0

    /// Whether this is one of `all`.
    public var isKnown: Bool { CNIVersion.all.contains(self) }

    /// 0.1.0 and 0.2.0 results have the `ip4`/`ip6` shape (the only one Mesos reads).
    public var usesLegacyResultShape: Bool { self < .v0_3_0 }

    /// 0.3.0 to 0.4.0 results carry `ips[].version`; 1.0.0 dropped it.
    public var hasIPVersionField: Bool { self >= .v0_3_0 && self < .v1_0_0 }

    /// 1.1.0 added interface `mtu`/`socketPath`/`pciID` and route `mtu`/`advmss`/
    /// `priority`/`table`/`scope`.
    public var hasExtendedFields: Bool { self >= .v1_1_0 }

    /// Reads a config's `cniVersion`: empty or missing means 0.1.0.
    /// Returns nil for a string that is not a known version.
    public static func fromConfig(_ text: String?) -> CNIVersion? {
        guard let text, !text.isEmpty else { return .v0_1_0 }
        guard let v = CNIVersion(text), v.isKnown else { return nil }
        return v
    }
}

/// A CNI operation, from `CNI_COMMAND`.
public enum CNICommand: String, Sendable, Hashable, CaseIterable {
    case add = "ADD"
    case del = "DEL"
    case check = "CHECK"
    case version = "VERSION"
    case gc = "GC"
    case status = "STATUS"

    /// The oldest config version that may ask for this command (the dispatcher refuses
    /// older ones with code 1).
    public var minimumVersion: CNIVersion {
        switch self {
        case .add, .del: return .v0_1_0
        case .version: return .v0_1_0
        case .check: return .v0_4_0
        case .gc, .status: return .v1_1_0
        }
    }
}
