import Datastore
import EtcdDatastore
import SQLiteDatastore

/// Opens the store `settings` describe: the SQLite file (created when missing) or an etcd
/// v3 client (which connects on first use).
public func openDatastore(_ settings: DatastoreSettings) throws(DatastoreError) -> any Datastore {
    switch settings {
    case .sqlite(let s):
        return try SQLiteDatastore(settings: s)
    case .etcdv3(let e):
        return try EtcdDatastore(settings: e)
    }
}
