import CalicoAPI
import Datastore
import IPAddress
import JSON

extension IPAMClient {
    /// Releases every address `handleID` holds (libcalico-go `ReleaseByHandle`): per block,
    /// its ordinals go back to `unallocated`, a block left empty with no affinity is deleted,
    /// and the handle loses the block's entry (deleted when none is left) in the same
    /// transaction. Releasing an unknown handle succeeds and returns nothing.
    /// Returns the addresses released.
    @discardableResult
    public func release(handleID: String) throws(IPAMError) -> [IPAddress] {
        try release(handleID: handleID, alsoWriting: []).released
    }

    /// `release(handleID:)` that also makes `extra`'s writes in the first transaction it
    /// commits (a DEL deleting its WorkloadEndpoint with the release: one write, not two).
    /// `wroteAlso` says whether it did; not when the handle did not exist.
    public func release(handleID: String, alsoWriting extra: [Operation]) throws(IPAMError)
        -> (released: [IPAddress], wroteAlso: Bool)
    {
        var attempts = Attempts(self, what: "releasing \(handleID)")
        var released: [IPAddress] = []
        var wroteAlso = false
        var pending: [Operation] { wroteAlso ? [] : extra }
        let handleKey = CalicoKeys.handle(handleID)
        while true {
            guard let handle = try readHandle(handleID) else { return (released.sorted(), wroteAlso) }
            guard let cidrText = handle.value.block.keys.sorted().first else {
                // An empty handle: delete it.
                let txn = Transaction(
                    if: [.modRevision(key: handleKey, equals: handle.modRevision)], then: [.delete(key: handleKey)] + pending)
                let store = self.store
                if let revision = try commit(txn, applied: { () throws(IPAMError) in try call({ () throws(DatastoreError) in try store.get(handleKey) }) == nil }) {
                    return (released.sorted(), wroteAlso || Self.carried(extra, revision))
                }
                try attempts.next(self)
                continue
            }
            var remaining = handle.value
            remaining.block[cidrText] = nil
            let handleOp: Operation = remaining.block.isEmpty
                ? .delete(key: handleKey) : .put(key: handleKey, value: remaining.json.compactText)
            let handleCmp = Comparison.modRevision(key: handleKey, equals: handle.modRevision)

            guard let cidr = IPNetwork(cidrText)?.masked, let block = try readBlock(cidr),
                  !block.value.ordinals(handleID: handleID).isEmpty
            else {
                // Nothing of ours in that block (or no such block): drop the entry.
                let txn = Transaction(if: [handleCmp], then: [handleOp] + pending)
                guard let revision = try commit(txn, applied: { () throws(IPAMError) in try readHandle(handleID)?.value.block[cidrText] == nil }) else {
                    try attempts.next(self)
                    continue
                }
                wroteAlso = wroteAlso || Self.carried(extra, revision)
                if remaining.block.isEmpty { return (released.sorted(), wroteAlso) }  // the handle is gone
                continue
            }
            var b = block.value
            let ordinals = b.ordinals(handleID: handleID)
            b.release(ordinals: ordinals)
            let blockKey = CalicoKeys.block(cidr: cidr.description)
            let blockOp: Operation = b.isEmpty && b.affinity == nil
                ? .delete(key: blockKey) : .put(key: blockKey, value: b.json.compactText)
            let txn = Transaction(
                if: [.modRevision(key: blockKey, equals: block.modRevision), handleCmp], then: [blockOp, handleOp] + pending)
            let outcome = try commit(txn) { () throws(IPAMError) in
                guard let now = try readBlock(cidr) else { return true }
                return now.value.ordinals(handleID: handleID).isEmpty
            }
            if let revision = outcome {
                released += ordinals.map { b.address(ordinal: $0) }
                wroteAlso = wroteAlso || Self.carried(extra, revision)
                // The handle went with its last block: nothing more to read.
                if remaining.block.isEmpty { return (released.sorted(), wroteAlso) }
            } else {
                try attempts.next(self)
            }
        }
    }

    /// Whether a committed transaction carried `extra`: not known when the answer was lost
    /// and the release was found done afterwards (`commit` returns revision 0), as someone
    /// else may have released the addresses; the caller then writes them itself.
    private static func carried(_ extra: [Operation], _ revision: Int64) -> Bool {
        !extra.isEmpty && revision != 0
    }

