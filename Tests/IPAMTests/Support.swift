import CalicoAPI
import Datastore
import Foundation
import IPAM
import IPAddress
import JSON
import SQLiteDatastore

/// The backends every IPAM test runs on.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory
    case sqlite

    var description: String { rawValue }
}

/// A fresh datastore of one backend; for SQLite, `connection()` opens another connection
/// to the same file (as another plugin process would).
final class TestStore: @unchecked Sendable {
    let backend: Backend
    let store: any Datastore
    let path: String?

    init(_ backend: Backend) throws {
        self.backend = backend
        switch backend {
        case .memory:
            store = InMemoryDatastore()
            path = nil
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipam-tests-\(UUID().uuidString)")
            let p = dir.appendingPathComponent("calico.db").path
            store = try SQLiteDatastore(path: p, timeout: 30)
            path = p
        }
    }

    /// A separate connection for SQLite; the shared store for memory.
    func connection() throws -> any Datastore {
        guard let path else { return store }
        return try SQLiteDatastore(path: path, timeout: 30)
    }

    deinit {
        store.close()
        if let path { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
    }

    func value(_ key: String) throws -> JSON? {
        guard let kv = try store.get(key) else { return nil }
        return try JSON(parsing: kv.value)
    }

    func keys(_ prefix: String) throws -> [String] {
        try store.list(prefix: prefix).kvs.map(\.key)
    }

    /// Creates a pool through the resource client (as calicoctl would).
    func addPool(_ name: String, _ cidr: String, blockSize: Int? = nil, disabled: Bool = false, nodeSelector: String? = nil) throws {
        var p = IPPool(name: name, cidr: cidr, blockSize: blockSize, disabled: disabled, nodeSelector: nodeSelector)
        p.natOutgoing = true
        _ = try ResourceClient(store: store).create(p)
    }

    func setStrictAffinity(_ strict: Bool) throws {
        try IPAMClient(store: store).setConfig(IPAMConfig(strictAffinity: strict))
    }
}

/// A store that fails on purpose: the next `failures` transactions throw `error` (by default
/// `.timeout`), either after applying the write (`applyBeforeFailing`, an answer lost on the
/// way back) or without applying it.
final class FlakyStore: Datastore, @unchecked Sendable {
    let inner: InMemoryDatastore
    private let lock = NSLock()
    private var failures: Int
    private let applyBeforeFailing: Bool
    /// Only transactions writing a key that contains this text fail.
    private let keyFilter: String
    private let error: DatastoreError
    private(set) var failed = 0

    init(inner: InMemoryDatastore, failures: Int, applyBeforeFailing: Bool, keyFilter: String = "",
         error: DatastoreError = .timeout("injected: answer lost")) {
        self.inner = inner
        self.failures = failures
        self.applyBeforeFailing = applyBeforeFailing
        self.keyFilter = keyFilter
        self.error = error
    }

    func get(_ key: String) throws(DatastoreError) -> KeyValue? { try inner.get(key) }
    func list(prefix: String) throws(DatastoreError) -> ListResult { try inner.list(prefix: prefix) }
    func watch(prefix: String, after revision: Int64) throws(DatastoreError) -> any Watch { try inner.watch(prefix: prefix, after: revision) }
    func currentRevision() throws(DatastoreError) -> Int64 { try inner.currentRevision() }
    func close() { inner.close() }

    func transact(_ txn: Transaction) throws(DatastoreError) -> TransactionResult {
        lock.lock()
        let touches = txn.success.contains { op in
            switch op {
            case .put(let k, _), .delete(let k): return keyFilter.isEmpty || k.contains(keyFilter)
            case .deletePrefix(let k): return keyFilter.isEmpty || k.contains(keyFilter)
            }
        }
        let fail = failures > 0 && touches
        if fail { failures -= 1; failed += 1 }
        lock.unlock()
        if fail {
            if applyBeforeFailing { _ = try inner.transact(txn) }
            throw error
        }
        return try inner.transact(txn)
    }
}

extension IPAMClient {
    func assign(_ handle: String, node: String = "node1", v4: Int = 1, v6: Int = 0,
                v4Pools: [String] = [], v6Pools: [String] = []) throws -> AssignResult {
        try autoAssign(AssignRequest(handleID: handle, node: node, ipv4Count: v4, ipv6Count: v6,
                                     ipv4Pools: v4Pools, ipv6Pools: v6Pools))
    }
}

/// The block a test expects an address in.
func block(of ip: IPAddress, size: Int) -> IPNetwork { IPNetwork(address: ip, prefixLength: size).masked }
