import Synchronization

/// A store whose first answers to some reads were fetched ahead, in one batch
/// (`Datastore.read(_:)`): on etcd one round trip instead of one per read.
///
/// Each prefetched answer is served once, to the first `get` of that key or `list` of that
/// exact prefix; later reads, writes and everything else go to the underlying store. An
/// answer served this way is as old as the batch, which is no different from having read
/// it then: every write a caller bases on it is a compare-and-swap on revisions, and a lost
/// race re-reads from the store itself.
///
/// A transaction through this store drops the prefetched answers it may have changed, so a
/// caller never reads back an answer older than its own write.
///
/// It also notes every key written by a transaction or read with `get` (prefetched or not),
/// `keysUsed(under:)`, so a caller can learn what to prefetch next time.
///
/// The plugin prefetches what an ADD reads first (the IPAM handle, the pools, the host's
/// block affinities, the network's profile, and the blocks the previous ADD read).
public final class PrefetchingDatastore: Datastore, @unchecked Sendable {
    /// The store every other call goes to; closed by `close()`.
    public let base: any Datastore
    private let pending: Mutex<[BatchRead: BatchReadResult]>
    /// Keys put by a transaction, and keys read with `get`, each in first-use order.
    private let used = Mutex<(written: [String], read: [String])>(([], []))

    /// Reads `reads` from `base` in one batch now.
    public init(_ base: any Datastore, prefetching reads: [BatchRead]) throws(DatastoreError) {
        self.base = base
        let results = try base.read(reads)
        var answers: [BatchRead: BatchReadResult] = [:]
        for (read, result) in zip(reads, results) where answers[read] == nil { answers[read] = result }
        pending = Mutex(answers)
    }

    /// The prefetched answer to `read`, removed; nil when there is none (left).
    private func take(_ read: BatchRead) -> BatchReadResult? {
        pending.withLock { $0.removeValue(forKey: read) }
    }

    /// Whether an answer is still waiting to be served.
    public func isPending(_ read: BatchRead) -> Bool { pending.withLock { $0[read] != nil } }

    /// The keys starting with `prefix` that a transaction put (whichever branch it took),
    /// then those only read with `get` (served ahead or not), each in the order first used.
    public func keysUsed(under prefix: String) -> [String] {
        used.withLock { used in
            let written = used.written.filter { $0.hasPrefix(prefix) }
            return written + used.read.filter { $0.hasPrefix(prefix) && !written.contains($0) }
        }
    }

    public func get(_ key: String) throws(DatastoreError) -> KeyValue? {
        used.withLock { if !$0.read.contains(key) { $0.read.append(key) } }
        if case .value(let kv)? = take(.get(key)) { return kv }
        return try base.get(key)
    }

    public func list(prefix: String) throws(DatastoreError) -> ListResult {
        if case .list(let result)? = take(.list(prefix: prefix)) { return result }
        return try base.list(prefix: prefix)
    }

    public func read(_ reads: [BatchRead]) throws(DatastoreError) -> [BatchReadResult] { try base.read(reads) }
    public func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult {
        used.withLock { used in
            for case .put(let key, _) in txn.success where !used.written.contains(key) { used.written.append(key) }
        }
        defer { forget(txn.success + txn.failure) }
        return try base.transact(txn)
    }

    /// Drops the pending answers `operations` may change.
    private func forget(_ operations: [Operation]) {
        pending.withLock { answers in
            guard !answers.isEmpty else { return }
            for op in operations {
                for read in answers.keys where Self.read(read, mayChangeBy: op) { answers[read] = nil }
            }
        }
    }

    private static func read(_ read: BatchRead, mayChangeBy op: Operation) -> Bool {
        switch (read, op) {
        case (.get(let key), .put(let k, _)), (.get(let key), .delete(let k)): return key == k
        case (.get(let key), .deletePrefix(let p)): return key.hasPrefix(p)
        case (.list(let prefix), .put(let k, _)), (.list(let prefix), .delete(let k)): return k.hasPrefix(prefix)
        case (.list(let prefix), .deletePrefix(let p)): return p.hasPrefix(prefix) || prefix.hasPrefix(p)
        }
    }

    public func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch {
        try base.watch(prefix: prefix, after: revision)
    }
    public func currentRevision() throws(DatastoreError) -> Int64 { try base.currentRevision() }
    public func close() { base.close() }
    public func closeForExit() { base.closeForExit() }
}
