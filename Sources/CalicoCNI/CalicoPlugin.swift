import CNI
import CalicoAPI
import Datastore
import Datastores
import IPAddress
import JSON
import Netlink
import POSIX

/// `calico`: attaches a container to a Calico network.
///
/// ADD takes an address (calico-ipam in process, or any IPAM plugin by exec), builds the
/// veth and routes (`WorkloadDataplane`), makes sure the network's profile exists and
/// records the WorkloadEndpoint with the task's labels. Any failure undoes what came
/// before it, except an IPAM refusal of a duplicate ADD, whose address is live.
///
/// DEL removes the kernel state first (it needs no datastore), then releases the address
/// and deletes the endpoint; whatever is already gone counts as done, and with the
/// datastore unreachable it still cleans the host and answers code 11 so the runtime
/// retries. CHECK compares kernel, endpoint and reservation with `prevResult`.
public struct CalicoPlugin: CNIPlugin {
    public init() {}

    /// Kubernetes' keys are tolerated (Podman sends `K8S_POD_NAME`) and ignored: this
    /// plugin never talks to Kubernetes.
    public var knownArgs: Set<String> { CNIArgs.kubernetesKeys }

    // MARK: Error codes (100+ are the plugin's own)

    /// The kernel refused part of the veth, address or route set-up or tear-down.
    public static let dataplaneCode = 110
    /// The WorkloadEndpoint or profile could not be written or removed.
    public static let endpointCode = 111
    /// CHECK found the attachment differs from `prevResult` or from the datastore.
    public static let driftCode = 112

    // MARK: ADD

