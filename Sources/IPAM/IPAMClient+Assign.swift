import CalicoAPI
import Datastore
import IPAddress
import JSON

/// What to assign.
public struct AssignRequest: Sendable, Hashable {
    /// `<network name>.<CNI_CONTAINERID>`.
    public var handleID: String
    /// The host the workload runs on; blocks are claimed for it.
    public var node: String
    public var ipv4Count: Int
    public var ipv6Count: Int
    /// Pools to use, by name or CIDR (`ipv4_pools`); empty: every enabled pool selecting the node.
    public var ipv4Pools: [String]
    public var ipv6Pools: [String]
    /// Extra `secondary` attributes stored with each address, besides `node`.
    public var attributes: [String: String]
    /// Blocks to try first among those affine to the host, in this order (the plugin's
    /// read-ahead hint: the block the host's last assignment came from). A busy host has
    /// several full blocks; trying the one that had room last time first skips reading
    /// them. Without it, affine blocks are tried in key order.
    public var preferredBlocks: [IPNetwork] = []

    public init(handleID: String, node: String, ipv4Count: Int = 1, ipv6Count: Int = 0, ipv4Pools: [String] = [],
                ipv6Pools: [String] = [], attributes: [String: String] = [:]) {
        self.handleID = handleID
        self.node = node
        self.ipv4Count = ipv4Count
        self.ipv6Count = ipv6Count
        self.ipv4Pools = ipv4Pools
        self.ipv6Pools = ipv6Pools
        self.attributes = attributes
    }
}

/// One address held by a handle.
public struct Assignment: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    /// The block it came from.
    public var block: IPNetwork
    /// Whether this call allocated it (false: the handle already held it, a repeated ADD).
    public var isNew: Bool

    public init(address: IPAddress, block: IPNetwork, isNew: Bool) {
        self.address = address
        self.block = block
        self.isNew = isNew
    }

    public var description: String { address.description }
}

/// The addresses a handle holds after an assignment.
public struct AssignResult: Sendable, Hashable {
    public var ipv4: [Assignment]
    public var ipv6: [Assignment]
    /// Whether the writes `autoAssign(_:alsoWriting:)` was given were applied, in the
    /// transaction that took the address.
    public var wroteAlso: Bool

    public init(ipv4: [Assignment] = [], ipv6: [Assignment] = [], wroteAlso: Bool = false) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.wroteAlso = wroteAlso
    }

    public var all: [Assignment] { ipv4 + ipv6 }
}

extension IPAMClient {
    /// Assigns addresses to `request.handleID` on `request.node` (libcalico-go `AutoAssign`).
    ///
    /// Idempotent per handle and family: when the handle already holds addresses of a family,
    /// those are returned (`isNew == false`) and nothing is allocated, so a repeated ADD for
    /// one container and interface neither loses nor duplicates its live address. This holds
    /// for simultaneous calls with one handle too: the block and the handle change in one
    /// transaction conditional on both, so of two first assignments one loses the race,
    /// re-reads, finds the winner's address in the handle and returns it (`isNew == false`)
    /// instead of allocating a second. When a later family fails, the addresses this call
    /// newly took are released again.
    ///
    /// `alsoWriting`, given the addresses taken, names writes to make in the same
    /// transaction as the block and the handle: the plugin's WorkloadEndpoint, saving a
    /// round trip. It is used only when that one transaction completes the assignment (one
    /// address in all, newly taken); `wroteAlso` in the result says whether it was, and
    /// otherwise the caller writes them itself.
    public func autoAssign(
        _ request: AssignRequest, alsoWriting: (@Sendable ([IPAddress]) -> [Operation])? = nil
    ) throws(IPAMError) -> AssignResult {
        var session = AssignSession(client: self, request: request)
        session.alsoWriting = alsoWriting
        var result = AssignResult()
        do {
            if request.ipv4Count > 0 { result.ipv4 = try session.assign(ipv6: false, count: request.ipv4Count, requestedPools: request.ipv4Pools) }
            if request.ipv6Count > 0 { result.ipv6 = try session.assign(ipv6: true, count: request.ipv6Count, requestedPools: request.ipv6Pools) }
            result.wroteAlso = session.wroteAlso
        } catch {
            let fresh = result.all.filter(\.isNew).map(\.address)
            if !fresh.isEmpty { _ = try? release(addresses: fresh, handleID: request.handleID) }
            throw error
        }
        return result
    }
}

