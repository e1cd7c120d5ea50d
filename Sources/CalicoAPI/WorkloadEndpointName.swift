/// The identifiers that make a WorkloadEndpoint's name, and the name itself.
///
/// libcalico-go names a CNI endpoint `<node>-cni-<containerID>-<ifname>`, with every `-`
/// inside a segment doubled so the single dashes between segments stay unambiguous:
/// node `agent-1`, container `5baff64c-d028`, `eth0` → `agent--1-cni-5baff64c--d028-eth0`.
public struct WorkloadEndpointName: Sendable, Hashable, CustomStringConvertible {
    public var node: String
    public var orchestrator: String
    public var containerID: String
    public var endpoint: String

    public init(node: String, orchestrator: String = "cni", containerID: String, endpoint: String) {
        self.node = node
        self.orchestrator = orchestrator
        self.containerID = containerID
        self.endpoint = endpoint
    }

    /// The resource name.
    public var description: String {
        [node, orchestrator, containerID, endpoint].map(Self.escape).joined(separator: "-")
    }

    /// Splits a name made by `description` back into its segments; nil when it does not have
    /// exactly four.
    public init?(parsing name: String) {
        var segments: [String] = []
        var current = ""
        var chars = name.makeIterator()
        var pending = chars.next()
        while let c = pending {
            pending = chars.next()
            if c == "-" {
                if pending == "-" {
                    current.append("-")
                    pending = chars.next()
                } else {
                    segments.append(current)
                    current = ""
                }
            } else {
                current.append(c)
            }
        }
        segments.append(current)
        guard segments.count == 4, !segments.contains(where: \.isEmpty) else { return nil }
        self.init(node: segments[0], orchestrator: segments[1], containerID: segments[2], endpoint: segments[3])
    }

    static func escape(_ segment: String) -> String {
        var out = ""
        out.reserveCapacity(segment.utf8.count + 4)
        for c in segment {
            if c == "-" { out += "--" } else { out.append(c) }
        }
        return out
    }
}
