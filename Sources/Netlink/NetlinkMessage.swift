import CNetlinkShims

// The framing every netlink message shares (linux/netlink.h):
//
// struct nlmsghdr {
//     __u32 nlmsg_len;    /* Length of message including header */
//     __u16 nlmsg_type;   /* Message content (RTM_NEWLINK, NLMSG_ERROR, ...) */
//     __u16 nlmsg_flags;  /* Additional flags (NLM_F_REQUEST, NLM_F_ACK, ...) */
//     __u32 nlmsg_seq;    /* Sequence number */
//     __u32 nlmsg_pid;    /* Sending process port ID */
// };
//
// struct rtattr {            /* attributes follow the family header, 4-byte aligned */
//     unsigned short rta_len;   /* header + payload, without trailing padding */
//     unsigned short rta_type;
// };
//
// Integers are in host byte order; addresses in network byte order.

/// Byte offsets of `struct nlmsghdr` fields.
enum MessageHeader {
    static let size = Int(cnl_nlmsg_hdrlen())
    static let lengthOffset = 0
    static let typeOffset = 4
    static let flagsOffset = 6
    static let sequenceOffset = 8
    static let portOffset = 12
}

/// Rounds up to the 4-byte boundary netlink uses for messages and attributes.
@inline(__always)
func netlinkAligned(_ n: Int) -> Int { (n + 3) & ~3 }

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func storeInteger<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: T.self) }
    }

    mutating func padToAlignment() {
        let pad = netlinkAligned(count) - count
        if pad > 0 { append(contentsOf: repeatElement(0, count: pad)) }
    }
}

extension Collection where Element == UInt8, Index == Int {
    /// Reads a host-order integer at `offset` (relative to startIndex); nil when too short.
    @inline(__always)
    func integer<T: FixedWidthInteger>(at offset: Int, as: T.Type = T.self) -> T? {
        let start = startIndex + offset
        guard offset >= 0, start + MemoryLayout<T>.size <= endIndex else { return nil }
        var value = T.zero
        Swift.withUnsafeMutableBytes(of: &value) { dst in
            for i in 0..<MemoryLayout<T>.size { dst[i] = self[start + i] }
        }
        return value
    }
}

/// One request being assembled: `nlmsghdr`, the family header, then attributes.
///
/// The sequence number and port are filled in by the socket when it sends.
struct MessageBuilder: Sendable {
    private(set) var bytes: [UInt8]

    init(type: Int, flags: Int32) {
        bytes = []
        bytes.reserveCapacity(128)
        bytes.appendInteger(UInt32(0))  // length, patched by `finish`
        bytes.appendInteger(UInt16(type))
        bytes.appendInteger(UInt16(flags))
        bytes.appendInteger(UInt32(0))  // sequence
        bytes.appendInteger(UInt32(0))  // port id: 0 = the kernel assigns/ignores
    }

    /// Appends raw bytes (a family header), padded to 4 bytes.
    mutating func appendHeader(_ raw: [UInt8]) {
        bytes.append(contentsOf: raw)
        bytes.padToAlignment()
    }

    mutating func addAttribute(_ type: Int, bytes payload: some Collection<UInt8>) {
        bytes.appendInteger(UInt16(4 + payload.count))
        bytes.appendInteger(UInt16(type))
        bytes.append(contentsOf: payload)
        bytes.padToAlignment()
    }

    mutating func addAttribute<T: FixedWidthInteger>(_ type: Int, integer value: T) {
        bytes.appendInteger(UInt16(4 + MemoryLayout<T>.size))
        bytes.appendInteger(UInt16(type))
        bytes.appendInteger(value)
        bytes.padToAlignment()
    }

    /// A NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND, ...).
    mutating func addAttribute(_ type: Int, string: String) {
        var payload = Array(string.utf8)
        payload.append(0)
        addAttribute(type, bytes: payload)
    }

    /// Opens a nested attribute; close it with `endNested` passing the returned token.
    mutating func beginNested(_ type: Int) -> Int {
        let start = bytes.count
        bytes.appendInteger(UInt16(0))
        bytes.appendInteger(UInt16(type) | 0x8000)  // NLA_F_NESTED
        return start
    }

    mutating func endNested(_ start: Int) {
        bytes.storeInteger(UInt16(bytes.count - start), at: start)
    }

    /// The finished message with its length set.
    func finished() -> [UInt8] {
        var out = bytes
        out.storeInteger(UInt32(out.count), at: MessageHeader.lengthOffset)
        return out
    }
}

/// One message received from the kernel.
struct ReceivedMessage {
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    var port: UInt32
    /// Everything after `nlmsghdr`.
    var payload: ArraySlice<UInt8>

    /// Splits one datagram into its messages.
    static func split(_ datagram: ArraySlice<UInt8>) -> [ReceivedMessage] {
        var out: [ReceivedMessage] = []
        var offset = datagram.startIndex
        while offset + MessageHeader.size <= datagram.endIndex {
            let rest = datagram[offset...]
            guard let length = rest.integer(at: 0, as: UInt32.self).map(Int.init),
                length >= MessageHeader.size, offset + length <= datagram.endIndex
            else { break }
            out.append(
                ReceivedMessage(
                    type: rest.integer(at: MessageHeader.typeOffset)!,
                    flags: rest.integer(at: MessageHeader.flagsOffset)!,
                    sequence: rest.integer(at: MessageHeader.sequenceOffset)!,
                    port: rest.integer(at: MessageHeader.portOffset)!,
                    payload: datagram[(offset + MessageHeader.size)..<(offset + length)]))
            offset += netlinkAligned(length)
        }
        return out
    }
}

/// The attributes of a message or of a nested attribute, by type.
///
/// When a type repeats, the first occurrence wins for the subscript; `all` keeps every one.
struct Attributes {
    private(set) var all: [(type: Int, value: ArraySlice<UInt8>)] = []

    init(_ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while offset + 4 <= bytes.endIndex {
            let rest = bytes[offset...]
            let length = Int(rest.integer(at: 0, as: UInt16.self)!)
            let rawType = rest.integer(at: 2, as: UInt16.self)!
            guard length >= 4, offset + length <= bytes.endIndex else { break }
            // Drop NLA_F_NESTED / NLA_F_NET_BYTEORDER: callers know each type's shape.
            let type = Int(rawType & 0x3FFF)  // NLA_TYPE_MASK
            all.append((type, bytes[(offset + 4)..<(offset + length)]))
            offset += netlinkAligned(length)
        }
    }

    subscript(type: Int) -> ArraySlice<UInt8>? {
        all.first { $0.type == type }?.value
    }

    func string(_ type: Int) -> String? {
        guard var value = self[type] else { return nil }
        if let nul = value.firstIndex(of: 0) { value = value[..<nul] }
        return String(decoding: value, as: UTF8.self)
    }

    func integer<T: FixedWidthInteger>(_ type: Int, as: T.Type = T.self) -> T? {
        guard let value = self[type], value.count >= MemoryLayout<T>.size else { return nil }
        return value.integer(at: 0, as: T.self)
    }

    func nested(_ type: Int) -> Attributes? {
        self[type].map(Attributes.init)
    }
}
