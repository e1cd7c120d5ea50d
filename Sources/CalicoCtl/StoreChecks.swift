import CalicoAPI
import IPAddress

/// Checks that need the datastore, run just before each write (libcalico-go's IPPool
/// rules): a pool must not overlap another, and a pool's CIDR and block size cannot change
/// while blocks may have been carved from it.
struct StoreChecks {
    let client: ResourceClient

    func beforeWrite(_ p: PreparedResource, verb: String) throws(CalicoAPIError) {
        guard let pool = p.resource as? IPPool, let net = pool.network else { return }
        let existing = try client.list(IPPool.self)
        for other in existing where other.metadata.name != pool.metadata.name {
            if let o = other.network, o.overlaps(net) {
                throw .invalidField(path: "spec.cidr", reason: "IPPool(\(pool.metadata.name)) CIDR \(net) overlaps with IPPool(\(other.metadata.name)) CIDR \(o)")
            }
        }
        if let current = existing.first(where: { $0.metadata.name == pool.metadata.name }), verb != "create" {
            if current.network != net {
                throw .invalidField(path: "spec.cidr", reason: "IPPool(\(pool.metadata.name)): the CIDR cannot be changed (from \(current.cidr) to \(pool.cidr)); create a new pool and disable this one")
            }
            if current.effectiveBlockSize != pool.effectiveBlockSize {
                throw .invalidField(path: "spec.blockSize", reason: "IPPool(\(pool.metadata.name)): the block size cannot be changed (from \(current.effectiveBlockSize) to \(pool.effectiveBlockSize))")
            }
        }
    }
}
