#if canImport(Glibc)
import Glibc
#endif
import CalicoAPI
import Datastore
import IPAddress
import POSIX

/// The IPAM blocks this host's last ADD read, kept on the host so the next ADD fetches them
/// with its first batch of reads (`PrefetchingDatastore`) instead of one round trip each
/// after it.
///
/// On etcd every read is a network round trip (with TLS, ~1 ms), and without this an ADD
/// must first read the host's block affinities and only then the blocks they name. A host
/// allocates from the same block for dozens of containers in a row, so the last ADD's
/// blocks are almost always the next one's. The file is only a hint: a block that is no
/// longer the host's is read for nothing and IPAM goes on as usual; a missing or unreadable
/// file means no hint. SQLite stores need none (their reads are local).
///
/// One file per node and etcd cluster, in Calico's state directory beside `nodename`:
/// `/var/lib/calico/ipam-read-ahead-<hash>`, a CIDR per line, replaced atomically.
public struct ReadAheadHints: Sendable {
    /// The file.
    public let path: String

    /// Calico's per-host state directory.
    public static let defaultDirectory = "/var/lib/calico"
    /// At most this many blocks are prefetched (a host with more full blocks reads the rest
    /// as before).
    static let limit = 8

    /// The hints of `node` on the etcd cluster `settings` names; nil for other stores.
    public init?(node: String, datastore: DatastoreSettings, directory: String = Self.defaultDirectory) {
        guard case .etcdv3(let etcd) = datastore else { return nil }
        let identity = ([node] + etcd.endpoints).joined(separator: "\n")
        path = directory + "/ipam-read-ahead-" + String(SHA256.hexDigest(identity).prefix(16))
    }

    /// The block keys to prefetch (from the file; none when it is missing or unreadable).
    public func blockKeys() -> [String] {
        guard let text = try? Files.readText(path) else { return [] }
        return text.split(separator: "\n").prefix(Self.limit).compactMap { line in
            guard let cidr = IPNetwork(line) else { return nil }
            return CalicoKeys.block(cidr: cidr.description)
        }
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
        let temporary = path + ".\(getpid())"
        do {
            try Files.write(temporary, cidrs.joined(separator: "\n") + "\n", create: true, mode: 0o600)
            if rename(temporary, path) != 0 { unlink(temporary) }
        } catch {
            unlink(temporary)
        }
    }
}
