#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import Datastore
import POSIX

/// SQLite's `SQLITE_TRANSIENT` (a cast macro Swift cannot import): SQLite copies the bytes.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One `sqlite3*` handle with a cache of prepared statements and a per-call deadline that
/// SQLite's busy and progress handlers enforce.
///
/// Not thread-safe: `SQLiteDatastore` serialises access with its lock.
final class SQLiteConnection {
    let path: String
    private var db: OpaquePointer?
    private var statements: [String: Statement] = [:]
    /// Monotonic time by which the current call must finish; read by the C callbacks.
    var deadline: Double = .infinity

    /// Opens (creating when missing) the database at `path`: the directory with mode 0700,
    /// the file with 0600, WAL journaling and the schema.
    init(path: String, deadline: Double) throws(DatastoreError) {
        self.path = path
        self.deadline = deadline
        try Self.createFile(path)
        var handle: OpaquePointer?
        // NOMUTEX: our own lock serialises use; SQLite's would only add cost.
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        db = handle
        if rc != SQLITE_OK {
            let e = error(rc, "open")
            sqlite3_close_v2(handle)
            db = nil
            throw e
        }
        sqlite3_extended_result_codes(db, 1)
        // Keep the -wal file when the last connection closes: the next plugin process then
        // need not recreate it (~40 µs per close), and watches see one stable file.
        var persist: Int32 = 1
        sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_busy_handler(db, { context, attempts in
            let c = Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue()
            return c.waitWhileBusy(attempts: Int(attempts)) ? 1 : 0
        }, context)
        // Interrupts a statement that runs past the deadline (SQLITE_INTERRUPT → .timeout).
        sqlite3_progress_handler(db, 4096, { context in
            let c = Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue()
            return MonotonicClock.now() >= c.deadline ? 1 : 0
        }, context)
        do {
            try execBatch(Schema.setup)
        } catch {
            close()
            throw error
        }
        // Replaces SQLite's automatic checkpoint (same threshold) and notes the WAL's length
        // after each of our commits, for `close()`.
        sqlite3_wal_hook(db, { context, db, name, frames in
            let c = Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue()
            c.walFrames = Int(frames)
            if frames >= SQLiteConnection.autoCheckpointFrames {
                sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            }
            return SQLITE_OK
        }, context)
    }

    /// The WAL length (pages) at which a commit runs a passive checkpoint (SQLite's
    /// `wal_autocheckpoint`, whose default is 1000).
    static let autoCheckpointFrames: Int32 = 128
    /// The WAL length (pages) from which closing the last connection checkpoints it.
    static let closeCheckpointFrames = 64
    /// The WAL's length after this connection's last commit; 0 when it wrote nothing.
    private var walFrames = 0

    /// Whether `close()` checkpoints the WAL (it has reached `closeCheckpointFrames`).
    var checkpointsOnClose: Bool { walFrames >= Self.closeCheckpointFrames }

    deinit { close() }

    var isOpen: Bool { db != nil }

    func close() {
        for (_, s) in statements { sqlite3_finalize(s.handle) }
        statements = [:]
        if let db {
            // SQLite checkpoints the WAL when the last connection closes: four disk syncs,
            // ~1.3 ms for a plugin process that wrote a few pages (it is usually the last).
            // Skip it while the WAL is short. Not every time: the next process to open the
            // store with no connection left re-reads the whole WAL (recovery), and only the
            // process that checkpoints can restart it (recovery forgets the checkpoint), so
            // without this the WAL would grow by every write and each open read it all.
            calico_sqlite3_checkpoint_on_close(db, walFrames >= Self.closeCheckpointFrames ? 1 : 0)
            sqlite3_close_v2(db)
        }
        db = nil
    }