/// The state of one `autoAssign` call: caches of what was read, and the retry budget.
struct AssignSession {
    let client: IPAMClient
    let request: AssignRequest
    var attempts: IPAMClient.Attempts
    var handle: IPAMClient.Versioned<IPAMHandle>?
    var handleLoaded = false
    var poolCache: [IPPool]?
    var configCache: IPAMConfig?
    var nodeChecked = false
    var labels: [String: String]?
    /// The family being assigned: what the handle held when it started, and what this call
    /// has allocated since. Any other address of the family in the handle is a concurrent
    /// call's.
    var familyHeld: Set<IPAddress> = []
    var familyNew: Set<IPAddress> = []
    /// Set when a concurrent call with the same handle gave it addresses of the family:
    /// the handle's addresses of the family, to return as they are.
    var preempted: [Assignment]?
    /// Writes to add to the transaction that completes the assignment (`autoAssign`).
    var alsoWriting: (@Sendable ([IPAddress]) -> [Operation])?
    /// Whether they were written.
    var wroteAlso = false

    var affinityValue: String { AllocationBlock.affinity(forNode: request.node) }
    var secondary: [String: String] {
        var s = request.attributes
        s["node"] = request.node
        return s
    }

    init(client: IPAMClient, request: AssignRequest) {
        self.client = client
        self.request = request
        attempts = IPAMClient.Attempts(client, what: "assigning an address to \(request.handleID)")
    }

    // MARK: Cached reads

    mutating func currentHandle() throws(IPAMError) -> IPAMClient.Versioned<IPAMHandle>? {
        if !handleLoaded {
            handle = try client.readHandle(request.handleID)
            handleLoaded = true
        }
        return handle
    }

    mutating func allPools() throws(IPAMError) -> [IPPool] {
        if let p = poolCache { return p }
        var p = try client.pools()
        if p.isEmpty {
            try client.initializeDatastore(node: request.node)
            nodeChecked = true
            p = try client.pools()
        }
        poolCache = p
        return p
    }

    mutating func config() throws(IPAMError) -> IPAMConfig {
        if let c = configCache { return c }
        let c = try client.config()
        configCache = c
        return c
    }

    /// Before a host's first block: make sure its Node (and the rest calico-node would
    /// create) exists. The IPAM config is checked as well: it is written after the Node, so
    /// a setup cut short by a datastore failure is finished here by a later call.
    mutating func ensureNode() throws(IPAMError) {
        guard !nodeChecked else { return }
        nodeChecked = true
        let store = client.store
        for key in [ResourceKind.node.key(name: request.node), CalicoKeys.ipamConfig] {
            if try client.call({ () throws(DatastoreError) in try store.get(key) }) == nil {
                try client.initializeDatastore(node: request.node)
                return
            }
        }
    }

    // MARK: One family

