/// A `Datastore` held in process memory: the reference implementation of the protocol's
/// semantics and the fake that unit tests of IPAM, the CNI plugin and calicoctl run on.
///
/// It behaves like a single etcd member: one revision counter bumped once per transaction
/// that changes something, per-key create/mod revisions and versions, byte-wise key order,
/// and a bounded event history for watches (older watches get `.compacted`). Thread-safe;
/// watches block on a condition variable, not a poll.
public final class InMemoryDatastore: CompactableDatastore, @unchecked Sendable {
    /// Everything below is guarded by `lock`.
    private let lock = ConditionLock()
    /// Sorted by `KeyOrder.precedes`.
    private var kvs: [KeyValue] = []
    private var revision: Int64 = 0
    /// Events in revision order, each tagged with the revision of its transaction.
    private var history: [WatchEvent] = []
    /// History up to and including this revision is gone.
    private var compactedThrough: Int64 = 0
    private var closed = false
    private let historyLimit: Int

    /// - Parameter historyLimit: how many change events watches can replay; older ones are
    ///   dropped (whole transactions at a time) and watching from before them throws
    ///   `.compacted`.
    public init(historyLimit: Int = 10_000) {
        precondition(historyLimit > 0, "historyLimit must be positive")
        self.historyLimit = historyLimit
    }

    // MARK: Reads

    public func get(_ key: String) throws(DatastoreError) -> KeyValue? {
        try lock.withLock { () throws(DatastoreError) -> KeyValue? in
            try checkOpen()
            return lookup(key).map { kvs[$0] }
        }
    }

    public func list(prefix: String) throws(DatastoreError) -> ListResult {
        try lock.withLock { () throws(DatastoreError) -> ListResult in
            try checkOpen()
            return ListResult(kvs: Array(kvs[range(prefix: prefix)]), revision: revision)
        }
    }

    public func currentRevision() throws(DatastoreError) -> Int64 {
        try lock.withLock { () throws(DatastoreError) -> Int64 in
            try checkOpen()
            return revision
        }
    }

    // MARK: Writes

    public func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult {
        try lock.withLock { () throws(DatastoreError) -> TransactionResult in
            try checkOpen()
            let holds = txn.comparisons.allSatisfy(evaluate)
            let ops = holds ? txn.success : txn.failure
            let next = revision + 1
            var events: [WatchEvent] = []
            for op in ops { apply(op, at: next, into: &events) }
            if !events.isEmpty {
                revision = next
                record(events)
                lock.broadcast()
            }
            return TransactionResult(succeeded: holds, revision: revision)
        }
    }

    public func compact(through revision: Int64) throws(DatastoreError) {
        try lock.withLock { () throws(DatastoreError) in
            try checkOpen()
            guard revision > compactedThrough else { return }
            compactedThrough = min(revision, self.revision)
            history.removeFirst(history.prefix { $0.kv.modRevision <= compactedThrough }.count)
            lock.broadcast()
        }
    }

    public func close() {
        lock.withLock {
            closed = true
            lock.broadcast()
        }
    }

    // MARK: Watch

    public func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch {
        try lock.withLock { () throws(DatastoreError) in try checkOpen() }
        return InMemoryWatch(store: self, prefix: prefix, cursor: revision)
    }

    /// Blocks until events after `cursor` under `prefix` exist or `deadline` passes.
    /// Returns the events and the revision the caller has now seen up to.
    fileprivate func events(prefix: String, after cursor: Int64, until deadline: Double,
                            cancelled: () -> Bool) throws(DatastoreError) -> (events: [WatchEvent], seen: Int64) {
        try lock.withLock { () throws(DatastoreError) -> (events: [WatchEvent], seen: Int64) in
            var seen = cursor
            while true {
                if cancelled() { return ([], seen) }
                try checkOpen()
                if seen < compactedThrough { throw .compacted(compactedThrough) }
                let start = firstEvent(after: seen)
                let found = history[start...].filter { KeyOrder.key($0.kv.key, hasPrefix: prefix) }
                // Changes outside the prefix still move the cursor, so the next call does
                // not rescan them (and compaction of them does not fail this watch).
                seen = max(seen, revision)
                if !found.isEmpty { return (found, seen) }
                if !lock.wait(untilMonotonic: deadline) { return ([], seen) }
            }
        }
    }

