import CalicoAPI
import Datastore
import IPAddress
import POSIX

/// The IPAM blocks this host's last ADD used (the one its address came from first), kept
/// on the host so the next ADD fetches them with its first batch of reads
/// (`PrefetchingDatastore`) and tries that block first (`AssignRequest.preferredBlocks`).
///
/// On etcd every read is a network round trip (with TLS, ~1 ms), and without this an ADD
/// must first read the host's block affinities and only then the blocks they name. On a
/// busy host several affine blocks are full, and trying the one that had room last time
/// first skips reading them. A host allocates from the same block for dozens of containers
/// in a row, so the last ADD's block is almost always the next one's. The file is only a
/// hint: a block that is no longer the host's is read for nothing and IPAM goes on as
/// usual; a missing or unreadable file means no hint.
///
/// One file per node and store, a CIDR per line, replaced atomically: for etcd in Calico's
/// state directory beside `nodename` (`/var/lib/calico/ipam-read-ahead-<hash>`), for SQLite
/// beside the database file.
public struct ReadAheadHints: Sendable {
    /// The file.
    public let path: String

    /// Calico's per-host state directory.
    public static let defaultDirectory = "/var/lib/calico"
    /// At most this many blocks are prefetched (a host with more full blocks reads the rest
    /// as before).
    static let limit = 8

    /// The hints of `node` on the store `datastore` names. `directory` overrides where an
    /// etcd store's hints are kept.
    public init(node: String, datastore: DatastoreSettings, directory: String = Self.defaultDirectory) {
        switch datastore {
        case .etcdv3(let etcd):
            let identity = ([node] + etcd.endpoints).joined(separator: "\n")
            path = directory + "/ipam-read-ahead-" + String(SHA256.hexDigest(identity).prefix(16))
        case .sqlite(let sqlite):
            let beside = sqlite.path.lastIndex(of: "/").map { String(sqlite.path[..<$0]) } ?? "."
            let identity = node + "\n" + sqlite.path
            path = (beside.isEmpty ? "" : beside) + "/ipam-read-ahead-" + String(SHA256.hexDigest(identity).prefix(16))
        }
    }

    /// The blocks in the file, the one to try first first (none when it is missing or
    /// unreadable; damaged lines are skipped).
    public func blocks() -> [IPNetwork] {
        guard let text = try? Files.readText(path) else { return [] }
        return text.split(separator: "\n").prefix(Self.limit).compactMap { IPNetwork($0) }
    }

    /// The keys of `blocks()`, to prefetch.
    public static func keys(of blocks: [IPNetwork]) -> [String] {
        blocks.map { CalicoKeys.block(cidr: $0.description) }
    }

    /// Records the block keys an ADD read, when they differ from `previous` (best effort:
    /// the hint is an optimisation, never a reason to fail).
    public func save(blockKeys keys: [String], previous: [String]) {
        let kept = Array(keys.prefix(Self.limit))
        guard !kept.isEmpty, kept != previous else { return }
        let cidrs = kept.compactMap { key -> String? in
            guard let slash = key.lastIndex(of: "/") else { return nil }
            return CalicoKeys.cidr(fromKeySegment: key[key.index(after: slash)...])
        }
        let directory = String(path[..<path.lastIndex(of: "/")!])
        if !Files.exists(directory) { try? Files.makeDirectories(directory, mode: 0o700) }
        Files.replace(path, with: Array((cidrs.joined(separator: "\n") + "\n").utf8), mode: 0o600)
    }
}
