#if canImport(Glibc)
import Glibc
#endif
import POSIX

/// TLS sessions kept on disk between processes, so that the next plugin process resumes
/// (TLS 1.3 PSK) instead of running a full handshake: it skips verifying the server's
/// chain, loading the CA file, loading and signing with the client key, and etcd skips
/// verifying our certificate.
///
/// Where: beside the client key (`etcd_key_file`), one file per endpoint, named
/// `.calico-tls-session-<hash of the endpoint and the key path>`. A saved session resumes
/// the client-certificate identity until the server stops accepting its ticket (etcd: at
/// most 7 days, and never after a restart), so it is as sensitive as the key and lives
/// under the same directory permissions; it is written 0600, only read back when it is a
/// regular file (not a symlink) owned by this user with no group or other permission bits,
/// and replaced atomically (rename). Without a client key nothing is cached.
///
/// A file starts with a fingerprint of the CA, certificate and key files (path, device,
/// inode, size, modification and change times): a session is only offered to the server it
/// came from, with the files it was verified with; replacing any of them starts afresh (and
/// the next full handshake overwrites the file).
struct TLSSessionCache: Sendable {
    /// The directory of the key file.
    let directory: String
    /// Fingerprint of the TLS files, stored at the start of every file.
    let filesFingerprint: UInt64
    let keyFile: String

    /// The cache for `files`, or nil when there is no client key (or it cannot be stat'ed).
    init?(files: TLSFiles) {
        guard let key = files.keyFile, files.certFile != nil else { return nil }
        keyFile = key
        let slash = key.lastIndex(of: "/")
        directory = slash.map { $0 == key.startIndex ? "/" : String(key[..<$0]) } ?? "."
        var h = FNV1a()
        for path in [files.caCertFile ?? "", files.certFile ?? "", key] {
            h.add(path)
            var st = stat()
            if !path.isEmpty {
                guard stat(path, &st) == 0 else { return nil }
                h.add(UInt64(st.st_dev))
                h.add(UInt64(st.st_ino))
                h.add(UInt64(bitPattern: Int64(st.st_size)))
                h.add(UInt64(bitPattern: Int64(st.st_mtim.tv_sec)))
                h.add(UInt64(bitPattern: Int64(st.st_mtim.tv_nsec)))
                // The change time cannot be set back by hand (unlike the modification time).
                h.add(UInt64(bitPattern: Int64(st.st_ctim.tv_sec)))
                h.add(UInt64(bitPattern: Int64(st.st_ctim.tv_nsec)))
            }
        }
        filesFingerprint = h.value
    }

    /// The file holding the session for `endpoint`.
    func path(for endpoint: HTTPEndpoint) -> String {
        var h = FNV1a()
        h.add(keyFile)
        h.add(endpoint.authority)
        return directory + "/.calico-tls-session-" + hex(h.value)
    }

    /// Whether a usable session is saved for `endpoint` (what makes deferred loading
    /// worthwhile): one made with these very files.
    func hasSession(for endpoint: HTTPEndpoint) -> Bool {
        load(for: endpoint) != nil
    }

    /// The saved session bytes (DER) for `endpoint`, or nil when there is none or the file
    /// is not one this process would have written.
    func load(for endpoint: HTTPEndpoint) -> [UInt8]? {
        let fd = open(path(for: endpoint), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid(),
              st.st_mode & 0o077 == 0, st.st_size > 0, st.st_size <= Self.maxSize
        else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count, bytes.count > 8, bytes.prefix(8).elementsEqual(fingerprintBytes) else { return nil }
        return Array(bytes.dropFirst(8))
    }

    private var fingerprintBytes: [UInt8] { withUnsafeBytes(of: filesFingerprint.littleEndian) { Array($0) } }

    /// Saves `bytes` for `endpoint`: written to a private temporary file, then renamed over
    /// the old one. Failures (read-only directory, full disk) are ignored: the cache is an
    /// optimisation.
    func save(_ bytes: [UInt8], for endpoint: HTTPEndpoint) {
        guard !bytes.isEmpty, bytes.count <= Self.maxSize else { return }
        Files.replace(path(for: endpoint), with: fingerprintBytes + bytes, mode: 0o600)
    }

    /// A session with its ticket and certificate chain is a few kilobytes.
    static let maxSize = 64 * 1024

    private func hex(_ v: UInt64) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { out[i] = digits[Int((v >> UInt64(60 - 4 * i)) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }
}

/// 64-bit FNV-1a, for file names (not a security boundary: the files are private).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for b in bytes {
            value ^= UInt64(b)
            value = value &* 0x100_0000_01b3
        }
        add(UInt8(0))
    }

    mutating func add(_ byte: UInt8) {
        value ^= UInt64(byte)
        value = value &* 0x100_0000_01b3
    }

    mutating func add(_ s: String) { add(s.utf8) }

    mutating func add(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { add($0) }
    }
}
