#if canImport(Glibc)
import Glibc
#endif
import POSIX
import Policy

/// The kernel side: `nft` for loading and listing `table inet calico`, and the nftables
/// generation counter for noticing that anyone changed the ruleset.
///
/// felix runs in the network namespace it programs (tests start it with
/// `ip netns exec`), so `nft` and the netlink socket act on that namespace.
public protocol NFTablesBackend: AnyObject {
    /// Applies `script` as one transaction (`nft -f -`).
    func apply(_ script: String) throws(FelixError)
    /// `nft -j list table inet calico`, or nil when the table does not exist.
    func listTable() throws(FelixError) -> String?
    /// The ruleset generation (bumped by every commit in the namespace), or nil when it
    /// cannot be read.
    func generation() -> UInt32?
}

/// Runs the `nft` binary.
public final class NFTCommand: NFTablesBackend {
    public let path: String
    /// Bound on one `nft` run (a full load of thousands of rules takes seconds).
    public var timeout: Double = 60

    /// Finds `nft` in the usual places.
    public init(path: String? = nil) throws(FelixError) {
        if let path {
            self.path = path
            return
        }
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"] where access(dir + "/nft", X_OK) == 0 {
            self.path = dir + "/nft"
            return
        }
        throw .nftNotFound
    }

    private func run(_ arguments: [String], stdin: String = "") throws(FelixError) -> Subprocess.Output {
        do {
            return try Subprocess.run(executable: path, arguments: arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"],
                                      stdin: Array(stdin.utf8), deadline: Deadline(secondsFromNow: timeout))
        } catch {
            throw .nft(command: arguments.joined(separator: " "), status: "cannot start", stderr: "\(error)")
        }
    }

    public func apply(_ script: String) throws(FelixError) {
        let out = try run(["-f", "-"], stdin: script)
        guard out.exitStatus == 0 else {
            throw .nft(command: "-f -", status: out.timedOut ? "timed out" : out.termination.description,
                       stderr: String(decoding: out.stderr.prefix(4000), as: UTF8.self))
        }
    }

    public func listTable() throws(FelixError) -> String? {
        let out = try run(["-j", "list", "table", NFTNames.family, NFTNames.table])
        if out.exitStatus == 0 { return String(decoding: out.stdout, as: UTF8.self) }
        let err = String(decoding: out.stderr, as: UTF8.self)
        if err.contains("No such file or directory") { return nil }
        throw .nft(command: "list table", status: out.termination.description, stderr: err)
    }

    public func generation() -> UInt32? { NFTGeneration.read() }
}

/// Reads the nftables ruleset generation over netlink (`NFT_MSG_GETGEN`).
///
/// Every committed nftables transaction in the namespace increments it, so an unchanged
/// generation proves nobody touched the ruleset since felix last looked — a check that
/// costs one netlink round trip instead of listing thousands of rules.
enum NFTGeneration {
    // <linux/netlink.h>, <linux/netfilter/nfnetlink.h>, <linux/netfilter/nf_tables.h>
    private static let netlinkNetfilter: Int32 = 12     // NETLINK_NETFILTER
    private static let subsysNFTables: UInt16 = 10      // NFNL_SUBSYS_NFTABLES
    private static let msgGetGen: UInt16 = 16           // NFT_MSG_GETGEN
    private static let msgNewGen: UInt16 = 15           // NFT_MSG_NEWGEN (the answer)
    private static let attrGenID: UInt16 = 1            // NFTA_GEN_ID

    static func read() -> UInt32? {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkNetfilter)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }
        // struct nfgenmsg { u8 nfgen_family; u8 version; be16 res_id; }
        var msg = [UInt8]()
        func u16(_ v: UInt16) { msg += [UInt8(v & 0xff), UInt8(v >> 8)] }
        func u32(_ v: UInt32) { msg += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)] }
        u32(20)
        u16(subsysNFTables << 8 | msgGetGen)
        u16(1)  // NLM_F_REQUEST
        u32(1)
        u32(0)
        msg += [0, 0, 0, 0]  // AF_UNSPEC, NFNETLINK_V0, res_id 0
        let sent = msg.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == msg.count else { return nil }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 20 else { return nil }
        func le16(_ i: Int) -> UInt16 { UInt16(buf[i]) | UInt16(buf[i + 1]) << 8 }
        guard le16(4) == subsysNFTables << 8 | msgNewGen else { return nil }  // not NLMSG_ERROR
        // Attributes follow the 16-byte header and 4-byte nfgenmsg: { u16 len; u16 type; value }.
        var off = 20
        while off + 4 <= n {
            let len = Int(le16(off)), type = le16(off + 2) & 0x3fff
            guard len >= 4, off + len <= n else { return nil }
            if type == attrGenID, len >= 8 {
                // NFTA_GEN_ID is big-endian.
                return UInt32(buf[off + 4]) << 24 | UInt32(buf[off + 5]) << 16 | UInt32(buf[off + 6]) << 8 | UInt32(buf[off + 7])
            }
            off += (len + 3) & ~3
        }
        return nil
    }
}
