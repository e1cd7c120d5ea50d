import IPAddress
import JSON

/// Metadata of one allocation in a block (`attributes[]`).
public struct AllocationAttribute: Sendable, Hashable {
    /// The handle that owns the address (`handle_id`).
    public var handleID: String?
    /// Free-form facts (`{"node": "<node>"}`).
    public var secondary: [String: String]?

    public init(handleID: String?, secondary: [String: String]?) {
        self.handleID = handleID
        self.secondary = secondary
    }

    var json: JSON {
        ["handle_id": handleID.map { .string($0) } ?? .null,
         "secondary": secondary.map { .object($0.mapValues { .string($0) }) } ?? .null]
    }
}

/// An IPAM block (`/calico/ipam/v2/assignment/ipv4/block/<net>-<len>`): a /26 (or /122) of a
/// pool, affine to one host, with one slot per address.
///
/// `allocations[i]` is nil when ordinal `i` is free, else the index into `attributes` of its
/// owner. `unallocated` lists the free ordinals in the order they will be handed out.
public struct AllocationBlock: Sendable, Hashable {
    public var cidr: IPNetwork
    /// `host:<node>`, or nil for a block nobody is affine to.
    public var affinity: String?
    /// libcalico-go's `strictAffinity` (always written; false unless strict affinity applies).
    public var strictAffinity: Bool
    public var allocations: [Int?]
    public var unallocated: [Int]
    public var attributes: [AllocationAttribute]
    public var deleted: Bool
    /// Fields of other Calico releases (`hostAffinity`, `sequenceNumber`, …), verbatim.
    public var otherFields: [String: JSON]

    /// A fresh block: every ordinal free, in order.
    public init(cidr: IPNetwork, affinity: String?) {
        self.cidr = cidr.masked
        self.affinity = affinity
        strictAffinity = false
        let n = Int(cidr.size)
        allocations = Array(repeating: nil, count: n)
        unallocated = Array(0..<n)
        attributes = []
        deleted = false
        otherFields = [:]
    }

    /// The affinity value for `node`: `host:<node>`.
    public static func affinity(forNode node: String) -> String { "host:" + node }

    /// The node named by `affinity`, when it is a host affinity.
    public var affineNode: String? {
        guard let a = affinity, a.hasPrefix("host:") else { return nil }
        return String(a.dropFirst(5))
    }

    /// Number of addresses in the block.
    public var size: Int { allocations.count }

    /// Number of addresses in use.
    public var usedCount: Int { size - unallocated.count }

    /// Whether no address is in use.
    public var isEmpty: Bool { unallocated.count == size }

    /// The address at `ordinal`.
    public func address(ordinal: Int) -> IPAddress { cidr.address(at: UInt128(ordinal)) }

    /// The ordinal of `ip`, or nil when outside the block.
    public func ordinal(of ip: IPAddress) -> Int? { cidr.ordinal(of: ip).map { Int($0) } }

    /// The attribute of the allocation at `ordinal`, or nil when free.
    public func attribute(ordinal: Int) -> AllocationAttribute? {
        guard allocations.indices.contains(ordinal), let a = allocations[ordinal], attributes.indices.contains(a)
        else { return nil }
        return attributes[a]
    }

    /// Ordinals held by `handleID`.
    public func ordinals(handleID: String) -> [Int] {
        allocations.indices.filter { attribute(ordinal: $0)?.handleID == handleID }
    }

    /// Takes up to `count` free ordinals from the head of `unallocated` for `handleID`.
    /// Attributes are shared between allocations with identical attributes, as upstream does.
    public mutating func assign(count: Int, handleID: String, secondary: [String: String]?) -> [Int] {
        let n = min(count, unallocated.count)
        guard n > 0 else { return [] }
        let taken = Array(unallocated.prefix(n))
        unallocated.removeFirst(n)
        let attr = AllocationAttribute(handleID: handleID, secondary: secondary)
        let index: Int
        if let i = attributes.firstIndex(of: attr) { index = i } else { attributes.append(attr); index = attributes.count - 1 }
        for o in taken { allocations[o] = index }
        return taken
    }

    /// Claims one specific free ordinal for `handleID`. Returns false when it is in use.
    public mutating func assign(ordinal: Int, handleID: String, secondary: [String: String]?) -> Bool {
        guard let pos = unallocated.firstIndex(of: ordinal) else { return false }
        unallocated.remove(at: pos)
        let attr = AllocationAttribute(handleID: handleID, secondary: secondary)
        let index: Int
        if let i = attributes.firstIndex(of: attr) { index = i } else { attributes.append(attr); index = attributes.count - 1 }
        allocations[ordinal] = index
        return true
    }

