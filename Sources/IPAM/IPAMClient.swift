import CalicoAPI
import Datastore
import IPAddress
import JSON
import POSIX
#if canImport(Glibc)
import Glibc
#endif

/// Calico IPAM (libcalico-go's `ipam` package) over any `Datastore`, reading and writing
/// the keys and values upstream uses (REFERENCE.md §3–4):
///
/// - blocks `/calico/ipam/v2/assignment/ipv4/block/<net>-<len>`,
/// - host affinities `/calico/ipam/v2/host/<node>/ipv4/block/<net>-<len>`,
/// - handles `/calico/ipam/v2/handle/<id>`,
/// - the config `/calico/ipam/v2/config`.
///
/// Every write is a compare-and-swap on the revisions just read; a lost race re-reads and
/// retries (bounded in count and in time, with jitter). An allocation updates the block and
/// its handle in one transaction, which is what upstream's "handle before block, undo on
/// failure" order approximates without multi-key transactions: the handle never misses an
/// address the block holds. A write that timed out or found the store unavailable is settled
/// by re-reading: when it did not happen, the datastore's error is returned (the caller
/// answers "try again later") instead of being retried as if another writer had won.
public struct IPAMClient: Sendable {
    public let store: any Datastore
    public var options: Options

    /// Tunables.
    public struct Options: Sendable, Hashable {
        /// How many lost compare-and-swap races one operation survives.
        public var maxAttempts: Int
        /// Seconds after which one operation stops retrying lost races (`tooManyRetries`),
        /// however many attempts are left: Mesos waits for a plugin without a limit, so no
        /// sequence of conflicts may keep it busy longer. A few times the datastore's
        /// per-call timeout.
        public var timeLimit: Double
        /// Upper bound of the random pause after a lost race, in microseconds (it grows with
        /// the attempt number up to this).
        public var maxBackoffMicroseconds: UInt32
        /// The pool created when the datastore has none at all (calico-node's default).
        public var defaultPool: IPPool
        /// Written to `ClusterInformation.spec.calicoVersion` on first use.
        public var calicoVersion: String
        /// Written to `ClusterInformation.spec.clusterType` on first use.
        public var clusterType: String

        public init(maxAttempts: Int = 100, timeLimit: Double = 3 * DatastoreSettings.defaultTimeout,
                    maxBackoffMicroseconds: UInt32 = 20_000, defaultPool: IPPool = IPAMClient.defaultIPv4Pool, calicoVersion: String = IPAMClient.calicoVersion,
                    clusterType: String = "mesos") {
            self.maxAttempts = maxAttempts
            self.timeLimit = timeLimit
            self.maxBackoffMicroseconds = maxBackoffMicroseconds
            self.defaultPool = defaultPool
            self.calicoVersion = calicoVersion
            self.clusterType = clusterType
        }
    }

    /// `default-ipv4-ippool` 192.168.0.0/16, /26 blocks, NAT outgoing, no encapsulation
    /// (this project's dataplane routes on one L2 segment or uses VXLAN when configured;
    /// calico-node's IPIP default needs a kernel module this environment lacks).
    public static let defaultIPv4Pool = IPPool(
        name: "default-ipv4-ippool", cidr: "192.168.0.0/16", blockSize: 26, ipipMode: .never, vxlanMode: .never,
        natOutgoing: true, nodeSelector: "all()")

    /// The Calico release whose data model this implementation follows.
    public static let calicoVersion = "v3.15.0"

    public init(store: any Datastore, options: Options = Options()) {
        self.store = store
        self.options = options
    }

    var resources: ResourceClient { ResourceClient(store: store) }

    // MARK: Stored values with their revisions

    /// A value and the mod revision it was read at (0: absent).
    struct Versioned<Value> {
        var value: Value
        var modRevision: Int64
    }

    func call<T>(_ body: () throws(DatastoreError) -> T) throws(IPAMError) -> T {
        do { return try body() } catch { throw .datastore(error) }
    }

