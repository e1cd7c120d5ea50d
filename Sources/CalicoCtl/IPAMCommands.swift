import CalicoAPI
import Datastore
import Foundation
import IPAM
import IPAddress
import JSON

/// `ipam show [--show-blocks] [--ip=IP]`, `ipam check`, `ipam release --ip=IP`.
enum IPAMCommands {
    static let options: [OptionSpec] = [
        .value("ip"), .flag("show-blocks"), .flag("show-borrowed"), .flag("show-configuration"),
        .value("config", "c"), .value("log-level", "l"), .value("context"), .flag("allow-version-mismatch"),
        .value("output", "o"), .flag("show-all-ips"), .flag("show-problem-ips"),
    ]

    static func run(_ args: ArraySlice<String>, _ context: inout Context) throws {
        guard let sub = args.first else {
            throw UsageError("'calicoctl ipam' needs a subcommand: show, check or release", command: "ipam")
        }
        let parsed = try ArgumentParser(command: "ipam \(sub)", options: options).parse(args.dropFirst())
        if let c = parsed.value("config") { context.configPath = c }
        if let extra = parsed.positionals.first { throw UsageError("unexpected argument '\(extra)'", command: "ipam") }
        let store = try context.store()
        let view: IPAMView
        do {
            view = try IPAMView(store: store)
        } catch {
            throw CommandFailure("Failed to read IPAM data: \(error)")
        }
        switch sub {
        case "show":
            if let ipText = parsed.value("ip") {
                try showIP(ipText, view, context)
            } else if parsed.has("show-configuration") {
                let cfg = (try? store.get(CalicoKeys.ipamConfig)).flatMap { $0 }.flatMap { try? IPAMConfig(jsonText: $0.value) } ?? IPAMConfig()
                context.console.writeOut(Table.boxed(["PROPERTY", "VALUE"], [
                    ["StrictAffinity", String(cfg.strictAffinity)],
                    ["AutoAllocateBlocks", String(cfg.autoAllocateBlocks)],
                    ["MaxBlocksPerHost", String(cfg.maxBlocksPerHost)],
                ]))
            } else {
                context.console.writeOut(show(view, blocks: parsed.has("show-blocks"), borrowed: parsed.has("show-borrowed")))
            }
        case "check":
            let report = IPAMCheck(view: view).run()
            context.console.writeOut(report.text)
        case "release":
            guard let ipText = parsed.value("ip") else {
                throw UsageError("'calicoctl ipam release' needs --ip=IP", command: "ipam")
            }
            try release(ipText, store: store, context)
        default:
            throw UsageError("unknown ipam subcommand '\(sub)': use show, check or release", command: "ipam")
        }
    }

    // MARK: show

    static func percent(_ part: Double, _ total: Double) -> String {
        String(format: "%.0f%%", total == 0 ? 0 : 100 * part / total)
    }

    static func show(_ view: IPAMView, blocks showBlocks: Bool, borrowed: Bool) -> String {
        var rows: [[String]] = []
        if borrowed {
            // Addresses handed out from a block affine to another node.
            var out: [[String]] = []
            for (block, _) in view.blocks {
                for o in block.allocations.indices {
                    guard let a = block.attribute(ordinal: o), let owner = a.secondary?["node"],
                          let affine = block.affineNode, owner != affine else { continue }
                    out.append([block.address(ordinal: o).description, block.cidr.description, owner, affine])
                }
            }
            return Table.boxed(["IP", "BORROWING-NODE", "BLOCK", "BLOCK OWNER"], out.map { [$0[0], $0[2], $0[1], $0[3]] })
        }
        for pool in view.pools {
            guard let net = pool.network else { continue }
            let inPool = view.blocks.filter { net.contains($0.block.cidr) }
            let total = Double(net.size)
            let used = inPool.reduce(0) { $0 + $1.block.usedCount }
            rows.append(["IP Pool", net.description, net.size.description, "\(used) (\(percent(Double(used), total)))",
                         "\(net.size - UInt128(used)) (\(percent(total - Double(used), total)))"])
            if showBlocks {
                for (b, _) in inPool.sorted(by: { $0.block.cidr.address < $1.block.cidr.address }) {
                    let size = Double(b.size)
                    rows.append(["Block", b.cidr.description, String(b.size), "\(b.usedCount) (\(percent(Double(b.usedCount), size)))",
                                 "\(b.size - b.usedCount) (\(percent(size - Double(b.usedCount), size)))"])
                }
            }
        }
        return Table.boxed(["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"], rows)
    }