    /// Frees `ordinals` (appending them to `unallocated`) and drops attributes no longer
    /// referenced, renumbering the rest.
    public mutating func release(ordinals: [Int]) {
        for o in ordinals where allocations.indices.contains(o) && allocations[o] != nil {
            allocations[o] = nil
            unallocated.append(o)
        }
        compactAttributes()
    }

    /// Frees every ordinal held by `handleID`; returns how many.
    @discardableResult
    public mutating func release(handleID: String) -> Int {
        let os = ordinals(handleID: handleID)
        release(ordinals: os)
        return os.count
    }

    private mutating func compactAttributes() {
        var used = Set<Int>()
        for a in allocations { if let a { used.insert(a) } }
        if used.count == attributes.count { return }
        var remap: [Int: Int] = [:]
        var kept: [AllocationAttribute] = []
        for (i, a) in attributes.enumerated() where used.contains(i) {
            remap[i] = kept.count
            kept.append(a)
        }
        attributes = kept
        for i in allocations.indices { if let a = allocations[i] { allocations[i] = remap[a] } }
    }

    public init(json: JSON) throws(CalicoAPIError) {
        var r = try FieldReader(json, path: "", context: DecodingContext())
        let c = try r.requiredString("cidr")
        guard let net = IPNetwork(c) else { throw .invalidField(path: "cidr", reason: "not a CIDR: \(c)") }
        cidr = net.masked
        affinity = try r.string("affinity")
        strictAffinity = try r.bool("strictAffinity") ?? false
        if let elements = try r.array("allocations") {
            var a: [Int?] = []
            a.reserveCapacity(elements.count)
            for (e, p) in elements {
                if e.isNull { a.append(nil); continue }
                guard let i = e.intValue else { throw .invalidField(path: p, reason: "expected an integer or null") }
                a.append(i)
            }
            allocations = a
        } else {
            allocations = Array(repeating: nil, count: Int(net.size))
        }
        if let elements = try r.array("unallocated") {
            var u: [Int] = []
            u.reserveCapacity(elements.count)
            for (e, p) in elements {
                guard let i = e.intValue else { throw .invalidField(path: p, reason: "expected an integer") }
                u.append(i)
            }
            unallocated = u
        } else {
            unallocated = []
        }
        attributes = try r.objects("attributes") { (o) throws(CalicoAPIError) in
            AllocationAttribute(handleID: try o.string("handle_id"), secondary: try o.stringMap("secondary"))
        } ?? []
        deleted = try r.bool("deleted") ?? false
        var other: [String: JSON] = [:]
        for (k, v) in r.fields where !["cidr", "affinity", "strictAffinity", "allocations", "unallocated", "attributes", "deleted"].contains(k) {
            other[k] = v
        }
        otherFields = other
        // Upstream reads blocks written before `affinity` existed through `hostAffinity`.
        if affinity == nil, let h = other["hostAffinity"]?.stringValue { affinity = "host:" + h }
    }

    /// Parses the stored text.
    public init(jsonText: String) throws(CalicoAPIError) {
        let parsed: JSON
        do { parsed = try JSON(parsing: jsonText) } catch { throw .invalidJSON(error.description) }
        try self.init(json: parsed)
    }

    /// Calico's JSON (libcalico-go `AllocationBlock`): `affinity` is `null` when unset.
    public var json: JSON {
        var o = otherFields
        o["cidr"] = .string(cidr.description)
        o["affinity"] = affinity.map { .string($0) } ?? .null
        o["strictAffinity"] = .bool(strictAffinity)
        o["allocations"] = .array(allocations.map { $0.map { .int($0) } ?? .null })
        o["unallocated"] = .array(unallocated.map { .int($0) })
        o["attributes"] = .array(attributes.map(\.json))
        o["deleted"] = .bool(deleted)
        return .object(o)
    }
}

/// What a handle holds (`/calico/ipam/v2/handle/<id>`): per block CIDR, the number of
/// addresses it owns there.
public struct IPAMHandle: Sendable, Hashable {
    public var handleID: String
    /// Block CIDR text (`172.29.10.64/26`) → count.
    public var block: [String: Int]
    public var deleted: Bool

