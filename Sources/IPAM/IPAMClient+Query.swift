import CalicoAPI
import Datastore
import IPAddress
import JSON

/// Who holds one address.
public struct AllocationInfo: Sendable, Hashable {
    public var address: IPAddress
    public var block: IPNetwork
    /// The block's affinity (`host:<node>`).
    public var blockAffinity: String?
    public var handleID: String?
    public var attributes: [String: String]
}

/// Use of one block.
public struct BlockUsage: Sendable, Hashable {
    public var cidr: IPNetwork
    public var affinity: String?
    public var total: Int
    public var inUse: Int
    public var free: Int { total - inUse }
}

/// Use of one pool (calicoctl `ipam show`).
public struct PoolUsage: Sendable, Hashable {
    public var name: String
    public var cidr: IPNetwork
    /// Addresses in the pool.
    public var total: UInt128
    /// Addresses allocated from blocks inside the pool.
    public var inUse: Int
    public var free: UInt128 { total - UInt128(inUse) }
    public var blocks: [BlockUsage]
}

extension IPAMClient {
    /// The addresses `handleID` holds, as the blocks record them (CNI CHECK).
    public func addresses(handleID: String) throws(IPAMError) -> [IPAddress] {
        guard let handle = try readHandle(handleID) else { return [] }
        var out: [IPAddress] = []
        for cidr in handle.value.block.keys.sorted() {
            guard let net = IPNetwork(cidr)?.masked, let b = try readBlock(net) else { continue }
            out += b.value.ordinals(handleID: handleID).map { b.value.address(ordinal: $0) }
        }
        return out.sorted()
    }

    /// Every handle id in the datastore.
    public func handleIDs() throws(IPAMError) -> [String] {
        let prefix = CalicoKeys.handlePrefix
        let page = try call({ () throws(DatastoreError) in try store.list(prefix: prefix) })
        return page.kvs.map { String($0.key.dropFirst(prefix.count)) }
    }

    /// Every handle with what it holds.
    public func handles() throws(IPAMError) -> [IPAMHandle] {
        let prefix = CalicoKeys.handlePrefix
        let page = try call({ () throws(DatastoreError) in try store.list(prefix: prefix) })
        var out: [IPAMHandle] = []
        for kv in page.kvs {
            let id = String(kv.key.dropFirst(prefix.count))
            do { out.append(try IPAMHandle(handleID: id, jsonText: kv.value)) } catch {
                throw .corruptValue(key: kv.key, reason: error.description)
            }
        }
        return out
    }

    /// Who holds `ip`, or nil when it is free or in no block.
    public func allocation(of ip: IPAddress) throws(IPAMError) -> AllocationInfo? {
        guard let block = try findBlock(containing: ip), let o = block.value.ordinal(of: ip),
              let a = block.value.attribute(ordinal: o) else { return nil }
        return AllocationInfo(address: ip, block: block.value.cidr, blockAffinity: block.value.affinity,
                              handleID: a.handleID, attributes: a.secondary ?? [:])
    }

    /// Every block of both families.
    public func blocks() throws(IPAMError) -> [AllocationBlock] {
        try listBlocks(ipv6: false).map(\.value) + listBlocks(ipv6: true).map(\.value)
    }

    /// Per pool: size, addresses in use and its blocks (calicoctl `ipam show [--show-blocks]`).
    public func usage() throws(IPAMError) -> [PoolUsage] {
        let all = try blocks()
        var out: [PoolUsage] = []
        for pool in try pools() {
            guard let net = pool.network else { continue }
            let inside = all.filter { net.contains($0.cidr) }.sorted { $0.cidr.address < $1.cidr.address }
            let usages = inside.map { BlockUsage(cidr: $0.cidr, affinity: $0.affinity, total: $0.size, inUse: $0.usedCount) }
            out.append(PoolUsage(name: pool.metadata.name, cidr: net, total: net.size,
                                 inUse: usages.reduce(0) { $0 + $1.inUse }, blocks: usages))
        }
        return out
    }

    /// Whether an assignment for `node` could get an address of the family now: some usable
    /// pool has a free address in a block this host may use, or an unclaimed block (CNI STATUS).
    public func hasCapacity(node: String, ipv6: Bool = false, requestedPools: [String] = []) throws(IPAMError) -> Bool {
        let all = try pools()
        if all.isEmpty { return !ipv6 }  // the first ADD creates the default IPv4 pool
        let pools = try Self.usablePools(all, ipv6: ipv6, requested: requestedPools) { () throws(IPAMError) in
            try nodeLabels(node) ?? [:]
        }
        if pools.isEmpty { return false }
        let nets = pools.compactMap(\.network)
        let blocks = try listBlocks(ipv6: ipv6)
        let cfg = try config()
        let mine = AllocationBlock.affinity(forNode: node)
        for b in blocks where nets.contains(where: { $0.contains(b.value.cidr) }) && !b.value.unallocated.isEmpty {
            if b.value.affinity == mine || !cfg.strictAffinity { return true }
        }
        return cfg.autoAllocateBlocks && Self.unclaimedBlock(pools: pools, existing: blocks.map(\.value.cidr), node: node) != nil
    }
}
