import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import Datastore
import POSIX

/// The embedded datastore: one SQLite file (default `/var/lib/calico/calico.db`) shared by
/// every plugin process on the host, with etcd v3 semantics.
///
/// Table `kv` holds Calico's etcd keys and JSON values verbatim, with create/mod revision
/// and version columns; `meta` holds the global revision; `events` is the change log that
/// watches replay (the newest `historyLimit` events; older watches get `.compacted`).
///
/// Many processes use the file at once: WAL journaling, `BEGIN IMMEDIATE` for writes (so two
/// writers never deadlock upgrading read locks), and a busy handler that waits for the lock
/// until the call's deadline (`SQLiteSettings.timeout`, then `DatastoreError.timeout`).
/// A process killed mid-transaction leaves the file consistent: SQLite's WAL ignores
/// uncommitted frames and the kernel drops the dead process's locks.
///
/// Within a process, one connection is shared by all threads under a lock.
public final class SQLiteDatastore: CompactableDatastore, @unchecked Sendable {
    /// The database file.
    public let path: String
    /// How long one call may take, in seconds.
    public let timeout: Double
    /// How many events the change log keeps for watches.
    public let historyLimit: Int
    private let lock = Mutex(())
    /// Guarded by `lock`; nil once closed.
    private var connection: SQLiteConnection?

    /// Opens the store, creating the file (0600) and its directory (0700) when missing.
    public init(settings: SQLiteSettings, historyLimit: Int = 10_000) throws(DatastoreError) {
        precondition(historyLimit > 0, "historyLimit must be positive")
        path = settings.path
        timeout = settings.timeout
        self.historyLimit = historyLimit
        connection = try SQLiteConnection(path: settings.path, deadline: MonotonicClock.now() + settings.timeout)
    }

    /// Opens the store at `path`.
    public convenience init(path: String, timeout: Double = DatastoreSettings.defaultTimeout) throws(DatastoreError) {
        try self.init(settings: SQLiteSettings(path: path, timeout: timeout))
    }

    /// Runs `body` on the connection under the lock, with a fresh deadline.
    func withConnection<T>(_ body: (SQLiteConnection) throws(DatastoreError) -> T) throws(DatastoreError) -> T {
        try lock.withLock { _ throws(DatastoreError) -> T in
            guard let c = connection else { throw .unavailable("sqlite datastore \(path) is closed") }
            c.deadline = MonotonicClock.now() + timeout
            // Never start a call inside a transaction an earlier failure left open.
            c.rollback()
            return try body(c)
        }
    }

    /// Runs `body` in a transaction (`BEGIN IMMEDIATE` when `write`), rolling back when it throws.
    private func inTransaction<T>(write: Bool, _ body: (SQLiteConnection) throws(DatastoreError) -> T) throws(DatastoreError) -> T {
        try withConnection { (c) throws(DatastoreError) -> T in
            try c.query(write ? Schema.beginImmediate : Schema.begin)
            do throws(DatastoreError) {
                let result = try body(c)
                try c.query(Schema.commit)
                return result
            } catch {
                c.rollback()
                throw error
            }
        }
    }

    // MARK: Reads

    public func get(_ key: String) throws(DatastoreError) -> KeyValue? {
        try withConnection { (c) throws(DatastoreError) -> KeyValue? in try row(c, key) }
    }

    public func list(prefix: String) throws(DatastoreError) -> ListResult {
        try inTransaction(write: false) { (c) throws(DatastoreError) -> ListResult in
            ListResult(kvs: try rows(c, prefix: prefix), revision: try meta(c, "revision"))
        }
    }

    /// The rows under `prefix`, in key order (inside the caller's transaction).
    private func rows(_ c: SQLiteConnection, prefix: String) throws(DatastoreError) -> [KeyValue] {
        var kvs: [KeyValue] = []
        let (sql, bindings) = ranged(Schema.listRange, Schema.listFrom, prefix: prefix)
        try c.query(sql, bindings) { (s) throws(DatastoreError) in
            kvs.append(KeyValue(key: s.text(0), value: s.text(1), createRevision: s.int(2), modRevision: s.int(3), version: s.int(4)))
        }
        return kvs
    }

