/// One key and its value as the store holds it, with etcd's revision bookkeeping.
///
/// `value` is the exact text stored (Calico's JSON), so a value written by upstream Calico
/// reads back byte for byte.
public struct KeyValue: Sendable, Hashable {
    public var key: String
    public var value: String
    /// The store revision at which the key was created (etcd `create_revision`).
    public var createRevision: Int64
    /// The store revision of the last write to the key (etcd `mod_revision`); Calico's
    /// `resourceVersion`.
    public var modRevision: Int64
    /// Writes since creation (etcd `version`), 1 after the create.
    public var version: Int64

    public init(key: String, value: String, createRevision: Int64, modRevision: Int64, version: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
    }
}

/// A condition of a transaction, as etcd's `Compare`.
public enum Comparison: Sendable, Hashable {
    /// The key's create revision equals `revision`; 0 means "the key does not exist".
    case createRevision(key: String, equals: Int64)
    /// The key's mod revision equals `revision`; 0 means "the key does not exist".
    case modRevision(key: String, equals: Int64)
    /// The key exists and its value is exactly `value`.
    case value(key: String, equals: String)
}

/// One write of a transaction.
public enum Operation: Sendable, Hashable {
    case put(key: String, value: String)
    /// Deletes one key (no error when it is absent).
    case delete(key: String)
    /// Deletes every key that starts with `prefix`.
    case deletePrefix(String)
}

/// `If(comparisons) Then(success) Else(failure)`, applied atomically.
public struct Transaction: Sendable, Hashable {
    public var comparisons: [Comparison]
    public var success: [Operation]
    public var failure: [Operation]

    public init(if comparisons: [Comparison], then success: [Operation], else failure: [Operation] = []) {
        self.comparisons = comparisons
        self.success = success
        self.failure = failure
    }
}

/// The outcome of a transaction.
public struct TransactionResult: Sendable, Hashable {
    /// Whether every comparison held (so `success` ran).
    public var succeeded: Bool
    /// The store revision after the transaction (unchanged when nothing was written).
    public var revision: Int64

    public init(succeeded: Bool, revision: Int64) {
        self.succeeded = succeeded
        self.revision = revision
    }
}

/// A page of keys under a prefix, read at one revision.
public struct ListResult: Sendable, Hashable {
    /// Sorted by key.
    public var kvs: [KeyValue]
    /// The store revision the list was read at.
    public var revision: Int64

    public init(kvs: [KeyValue], revision: Int64) {
        self.kvs = kvs
        self.revision = revision
    }
}

/// One read of a batch (`Datastore.read(_:)`).
public enum BatchRead: Sendable, Hashable {
    /// The key's value (`Datastore.get`).
    case get(String)
    /// Every key under the prefix (`Datastore.list(prefix:)`).
    case list(prefix: String)
}

/// The answer to one `BatchRead`, in the same position.
public enum BatchReadResult: Sendable, Hashable {
    case value(KeyValue?)
    case list(ListResult)
}

/// One change seen by a watch.
public struct WatchEvent: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case put, delete }
    public var kind: Kind
    /// For a delete: the key with an empty value and `modRevision` the revision of the delete.
    public var kv: KeyValue
    /// The value before the change, when the backend knows it.
    public var previous: KeyValue?

    public init(kind: Kind, kv: KeyValue, previous: KeyValue? = nil) {
        self.kind = kind
        self.kv = kv
        self.previous = previous
    }
}

/// A stream of changes under a prefix. Not thread-safe: one consumer.
public protocol Watch: AnyObject {
    /// Blocks up to `timeout` seconds for the next batch of events (in revision order).
    /// Returns an empty array when the time ran out with no change.
    /// Throws `DatastoreError.compacted` when the start revision is no longer available
    /// (the caller must re-list), `.unavailable` when the store went away.
    func next(timeout: Double) throws(DatastoreError) -> [WatchEvent]
    /// Stops the watch; `next` returns no more events.
    func cancel()
}

