// swift-tools-version:6.1
import PackageDescription

// The plugin binaries (`calico`, `calico-ipam`) start once per container launch, so the
// libraries on their path import Glibc only: no Foundation, no third-party packages.
// calicoctl and calico-felix are long-lived or interactive and may use more.

/// The `calico` and `calico-ipam` executables' link (see their targets below).
let pluginLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-Xclang-linker", "-no-pie", "-Xlinker", "--no-export-dynamic"]),
    // Release builds (built with --static-swift-stdlib, as scripts/ do) also take libstdc++
    // and libgcc from their archives: see Sources/calico/linker/libstdc++.so.
    .unsafeFlags(["-L", Context.packageDirectory + "/Sources/calico/linker", "-Xclang-linker", "-static-libgcc"],
                 .when(configuration: .release)),
]

/// The libraries on the plugins' path and the plugins themselves: generic types are
/// instantiated through metadata accessors, not by demangling their mangled names at run
/// time (the default in optimized builds, which saves code size): demangling, and checking
/// each requirement by a conformance lookup whose first use scans every conformance record
/// of the binary, was a quarter of a plugin's user time.
let pluginPathSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
]

let package = Package(
    name: "calico-mesos",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "calico", targets: ["calico"]),
        .executable(name: "calico-ipam", targets: ["calico-ipam"]),
        .executable(name: "calicoctl", targets: ["calicoctl"]),
        .executable(name: "calico-felix", targets: ["calico-felix"]),
        .executable(name: "cni-harness", targets: ["cni-harness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C shims: netlink / rtnetlink headers and what Glibc does not export (setns, unshare).
        .target(name: "CNetlinkShims"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // Headers only: HTTPClient dlopens libssl when an endpoint is https (no pkgConfig,
        // which would link libssl and libcrypto into every binary and slow each start).
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),

        // Foundations shared by everything.
        .target(name: "POSIX", dependencies: ["CNetlinkShims"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "JSON", swiftSettings: pluginPathSwiftSettings),
        .target(name: "IPAddress", swiftSettings: pluginPathSwiftSettings),

        // CNI protocol, kernel access.
        .target(name: "CNI", dependencies: ["JSON", "POSIX", "IPAddress"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "Netlink", dependencies: ["CNetlinkShims", "POSIX", "IPAddress"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "NetNS", dependencies: ["CNetlinkShims", "POSIX"], swiftSettings: pluginPathSwiftSettings),

        // Datastore: protocol + key layout, then one target per backend, then selection.
        .target(name: "Datastore", dependencies: ["JSON"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "SQLiteDatastore", dependencies: ["Datastore", "CSQLite", "POSIX"], swiftSettings: pluginPathSwiftSettings),
        // OpenSSL linked statically (see OpenSSLLibrary.swift): Debian's libssl-dev ships
        // the archives, and a position-dependent plugin neither loads nor relocates them.
        .target(name: "HTTPClient", dependencies: ["POSIX", "COpenSSL"], swiftSettings: pluginPathSwiftSettings,
                linkerSettings: [.unsafeFlags(["-Xlinker", "-l:libssl.a", "-Xlinker", "-l:libcrypto.a"])]),
        .target(name: "EtcdDatastore", dependencies: ["Datastore", "HTTPClient", "JSON", "POSIX"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "Datastores", dependencies: ["Datastore", "SQLiteDatastore", "EtcdDatastore", "JSON", "POSIX"], swiftSettings: pluginPathSwiftSettings),
        // The protocol's conformance suite, run by every backend's tests.
        .target(name: "DatastoreConformance", dependencies: ["Datastore"]),

        // Calico.
        .target(name: "CalicoAPI", dependencies: ["JSON", "Datastore", "POSIX", "IPAddress"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "Selector", swiftSettings: pluginPathSwiftSettings),
        .target(name: "IPAM", dependencies: ["CalicoAPI", "Selector", "Datastore", "JSON", "POSIX", "IPAddress"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "CalicoCNI", dependencies: ["CNI", "Netlink", "NetNS", "IPAM", "CalicoAPI", "Datastores", "JSON", "POSIX"], swiftSettings: pluginPathSwiftSettings),
        .target(name: "Policy", dependencies: ["CalicoAPI", "Selector", "JSON", "IPAddress"]),
        .target(name: "CalicoCtl", dependencies: ["CalicoAPI", "Selector", "Datastores", "IPAM", "JSON", "POSIX", .product(name: "Yams", package: "Yams")]),
        .target(name: "Felix", dependencies: ["Policy", "CalicoAPI", "Datastore", "Datastores", "SQLiteDatastore", "Selector", "JSON", "POSIX"]),
        .target(name: "CNIHarness", dependencies: ["CNI", "JSON", "POSIX", "IPAddress", "NetNS", "Netlink"]),

        // Thin executables.
        // The plugins start once per container launch, so they link like Debian's CNI
        // plugins: a position-dependent executable (no relocation pass over the Swift
        // metadata at every start) that exports no symbols (the static Swift stdlib's
        // -export-dynamic puts ~4,000 in the dynamic table for the loader to hash and
        // dladdr to walk), and in release builds with libstdc++ and libgcc linked in.
        // Together ~1 ms of every invocation: the only shared libraries left are libc,
        // libm and libsqlite3.
        .executableTarget(name: "calico", dependencies: ["CalicoCNI"], exclude: ["linker"], swiftSettings: pluginPathSwiftSettings, linkerSettings: pluginLinkerSettings),
        .executableTarget(name: "calico-ipam", dependencies: ["CalicoCNI"], swiftSettings: pluginPathSwiftSettings, linkerSettings: pluginLinkerSettings),
        .executableTarget(name: "calicoctl", dependencies: ["CalicoCtl"]),
        .executableTarget(name: "calico-felix", dependencies: ["Felix"]),
        .executableTarget(name: "cni-harness", dependencies: ["CNIHarness"]),

        // Tests: one target per library, plus end-to-end tests over the built executables.
        .target(name: "TestSupport", dependencies: ["POSIX", "JSON"], path: "Tests/TestSupport"),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "IPAddress"]),
        .testTarget(name: "CNITests", dependencies: ["CNI", "CNIHarness", "JSON", "IPAddress", "POSIX", "TestSupport"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "NetNS", "CalicoCNI", "CNetlinkShims", "TestSupport"]),
        .testTarget(name: "DatastoreTests", dependencies: ["Datastore", "SQLiteDatastore", "EtcdDatastore", "Datastores", "DatastoreConformance", "TestSupport"]),
        .testTarget(name: "CalicoAPITests", dependencies: ["CalicoAPI", "JSON"]),
        .testTarget(name: "SelectorTests", dependencies: ["Selector"]),
        .testTarget(name: "IPAMTests", dependencies: ["IPAM", "CalicoAPI", "Datastore", "SQLiteDatastore", "TestSupport"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "CalicoAPI", "Selector", "JSON", "IPAddress", "TestSupport"]),
        .testTarget(name: "CalicoCtlTests", dependencies: ["CalicoCtl", "TestSupport"]),
        .testTarget(name: "FelixTests", dependencies: ["Felix", "Policy", "TestSupport", "CalicoAPI", "Datastore", "Datastores", "SQLiteDatastore", "JSON", "POSIX"]),
        .testTarget(name: "IntegrationTests", dependencies: ["CNIHarness", "CNI", "JSON", "TestSupport", "Netlink", "NetNS"]),
    ],
    swiftLanguageModes: [.v6]
)