    /// Every read in one read transaction: one snapshot, one lock round.
    public func read(_ reads: [BatchRead]) throws(DatastoreError) -> [BatchReadResult] {
        if reads.isEmpty { return [] }
        return try inTransaction(write: false) { (c) throws(DatastoreError) -> [BatchReadResult] in
            var revision: Int64?
            var results: [BatchReadResult] = []
            results.reserveCapacity(reads.count)
            for read in reads {
                switch read {
                case .get(let key):
                    results.append(.value(try row(c, key)))
                case .list(let prefix):
                    if revision == nil { revision = try meta(c, "revision") }
                    let current = revision!
                    results.append(.list(ListResult(kvs: try rows(c, prefix: prefix), revision: current)))
                }
            }
            return results
        }
    }

    public func currentRevision() throws(DatastoreError) -> Int64 {
        try withConnection { (c) throws(DatastoreError) -> Int64 in try meta(c, "revision") }
    }

    // MARK: Writes

    public func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult {
        try inTransaction(write: true) { (c) throws(DatastoreError) -> TransactionResult in
            var holds = true
            for comparison in txn.comparisons {
                if !(try evaluate(c, comparison)) {
                    holds = false
                    break
                }
            }
            let current = try meta(c, "revision")
            let next = current + 1
            var changed = false
            for op in holds ? txn.success : txn.failure {
                if try apply(c, op, at: next) { changed = true }
            }
            guard changed else { return TransactionResult(succeeded: holds, revision: current) }
            try c.query(Schema.writeMeta, [.text("revision"), .int(next)])
            // Pruning costs two index probes; every 64th revision is often enough.
            if next % 64 == 0 { try prune(c) }
            return TransactionResult(succeeded: holds, revision: next)
        }
    }

    public func compact(through revision: Int64) throws(DatastoreError) {
        try inTransaction(write: true) { (c) throws(DatastoreError) in
            let target = min(revision, try meta(c, "revision"))
            guard target > (try meta(c, "compacted")) else { return }
            try c.query(Schema.pruneEvents, [.int(target)])
            try c.query(Schema.writeMeta, [.text("compacted"), .int(target)])
        }
    }

    public func close() {
        lock.withLock { _ in
            connection?.close()
            connection = nil
        }
    }

    /// For a process about to exit (a plugin invocation): unless the WAL has grown long
    /// enough that this close must checkpoint it, the connection is left open for the exit
    /// to release (its locks and files). A close that does not checkpoint changes nothing
    /// on disk, and the next process, the only connection again, runs recovery either way;
    /// skipping it saves finalising statements, freeing the page cache and the unmapping,
    /// ~0.3-0.7 ms of every plugin run.
    public func closeForExit() {
        lock.withLock { _ in
            guard let c = connection else { return }
            connection = nil
            if c.checkpointsOnClose {
                c.close()
            } else {
                _ = Unmanaged.passRetained(c)  // never released: its deinit would close it
            }
        }
    }

    // MARK: Watch

    public func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch {
        try SQLiteWatch(store: self, prefix: prefix, after: revision)
    }

    /// The events under `prefix` after `cursor`, and the revision they were read at.
    func events(prefix: String, after cursor: Int64) throws(DatastoreError) -> (events: [WatchEvent], revision: Int64) {
        try inTransaction(write: false) { (c) throws(DatastoreError) -> (events: [WatchEvent], revision: Int64) in
            let compacted = try meta(c, "compacted")
            if cursor < compacted { throw .compacted(compacted) }
            let revision = try meta(c, "revision")
            var events: [WatchEvent] = []
            if revision > cursor {
                var bindings: [Binding] = [.int(cursor)]
                let (sql, range) = ranged(Schema.eventsRange, Schema.eventsFrom, prefix: prefix)
                bindings += range
                try c.query(sql, bindings) { (s) throws(DatastoreError) in
                    let rev = s.int(0)
                    let kv = KeyValue(key: s.text(2), value: s.text(3), createRevision: s.int(4), modRevision: rev, version: s.int(5))
                    let previous = s.isNull(6) ? nil
                        : KeyValue(key: kv.key, value: s.text(6), createRevision: s.int(7), modRevision: s.int(8), version: s.int(9))
                    events.append(WatchEvent(kind: s.int(1) == 1 ? .delete : .put, kv: kv, previous: previous))
                }
            }
            return (events, revision)
        }
    }

    // MARK: Internals (connection held)

    private func row(_ c: SQLiteConnection, _ key: String) throws(DatastoreError) -> KeyValue? {
        var found: KeyValue?
        try c.query(Schema.getKey, [.text(key)]) { (s) throws(DatastoreError) in
            found = KeyValue(key: key, value: s.text(0), createRevision: s.int(1), modRevision: s.int(2), version: s.int(3))
        }
        return found
    }