/// Errors every backend reports the same way.
public enum DatastoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The store cannot be reached or opened now (network down, file locked past the
    /// deadline). Worth retrying later: CNI code 11.
    case unavailable(String)
    /// An operation did not finish within its deadline. CNI code 11.
    case timeout(String)
    /// The requested revision was compacted away; re-list and watch from the new revision.
    case compacted(Int64)
    /// The store answered something we could not understand, or refused the request.
    case failed(String)

    public var description: String {
        switch self {
        case .unavailable(let m): return "datastore unavailable: \(m)"
        case .timeout(let m): return "datastore timeout: \(m)"
        case .compacted(let r): return "datastore revision \(r) has been compacted"
        case .failed(let m): return "datastore error: \(m)"
        }
    }

    /// Whether retrying later may succeed (CNI code 11, "try again later").
    public var isTransient: Bool {
        switch self {
        case .unavailable, .timeout: return true
        case .compacted, .failed: return false
        }
    }
}

/// A key-value store with etcd v3 semantics: one global revision counter incremented by
/// every write transaction, per-key create/mod revisions, compare-and-swap transactions,
/// prefix reads and watches.
///
/// Calls are synchronous and block the calling thread, bounded by the backend's deadline
/// (Mesos waits forever for a plugin, so nothing may hang). Implementations are safe to
/// use from several threads.
public protocol Datastore: AnyObject, Sendable {
    /// The key's current value, or nil.
    func get(_ key: String) throws(DatastoreError) -> KeyValue?
    /// Every key starting with `prefix`, sorted by key, read at one revision.
    func list(prefix: String) throws(DatastoreError) -> ListResult
    /// Several reads at once, answered in order: in one request where the backend can (etcd:
    /// one read-only `Txn` of ranges; SQLite: one read transaction), so at one revision.
    /// The default runs them one by one.
    func read(_ reads: [BatchRead]) throws(DatastoreError) -> [BatchReadResult]
    /// Applies `txn` atomically.
    func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult
    /// Watches keys under `prefix` for changes with a revision greater than `revision`.
    func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch
    /// The store's current revision.
    func currentRevision() throws(DatastoreError) -> Int64
    /// Releases connections or file handles. Further calls fail with `.unavailable`.
    func close()
    /// `close()` for a process that exits right after: a backend may leave to the exit what
    /// the kernel does then anyway (closing files, releasing locks) and do only what must
    /// not be skipped. The default closes.
    func closeForExit()
}

// MARK: - Conveniences over `transact`

extension Datastore {
    public func closeForExit() { close() }

    /// `closeForExit()` when the process ends right after, else `close()`.
    public func close(endingProcess: Bool) {
        if endingProcess { closeForExit() } else { close() }
    }

    public func read(_ reads: [BatchRead]) throws(DatastoreError) -> [BatchReadResult] {
        var results: [BatchReadResult] = []
        results.reserveCapacity(reads.count)
        for read in reads {
            switch read {
            case .get(let key): results.append(.value(try get(key)))
            case .list(let prefix): results.append(.list(try list(prefix: prefix)))
            }
        }
        return results
    }

    /// Writes unconditionally. Returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: String) throws(DatastoreError) -> Int64 {
        try transact(Transaction(if: [], then: [.put(key: key, value: value)])).revision
    }

    /// Creates `key` only if it does not exist. Returns the new revision, or nil if it existed.
    public func create(_ key: String, _ value: String) throws(DatastoreError) -> Int64? {
        let r = try transact(Transaction(if: [.createRevision(key: key, equals: 0)], then: [.put(key: key, value: value)]))
        return r.succeeded ? r.revision : nil
    }

    /// Replaces `key` only if its mod revision is still `modRevision`. Returns the new
    /// revision, or nil on conflict (someone else wrote it, or it is gone).
    public func update(_ key: String, _ value: String, modRevision: Int64) throws(DatastoreError) -> Int64? {
        let r = try transact(Transaction(if: [.modRevision(key: key, equals: modRevision)], then: [.put(key: key, value: value)]))
        return r.succeeded ? r.revision : nil
    }

    /// Deletes `key`; with `modRevision`, only if it is still at that revision.
    /// Returns false on conflict. Deleting an absent key without a revision succeeds.
    @discardableResult
    public func delete(_ key: String, modRevision: Int64? = nil) throws(DatastoreError) -> Bool {
        let cmp: [Comparison] = modRevision.map { [.modRevision(key: key, equals: $0)] } ?? []
        return try transact(Transaction(if: cmp, then: [.delete(key: key)])).succeeded
    }
}
