#if canImport(Glibc)
import Glibc
#endif
import CalicoAPI
import Datastore
import JSON
import POSIX
import Policy

/// The per-host agent: keeps this host's `table inet calico` in step with the policy for
/// its local WorkloadEndpoints.
///
/// It lists the datastore once (a consistent snapshot), then watches it; every batch of
/// changes updates a ``PolicyIndex``, which yields the new ``Dataplane``, which renders
/// to the new ruleset; only the difference to what the kernel holds is sent, as one
/// `nft -f -` transaction. A periodic check of the nftables generation notices anyone else
/// changing the ruleset and repairs felix's table if it was touched.
///
/// Driven from one thread (``run(shouldStop:)`` or the step methods the benchmark uses).
public final class Felix {
    public struct Options: Sendable {
        /// This host's node name.
        public var nodeName: String
        /// Overrides FelixConfiguration's `defaultEndpointToHostAction` (env
        /// `FELIX_DEFAULTENDPOINTTOHOSTACTION`).
        public var endpointToHostAction: EndpointToHostAction?
        /// Seconds between drift checks (a netlink round trip unless something changed).
        public var driftCheckInterval: Double = 2
        /// Seconds between status records when nothing changes.
        public var statusInterval: Double = 10
        /// Whether to write `/calico/felix/v1/host/<node>/status`.
        public var writesStatus = true

        public init(nodeName: String, endpointToHostAction: EndpointToHostAction? = nil) {
            self.nodeName = nodeName
            self.endpointToHostAction = endpointToHostAction
        }
    }

    /// What one sync did, with timings in seconds.
    public struct SyncReport: Sendable, CustomStringConvertible {
        public var full: Bool
        public var localEndpoints = 0
        public var policies = 0
        public var rules = 0
        /// Bytes of nft script sent (0: the kernel was already right).
        public var scriptBytes = 0
        public var listSeconds = 0.0
        public var computeSeconds = 0.0
        public var nftSeconds = 0.0
        /// Parts of `computeSeconds`: the index's dataplane, rendering it, diffing it.
        public var dataplaneSeconds = 0.0, renderSeconds = 0.0, diffSeconds = 0.0
        public var revision: Int64 = 0

        public var totalSeconds: Double { listSeconds + computeSeconds + nftSeconds }
        public var description: String {
            "\(full ? "full" : "incremental") sync at revision \(revision): \(localEndpoints) local endpoints, "
                + "\(policies) policies, \(rules) rules; \(scriptBytes) bytes to nft; "
                + "list \(ms(listSeconds)), compute \(ms(computeSeconds)), nft \(ms(nftSeconds))"
        }
    }

    public let options: Options
    public let store: any Datastore
    public let nft: any NFTablesBackend
    public let log: FelixLog

    private var index: PolicyIndex
    private let renderCache = NFTRenderCache()
    private var felixConfigurations: [String: FelixConfiguration] = [:]
    /// What the kernel holds, as far as felix knows; nil forces a full replacement.
    private var applied: NFTRuleset?
    /// The generation right after felix's own last commit, when it was the only one.
    private var appliedGeneration: UInt32?
    private var watch: (any Watch)?
    /// The datastore revision the index reflects.
    public private(set) var revision: Int64 = 0
    private var lastStatus = 0.0
    /// When the last full listing of the table ended, and what it cost: listing a table of
    /// thousands of rules takes a second, so it is never repeated more often than ten
    /// times its own cost (another program committing to nftables all the time must not
    /// keep felix busy).
    private var lastListing = (at: -Double.infinity, seconds: 0.0)

    public init(options: Options, store: any Datastore, nft: any NFTablesBackend, log: FelixLog = FelixLog()) {
        self.options = options
        self.store = store
        self.nft = nft
        self.log = log
        index = PolicyIndex(nodeName: options.nodeName)
    }

    /// The status record's key: `/calico/felix/v1/host/<node>/status`.
    public static func statusKey(node: String) -> String { "/calico/felix/v1/host/\(node)/status" }

    // MARK: - Steps

    /// Makes sure the table exists, so `cali*` traffic is dropped (never open) until the
    /// first sync programs it. A table left by a previous run is kept as it is: it
    /// enforces the last known policy until the first sync replaces it atomically.
    public func installBaseTable() throws(FelixError) {
        if try nft.listTable() == nil {
            let base = NFTRenderer.base(endpointToHostAction: options.endpointToHostAction ?? .drop)
            try nft.apply(base.replacementScript())
            log.info("installed base table inet calico (unknown cali* interfaces dropped)")
        }
    }