    public init(handleID: String, block: [String: Int] = [:], deleted: Bool = false) {
        self.handleID = handleID
        self.block = block
        self.deleted = deleted
    }

    /// Whether the handle holds nothing.
    public var isEmpty: Bool { block.values.allSatisfy { $0 <= 0 } }

    public init(handleID: String, json: JSON) throws(CalicoAPIError) {
        var r = try FieldReader(json, path: "", context: DecodingContext())
        self.handleID = handleID
        var b: [String: Int] = [:]
        if let o = r.raw("block") {
            guard let m = o.objectValue else { throw r.mismatch("block", "object", o) }
            for (k, v) in m {
                guard let i = v.intValue else { throw .invalidField(path: "block." + k, reason: "expected an integer") }
                b[k] = i
            }
        }
        block = b
        deleted = try r.bool("deleted") ?? false
    }

    public init(handleID: String, jsonText: String) throws(CalicoAPIError) {
        let parsed: JSON
        do { parsed = try JSON(parsing: jsonText) } catch { throw .invalidJSON(error.description) }
        try self.init(handleID: handleID, json: parsed)
    }

    /// `{"block":{"172.29.10.64/26":1},"deleted":false}`.
    public var json: JSON {
        ["block": .object(block.mapValues { .int($0) }), "deleted": .bool(deleted)]
    }
}

/// A host's claim on a block (`/calico/ipam/v2/host/<node>/ipv4/block/<net>-<len>`).
public struct BlockAffinity: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        /// Claimed, block not yet written (or being given up).
        case pending
        case confirmed
        /// Being released.
        case pendingDeletion
    }

    public var state: State
    public var deleted: Bool

    public init(state: State, deleted: Bool = false) {
        self.state = state
        self.deleted = deleted
    }

    public init(json: JSON) throws(CalicoAPIError) {
        var r = try FieldReader(json, path: "", context: DecodingContext())
        // Affinities written by Calico before v3 have an empty value: treat as confirmed.
        let s = try r.string("state") ?? ""
        if s.isEmpty {
            state = .confirmed
        } else {
            guard let st = State(rawValue: s) else { throw .invalidField(path: "state", reason: "unknown state \"\(s)\"") }
            state = st
        }
        deleted = try r.bool("deleted") ?? false
    }

    public init(jsonText: String) throws(CalicoAPIError) {
        if jsonText.isEmpty { self.init(state: .confirmed); return }
        let parsed: JSON
        do { parsed = try JSON(parsing: jsonText) } catch { throw .invalidJSON(error.description) }
        try self.init(json: parsed)
    }

    /// `{"state":"confirmed","deleted":false}`.
    public var json: JSON { ["state": .string(state.rawValue), "deleted": .bool(deleted)] }
}

/// Cluster IPAM settings (`/calico/ipam/v2/config`).
public struct IPAMConfig: Sendable, Hashable {
    /// Never borrow addresses from blocks affine to other hosts.
    public var strictAffinity: Bool
    /// Claim new blocks when the host's are full.
    public var autoAllocateBlocks: Bool
    /// 0 means no limit.
    public var maxBlocksPerHost: Int

    public init(strictAffinity: Bool = false, autoAllocateBlocks: Bool = true, maxBlocksPerHost: Int = 0) {
        self.strictAffinity = strictAffinity
        self.autoAllocateBlocks = autoAllocateBlocks
        self.maxBlocksPerHost = maxBlocksPerHost
    }

    public init(json: JSON) throws(CalicoAPIError) {
        var r = try FieldReader(json, path: "", context: DecodingContext())
        strictAffinity = try r.bool("strict_affinity") ?? false
        autoAllocateBlocks = try r.bool("auto_allocate_blocks") ?? true
        maxBlocksPerHost = try r.int("max_blocks_per_host") ?? 0
    }

    public init(jsonText: String) throws(CalicoAPIError) {
        let parsed: JSON
        do { parsed = try JSON(parsing: jsonText) } catch { throw .invalidJSON(error.description) }
        try self.init(json: parsed)
    }

    /// `{"strict_affinity":false,"auto_allocate_blocks":true}` (`max_blocks_per_host` only
    /// when set).
    public var json: JSON {
        var o: [String: JSON] = ["strict_affinity": .bool(strictAffinity), "auto_allocate_blocks": .bool(autoAllocateBlocks)]
        if maxBlocksPerHost > 0 { o["max_blocks_per_host"] = .int(maxBlocksPerHost) }
        return .object(o)
    }
}
