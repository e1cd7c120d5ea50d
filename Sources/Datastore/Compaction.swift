/// A store whose watch history can be dropped on request, as etcd's `Compact`.
///
/// Backends that keep bounded history (the SQLite event log, etcd) compact on their own as
/// well; this entry point lets tests and operators force it, and lets the conformance
/// suite check that a watch from before the compaction reports `.compacted`.
public protocol CompactableDatastore: Datastore {
    /// Drops the change history up to and including `revision`. Afterwards a watch after
    /// any revision lower than `revision` throws `DatastoreError.compacted`; a watch after
    /// `revision` or later still sees every change. Current values are untouched.
    func compact(through revision: Int64) throws(DatastoreError)
}

/// Key comparisons as etcd makes them: by UTF-8 bytes, never by Swift's Unicode-aware
/// `String` ordering or equality (two canonically equivalent keys are different keys).
public enum KeyOrder {
    /// Whether `a` sorts before `b` byte-wise.
    @inlinable
    public static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Whether `a` and `b` are the same bytes.
    @inlinable
    public static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// Whether `key` starts with the bytes of `prefix`.
    @inlinable
    public static func key(_ key: String, hasPrefix prefix: String) -> Bool {
        key.utf8.starts(with: prefix.utf8)
    }
}