    // MARK: Internals (lock held)

    private func checkOpen() throws(DatastoreError) {
        if closed { throw .unavailable("in-memory datastore is closed") }
    }

    /// Index of the first key not sorting before `key`.
    private func lowerBound(_ key: String) -> Int {
        var lo = 0, hi = kvs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if KeyOrder.precedes(kvs[mid].key, key) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private func lookup(_ key: String) -> Int? {
        let i = lowerBound(key)
        return i < kvs.count && KeyOrder.same(kvs[i].key, key) ? i : nil
    }

    private func range(prefix: String) -> Range<Int> {
        let start = lowerBound(prefix)
        var end = start
        while end < kvs.count && KeyOrder.key(kvs[end].key, hasPrefix: prefix) { end += 1 }
        return start..<end
    }

    private func evaluate(_ c: Comparison) -> Bool {
        switch c {
        case .createRevision(let key, let want):
            return (lookup(key).map { kvs[$0].createRevision } ?? 0) == want
        case .modRevision(let key, let want):
            return (lookup(key).map { kvs[$0].modRevision } ?? 0) == want
        case .value(let key, let want):
            guard let i = lookup(key) else { return false }
            return KeyOrder.same(kvs[i].value, want)
        }
    }

    private func apply(_ op: Operation, at rev: Int64, into events: inout [WatchEvent]) {
        switch op {
        case .put(let key, let value):
            if let i = lookup(key) {
                let old = kvs[i]
                kvs[i].value = value
                kvs[i].modRevision = rev
                kvs[i].version += 1
                events.append(WatchEvent(kind: .put, kv: kvs[i], previous: old))
            } else {
                let kv = KeyValue(key: key, value: value, createRevision: rev, modRevision: rev, version: 1)
                kvs.insert(kv, at: lowerBound(key))
                events.append(WatchEvent(kind: .put, kv: kv))
            }
        case .delete(let key):
            if let i = lookup(key) { remove(range: i..<(i + 1), at: rev, into: &events) }
        case .deletePrefix(let prefix):
            remove(range: range(prefix: prefix), at: rev, into: &events)
        }
    }

    private func remove(range: Range<Int>, at rev: Int64, into events: inout [WatchEvent]) {
        for old in kvs[range] {
            let tomb = KeyValue(key: old.key, value: "", createRevision: 0, modRevision: rev, version: 0)
            events.append(WatchEvent(kind: .delete, kv: tomb, previous: old))
        }
        kvs.removeSubrange(range)
    }

    private func record(_ events: [WatchEvent]) {
        history.append(contentsOf: events)
        guard history.count > historyLimit else { return }
        // Drop whole transactions so a watch never sees half of one.
        let cut = history[history.count - historyLimit].kv.modRevision - 1
        if cut > compactedThrough {
            compactedThrough = cut
            history.removeFirst(history.prefix { $0.kv.modRevision <= cut }.count)
        }
    }

    /// Index of the first history event with a revision greater than `rev`.
    private func firstEvent(after rev: Int64) -> Int {
        var lo = 0, hi = history.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if history[mid].kv.modRevision <= rev { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// A watch on an `InMemoryDatastore`.
final class InMemoryWatch: Watch {
    private let store: InMemoryDatastore
    private let prefix: String
    private var cursor: Int64
    private var cancelled = false

    init(store: InMemoryDatastore, prefix: String, cursor: Int64) {
        self.store = store
        self.prefix = prefix
        self.cursor = cursor
    }

    func next(timeout: Double) throws(DatastoreError) -> [WatchEvent] {
        if cancelled { return [] }
        let deadline = ConditionLock.monotonicNow() + max(0, timeout)
        let (events, seen) = try store.events(prefix: prefix, after: cursor, until: deadline, cancelled: { cancelled })
        cursor = seen
        return events
    }

    func cancel() { cancelled = true }
}