    public func add(_ request: CNIRequest) throws(CNIError) -> CNIResult {
        let settings = try CalicoSettings(conf: request.conf)
        let ipamSettings = try IPAMPluginSettings(conf: request.conf)
        let log = request.log

        // The kernel's part needs no address until its very end, and the datastore's part
        // needs no kernel state: they run side by side, the veth on its own thread while
        // this one takes the address and writes the records. The container's MAC is picked
        // here so the WorkloadEndpoint can be written before the interface exists.
        let workload = WorkloadAttachment(
            containerID: request.containerID, interfaceName: request.ifName,
            containerNamespacePath: request.netns ?? "", addresses: [], mtu: settings.mtu,
            allowIPForwarding: settings.allowIPForwarding, containerMAC: .random())
        // Our IPAM says which families it assigns; another plugin's answer is a guess
        // (IPv4), which `complete` corrects.
        let families = settings.usesCalicoIPAM
            ? AddressFamilies(ipv4: ipamSettings.assignIPv4, ipv6: ipamSettings.assignIPv6)
            : AddressFamilies(ipv4: true, ipv6: false)
        let kernel = ConcurrentWork { () throws(DataplaneError) -> (WorkloadDataplane, PreparedVeth) in
            // A host veth of this name is left alone here: until IPAM answers it may be a
            // live attachment's (a duplicate ADD, which IPAM refuses).
            let dataplane = try WorkloadDataplane()
            return (dataplane, try dataplane.prepareVeth(workload, families: families, replacingLeftovers: false))
        }
        /// Undoes the kernel's part after the datastore's failed.
        func abandonVeth() {
            if let (dataplane, veth) = try? kernel.wait() { dataplane.discard(veth) }
        }

        // What the ADD reads first (IPAM's handle, pools and affinities; the profile), in
        // one batch: on etcd one round trip instead of four. The blocks the previous ADD on
        // this host used come in the same batch, and IPAM tries them first.
        var prefetch: [BatchRead] = [.get(ResourceKind.profile.key(name: request.conf.name))]
        let hints = settings.usesCalicoIPAM ? ReadAheadHints(node: ipamSettings.node, datastore: ipamSettings.datastore) : nil
        let hintedBlocks = hints?.blocks() ?? []
        let hintedKeys = ReadAheadHints.keys(of: hintedBlocks)
        if settings.usesCalicoIPAM {
            prefetch += IPAMPluginSession.addReads(
                settings: ipamSettings, handleID: IPAMPlugin.handleID(network: request.conf.name, containerID: request.containerID))
            prefetch += hintedKeys.map { .get($0) }
        }
        let context: Context
        do { context = try Context(request: request, settings: settings, ipamSettings: ipamSettings, prefetching: prefetch) } catch {
            abandonVeth()
            throw error
        }
        defer { context.close() }
        // 1. The network's profile, which the endpoint names (usually there already:
        // the batch read above said so).
        do { try context.ensureProfile() } catch {
            abandonVeth()
            throw error
        }

        // 2. An address, and with it the WorkloadEndpoint felix programs the policy from,
        // in the same transaction when IPAM can (one write, not two). The endpoint names
        // the host veth and the MAC picked above: it needs nothing from the kernel.
        // A duplicate ADD is refused by IPAM and changes nothing.
        let endpoint = context.endpointTemplate(hostVethName: workload.hostVethName, containerMAC: workload.containerMAC!)
        let assigned: CNIResult
        let endpointWritten: Bool
        do { (assigned, endpointWritten) = try context.ipamAdd(alsoWriting: endpoint.creation, preferredBlocks: hintedBlocks) } catch {
            abandonVeth()
            throw error.error
        }
        let addresses = assigned.ips.map(\.address.address)
        guard !addresses.isEmpty else {
            abandonVeth()
            context.ipamRollback(addresses)
            throw .invalidNetworkConfig("IPAM plugin \(settings.ipamType) returned no address")
        }

        if !endpointWritten {
            do { try context.writeEndpoint(endpoint.resource(addresses: addresses)) } catch {
                abandonVeth()
                context.ipamRollback(addresses)
                throw error
            }
        }

        // 3. The kernel side, finished with the addresses. (A failure undoes the endpoint
        // too, however it was written.)
        let attached: AttachedWorkload
        do throws(DataplaneError) {
            let dataplane: WorkloadDataplane
            let veth: PreparedVeth
            do {
                (dataplane, veth) = try kernel.wait()
            } catch .hostVethExists {
                // IPAM gave this ADD the address, so no live attachment owns that veth: it
                // is what an earlier ADD of this container left. Replace it.
                dataplane = try WorkloadDataplane()
                veth = try dataplane.prepareVeth(workload, families: families, replacingLeftovers: true)
            }
            attached = try dataplane.complete(veth, addresses: addresses)
        } catch {
            context.undoEndpoint()
            context.ipamRollback(addresses)
            throw CNIError(code: Self.dataplaneCode, msg: "could not attach \(request.ifName) of container \(request.containerID)",
                           details: error.description)
        }
        log.info("attached \(request.containerID)/\(request.ifName) as \(attached.hostVethName) with \(addresses.map(\.description).joined(separator: ", "))")
        if let hints, let prefetching = context.prefetching {
            hints.save(blockKeys: prefetching.keysUsed(under: CalicoKeys.blockPrefix(ipv6: false))
                + prefetching.keysUsed(under: CalicoKeys.blockPrefix(ipv6: true)), previous: hintedKeys)
        }

        var result = CNIResult(
            interfaces: [
                .init(name: attached.hostVethName, mac: attached.hostVethMAC.description),
                .init(name: attached.containerInterfaceName, mac: attached.containerMAC.description, sandbox: request.netns ?? ""),
            ],
            ips: addresses.map { .init(address: IPNetwork(host: $0), interface: 1) },
            dns: assigned.dns)
        if let dns = request.conf.raw["dns"], dns.objectValue != nil, let parsed = try? CNIResult.DNS(parsing: dns), !parsed.isEmpty {
            result.dns = parsed
        }
        return result
    }

    // MARK: DEL

    public func del(_ request: CNIRequest) throws(CNIError) {
        let settings = try CalicoSettings(conf: request.conf)
        let vethName = WorkloadDataplane.hostVethName(containerID: request.containerID, interfaceName: request.ifName)

        // 1. The kernel: needs no datastore, so a down datastore never leaves a veth behind.
        // (Doing the datastore work on a second thread during the kernel's 10-20 ms wait in
        // rcu_barrier was tried: no measurable gain over 200 paired rounds, so it stays simple.)
        do {
            try WorkloadDataplane().detach(hostVethName: vethName, containerNamespacePath: request.netns,
                                           interfaceName: request.ifName)
        } catch {
            throw CNIError(code: Self.dataplaneCode, msg: "could not remove \(vethName)", details: error.description)
        }

        // 2. The address and the record: with calico-ipam one batch of reads (the handle,
        // and the blocks the host's recent ADDs used) and one transaction releasing the
        // address and deleting the endpoint.
        let ipamSettings = try IPAMPluginSettings(conf: request.conf)
        var prefetch: [BatchRead] = []
        if settings.usesCalicoIPAM {
            let hints = ReadAheadHints(node: ipamSettings.node, datastore: ipamSettings.datastore)
            prefetch = IPAMPluginSession.delReads(
                handleID: IPAMPlugin.handleID(network: request.conf.name, containerID: request.containerID),
                hintedBlockKeys: ReadAheadHints.keys(of: hints.blocks()))
        }
        let context = try Context(request: request, settings: settings, ipamSettings: ipamSettings, prefetching: prefetch)
        defer { context.close() }
        if try !context.ipamDel(alsoWriting: [.delete(key: context.endpointKey)]) {
            try context.deleteEndpoint()
        }
    }

