#if canImport(Glibc)
import Glibc
#endif

/// Small file helpers over open/read/write, for /proc/sys, config files and the like.
public enum Files {
    /// The whole content of `path`, or throws `Errno` (ENOENT when missing).
    public static func read(_ path: String) throws(Errno) -> [UInt8] {
        let fd = try syscallRetrying("open \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try syscallRetrying("read \(path)") { buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// The content of `path` as UTF-8 text.
    public static func readText(_ path: String) throws(Errno) -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    /// Writes `bytes` to an existing file (truncating), e.g. a /proc/sys entry.
    public static func write(_ path: String, _ text: String, create: Bool = false, mode: mode_t = 0o644) throws(Errno) {
        let flags = O_WRONLY | O_CLOEXEC | O_TRUNC | (create ? O_CREAT : 0)
        let fd = try syscallRetrying("open \(path)") { open(path, flags, mode) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = try syscallRetrying("write \(path)") {
                bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            }
            off += n
        }
    }

    /// Replaces `path` with `bytes`, atomically for readers: written to a private temporary
    /// file beside it (`mode`, created exclusively, never through a symbolic link), then
    /// renamed over it. Returns false when that did not happen (read-only directory, full
    /// disk), leaving no temporary file: for caches, whose writes may fail.
    @discardableResult
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) -> Bool {
        let temporary = path + ".\(getpid()).tmp"
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = open(temporary, flags, mode)
        if fd < 0 && errno == EEXIST {
            // Left by a process with our pid that died between open and rename.
            unlink(temporary)
            fd = open(temporary, flags, mode)
        }
        guard fd >= 0 else { return false }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if n != bytes.count || rename(temporary, path) != 0 {
            unlink(temporary)
            return false
        }
        return true
    }

    /// Whether `path` exists.
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Creates `path` and its missing parents with `mode` (like `mkdir -p`).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(Errno) {
        if path.isEmpty || exists(path) { return }
        var parent = path
        while parent.count > 1, parent.hasSuffix("/") { parent.removeLast() }
        if let slash = parent.lastIndex(of: "/"), slash != parent.startIndex {
            try makeDirectories(String(parent[..<slash]), mode: mode)
        }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw Errno.current("mkdir \(path)") }
    }

    /// The host name (gethostname).
    public static func hostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return String(cString: buf)
    }
}