    mutating func assign(ipv6: Bool, count: Int, requestedPools: [String]) throws(IPAMError) -> [Assignment] {
        // A repeated ADD: the handle already holds addresses of this family.
        let held = try heldAddresses(ipv6: ipv6)
        if held.count >= count { return Array(held.prefix(count)) }
        var got = held
        familyHeld = Set(held.map(\.address))
        familyNew = []
        preempted = nil
        let allPools = try allPools()
        let client = self.client
        let node = request.node
        var cachedLabels = labels
        let pools = try IPAMClient.usablePools(allPools, ipv6: ipv6, requested: requestedPools) { () throws(IPAMError) in
            if let l = cachedLabels { return l }
            let l = try client.nodeLabels(node) ?? [:]
            cachedLabels = l
            return l
        }
        labels = cachedLabels
        guard !pools.isEmpty else { throw .noPools(ipVersion: ipv6 ? 6 : 4, node: request.node) }
        let networks = pools.compactMap(\.network)
        func inPools(_ cidr: IPNetwork) -> Bool { networks.contains { $0.contains(cidr) } }

        // 1. Blocks affine to this host, the preferred ones first.
        let prefix = CalicoKeys.affinityPrefix(node: request.node, ipv6: ipv6)
        var affinities = try client.call({ () throws(DatastoreError) in try client.store.list(prefix: prefix) }).kvs
        if !request.preferredBlocks.isEmpty {
            let rank = Dictionary(request.preferredBlocks.enumerated().map { ($0.element.description, $0.offset) },
                                  uniquingKeysWith: { first, _ in first })
            func order(_ kv: KeyValue) -> Int { rank[CalicoKeys.cidr(fromKeySegment: kv.key.dropFirst(prefix.count))] ?? Int.max }
            affinities = affinities.enumerated().sorted { (order($0.element), $0.offset) < (order($1.element), $1.offset) }.map(\.element)
        }
        var tried = Set<IPNetwork>()
        for kv in affinities where got.count < count {
            let cidr = CalicoKeys.cidr(fromKeySegment: kv.key.dropFirst(prefix.count))
            guard let net = IPNetwork(cidr), inPools(net) else { continue }
            tried.insert(net)
            got += try assignFromAffineBlock(net, affinity: kv, count: count - got.count)
            if let p = preempted { return p }
        }

        // 2. Claim new blocks. Other processes on this host may have claimed one since the
        // affinities were read: a block of ours with room is used before claiming another,
        // so a burst of ADDs on a new host shares one block.
        if got.count < count, try config().autoAllocateBlocks {
            try ensureNode()
            let limit = try config().maxBlocksPerHost
            while got.count < count {
                let blocks = try client.listBlocks(ipv6: ipv6)
                let mine = blocks.filter { $0.value.affinity == affinityValue }
                if let own = mine.first(where: { inPools($0.value.cidr) && !tried.contains($0.value.cidr) && !$0.value.unallocated.isEmpty }) {
                    tried.insert(own.value.cidr)
                    got += try assignFromBlock(own.value.cidr, first: own, count: count - got.count, requireAffinity: true)
                    if let p = preempted { return p }
                    continue
                }
                if limit > 0 && mine.count >= limit { break }
                guard let cidr = IPAMClient.unclaimedBlock(pools: pools, existing: blocks.map(\.value.cidr), node: request.node)
                else { break }
                guard let block = try claim(cidr) else {
                    try attempts.next(client)
                    continue
                }
                tried.insert(block.value.cidr)
                got += try assignFromBlock(block.value.cidr, first: block, count: count - got.count, requireAffinity: true)
                if let p = preempted { return p }
            }
        }

        // 3. Borrow from other hosts' blocks unless affinity is strict.
        if got.count < count, try !config().strictAffinity {
            for block in try client.listBlocks(ipv6: ipv6) where got.count < count {
                guard inPools(block.value.cidr), block.value.affinity != affinityValue, !block.value.unallocated.isEmpty
                else { continue }
                got += try assignFromBlock(block.value.cidr, first: block, count: count - got.count, requireAffinity: false)
                if let p = preempted { return p }
            }
        }

        guard got.count >= count else {
            throw .exhausted(ipVersion: ipv6 ? 6 : 4, requested: count, assigned: got.count - held.count)
        }
        return got
    }

    /// The addresses of the family the handle already holds (verified against the blocks).
    mutating func heldAddresses(ipv6: Bool) throws(IPAMError) -> [Assignment] {
        guard let h = try currentHandle() else { return [] }
        var out: [Assignment] = []
        for cidr in h.value.block.keys.sorted() {
            guard let net = IPNetwork(cidr), net.isIPv6 == ipv6, let b = try client.readBlock(net) else { continue }
            for o in b.value.ordinals(handleID: request.handleID) {
                out.append(Assignment(address: b.value.address(ordinal: o), block: b.value.cidr, isNew: false))
            }
        }
        return out
    }

    /// Takes addresses from a block this host has an affinity to. A block that is gone is
    /// claimed again (a claim that crashed between the affinity and the block); a block
    /// another host owns loses our stale affinity; a pending affinity of a block we own is
    /// confirmed. A full block of ours is recognised without decoding it (`BlockSummary`):
    /// a busy host has several, and decoding each only to find no free ordinal is the
    /// largest cost an ADD pays for the endpoints already on the host.
    mutating func assignFromAffineBlock(_ cidr: IPNetwork, affinity kv: KeyValue, count: Int) throws(IPAMError) -> [Assignment] {
        let client = self.client
        let blockKey = CalicoKeys.block(cidr: cidr.description)
        guard let raw = try client.call({ () throws(DatastoreError) in try client.store.get(blockKey) }) else {
            guard let created = try claim(cidr) else { return [] }
            return try assignFromBlock(cidr, first: created, count: count, requireAffinity: true)
        }
        if let summary = BlockSummary(jsonText: raw.value), summary.affinity == affinityValue, !summary.hasFreeOrdinal {
            try confirmAffinity(kv)
            return []
        }
        let block = IPAMClient.Versioned(value: try client.decodeBlock(raw), modRevision: raw.modRevision)
        guard block.value.affinity == affinityValue else {
            try client.bestEffort { () throws(DatastoreError) in _ = try client.store.delete(kv.key, modRevision: kv.modRevision) }
            return []
        }
        try confirmAffinity(kv)
        return try assignFromBlock(cidr, first: block, count: count, requireAffinity: true)
    }

