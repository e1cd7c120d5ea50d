import CalicoAPI
import Datastore
import IPAddress
import JSON
import POSIX
import Selector

extension IPAMClient {
    /// What calico-node would have set up before the first workload on a host, done by
    /// the first assignment on an empty (or partly set up) datastore: the `Node` resource,
    /// `ClusterInformation default` with `datastoreReady: true`, `/calico/ipam/v2/config`,
    /// and `default-ipv4-ippool` when no pool exists at all. Each item is created only when
    /// absent (create-if-absent), so concurrent first ADDs agree and nothing is overwritten.
    public func initializeDatastore(node: String) throws(IPAMError) {
        try createIfAbsent(ResourceKind.node.key(name: node), Self.stamped(Node(name: node)))
        let info = ClusterInformation(clusterGUID: Self.randomHex(16), clusterType: options.clusterType,
                                      calicoVersion: options.calicoVersion, datastoreReady: true)
        try createIfAbsent(ResourceKind.clusterInformation.key(name: ClusterInformation.defaultName), Self.stamped(info))
        try createIfAbsent(CalicoKeys.ipamConfig, IPAMConfig().json.compactText)
        let pools = try call({ () throws(DatastoreError) in try store.list(prefix: ResourceKind.ipPool.keyPrefix()) })
        if pools.kvs.isEmpty {
            let pool = options.defaultPool.withDefaults()
            try createIfAbsent(pool.key, Self.stamped(pool))
        }
    }

    /// The stored text of a new resource: upstream defaults, a fresh uid and creation time.
    static func stamped<R: CalicoResource>(_ resource: R) -> String {
        var r = resource.withDefaults()
        r.metadata.uid = ResourceClient.newUID()
        r.metadata.creationTimestamp = rfc3339Now()
        return ResourceClient.storedText(r)
    }

    /// Creates `key` unless it exists. A lost answer is settled by checking that the key
    /// exists now (whoever wrote it, the outcome is the same); a write that did not happen
    /// returns the datastore's error.
    func createIfAbsent(_ key: String, _ value: String) throws(IPAMError) {
        let txn = Transaction(if: [.createRevision(key: key, equals: 0)], then: [.put(key: key, value: value)])
        let store = self.store
        var attempts = Attempts(self, what: "creating \(key)")
        while true {
            let exists = { () throws(IPAMError) -> Bool in try call({ () throws(DatastoreError) in try store.get(key) }) != nil }
            if try commit(txn, applied: exists) != nil { return }
            if try exists() { return }
            try attempts.next(self)
        }
    }

    /// Writes `value` at `key` unconditionally. A lost answer is settled by reading it back;
    /// a write that did not happen returns the datastore's error.
    func putChecked(_ key: String, _ value: String) throws(IPAMError) {
        let txn = Transaction(if: [], then: [.put(key: key, value: value)])
        let store = self.store
        var attempts = Attempts(self, what: "writing \(key)")
        while true {
            let outcome = try commit(txn) { () throws(IPAMError) in
                try call({ () throws(DatastoreError) in try store.get(key) })?.value == value
            }
            if outcome != nil { return }
            try attempts.next(self)
        }
    }

    static func randomHex(_ bytes: Int) -> String {
        let digits = Array("0123456789abcdef")
        var g = SystemRandomNumberGenerator()
        var s = ""
        for _ in 0..<bytes {
            let b = UInt8.random(in: 0...255, using: &g)
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0xF)])
        }
        return s
    }

    // MARK: Pools

    /// Every pool in the datastore.
    public func pools() throws(IPAMError) -> [IPPool] {
        do { return try resources.list(IPPool.self) } catch {
            if case .datastore(let e) = error { throw .datastore(e) }
            throw .corruptValue(key: ResourceKind.ipPool.keyPrefix(), reason: error.description)
        }
    }

    /// The labels of the `Node` resource (empty when it does not exist).
    func nodeLabels(_ node: String) throws(IPAMError) -> [String: String]? {
        do { return try resources.get(Node.self, name: node)?.metadata.labels } catch {
            if case .datastore(let e) = error { throw .datastore(e) }
            return [:]
        }
    }

    /// The pools an assignment may use, in order: the named ones (by name or CIDR; each must
    /// exist, be enabled and of the family), or else every enabled pool of the family whose
    /// `nodeSelector` selects the node (sorted by CIDR for a stable order).
    static func usablePools(_ all: [IPPool], ipv6: Bool, requested: [String], nodeLabels: () throws(IPAMError) -> [String: String])
        throws(IPAMError) -> [IPPool]
    {
        let family = all.filter { $0.isIPv6 == ipv6 && $0.network != nil }
        if !requested.isEmpty {
            var out: [IPPool] = []
            for name in requested {
                let asNet = IPNetwork(name)?.masked
                guard let p = family.first(where: { $0.metadata.name == name || (asNet != nil && $0.network == asNet) }),
                      !p.disabled
                else { throw .poolNotUsable(name) }
                out.append(p)
            }
            return out
        }
        var labels: [String: String]? = nil
        var out: [IPPool] = []
        for p in family where !p.disabled {
            let text = p.effectiveNodeSelector
            guard let selector = try? Selector(parsing: text) else { continue }
            if selector.isAll { out.append(p); continue }
            if labels == nil { labels = try nodeLabels() }
            if selector.matches(labels!) { out.append(p) }
        }
        return out.sorted { $0.network!.address < $1.network!.address }
    }
}
