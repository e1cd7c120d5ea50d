import CNI
import CalicoAPI
import Datastore
import Datastores
import IPAddress
import IPAM

/// `calico-ipam`: Calico IPAM as a CNI IPAM plugin.
///
/// - ADD assigns one address per enabled family to the handle `<network>.<CNI_CONTAINERID>`
///   and returns `ips` (no interfaces, `/32` and `/128`) in the config's version. When the
///   handle already holds addresses (a duplicate ADD) it refuses with code 100
///   (`IPAMPlugin.alreadyAllocatedCode`) and changes nothing: the caller must not roll back,
///   because the address belongs to a live attachment.
/// - DEL releases the handle; nothing to release is success, repeatedly.
/// - CHECK confirms that the handle still holds every address of `prevResult`.
/// - GC releases this network's handles not named in `cni.dev/valid-attachments`.
/// - STATUS succeeds when the datastore answers and a pool has room (else code 50).
///
/// The `calico` plugin calls the same logic in process through `IPAMPlugin.session(for:)`
/// instead of executing this binary (one process and one datastore connection fewer per
/// ADD); the behaviour, result and error codes are identical.
public struct IPAMPlugin: CNIPlugin {
    public init() {}

    /// `CNI_ARGS` that runtimes send and calico-ipam tolerates (Kubernetes' keys).
    public var knownArgs: Set<String> { CNIArgs.kubernetesKeys }

    public func add(_ request: CNIRequest) throws(CNIError) -> CNIResult {
        let session = try Self.session(for: request)
        defer { session.close(request) }
        do { return try session.add(request) } catch { throw error.error }
    }

    public func del(_ request: CNIRequest) throws(CNIError) {
        let session = try Self.session(for: request)
        defer { session.close(request) }
        try session.del(request)
    }

    public func check(_ request: CNIRequest) throws(CNIError) {
        let session = try Self.session(for: request)
        defer { session.close(request) }
        try session.check(request)
    }

    public func gc(_ request: CNIRequest, validAttachments: [CNIAttachment]) throws(CNIError) {
        let session = try Self.session(for: request)
        defer { session.close(request) }
        try session.gc(request, validAttachments: validAttachments)
    }

    public func status(_ request: CNIRequest) throws(CNIError) {
        let session: IPAMPluginSession
        do { session = try Self.session(for: request) } catch {
            throw .pluginNotAvailable("the Calico datastore is not usable", details: error.msg)
        }
        defer { session.close(request) }
        try session.status(request)
    }

    // MARK: Error codes (shared with the calico plugin)

    /// The handle already holds an allocation: a duplicate ADD. Never answer it with a
    /// rollback DEL (see `IPAMAddError.refusedAsDuplicate`).
    public static let alreadyAllocatedCode = CNIError.Code.alreadyAllocated
    /// No free address in any usable pool.
    public static let exhaustedCode = 101
    /// No enabled pool selects this node, or a pool named in the config is unusable.
    public static let noPoolCode = 102
    /// The datastore refused a request or holds a value we cannot read.
    public static let datastoreCode = 103
    /// CHECK: the handle does not hold an address of `prevResult`.
    public static let reservationMissingCode = 104

    // MARK: Sessions

    /// Opens the datastore the request's config names and binds IPAM to this node.
    public static func session(for request: CNIRequest) throws(CNIError) -> IPAMPluginSession {
        let settings = try IPAMPluginSettings(conf: request.conf)
        let store: any Datastore
        do { store = try openDatastore(settings.datastore) } catch { throw Self.cniError(error) }
        return IPAMPluginSession(store: store, settings: settings, network: request.conf.name)
    }

    /// The IPAM handle of an attachment: `<network name>.<CNI_CONTAINERID>`.
    public static func handleID(network: String, containerID: String) -> String { network + "." + containerID }

    /// The CNI error for an IPAM failure: transient datastore trouble is code 11 (try again
    /// later); the rest are calico-ipam's own codes.
    public static func cniError(_ error: IPAMError) -> CNIError {
        switch error {
        case .datastore(let e): return cniError(e)
        case .tooManyRetries: return .tryAgainLater(error.description)
        case .exhausted: return CNIError(code: exhaustedCode, msg: error.description)
        case .noPools, .poolNotUsable, .addressNotInPool: return CNIError(code: noPoolCode, msg: error.description)
        case .addressInUse: return CNIError(code: alreadyAllocatedCode, msg: error.description)
        case .corruptValue: return CNIError(code: datastoreCode, msg: error.description)
        }
    }