    /// Confirms our affinity `kv` to a block we own when it is still pending.
    func confirmAffinity(_ kv: KeyValue) throws(IPAMError) {
        guard (try? BlockAffinity(jsonText: kv.value))?.state != .confirmed else { return }
        let client = self.client
        let confirmed = BlockAffinity(state: .confirmed).json.compactText
        try client.bestEffort { () throws(DatastoreError) in _ = try client.store.update(kv.key, confirmed, modRevision: kv.modRevision) }
    }

    /// Allocates up to `count` addresses from one block, updating the block and the handle
    /// in one compare-and-swap on both revisions (the handle's is 0 while it does not exist);
    /// a lost race re-reads both and tries again, unless another call for this handle has
    /// meanwhile given it addresses of the family (then `preempted` is set and nothing more
    /// is allocated).
    mutating func assignFromBlock(_ cidr: IPNetwork, first: IPAMClient.Versioned<AllocationBlock>, count: Int,
                                  requireAffinity: Bool) throws(IPAMError) -> [Assignment] {
        var current: IPAMClient.Versioned<AllocationBlock>? = first
        while true {
            guard let block = current else { return [] }
            if requireAffinity && block.value.affinity != affinityValue { return [] }
            var b = block.value
            let ordinals = b.assign(count: count, handleID: request.handleID, secondary: secondary)
            if ordinals.isEmpty { return [] }
            let h = try currentHandle()
            var newHandle = h?.value ?? IPAMHandle(handleID: request.handleID)
            newHandle.block[cidr.description] = b.ordinals(handleID: request.handleID).count
            let blockKey = CalicoKeys.block(cidr: cidr.description)
            let handleKey = CalicoKeys.handle(request.handleID)
            var writes: [Operation] = [.put(key: blockKey, value: b.json.compactText), .put(key: handleKey, value: newHandle.json.compactText)]
            // The caller's writes ride along when this transaction completes the whole
            // assignment: one address in all, and it is this one.
            let completes = request.ipv4Count + request.ipv6Count == 1 && ordinals.count == count && familyHeld.isEmpty
            if completes, let alsoWriting { writes += alsoWriting(ordinals.map { b.address(ordinal: $0) }) }
            let txn = Transaction(
                if: [.modRevision(key: blockKey, equals: block.modRevision),
                     .modRevision(key: handleKey, equals: h?.modRevision ?? 0)],
                then: writes)
            let client = self.client
            let handleID = request.handleID
            let outcome = try client.commit(txn) { () throws(IPAMError) in
                // The answer was lost: the write happened if the block holds our ordinals.
                guard let now = try client.readBlock(cidr) else { return false }
                return ordinals.allSatisfy { now.value.attribute(ordinal: $0)?.handleID == handleID }
            }
            if let revision = outcome {
                wroteAlso = completes && alsoWriting != nil
                handle = revision > 0 ? IPAMClient.Versioned(value: newHandle, modRevision: revision) : nil
                handleLoaded = revision > 0
                let taken = ordinals.map { Assignment(address: b.address(ordinal: $0), block: b.cidr, isNew: true) }
                familyNew.formUnion(taken.map(\.address))
                return taken
            }
            // Lost the race. If the winner wrote this handle, it may be a simultaneous ADD of
            // the same attachment: its address stands and this call takes no other.
            handleLoaded = false
            let now = try heldAddresses(ipv6: cidr.isIPv6)
            if now.contains(where: { !familyHeld.contains($0.address) && !familyNew.contains($0.address) }) {
                preempted = now.map { Assignment(address: $0.address, block: $0.block, isNew: familyNew.contains($0.address)) }
                return []
            }
            try attempts.next(client)
            current = try client.readBlock(cidr)
        }
    }

    // MARK: Claiming blocks

