import Datastore
import JSON

extension EtcdDatastore: CompactableDatastore {
    /// etcd `Compact(revision, physical: true)`: drops the history before `revision` and
    /// returns once the space is reclaimed. A revision that is already compacted succeeds.
    ///
    /// etcd keeps the key versions *at* `revision`, so a watch after `revision − 1`
    /// still works; watches after anything older throw `.compacted(revision)`.
    public func compact(through revision: Int64) throws(DatastoreError) {
        do {
            _ = try call("kv/compaction", ["revision": EtcdWire.int64(revision), "physical": true], isWrite: true)
        } catch .failed(let message) where message.contains("required revision has been compacted") {
            return
        }
    }
}
