import CalicoAPI
import Datastore

/// Why an IPAM operation failed.
public enum IPAMError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The datastore failed; `isTransient` tells whether a retry later may succeed.
    case datastore(DatastoreError)
    /// No enabled pool of the family selects this node.
    case noPools(ipVersion: Int, node: String)
    /// A pool named in the config (`ipv4_pools`, `ipv6_pools`) does not exist, is disabled
    /// or is of the other family.
    case poolNotUsable(String)
    /// Every usable block is full and no new block could be claimed.
    case exhausted(ipVersion: Int, requested: Int, assigned: Int)
    /// Compare-and-swap kept losing to other writers.
    case tooManyRetries(String)
    /// A stored value could not be read.
    case corruptValue(key: String, reason: String)
    /// `assign(address:)`: the address is already held by another handle.
    case addressInUse(String)
    /// `assign(address:)`: the address is in no enabled pool.
    case addressNotInPool(String)

    public var description: String {
        switch self {
        case .datastore(let e): return e.description
        case .noPools(let v, let node): return "no configured Calico pools for node \(node) (IPv\(v))"
        case .poolNotUsable(let p): return "the given pool (\(p)) does not exist, or is not enabled"
        case .exhausted(let v, let r, let a):
            return "failed to request \(r) IPv\(v) addresses. IPAM allocated only \(a)"
        case .tooManyRetries(let what): return "max retries hit while \(what)"
        case .corruptValue(let key, let reason): return "invalid value at \(key): \(reason)"
        case .addressInUse(let ip): return "address \(ip) is already allocated"
        case .addressNotInPool(let ip): return "address \(ip) is not in any enabled IP pool"
        }
    }

    /// Whether retrying later may succeed (CNI code 11).
    public var isTransient: Bool {
        switch self {
        case .datastore(let e): return e.isTransient
        case .tooManyRetries: return true
        default: return false
        }
    }
}