    /// The CNI error for a datastore failure.
    public static func cniError(_ error: DatastoreError) -> CNIError {
        if error.isTransient { return .tryAgainLater(error.description) }
        return CNIError(code: datastoreCode, msg: error.description)
    }
}

/// calico-ipam bound to an open datastore and this node: what one invocation (or the
/// calico plugin in process) runs.
public struct IPAMPluginSession: Sendable {
    public let ipam: IPAMClient
    public let settings: IPAMPluginSettings
    /// The network name (`name` in the config): the handle prefix.
    public let network: String

    /// Binds to `store`, which the caller keeps open (the calico plugin shares its own).
    /// Without `options`, IPAM's retries stop after three datastore timeouts, so a whole
    /// ADD stays bounded by what the config allows one call.
    public init(store: any Datastore, settings: IPAMPluginSettings, network: String, options: IPAMClient.Options? = nil) {
        ipam = IPAMClient(store: store, options: options ?? IPAMClient.Options(timeLimit: 3 * settings.datastore.timeout))
        self.settings = settings
        self.network = network
    }

    /// Closes the session's store, as the process ends or not (the calico plugin closes
    /// the store it shares itself).
    func close(_ request: CNIRequest) { ipam.store.close(endingProcess: request.endsProcess) }

    /// The attachment's handle.
    public func handleID(_ request: CNIRequest) -> String {
        IPAMPlugin.handleID(network: network, containerID: request.containerID)
    }

    /// What an ADD reads first, whatever the store holds: the handle (a duplicate ADD?),
    /// the pools and this host's block affinities of each family assigned. Fetched ahead
    /// in one batch (`PrefetchingDatastore`), they cost one etcd round trip, not one each.
    public static func addReads(settings: IPAMPluginSettings, handleID: String) -> [BatchRead] {
        var reads: [BatchRead] = [.get(CalicoKeys.handle(handleID)), .list(prefix: ResourceKind.ipPool.keyPrefix())]
        if settings.assignIPv4 { reads.append(.list(prefix: CalicoKeys.affinityPrefix(node: settings.node, ipv6: false))) }
        if settings.assignIPv6 { reads.append(.list(prefix: CalicoKeys.affinityPrefix(node: settings.node, ipv6: true))) }
        return reads
    }

    /// IPAM ADD. A duplicate (the handle already held addresses) is refused with code 100
    /// and `refusedAsDuplicate`; any address this call took is given back first.
    public func add(_ request: CNIRequest) throws(IPAMAddError) -> CNIResult {
        try add(request, alsoWriting: nil).result
    }

    /// IPAM ADD that also makes `alsoWriting`'s writes in the transaction taking the
    /// address when it can (`IPAMClient.autoAssign(_:alsoWriting:)`); `wroteAlso` says
    /// whether it did.
    /// `preferredBlocks`: affine blocks to try first (`AssignRequest.preferredBlocks`).
    public func add(
        _ request: CNIRequest, alsoWriting: (@Sendable ([IPAddress]) -> [Operation])?, preferredBlocks: [IPNetwork] = []
    ) throws(IPAMAddError) -> (result: CNIResult, wroteAlso: Bool) {
        let handle = handleID(request)
        var assignment = AssignRequest(
            handleID: handle, node: settings.node, ipv4Count: settings.assignIPv4 ? 1 : 0,
            ipv6Count: settings.assignIPv6 ? 1 : 0, ipv4Pools: settings.ipv4Pools, ipv6Pools: settings.ipv6Pools)
        assignment.preferredBlocks = preferredBlocks
        let assigned: AssignResult
        do { assigned = try ipam.autoAssign(assignment, alsoWriting: alsoWriting) } catch {
            throw IPAMAddError(error: IPAMPlugin.cniError(error))
        }
        let existing = assigned.all.filter { !$0.isNew }
        if !existing.isEmpty {
            let fresh = assigned.all.filter(\.isNew).map(\.address)
            if !fresh.isEmpty { _ = try? ipam.release(addresses: fresh, handleID: handle) }
            let held = existing.map(\.address.description).joined(separator: ", ")
            request.log.warning("handle \(handle) already holds \(held): refusing a duplicate ADD")
            throw IPAMAddError(error: .alreadyAllocated(
                "address already allocated: handle \(handle) holds \(held)",
                details: "a second ADD for container \(request.containerID) on network \(network); DEL it first"))
        }
        request.log.info("assigned \(assigned.all.map(\.address.description).joined(separator: ", ")) to \(handle) on node \(settings.node)")
        return (Self.result(assigned), assigned.wroteAlso)
    }

