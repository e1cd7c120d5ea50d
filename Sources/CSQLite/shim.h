#include <sqlite3.h>

/// Whether closing the last connection checkpoints the WAL (SQLite's default) or leaves it
/// (sqlite3_db_config is variadic, so Swift cannot call it directly). Returns SQLITE_OK on
/// success.
static inline int calico_sqlite3_checkpoint_on_close(sqlite3 *db, int enabled) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, enabled ? 0 : 1, (int *)0);
}