    /// Lists everything, rebuilds the index from it, programs the kernel (replacing the
    /// table atomically the first time) and starts watching after the listed revision.
    @discardableResult
    public func synchronize() throws(FelixError) -> SyncReport {
        watch?.cancel()
        watch = nil
        var report = SyncReport(full: true)
        var t = MonotonicClock.now()
        let list: ListResult
        do { list = try store.list(prefix: CalicoKeys.root) } catch { throw .datastore(error) }
        report.listSeconds = MonotonicClock.now() - t
        t = MonotonicClock.now()
        index = PolicyIndex(nodeName: options.nodeName)
        felixConfigurations = [:]
        // Profiles first so endpoints inherit their labels without re-evaluation.
        let sorted = list.kvs.sorted { priority($0.key) < priority($1.key) }
        for kv in sorted { apply(key: kv.key, value: kv.value) }
        revision = list.revision
        report.computeSeconds = MonotonicClock.now() - t
        try program(&report)
        report.revision = revision
        do { watch = try store.watch(prefix: CalicoKeys.root, after: revision) } catch { throw .datastore(error) }
        writeStatus()
        return report
    }

    /// Waits up to `timeout` seconds for datastore changes and programs them. Returns
    /// nil when nothing changed. Throws `.datastore(.compacted)` when the watch fell too
    /// far behind (call ``synchronize()``), other datastore errors when the store went away.
    public func processChanges(timeout: Double) throws(FelixError) -> SyncReport? {
        if watch == nil { return try synchronize() }
        var events: [WatchEvent]
        do {
            events = try watch!.next(timeout: timeout)
            if events.isEmpty { return nil }
            // A burst (a deploy, calicoctl apply of many resources): take what is already
            // there so one transaction covers it.
            while true {
                let more = try watch!.next(timeout: 0)
                if more.isEmpty { break }
                events += more
            }
        } catch {
            watch = nil
            throw .datastore(error)
        }
        var report = SyncReport(full: false)
        let t = MonotonicClock.now()
        for e in events {
            apply(key: e.kv.key, value: e.kind == .put ? e.kv.value : nil)
            revision = max(revision, e.kv.modRevision)
        }
        report.computeSeconds = MonotonicClock.now() - t
        try program(&report)
        report.revision = revision
        writeStatus()
        return report
    }

    /// Checks that nobody changed felix's table since it last wrote it, and repairs it if
    /// they did. Returns whether a repair was needed.
    @discardableResult
    public func checkDrift() throws(FelixError) -> Bool {
        guard let applied else { return false }
        let generation = nft.generation()
        if let generation, generation == appliedGeneration { return false }
        // Someone committed something (maybe not to our table): look closer.
        let started = MonotonicClock.now()
        defer { lastListing = (MonotonicClock.now(), MonotonicClock.now() - started) }
        let listing = try nft.listTable()
        let expected = TableShape(applied)
        var why: String?
        if let listing {
            do {
                let found = try TableShape(listing: listing)
                why = found.difference(from: expected)
            } catch {
                why = "unreadable listing: \(error)"
            }
        } else {
            why = "table inet calico is gone"
        }
        guard let why else {
            appliedGeneration = generation
            return false
        }
        log.warning("drift in table inet calico (\(why)); reprogramming it")
        self.applied = nil
        var report = SyncReport(full: true)
        try program(&report)
        return true
    }

    /// Writes the status record now (also done after every sync).
    public func writeStatus() {
        guard options.writesStatus else { return }
        let dp = (endpoints: index.localEndpointCount, policies: index.policyCount)
        let value: JSON = ["pid": .int(Int(getpid())), "lastSync": .string(rfc3339Now()),
                           "endpoints": .int(dp.endpoints), "policies": .int(dp.policies)]
        do {
            try store.put(Self.statusKey(node: options.nodeName), value.compactText)
            lastStatus = MonotonicClock.now()
        } catch {
            log.warning("could not write status: \(error)")
        }
    }

    // MARK: - The loop

