/// The database layout. `kv` holds exactly Calico's etcd keys and JSON values, so
/// `sqlite3 calico.db "select key, value from kv"` reads like
/// `etcdctl get --prefix /calico/`.
enum Schema {
    /// Run on every open, so it must cost next to nothing on an existing file:
    /// `CREATE ... IF NOT EXISTS` of an existing table only reads the schema, and setting
    /// WAL on a WAL file is a no-op. WAL lets readers proceed beside the one writer; with it,
    /// `synchronous=NORMAL` still never corrupts or half-applies a transaction when a
    /// process dies (only an OS crash may lose the last commits).
    static let setup = """
        PRAGMA journal_mode=WAL;
        PRAGMA synchronous=NORMAL;
        PRAGMA journal_size_limit=262144;
        CREATE TABLE IF NOT EXISTS kv(
            key TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL,
            create_revision INTEGER NOT NULL,
            mod_revision INTEGER NOT NULL,
            version INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS meta(
            name TEXT PRIMARY KEY NOT NULL,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS events(
            id INTEGER PRIMARY KEY,
            revision INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            create_revision INTEGER NOT NULL,
            version INTEGER NOT NULL,
            prev_value TEXT,
            prev_create_revision INTEGER,
            prev_mod_revision INTEGER,
            prev_version INTEGER
        );
        CREATE INDEX IF NOT EXISTS events_by_revision ON events(revision);
        """

    // meta rows: 'revision' (the store revision, absent = 0) and 'compacted' (event history
    // up to and including this revision is gone, absent = 0).
    static let readMeta = "SELECT value FROM meta WHERE name = ?1"
    static let writeMeta = "INSERT INTO meta(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value"

    static let getKey = "SELECT value, create_revision, mod_revision, version FROM kv WHERE key = ?1"
    static let putKey = "INSERT OR REPLACE INTO kv(key, value, create_revision, mod_revision, version) VALUES(?1, ?2, ?3, ?4, ?5)"
    static let deleteKey = "DELETE FROM kv WHERE key = ?1"

    // Prefix ranges compare bytes (BINARY collation is memcmp over UTF-8), as etcd does.
    static let listRange = "SELECT key, value, create_revision, mod_revision, version FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key"
    static let listFrom = "SELECT key, value, create_revision, mod_revision, version FROM kv WHERE key >= ?1 ORDER BY key"
    static let deleteRange = "DELETE FROM kv WHERE key >= ?1 AND key < ?2"
    static let deleteFrom = "DELETE FROM kv WHERE key >= ?1"

    static let addEvent = """
        INSERT INTO events(revision, kind, key, value, create_revision, version,
                           prev_value, prev_create_revision, prev_mod_revision, prev_version)
        VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
        """
    static let eventColumns = "revision, kind, key, value, create_revision, version, prev_value, prev_create_revision, prev_mod_revision, prev_version"
    static let eventsRange = "SELECT \(eventColumns) FROM events WHERE revision > ?1 AND key >= ?2 AND key < ?3 ORDER BY id"
    static let eventsFrom = "SELECT \(eventColumns) FROM events WHERE revision > ?1 AND key >= ?2 ORDER BY id"
    /// The revision of the newest event that falls outside the retained history.
    /// (ids grow by one per event, so this is an index probe rather than an OFFSET scan).
    static let eventBeyondLimit = "SELECT revision FROM events WHERE id <= (SELECT max(id) FROM events) - ?1 ORDER BY id DESC LIMIT 1"
    static let pruneEvents = "DELETE FROM events WHERE revision <= ?1"

    static let begin = "BEGIN"
    static let beginImmediate = "BEGIN IMMEDIATE"
    static let commit = "COMMIT"
    static let rollback = "ROLLBACK"
}