    // MARK: CHECK

    public func check(_ request: CNIRequest) throws(CNIError) {
        let settings = try CalicoSettings(conf: request.conf)
        guard let prev = request.conf.prevResult else {
            throw .invalidNetworkConfig("CHECK needs prevResult: the result of the ADD to verify")
        }
        let addresses = prev.ips.map(\.address.address)
        var drift: [String] = []
        if let sandbox = prev.interfaces.first(where: { $0.name == request.ifName && !$0.sandbox.isEmpty })?.sandbox,
           sandbox != request.netns {
            drift.append("prevResult names sandbox \(sandbox), CNI_NETNS is \(request.netns ?? "unset")")
        }
        let workload = WorkloadAttachment(
            containerID: request.containerID, interfaceName: request.ifName,
            containerNamespacePath: request.netns ?? "", addresses: addresses, mtu: settings.mtu,
            allowIPForwarding: settings.allowIPForwarding)
        do {
            drift += try WorkloadDataplane().check(workload)
        } catch {
            drift.append(error.description)
        }

        let context = try Context(request: request, settings: settings)
        defer { context.close() }
        drift += try context.endpointDrift(expected: addresses, hostVeth: workload.hostVethName)
        if !drift.isEmpty {
            throw CNIError(code: Self.driftCode, msg: "\(request.ifName) of container \(request.containerID) differs from its ADD: \(drift[0])",
                           details: drift.joined(separator: "; "))
        }
        try context.ipamCheck()
    }

    // MARK: GC and STATUS

    public func gc(_ request: CNIRequest, validAttachments: [CNIAttachment]) throws(CNIError) {
        let settings = try CalicoSettings(conf: request.conf)
        let context = try Context(request: request, settings: settings)
        defer { context.close() }
        try context.ipamGC(validAttachments: validAttachments)
        try context.collectEndpoints(keeping: validAttachments)
    }

    public func status(_ request: CNIRequest) throws(CNIError) {
        let settings = try CalicoSettings(conf: request.conf)
        let context: Context
        do { context = try Context(request: request, settings: settings) } catch {
            throw .pluginNotAvailable("the Calico datastore is not usable", details: error.msg)
        }
        defer { context.close() }
        try context.ipamStatus()
    }
}

// MARK: - One invocation's datastore work

extension CalicoPlugin {
    /// The datastore, IPAM and resource client one invocation uses.
    struct Context {
        let request: CNIRequest
        let settings: CalicoSettings
        let ipamSettings: IPAMPluginSettings
        let store: any Datastore
        /// The store, when it was opened with reads fetched ahead.
        let prefetching: PrefetchingDatastore?
        let resources: ResourceClient

        init(request: CNIRequest, settings: CalicoSettings) throws(CNIError) {
            try self.init(request: request, settings: settings, ipamSettings: IPAMPluginSettings(conf: request.conf))
        }

        /// Opens the datastore, first reading `prefetching` in one batch when given.
        init(request: CNIRequest, settings: CalicoSettings, ipamSettings: IPAMPluginSettings,
             prefetching reads: [BatchRead] = []) throws(CNIError) {
            self.request = request
            self.settings = settings
            self.ipamSettings = ipamSettings
            let opened: any Datastore
            do { opened = try openDatastore(ipamSettings.datastore) } catch { throw IPAMPlugin.cniError(error) }
            if reads.isEmpty {
                store = opened
                prefetching = nil
            } else {
                let ahead: PrefetchingDatastore
                do { ahead = try PrefetchingDatastore(opened, prefetching: reads) } catch {
                    opened.close()
                    throw IPAMPlugin.cniError(error)
                }
                store = ahead
                prefetching = ahead
            }
            resources = ResourceClient(store: store)
        }

        func close() { store.close(endingProcess: request.endsProcess) }

        var node: String { ipamSettings.node }

        var endpointName: String {
            WorkloadEndpointName(node: node, containerID: request.containerID, endpoint: request.ifName).description
        }

        // MARK: IPAM: in process for calico-ipam, by exec otherwise.

        private var session: IPAMPluginSession {
            IPAMPluginSession(store: store, settings: ipamSettings, network: request.conf.name)
        }