    static func showIP(_ text: String, _ view: IPAMView, _ context: Context) throws {
        guard let ip = IPAddress(text) else { throw CommandFailure("invalid IP address: \(text)") }
        guard let (block, _) = view.blocks.first(where: { $0.block.cidr.contains(ip) }),
              let ordinal = block.ordinal(of: ip), block.allocations[ordinal] != nil else {
            context.console.out("IP \(ip) is not assigned")
            return
        }
        var lines = ["IP \(ip) is in use"]
        let attr = block.attribute(ordinal: ordinal)
        if let h = attr?.handleID { lines.append("Handle: \(h)") }
        if let s = attr?.secondary, !s.isEmpty {
            lines.append("Attributes:")
            for (k, v) in s.sorted(by: { $0.key < $1.key }) { lines.append("  \(k): \(v)") }
        }
        // The endpoint using it, if any (what an operator wants to know next).
        if let wep = view.endpoints.first(where: { $0.ipNetworks.contains { IPNetwork($0, allowBareAddress: true)?.address == ip } }) {
            lines.append("Workload endpoint: \(wep.metadata.namespace ?? "default")/\(wep.metadata.name)")
        }
        context.console.out(lines.joined(separator: "\n"))
    }

    // MARK: release

    /// Frees one address whoever holds it, fixing its handle (the IPAM library does the
    /// compare-and-swap dance).
    static func release(_ text: String, store: any Datastore, _ context: Context) throws {
        guard let ip = IPAddress(text) else { throw CommandFailure("invalid IP address: \(text)") }
        let unallocated: [IPAddress]
        do {
            unallocated = try IPAMClient(store: store).release(addresses: [ip])
        } catch {
            throw CommandFailure("Failed to release IP address \(ip): \(error)")
        }
        if !unallocated.isEmpty { throw CommandFailure("IP address \(ip) is not assigned") }
        context.console.out("Successfully released IP address \(ip)")
    }
}

/// Everything IPAM holds, read once.
struct IPAMView {
    var blocks: [(block: AllocationBlock, kv: KeyValue)] = []
    var affinities: [(node: String, cidr: String, state: String, kv: KeyValue)] = []
    var handles: [String: IPAMHandle] = [:]
    var pools: [IPPool] = []
    var endpoints: [WorkloadEndpoint] = []
    var nodes: [Node] = []

    init(store: any Datastore) throws {
        for v6 in [false, true] {
            for kv in try store.list(prefix: CalicoKeys.blockPrefix(ipv6: v6)).kvs {
                blocks.append((try AllocationBlock(jsonText: kv.value), kv))
            }
        }
        for kv in try store.list(prefix: CalicoKeys.affinityRoot).kvs {
            // /calico/ipam/v2/host/<node>/ipv4/block/<cidr>
            let parts = kv.key.dropFirst(CalicoKeys.affinityRoot.count).split(separator: "/")
            guard parts.count == 4 else { continue }
            let state = (try? JSON(parsing: kv.value))?["state"]?.stringValue ?? "confirmed"
            affinities.append((String(parts[0]), CalicoKeys.cidr(fromKeySegment: parts[3]), state, kv))
        }
        for kv in try store.list(prefix: CalicoKeys.handlePrefix).kvs {
            let id = String(kv.key.dropFirst(CalicoKeys.handlePrefix.count))
            if let h = try? IPAMHandle(handleID: id, jsonText: kv.value) { handles[id] = h }
        }
        let client = ResourceClient(store: store)
        pools = try client.list(IPPool.self)
        endpoints = try client.list(WorkloadEndpoint.self)
        nodes = try client.list(Node.self)
    }
}
