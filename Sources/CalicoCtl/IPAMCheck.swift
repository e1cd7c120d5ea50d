import CalicoAPI
import IPAddress

/// `ipam check`: addresses allocated with no endpoint using them, endpoints using
/// addresses IPAM never gave out, blocks and affinities out of step, handles that disagree
/// with their blocks. Prints a report in the shape of upstream's.
struct IPAMCheck {
    let view: IPAMView

    struct Report {
        var text: String
        var problems: Int
    }

    func run() -> Report {
        var out: [String] = ["Checking IPAM for inconsistencies...", ""]
        var problems = 0
        func problem(_ line: String) {
            problems += 1
            out.append("  " + line)
        }

        out.append("Loading all IPAM blocks...")
        out.append("Found \(view.blocks.count) IPAM blocks.")
        for (b, _) in view.blocks { out.append(" IPAM block \(b.cidr) affinity=\(b.affinity ?? "<none>"):") }
        let affine = view.blocks.filter { $0.block.affineNode != nil }.count
        out.append("Found \(affine) IPAM blocks with affinity to nodes.")

        out.append("Loading all IPAM pools...")
        let activePools = view.pools.filter { !$0.disabled }
        for p in view.pools { out.append("  \(p.cidr)\(p.disabled ? " (disabled)" : "")") }
        out.append("Found \(activePools.count) active IP pools.")
        out.append("")

        // What is in use: workload addresses and node tunnel addresses.
        var inUse: [IPAddress: String] = [:]
        out.append("Loading all nodes.")
        var tunnels = 0
        for n in view.nodes {
            for addr in [n.ipv4VXLANTunnelAddr, n.bgp?.ipv4IPIPTunnelAddr, n.ipv6VXLANTunnelAddr].compactMap({ $0 }) {
                if let ip = IPAddress(addr) { inUse[ip] = "node \(n.metadata.name) tunnel"; tunnels += 1 }
            }
        }
        out.append("Found \(tunnels) node tunnel IPs.")
        out.append("")
        out.append("Loading all workload endpoints.")
        var workloadIPs = 0
        for w in view.endpoints {
            for n in w.ipNetworks {
                if let net = IPNetwork(n, allowBareAddress: true) {
                    inUse[net.address] = "workload endpoint \(w.metadata.namespace ?? "default")/\(w.metadata.name)"
                    workloadIPs += 1
                }
            }
        }
        out.append("Found \(workloadIPs) workload IPs.")
        out.append("Workloads and nodes are using \(inUse.count) IPs.")
        out.append("")

        // Allocations.
        var allocated: [IPAddress: (block: AllocationBlock, handle: String?)] = [:]
        var perNode: [String: Int] = [:]
        var handleCounts: [String: [String: Int]] = [:]
        for (b, _) in view.blocks {
            for o in b.allocations.indices where b.allocations[o] != nil {
                let attr = b.attribute(ordinal: o)
                allocated[b.address(ordinal: o)] = (b, attr?.handleID)
                if let node = attr?.secondary?["node"] ?? b.affineNode { perNode[node, default: 0] += 1 }
                if let h = attr?.handleID { handleCounts[h, default: [:]][b.cidr.description, default: 0] += 1 }
            }
        }
        out.append("Looking for top (up to 20) nodes by allocations...")
        let top = perNode.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(20)
        for (node, n) in top { out.append("  \(node) has \(n) allocations") }
        if !perNode.isEmpty {
            let counts = perNode.values.sorted()
            out.append("Node with most allocations has \(counts.last!); median is \(counts[counts.count / 2])")
        }
        out.append("")

        out.append("Scanning for IPs that are allocated but not actually in use...")
        var leaked = 0
        for (ip, a) in allocated.sorted(by: { $0.key < $1.key }) where inUse[ip] == nil {
            leaked += 1
            problem("\(ip) leaked; handle \(a.handle ?? "<none>") in block \(a.block.cidr)")
        }
        out.append("Found \(leaked) IPs that are allocated in IPAM but not actually in use.")

        out.append("Scanning for IPs that are in use by a workload or node but not allocated in IPAM...")
        var outside = 0, unallocated = 0
        for (ip, user) in inUse.sorted(by: { $0.key < $1.key }) where allocated[ip] == nil {
            if activePools.contains(where: { $0.network?.contains(ip) ?? false }) {
                unallocated += 1
                problem("\(ip) is used by \(user) but not allocated in IPAM")
            } else {
                outside += 1
                problem("\(ip) is used by \(user) but is not in any active IP pool")
            }
        }
        out.append("Found \(outside) in-use IPs that are not in active IP pools.")
        out.append("Found \(unallocated) in-use IPs that are in active IP pools but have no corresponding IPAM allocation.")
        out.append("")

        out.append("Checking block affinities...")
        var affinityProblems = 0
        let nodeNames = Set(view.nodes.map(\.metadata.name))
        for a in view.affinities {
            guard let (b, _) = view.blocks.first(where: { $0.block.cidr.description == a.cidr }) else {
                if a.state == "confirmed" {
                    affinityProblems += 1
                    problem("node \(a.node) has a confirmed affinity for block \(a.cidr), but the block does not exist")
                }
                continue
            }
            if b.affineNode != a.node {
                affinityProblems += 1
                problem("node \(a.node) has an affinity for block \(a.cidr), but the block says \(b.affinity ?? "<none>")")
            }
        }
        for (b, _) in view.blocks {
            guard let node = b.affineNode else { continue }
            if !view.affinities.contains(where: { $0.node == node && $0.cidr == b.cidr.description }) {
                affinityProblems += 1
                problem("block \(b.cidr) is affine to \(node), but \(node) has no affinity record for it")
            }
            if !nodeNames.isEmpty && !nodeNames.contains(node) {
                affinityProblems += 1
                problem("block \(b.cidr) is affine to \(node), which is not a known node")
            }
            if !view.pools.contains(where: { $0.network?.contains(b.cidr) ?? false }) {
                affinityProblems += 1
                problem("block \(b.cidr) is in no IP pool")
            }
        }
        out.append("Found \(affinityProblems) block and affinity problems.")

        out.append("Checking handles...")
        var handleProblems = 0
        for (id, h) in view.handles.sorted(by: { $0.key < $1.key }) {
            let actual = handleCounts[id] ?? [:]
            let recorded = h.block.filter { $0.value > 0 }
            if recorded != actual {
                handleProblems += 1
                problem("handle \(id) records \(describe(recorded)) but the blocks hold \(describe(actual))")
            }
        }
        for id in handleCounts.keys.sorted() where view.handles[id] == nil {
            handleProblems += 1
            problem("addresses are allocated to handle \(id), which has no handle record")
        }
        out.append("Found \(handleProblems) handle problems.")
        out.append("")
        out.append("Check complete; found \(problems) problems.")
        return Report(text: out.joined(separator: "\n") + "\n", problems: problems)
    }

    private func describe(_ counts: [String: Int]) -> String {
        counts.isEmpty ? "nothing" : counts.sorted { $0.key < $1.key }.map { "\($0.value) in \($0.key)" }.joined(separator: ", ")
    }
}