    /// libcalico-go's claim: affinity `pending`, create the block with `affinity:
    /// host:<node>`, affinity `confirmed`. When the block already exists with our affinity
    /// (a sibling process on this host won), it is ours too; when another host won, our
    /// pending affinity is removed and nil returned.
    mutating func claim(_ cidr: IPNetwork) throws(IPAMError) -> IPAMClient.Versioned<AllocationBlock>? {
        let client = self.client
        let affinityKey = CalicoKeys.affinity(node: request.node, cidr: cidr.description)
        let blockKey = CalicoKeys.block(cidr: cidr.description)
        let pending = BlockAffinity(state: .pending).json.compactText
        let confirmed = BlockAffinity(state: .confirmed).json.compactText
        try client.createIfAbsent(affinityKey, pending)

        var block = AllocationBlock(cidr: cidr, affinity: affinityValue)
        block.strictAffinity = try config().strictAffinity
        let text = block.json.compactText
        let createTxn = Transaction(if: [.createRevision(key: blockKey, equals: 0)], then: [.put(key: blockKey, value: text)])
        let ours = affinityValue
        let created = try client.commit(createTxn) { () throws(IPAMError) in
            try client.readBlock(cidr)?.value.affinity == ours
        }
        if let revision = created, revision > 0 {
            try client.putChecked(affinityKey, confirmed)
            return IPAMClient.Versioned(value: block, modRevision: revision)
        }
        guard let existing = try client.readBlock(cidr) else { return nil }
        if existing.value.affinity == affinityValue {
            try client.putChecked(affinityKey, confirmed)
            return existing
        }
        // Another host owns the block: drop our claim, unless it has meanwhile been confirmed.
        let drop = Transaction(if: [.value(key: affinityKey, equals: pending)], then: [.delete(key: affinityKey)])
        try client.bestEffort { () throws(DatastoreError) in _ = try client.store.transact(drop) }
        return nil
    }
}

extension IPAMClient {
    /// Commits `txn`. Returns the new revision when it took effect, nil when a comparison
    /// failed (another writer won: worth re-reading and retrying).
    ///
    /// A transient failure (`.timeout`, `.unavailable`) is not in itself a lost race: the
    /// write may or may not have happened (etcd: a timeout after sending may have been
    /// applied, or refused by its comparisons). `applied` re-reads to find out; when it did
    /// happen, 0 is returned (the revision is unknown). When it did not, the comparisons are
    /// checked against the store as it is now: one that no longer holds means another writer
    /// got in first, a lost race like any other (nil). When they all still hold, nobody
    /// else wrote and ours did not happen: the store is not answering, so its error is
    /// thrown and the caller answers "try again later" at once. A failing re-read also
    /// throws the original error.
    func commit(_ txn: Transaction, applied: () throws(IPAMError) -> Bool) throws(IPAMError) -> Int64? {
        do {
            let r = try store.transact(txn)
            return r.succeeded ? r.revision : nil
        } catch where error.isTransient {
            let original = error
            do throws(IPAMError) {
                if try applied() { return 0 }
                if try comparisonsHold(txn.comparisons) { throw IPAMError.datastore(original) }
                return nil
            } catch where error.isTransient {
                throw .datastore(original)
            }
        } catch {
            throw .datastore(error)
        }
    }

    /// Whether every comparison of a transaction holds in the store now.
    func comparisonsHold(_ comparisons: [Comparison]) throws(IPAMError) -> Bool {
        let store = self.store
        for c in comparisons {
            switch c {
            case .createRevision(let key, let revision):
                if try call({ () throws(DatastoreError) in try store.get(key) })?.createRevision ?? 0 != revision { return false }
            case .modRevision(let key, let revision):
                if try call({ () throws(DatastoreError) in try store.get(key) })?.modRevision ?? 0 != revision { return false }
            case .value(let key, let value):
                if try call({ () throws(DatastoreError) in try store.get(key) })?.value != value { return false }
            }
        }
        return true
    }

    /// The first block CIDR of `pools` that is not among `existing`, scanning each pool from
    /// an offset derived from the node name so hosts spread over a pool instead of all
    /// racing for its first block (libcalico-go starts at a per-host random position).
    static func unclaimedBlock(pools: [IPPool], existing: [IPNetwork], node: String) -> IPNetwork? {
        let taken = Set(existing)
        for pool in pools {
            guard let net = pool.network else { continue }
            let size = pool.effectiveBlockSize
            let width = net.address.bitWidth
            guard size >= net.prefixLength, size <= width else { continue }
            let count: UInt128 = size - net.prefixLength >= 127 ? UInt128.max : (1 << UInt128(size - net.prefixLength))
            let start = UInt128(fnv1a(node)) % count
            let odd = existing.filter { $0.prefixLength != size && net.overlaps($0) }
            let span = UInt128(size >= width ? 0 : width - size)
            // At most `taken.count` candidates are in use, so that many + 1 suffice.
            let tries = min(count, UInt128(existing.count + 1))
            var j: UInt128 = 0
            while j < tries {
                let index = (start &+ j) % count
                let candidate = IPNetwork(address: net.address(at: index << span), prefixLength: size)
                if !taken.contains(candidate) && !odd.contains(where: { $0.overlaps(candidate) }) { return candidate }
                j += 1
            }
        }
        return nil
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100000001b3
        }
        return h
    }
}