    /// Releases individual addresses (calicoctl `ipam release --ip`), whoever holds them,
    /// and fixes their handles' counts. With `handleID`, only addresses that handle holds are
    /// released. Returns the addresses that were not allocated (nothing done for them).
    @discardableResult
    public func release(addresses: [IPAddress], handleID: String? = nil) throws(IPAMError) -> [IPAddress] {
        var unallocated: [IPAddress] = []
        let deadline = operationDeadline()
        for ip in addresses {
            var attempts = Attempts(limit: options.maxAttempts, deadline: deadline, what: "releasing \(ip)")
            while true {
                guard let block = try findBlock(containing: ip), let ordinal = block.value.ordinal(of: ip),
                      let attribute = block.value.attribute(ordinal: ordinal),
                      handleID == nil || attribute.handleID == handleID
                else {
                    unallocated.append(ip)
                    break
                }
                var b = block.value
                b.release(ordinals: [ordinal])
                let blockKey = CalicoKeys.block(cidr: b.cidr.description)
                var comparisons: [Comparison] = [.modRevision(key: blockKey, equals: block.modRevision)]
                var ops: [Operation] = [b.isEmpty && b.affinity == nil ? .delete(key: blockKey) : .put(key: blockKey, value: b.json.compactText)]
                if let owner = attribute.handleID, let handle = try readHandle(owner) {
                    let handleKey = CalicoKeys.handle(owner)
                    var h = handle.value
                    let left = b.ordinals(handleID: owner).count
                    h.block[b.cidr.description] = left > 0 ? left : nil
                    comparisons.append(.modRevision(key: handleKey, equals: handle.modRevision))
                    ops.append(h.block.isEmpty ? .delete(key: handleKey) : .put(key: handleKey, value: h.json.compactText))
                }
                let cidr = b.cidr
                let outcome = try commit(Transaction(if: comparisons, then: ops)) { () throws(IPAMError) in
                    guard let now = try readBlock(cidr) else { return true }
                    return now.value.attribute(ordinal: ordinal)?.handleID != attribute.handleID
                }
                if outcome != nil { break }
                try attempts.next(self)
            }
        }
        return unallocated
    }

    /// Releases this network's handles that are not in use any more (CNI GC): every handle
    /// whose id starts with `prefix` (`<network name>.`) and is not in `keeping`, and every
    /// address in a block whose attribute names such a handle although the handle record is
    /// missing (left by a writer that crashed between writes). Returns the handle ids released.
    @discardableResult
    public func releaseUnused(handlePrefix prefix: String, keeping: Set<String>) throws(IPAMError) -> [String] {
        var released: [String] = []
        let ids = try handleIDs().filter { $0.hasPrefix(prefix) && !keeping.contains($0) }
        for id in ids {
            try release(handleID: id)
            released.append(id)
        }
        // Orphaned allocations: attributes naming a handle with no handle record.
        let known = Set(try handleIDs())
        for ipv6 in [false, true] {
            for block in try listBlocks(ipv6: ipv6) {
                var orphans: [IPAddress] = []
                for o in block.value.allocations.indices {
                    guard let id = block.value.attribute(ordinal: o)?.handleID, id.hasPrefix(prefix),
                          !keeping.contains(id), !known.contains(id) else { continue }
                    orphans.append(block.value.address(ordinal: o))
                    if !released.contains(id) { released.append(id) }
                }
                if !orphans.isEmpty { try release(addresses: orphans) }
            }
        }
        return released
    }

    /// The block holding `ip`: found from the pools' block sizes, else by listing blocks.
    func findBlock(containing ip: IPAddress) throws(IPAMError) -> Versioned<AllocationBlock>? {
        for pool in try pools() {
            guard let net = pool.network, net.contains(ip) else { continue }
            let cidr = IPNetwork(address: ip, prefixLength: pool.effectiveBlockSize).masked
            if let b = try readBlock(cidr) { return b }
        }
        return try listBlocks(ipv6: ip.isIPv6).first { $0.value.cidr.contains(ip) }
    }
}
