import Foundation

/// Facts about the machine a test runs on, for `.enabled(if:)` conditions.
public enum TestEnvironment {
    /// Whether the tests run as root (network namespaces, veths, nftables need it).
    public static let isRoot: Bool = geteuid() == 0

    /// Whether an executable named `tool` is on PATH (or is an absolute path that exists).
    public static func has(_ tool: String) -> Bool { which(tool) != nil }

    /// The full path of `tool` on PATH (plus /usr/sbin and /sbin), or nil.
    public static func which(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Root and the `ip` tool: what namespace-based tests need.
    public static let canUseNamespaces: Bool = isRoot && has("ip")

    /// The directory holding the built executables (`calico`, `calico-ipam`, ...): the
    /// build products directory the test bundle itself lives in.
    public static let productsDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["CALICO_PRODUCTS_DIR"] {
            return URL(fileURLWithPath: override)
        }
        var url = Bundle.main.bundleURL
        // swift test runs `<products>/<Package>PackageTests.xctest`; walk up to a directory
        // that holds the `calico` executable.
        for _ in 0..<4 {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("calico").path) { return url }
            url = url.deletingLastPathComponent()
        }
        let args = CommandLine.arguments.first.map { URL(fileURLWithPath: $0).deletingLastPathComponent() }
        return args ?? url
    }()

    /// The path of a built executable product.
    public static func product(_ name: String) -> String {
        productsDirectory.appendingPathComponent(name).path
    }

    /// Whether a built executable product exists.
    public static func hasProduct(_ name: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: product(name))
    }

    /// The repository root (for Fixtures/ and cni-conf/).
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url = url.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// A fresh temporary directory, removed by the caller (or left in /tmp).
    public static func temporaryDirectory(_ label: String = "calico-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