    /// The IPAM result: one `ips` entry per address, host-length prefix, no interface.
    static func result(_ assigned: AssignResult) -> CNIResult {
        CNIResult(ips: assigned.all.map { CNIResult.IPConfig(address: IPNetwork(host: $0.address)) })
    }

    /// IPAM DEL: releases the handle. Nothing to release is success.
    public func del(_ request: CNIRequest) throws(CNIError) {
        _ = try del(request, alsoWriting: [])
    }

    /// IPAM DEL that also makes `alsoWriting`'s writes in the transaction releasing the
    /// address (`IPAMClient.release(handleID:alsoWriting:)`); returns whether it did.
    public func del(_ request: CNIRequest, alsoWriting: [Operation]) throws(CNIError) -> Bool {
        let handle = handleID(request)
        do {
            let (released, wroteAlso) = try ipam.release(handleID: handle, alsoWriting: alsoWriting)
            if released.isEmpty {
                request.log.info("nothing to release for \(handle)")
            } else {
                request.log.info("released \(released.map(\.description).joined(separator: ", ")) of \(handle)")
            }
            return wroteAlso
        } catch {
            throw IPAMPlugin.cniError(error)
        }
    }

    /// What a DEL reads first, in one batch: the handle and, from the host's hint, the
    /// blocks its recent ADDs used (where the handle's address most likely is).
    public static func delReads(handleID: String, hintedBlockKeys: [String]) -> [BatchRead] {
        [.get(CalicoKeys.handle(handleID))] + hintedBlockKeys.map { .get($0) }
    }

    /// IPAM CHECK: every address of `prevResult` is still held by this attachment's handle.
    public func check(_ request: CNIRequest) throws(CNIError) {
        guard let prev = request.conf.prevResult else {
            throw .invalidNetworkConfig("CHECK needs prevResult: the result of the ADD to verify")
        }
        let handle = handleID(request)
        let held: Set<IPAddress>
        do { held = Set(try ipam.addresses(handleID: handle)) } catch { throw IPAMPlugin.cniError(error) }
        for ip in prev.ips where !held.contains(ip.address.address) {
            throw CNIError(code: IPAMPlugin.reservationMissingCode,
                           msg: "address \(ip.address.address) is not allocated to \(handle)",
                           details: held.isEmpty ? "the handle holds nothing" : "it holds \(held.map(\.description).sorted().joined(separator: ", "))")
        }
        if prev.ips.isEmpty && held.isEmpty {
            throw CNIError(code: IPAMPlugin.reservationMissingCode, msg: "no address is allocated to \(handle)")
        }
    }

    /// IPAM GC: releases every handle of this network (`<network>.` prefix) whose
    /// attachment is not in `validAttachments`.
    public func gc(_ request: CNIRequest, validAttachments: [CNIAttachment]) throws(CNIError) {
        let keep = Set(validAttachments.map { IPAMPlugin.handleID(network: network, containerID: $0.containerID) })
        do {
            let released = try ipam.releaseUnused(handlePrefix: network + ".", keeping: keep)
            if !released.isEmpty { request.log.info("GC released \(released.joined(separator: ", "))") }
        } catch {
            throw IPAMPlugin.cniError(error)
        }
    }

    /// IPAM STATUS: the datastore answers and a usable pool has room for this node.
    public func status(_ request: CNIRequest) throws(CNIError) {
        do {
            if settings.assignIPv4, try !ipam.hasCapacity(node: settings.node, ipv6: false, requestedPools: settings.ipv4Pools) {
                throw CNIError.pluginNotAvailable("no IPv4 address available for node \(settings.node)")
            }
            if settings.assignIPv6, try !ipam.hasCapacity(node: settings.node, ipv6: true, requestedPools: settings.ipv6Pools) {
                throw CNIError.pluginNotAvailable("no IPv6 address available for node \(settings.node)")
            }
        } catch let e as CNIError {
            throw e
        } catch let e as IPAMError {
            if case .poolNotUsable = e { throw .pluginNotAvailable(e.description) }
            throw .pluginNotAvailable("the Calico datastore is not usable", details: e.description)
        } catch {
            throw .pluginNotAvailable("\(error)")
        }
    }
}