    private func meta(_ c: SQLiteConnection, _ name: String) throws(DatastoreError) -> Int64 {
        var value: Int64 = 0
        try c.query(Schema.readMeta, [.text(name)]) { (s) throws(DatastoreError) in value = s.int(0) }
        return value
    }

    private func evaluate(_ c: SQLiteConnection, _ comparison: Comparison) throws(DatastoreError) -> Bool {
        switch comparison {
        case .createRevision(let key, let want):
            return (try row(c, key)?.createRevision ?? 0) == want
        case .modRevision(let key, let want):
            return (try row(c, key)?.modRevision ?? 0) == want
        case .value(let key, let want):
            guard let kv = try row(c, key) else { return false }
            return KeyOrder.same(kv.value, want)
        }
    }

    /// Applies one write at revision `rev`, logging its events; false when nothing changed.
    private func apply(_ c: SQLiteConnection, _ op: Operation, at rev: Int64) throws(DatastoreError) -> Bool {
        switch op {
        case .put(let key, let value):
            let old = try row(c, key)
            let kv = KeyValue(key: key, value: value, createRevision: old?.createRevision ?? rev, modRevision: rev,
                              version: (old?.version ?? 0) + 1)
            try c.query(Schema.putKey, [.text(key), .text(value), .int(kv.createRevision), .int(rev), .int(kv.version)])
            try log(c, .put, kv, previous: old)
            return true
        case .delete(let key):
            guard let old = try row(c, key) else { return false }
            try c.query(Schema.deleteKey, [.text(key)])
            try log(c, .delete, KeyValue(key: key, value: "", createRevision: 0, modRevision: rev, version: 0), previous: old)
            return true
        case .deletePrefix(let prefix):
            var doomed: [KeyValue] = []
            let (select, bindings) = ranged(Schema.listRange, Schema.listFrom, prefix: prefix)
            try c.query(select, bindings) { (s) throws(DatastoreError) in
                doomed.append(KeyValue(key: s.text(0), value: s.text(1), createRevision: s.int(2), modRevision: s.int(3), version: s.int(4)))
            }
            guard !doomed.isEmpty else { return false }
            let (delete, _) = ranged(Schema.deleteRange, Schema.deleteFrom, prefix: prefix)
            try c.query(delete, bindings)
            for old in doomed {
                try log(c, .delete, KeyValue(key: old.key, value: "", createRevision: 0, modRevision: rev, version: 0), previous: old)
            }
            return true
        }
    }

    private func log(_ c: SQLiteConnection, _ kind: WatchEvent.Kind, _ kv: KeyValue, previous: KeyValue?) throws(DatastoreError) {
        try c.query(Schema.addEvent, [
            .int(kv.modRevision), .int(kind == .delete ? 1 : 0), .text(kv.key), .text(kv.value), .int(kv.createRevision), .int(kv.version),
            previous.map { .text($0.value) } ?? .null, previous.map { .int($0.createRevision) } ?? .null,
            previous.map { .int($0.modRevision) } ?? .null, previous.map { .int($0.version) } ?? .null,
        ])
    }

    /// Drops events beyond the newest `historyLimit`, whole revisions at a time (a watch must
    /// never see half a transaction), and records the cut as the compacted revision.
    private func prune(_ c: SQLiteConnection) throws(DatastoreError) {
        var beyond: Int64?
        try c.query(Schema.eventBeyondLimit, [.int(Int64(historyLimit))]) { (s) throws(DatastoreError) in beyond = s.int(0) }
        guard let beyond else { return }
        let cut = beyond - 1
        guard cut > (try meta(c, "compacted")) else { return }
        try c.query(Schema.pruneEvents, [.int(cut)])
        try c.query(Schema.writeMeta, [.text("compacted"), .int(cut)])
    }

    /// `rangeSQL` bound to `[prefix, successor)`, or `fromSQL` bound to `[prefix` when no
    /// byte string bounds the prefix from above (empty, or all 0xFF).
    private func ranged(_ rangeSQL: String, _ fromSQL: String, prefix: String) -> (String, [Binding]) {
        var upper = Array(prefix.utf8)
        while let last = upper.last, last == 0xFF { upper.removeLast() }
        guard let last = upper.last else { return (fromSQL, [.text(prefix)]) }
        upper[upper.count - 1] = last + 1
        return (rangeSQL, [.text(prefix), .textBytes(upper)])
    }
}
