#if canImport(Glibc)
import Glibc
#endif
import Datastore
import POSIX

/// A watch on a `SQLiteDatastore`: replays the `events` table after a revision, and blocks
/// on inotify between changes instead of polling the file.
///
/// Every committed write (from any process) appends to the database's `-wal` file, which
/// inotify reports as `IN_MODIFY` on the file's directory; the watch then reads the events
/// with a revision above its cursor. The directory is watched rather than the `-wal` file
/// itself because SQLite deletes and recreates that file as connections come and go.
final class SQLiteWatch: Watch {
    private let store: SQLiteDatastore
    private let prefix: String
    private var cursor: Int64
    /// The inotify descriptor, -1 once cancelled.
    private var fd: Int32
    /// The names in the directory whose changes matter: the database, its WAL and journal.
    private let names: Set<String>

    init(store: SQLiteDatastore, prefix: String, after revision: Int64) throws(DatastoreError) {
        self.store = store
        self.prefix = prefix
        self.cursor = revision
        let path = store.path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        names = [base, base + "-wal", base + "-journal"]
        fd = inotify_init1(O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw .unavailable("inotify_init1: \(String(cString: strerror(errno)))") }
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO)
        if inotify_add_watch(fd, directory, mask) < 0 {
            let e = errno
            Glibc.close(fd)
            throw .unavailable("inotify_add_watch \(directory): \(String(cString: strerror(e)))")
        }
    }

    deinit { cancel() }

    func cancel() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    func next(timeout: Double) throws(DatastoreError) -> [WatchEvent] {
        if fd < 0 { return [] }
        let deadline = MonotonicClock.now() + max(0, timeout)
        // Drain before reading: a change that lands after the read below still wakes poll.
        _ = drain()
        if let events = try fetch() { return events }
        // A writer appends to the WAL an instant before its commit becomes visible to
        // readers, so a wake-up can read too early. After a wake-up that found nothing,
        // re-read a few times over ~100 ms before blocking again.
        let settle: [Double] = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05]
        var settleStep = settle.count
        while true {
            let remaining = deadline - MonotonicClock.now()
            if remaining <= 0 { return [] }
            let wait = settleStep < settle.count ? min(remaining, settle[settleStep]) : remaining
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(min((wait * 1000).rounded(.up), Double(Int32.max)))
            let rc = poll(&pfd, 1, ms)
            if rc < 0 && errno != EINTR { throw .unavailable("poll inotify: \(String(cString: strerror(errno)))") }
            if rc > 0 {
                if drain() { settleStep = 0 } else { continue }
            } else if settleStep < settle.count {
                settleStep += 1
            } else {
                continue
            }
            if let events = try fetch() { return events }
        }
    }

    /// Reads the store's events after the cursor; nil when there are none yet.
    private func fetch() throws(DatastoreError) -> [WatchEvent]? {
        let (events, revision) = try store.events(prefix: prefix, after: cursor)
        // Changes outside the prefix move the cursor too, so they are not re-read.
        cursor = max(cursor, revision)
        return events.isEmpty ? nil : events
    }

    /// Empties the inotify queue; true when it held a change to one of `names`.
    private func drain() -> Bool {
        var relevant = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return relevant }  // EAGAIN: empty.
            // struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[]; }
            var offset = 0
            while offset + 16 <= n {
                let len = buffer.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)) }
                let nameBytes = buffer[(offset + 16)..<min(offset + 16 + len, n)].prefix { $0 != 0 }
                if names.contains(String(decoding: nameBytes, as: UTF8.self)) { relevant = true }
                offset += 16 + len
            }
        }
    }
}