        /// IPAM ADD; with calico-ipam, `alsoWriting`'s writes go into the transaction that
        /// takes the address when they can (the second value says whether they did).
        func ipamAdd(alsoWriting: @escaping @Sendable ([IPAddress]) -> [Operation], preferredBlocks: [IPNetwork])
            throws(IPAMAddError) -> (CNIResult, Bool)
        {
            if settings.usesCalicoIPAM { return try session.add(request, alsoWriting: alsoWriting, preferredBlocks: preferredBlocks) }
            let delegate: IPAMDelegate
            do { delegate = try IPAMDelegate(request: request) } catch { throw IPAMAddError(error: error) }
            return (try delegate.add(), false)
        }

        /// Gives back the addresses this ADD took, after it failed. Errors are logged: the
        /// ADD's own error is what the runtime must see, and GC or the runtime's DEL cleans up.
        ///
        /// In process, only `addresses` are released, not the whole handle: should a second
        /// ADD for the same attachment have run concurrently, the handle may also hold the
        /// address of the one that succeeded, and that address is live. A delegated IPAM
        /// plugin only offers DEL.
        func ipamRollback(_ addresses: [IPAddress]) {
            do throws(CNIError) {
                if settings.usesCalicoIPAM {
                    let handle = session.handleID(request)
                    do { _ = try session.ipam.release(addresses: addresses, handleID: handle) } catch {
                        throw IPAMPlugin.cniError(error)
                    }
                    request.log.info("rollback: released \(addresses.map(\.description).joined(separator: ", ")) of \(handle)")
                } else {
                    _ = try ipamDel()
                }
            } catch {
                request.log.error("rollback: could not release the address of \(request.containerID): \(error.msg)")
            }
        }

        /// IPAM DEL; with calico-ipam, `alsoWriting`'s writes go into the transaction that
        /// releases the address when there is one (the result says whether they did).
        func ipamDel(alsoWriting: [Operation] = []) throws(CNIError) -> Bool {
            if settings.usesCalicoIPAM { return try session.del(request, alsoWriting: alsoWriting) }
            try IPAMDelegate(request: request).del()
            return false
        }

        func ipamCheck() throws(CNIError) {
            if settings.usesCalicoIPAM { return try session.check(request) }
            try IPAMDelegate(request: request).check()
        }

        func ipamGC(validAttachments: [CNIAttachment]) throws(CNIError) {
            if settings.usesCalicoIPAM { return try session.gc(request, validAttachments: validAttachments) }
            try IPAMDelegate(request: request).gc()
        }

        func ipamStatus() throws(CNIError) {
            if settings.usesCalicoIPAM { return try session.status(request) }
            try IPAMDelegate(request: request).status()
        }

        // MARK: Resources

        /// Creates the network's profile when missing (ingress from `has(<network>)`,
        /// egress all, `labelsToApply: {<network>: ""}`), as calico-node's seed did.
        func ensureProfile() throws(CNIError) {
            let name = request.conf.name
            do throws(CalicoAPIError) {
                // Existence is all that matters: a key read, no decoding.
                do {
                    if try store.get(ResourceKind.profile.key(name: name)) != nil { return }
                } catch {
                    throw CalicoAPIError.datastore(error)
                }
                _ = try resources.create(Profile.networkDefault(name: name))
            } catch .alreadyExists {
                return
            } catch {
                throw Self.cniError(error, doing: "create profile \(name)")
            }
        }

        /// This attachment's WorkloadEndpoint, but for its addresses.
        func endpointTemplate(hostVethName: String, containerMAC: MACAddress) -> EndpointTemplate {
            EndpointTemplate(
                name: endpointName, namespace: settings.namespace, node: node, containerID: request.containerID,
                endpoint: request.ifName, profile: request.conf.name, interfaceName: hostVethName, mac: containerMAC,
                labels: settings.labels)
        }

        func writeEndpoint(_ wep: WorkloadEndpoint) throws(CNIError) {
            do {
                // An endpoint is normally new: create it in one round trip, and only when a
                // record is left over (a crashed ADD, a lost answer) read it and replace it.
                do { _ = try resources.create(wep) } catch .alreadyExists { _ = try resources.apply(wep) }
            } catch {
                throw Self.cniError(error, doing: "write WorkloadEndpoint \(settings.namespace)/\(endpointName)")
            }
        }