    /// Creates the parent directory (0700) and the file (0600) so SQLite, which would use
    /// 0644, opens a private file; its -wal and -shm files copy the file's mode.
    private static func createFile(_ path: String) throws(DatastoreError) {
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let dir = String(path[..<slash])
            if !Files.exists(dir) {
                do { try Files.makeDirectories(dir, mode: 0o700) } catch {
                    throw .unavailable("cannot create directory for \(path): \(error)")
                }
            }
        }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw .unavailable("cannot open \(path): \(String(cString: strerror(errno)))") }
        Glibc.close(fd)
    }

    /// SQLite's busy handler: sleeps a little (with jitter, so many writers do not wake in
    /// lock step) and asks to retry, until the deadline.
    private func waitWhileBusy(attempts: Int) -> Bool {
        let remaining = deadline - MonotonicClock.now()
        if remaining <= 0 { return false }
        let base = min(0.0005 * Double(1 << min(attempts, 5)), 0.01)
        let pause = min(remaining, base * Double.random(in: 0.5...1.5))
        var ts = timespec(tv_sec: 0, tv_nsec: Int(pause * 1e9))
        nanosleep(&ts, nil)
        return true
    }

    // MARK: Running SQL

    /// Whether a transaction is open on this connection.
    var inTransaction: Bool { db.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Ends an open transaction, discarding its writes. Runs with a fresh short deadline so
    /// the progress handler cannot interrupt it: a transaction left open would keep the
    /// file's write lock and break every later call on this connection.
    func rollback() {
        guard inTransaction else { return }
        let saved = deadline
        deadline = MonotonicClock.now() + 1
        if let s = try? statement(Schema.rollback) {
            sqlite3_step(s.handle)
            sqlite3_reset(s.handle)
        }
        deadline = saved
    }

    /// Runs several `;`-separated statements (schema set-up), retrying while the file is
    /// busy (the busy handler is not consulted for every case, e.g. journal mode changes).
    func execBatch(_ sql: String) throws(DatastoreError) {
        while true {
            guard let db else { throw .unavailable("sqlite datastore is closed") }
            let rc = sqlite3_exec(db, sql, nil, nil, nil)
            if rc == SQLITE_OK { return }
            if rc & 0xff == SQLITE_BUSY || rc & 0xff == SQLITE_LOCKED, MonotonicClock.now() < deadline {
                _ = waitWhileBusy(attempts: 3)
                continue
            }
            throw error(rc, "schema set-up")
        }
    }

    /// The cached prepared statement for `sql`, reset and with no bindings.
    func statement(_ sql: String) throws(DatastoreError) -> Statement {
        if let s = statements[sql] { return s }
        guard let db else { throw .unavailable("sqlite datastore is closed") }
        var handle: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard rc == SQLITE_OK, let handle else { throw error(rc, "prepare \(sql)") }
        let s = Statement(handle: handle, connection: self)
        statements[sql] = s
        return s
    }

    /// Runs `sql` with `bindings`, calling `row` for each result row.
    func query(_ sql: String, _ bindings: [Binding] = [], row: (Statement) throws(DatastoreError) -> Void = { _ in })
        throws(DatastoreError) {
        let s = try statement(sql)
        defer {
            sqlite3_reset(s.handle)
            sqlite3_clear_bindings(s.handle)
        }
        for (i, b) in bindings.enumerated() { try s.bind(Int32(i + 1), b) }
        while try s.step() { try row(s) }
    }

    /// Maps a SQLite result code to the datastore's error vocabulary.
    func error(_ rc: Int32, _ what: String) -> DatastoreError {
        let detail = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        let message = "\(what) on \(path): \(detail)"
        switch rc & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED, SQLITE_INTERRUPT:
            return .timeout(message)
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_NOLFS, SQLITE_PROTOCOL, SQLITE_AUTH:
            return .unavailable(message)
        default:
            return .failed(message)
        }
    }
}

/// A value bound to a statement parameter.
enum Binding {
    case text(String)
    /// Raw bytes bound as TEXT (a prefix's upper bound, which need not be valid UTF-8).
    case textBytes([UInt8])
    case int(Int64)
    case null
}

/// A prepared statement owned by its connection's cache.
final class Statement {
    let handle: OpaquePointer
    unowned let connection: SQLiteConnection

    init(handle: OpaquePointer, connection: SQLiteConnection) {
        self.handle = handle
        self.connection = connection
    }

    func bind(_ index: Int32, _ value: Binding) throws(DatastoreError) {
        let rc: Int32
        switch value {
        case .text(let s):
            // withCString never hands out a nil pointer, even for "" (nil would bind NULL).
            rc = s.withCString { sqlite3_bind_text(handle, index, $0, Int32(s.utf8.count), transient) }
        case .textBytes(let bytes) where bytes.isEmpty:
            return try bind(index, .text(""))
        case .textBytes(let bytes):
            rc = bytes.withUnsafeBufferPointer { buf in
                buf.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(handle, index, $0.baseAddress!, Int32($0.count), transient) }
            }
        case .int(let v):
            rc = sqlite3_bind_int64(handle, index, v)
        case .null:
            rc = sqlite3_bind_null(handle, index)
        }
        if rc != SQLITE_OK { throw connection.error(rc, "bind") }
    }

    /// Advances; true when a row is available.
    func step() throws(DatastoreError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw connection.error(rc, "step \(String(cString: sqlite3_sql(handle)))")
    }

    func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(handle, column) else { return "" }
        let n = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
}