    func readBlock(_ cidr: IPNetwork) throws(IPAMError) -> Versioned<AllocationBlock>? {
        let key = CalicoKeys.block(cidr: cidr.description)
        guard let kv = try call({ () throws(DatastoreError) in try store.get(key) }) else { return nil }
        return Versioned(value: try decodeBlock(kv), modRevision: kv.modRevision)
    }

    func decodeBlock(_ kv: KeyValue) throws(IPAMError) -> AllocationBlock {
        do { return try AllocationBlock(jsonText: kv.value) } catch { throw .corruptValue(key: kv.key, reason: error.description) }
    }

    func readHandle(_ id: String) throws(IPAMError) -> Versioned<IPAMHandle>? {
        let key = CalicoKeys.handle(id)
        guard let kv = try call({ () throws(DatastoreError) in try store.get(key) }) else { return nil }
        do {
            return Versioned(value: try IPAMHandle(handleID: id, jsonText: kv.value), modRevision: kv.modRevision)
        } catch {
            throw .corruptValue(key: key, reason: error.description)
        }
    }

    /// Every block of a family, sorted by key.
    func listBlocks(ipv6: Bool) throws(IPAMError) -> [Versioned<AllocationBlock>] {
        let prefix = CalicoKeys.blockPrefix(ipv6: ipv6)
        let page = try call({ () throws(DatastoreError) in try store.list(prefix: prefix) })
        var out: [Versioned<AllocationBlock>] = []
        out.reserveCapacity(page.kvs.count)
        for kv in page.kvs { out.append(Versioned(value: try decodeBlock(kv), modRevision: kv.modRevision)) }
        return out
    }

    /// The IPAM config; the defaults when none is stored.
    public func config() throws(IPAMError) -> IPAMConfig {
        guard let kv = try call({ () throws(DatastoreError) in try store.get(CalicoKeys.ipamConfig) }) else { return IPAMConfig() }
        do { return try IPAMConfig(jsonText: kv.value) } catch {
            throw .corruptValue(key: CalicoKeys.ipamConfig, reason: error.description)
        }
    }

    /// Stores the IPAM config (calicoctl `ipam configure`).
    public func setConfig(_ config: IPAMConfig) throws(IPAMError) {
        let text = config.json.compactText
        _ = try call({ () throws(DatastoreError) in try store.put(CalicoKeys.ipamConfig, text) })
    }

    /// Runs a cleanup write whose loss is harmless (a later call repeats it): a transient
    /// failure is ignored, a permanent one reported.
    func bestEffort(_ body: () throws(DatastoreError) -> Void) throws(IPAMError) {
        do { try body() } catch where error.isTransient { return } catch { throw .datastore(error) }
    }

    /// A random pause after a lost race, so that a burst of processes spreads out; never
    /// past `deadline`.
    func backoff(attempt: Int, deadline: Deadline) {
        let cap = min(options.maxBackoffMicroseconds, UInt32(500) << UInt32(min(attempt, 6)),
                      UInt32(min(deadline.remaining * 1e6, Double(UInt32.max))))
        guard cap > 0 else { return }
        usleep(UInt32.random(in: 0...cap))
    }

    /// The end of an operation started now (`options.timeLimit`).
    func operationDeadline() -> Deadline { Deadline(secondsFromNow: options.timeLimit) }

    /// Counts lost races against `options.maxAttempts` and the operation's deadline.
    struct Attempts {
        var used = 0
        let limit: Int
        let deadline: Deadline
        let what: String

        init(limit: Int, deadline: Deadline, what: String) {
            self.limit = limit
            self.deadline = deadline
            self.what = what
        }

        init(_ client: IPAMClient, what: String) {
            self.init(limit: client.options.maxAttempts, deadline: client.operationDeadline(), what: what)
        }

        mutating func next(_ client: IPAMClient) throws(IPAMError) {
            used += 1
            if used >= limit || deadline.hasPassed { throw .tooManyRetries(what) }
            client.backoff(attempt: used, deadline: deadline)
        }
    }
}