    /// Runs until `shouldStop` returns true (checked at least twice a second): full sync,
    /// then watch; on datastore trouble keeps the kernel as it is and retries with backoff;
    /// checks for drift every ``Options/driftCheckInterval``.
    public func run(shouldStop: () -> Bool) throws(FelixError) {
        try installBaseTable()
        var backoff = 0.5
        var nextDriftCheck = MonotonicClock.now() + options.driftCheckInterval
        var synced = false
        while !shouldStop() {
            if !synced {
                do {
                    let r = try synchronize()
                    log.info(r.description)
                    synced = true
                    backoff = 0.5
                } catch {
                    log.error("sync failed: \(error); retrying in \(backoff)s")
                    sleep(seconds: backoff, unless: shouldStop)
                    backoff = min(backoff * 2, 8)
                    continue
                }
            }
            let now = MonotonicClock.now()
            do {
                if let r = try processChanges(timeout: max(0, min(0.5, nextDriftCheck - now))) {
                    log.info(r.description)
                }
            } catch {
                if case .datastore(.compacted) = error {
                    log.warning("watch history compacted; re-listing")
                } else {
                    log.error("\(error); will re-sync")
                }
                synced = false
                continue
            }
            if MonotonicClock.now() >= nextDriftCheck {
                let now = MonotonicClock.now()
                let generationUnchanged = appliedGeneration != nil && nft.generation() == appliedGeneration
                if !generationUnchanged && now - lastListing.at < 10 * lastListing.seconds {
                    // A listing would be due but the last one was too recent for its cost.
                } else {
                    do { try checkDrift() } catch { log.error("drift check: \(error)") }
                }
                nextDriftCheck = MonotonicClock.now() + options.driftCheckInterval
            }
            if MonotonicClock.now() - lastStatus >= options.statusInterval { writeStatus() }
        }
        watch?.cancel()
        log.info("stopping; table inet calico stays in force")
    }

    // MARK: - Internals

    private func priority(_ key: String) -> Int {
        if key.contains("/felixconfigurations/") { return 0 }
        if key.contains("/profiles/") { return 1 }
        if key.contains("/workloadendpoints/") { return 2 }
        return 3
    }

    private func apply(key: String, value: String?) {
        let update: ResourceUpdate?
        do {
            update = try ResourceUpdate.decode(key: key, value: value)
        } catch {
            // What cannot be read is treated as gone: a missing endpoint's interface is
            // dropped, a missing profile denies; a missing policy stops applying.
            log.error("\(key): \(error); treating it as deleted")
            update = ResourceUpdate.removal(of: key)
        }
        guard let update else { return }
        switch update {
        case .endpoint(let id, let e):
            if let e { index.upsert(e) } else { index.removeEndpoint(id: id) }
        case .policy(let scope, let name, let p):
            if let p { index.upsert(p) } else { index.removePolicy(scope: scope, name: name) }
        case .profile(let name, let p):
            if let p { index.upsert(p) } else { index.removeProfile(name: name) }
        case .felixConfiguration(let name, let c):
            felixConfigurations[name] = c
        }
        for w in index.takeWarnings() { log.warning(w) }
    }

    /// felix's precedence: the explicit option, then `node.<name>`, then `default`.
    private var endpointToHostAction: EndpointToHostAction {
        if let a = options.endpointToHostAction { return a }
        for name in ["node." + options.nodeName, "default"] {
            if let text = felixConfigurations[name]?.defaultEndpointToHostAction,
               let a = EndpointToHostAction(rawValue: text.uppercased()) { return a }
        }
        return .drop
    }

    /// Renders the index and sends the kernel what changed.
    private func program(_ report: inout SyncReport) throws(FelixError) {
        var t = MonotonicClock.now()
        index.endpointToHostAction = endpointToHostAction
        let dp = index.dataplane()
        report.dataplaneSeconds = MonotonicClock.now() - t
        let desired = renderCache.render(dp)
        report.renderSeconds = MonotonicClock.now() - t - report.dataplaneSeconds
        report.localEndpoints = dp.endpoints.count
        report.policies = dp.policies.count
        report.rules = desired.ruleCount
        var script: String
        if let applied, let changes = desired.changes(from: applied) {
            script = changes
        } else {
            script = desired.replacementScript()
            report.full = true
        }
        report.diffSeconds = MonotonicClock.now() - t - report.dataplaneSeconds - report.renderSeconds
        report.computeSeconds += MonotonicClock.now() - t
        if script.isEmpty { return }
        t = MonotonicClock.now()
        let before = nft.generation()
        do {
            try nft.apply(script)
        } catch {
            guard applied != nil else {
                applied = nil
                throw error
            }
            // The kernel is not what we thought (someone edited it): replace it all.
            log.warning("incremental update refused (\(error)); replacing the table")
            script = desired.replacementScript()
            report.full = true
            do { try nft.apply(script) } catch {
                applied = nil
                throw error
            }
        }
        let after = nft.generation()
        report.nftSeconds = MonotonicClock.now() - t
        report.scriptBytes = script.utf8.count
        applied = desired
        appliedGeneration = (before != nil && after == before! &+ 1) ? after : nil
    }

    private func sleep(seconds: Double, unless stop: () -> Bool) {
        let end = MonotonicClock.now() + seconds
        while MonotonicClock.now() < end && !stop() { usleep(50_000) }
    }
}

func ms(_ s: Double) -> String {
    let v = (s * 10000).rounded() / 10
    return "\(v) ms"
}