        /// Removes the endpoint this ADD wrote, after the kernel's part failed. Errors are
        /// logged: the ADD's own error is what the runtime must see, and its DEL or GC
        /// removes the record otherwise.
        func undoEndpoint() {
            do throws(CNIError) { try deleteEndpoint() } catch {
                request.log.error("rollback: could not delete WorkloadEndpoint \(endpointName): \(error.msg)")
            }
        }

        /// The key of this attachment's WorkloadEndpoint, in the namespace it is recorded in.
        var endpointKey: String {
            ResourceKind.workloadEndpoint.key(name: endpointName, namespace: settings.namespace)
        }

        /// Deletes this attachment's endpoint (whatever its revision, as upstream's DEL does;
        /// absent is fine).
        func deleteEndpoint() throws(CNIError) {
            do {
                try store.delete(endpointKey)
            } catch {
                throw IPAMPlugin.cniError(error)
            }
        }

        func endpointDrift(expected: [IPAddress], hostVeth: String) throws(CNIError) -> [String] {
            let wep: WorkloadEndpoint?
            do { wep = try resources.get(WorkloadEndpoint.self, name: endpointName, namespace: settings.namespace) } catch {
                throw Self.cniError(error, doing: "read WorkloadEndpoint \(endpointName)")
            }
            guard let wep else { return ["WorkloadEndpoint \(settings.namespace)/\(endpointName) is missing"] }
            var drift: [String] = []
            let want = Set(expected.map { IPNetwork(host: $0).description })
            if Set(wep.ipNetworks) != want {
                drift.append("WorkloadEndpoint has ipNetworks \(wep.ipNetworks.sorted()), expected \(want.sorted())")
            }
            if wep.interfaceName != hostVeth {
                drift.append("WorkloadEndpoint names interface \(wep.interfaceName ?? "none"), expected \(hostVeth)")
            }
            return drift
        }

        /// GC: removes this node's endpoints of this network that are not valid
        /// attachments, and their host veths if any are left.
        func collectEndpoints(keeping valid: [CNIAttachment]) throws(CNIError) {
            let keep = Set(valid.map { "\($0.containerID)\u{0}\($0.ifName)" })
            let all: [WorkloadEndpoint]
            do { all = try resources.list(WorkloadEndpoint.self) } catch { throw Self.cniError(error, doing: "list WorkloadEndpoints") }
            for wep in all where wep.node == node && wep.orchestrator == "cni" && wep.profiles.contains(request.conf.name) {
                guard let cid = wep.containerID, let ifname = wep.endpoint, !keep.contains("\(cid)\u{0}\(ifname)") else { continue }
                if let veth = wep.interfaceName {
                    try? WorkloadDataplane().detach(hostVethName: veth, containerNamespacePath: nil, interfaceName: ifname)
                }
                do {
                    _ = try resources.delete(WorkloadEndpoint.self, name: wep.metadata.name, namespace: wep.metadata.namespace)
                } catch .notFound {
                    continue
                } catch {
                    throw Self.cniError(error, doing: "delete WorkloadEndpoint \(wep.metadata.name)")
                }
                request.log.info("GC removed endpoint \(wep.metadata.name)")
            }
        }

        static func cniError(_ error: CalicoAPIError, doing what: String) -> CNIError {
            if case .datastore(let e) = error { return IPAMPlugin.cniError(e) }
            return CNIError(code: CalicoPlugin.endpointCode, msg: "could not \(what)", details: error.description)
        }
    }
}

/// A WorkloadEndpoint waiting for its addresses (`CalicoPlugin.Context.endpointTemplate`).
struct EndpointTemplate: Sendable {
    let name: String
    let namespace: String
    let node: String
    let containerID: String
    let endpoint: String
    let profile: String
    let interfaceName: String
    let mac: MACAddress
    let labels: [String: String]

    func resource(addresses: [IPAddress]) -> WorkloadEndpoint {
        var wep = WorkloadEndpoint(
            name: name, namespace: namespace, node: node, containerID: containerID, endpoint: endpoint,
            ipNetworks: addresses.map { IPNetwork(host: $0).description }, profiles: [profile],
            interfaceName: interfaceName, mac: mac.description)
        wep.metadata.labels = labels
        return wep
    }

    /// The write that creates (or replaces a leftover of) the endpoint with `addresses`, as
    /// `ResourceClient.create` would store it; none if it cannot be made (then the plugin
    /// writes it through the client, which reports why).
    var creation: @Sendable ([IPAddress]) -> [Operation] {
        { addresses in
            guard let prepared = try? ResourceClient.prepareForCreate(resource(addresses: addresses)) else { return [] }
            return [.put(key: prepared.key, value: ResourceClient.storedText(prepared))]
        }
    }
}
