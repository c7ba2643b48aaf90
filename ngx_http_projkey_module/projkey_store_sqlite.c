
/*
 * projkey: the SQLite engine of the key store (see projkey_store.h and
 * projkey_store_engine.h); the only store file that includes <sqlite3.h>.
 */


#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "projkey_store_engine.h"


/* "pkey": marks a projkey database, see PRAGMA application_id */
#define PROJKEY_APPLICATION_ID   0x706b6579

/* bytes the WAL file is cut back to when SQLite starts it over (4 MB) */
#define PROJKEY_STORE_WAL_LIMIT  "4194304"

#define PROJKEY_STR(n)           PROJKEY_STR_(n)
#define PROJKEY_STR_(n)          #n

#define PROJKEY_AUDIT_LIMIT      50
#define PROJKEY_AUDIT_LIMIT_MAX  1000

#define PROJKEY_RFC3339          "'%Y-%m-%dT%H:%M:%SZ'"

/* a statement's "now", as Unix seconds */
#define PROJKEY_SQL_NOW          "CAST(strftime('%s', 'now') AS INTEGER)"

#define PROJKEY_PURGE_BATCH      1000

/* the columns of a key, in the order projkey_store_row() reads them */
#define PROJKEY_KEY_COLUMNS                                                   \
    "id, hash, project, name, preview, created_by, created_at, updated_at, "  \
    "coalesce(last_used_at, 0), seq, status, "                                \
    "CASE WHEN expires_at IS NULL THEN 0 WHEN expires_at < 1 THEN 1 "         \
    "ELSE expires_at END, "                                                   \
    "prev_hash, prev_preview, coalesce(prev_expires_at, 0)"

/* the KEY object of the contract, from the columns of table keys */
#define PROJKEY_KEY_JSON                                                      \
    "json_object('id', id, 'name', name, 'preview', preview, "                \
    "'status', CASE WHEN expires_at <= " PROJKEY_SQL_NOW " THEN 'expired' "  \
    "WHEN status = 1 THEN 'active' ELSE 'disabled' END, "                     \
    "'project', project, 'created_by', created_by, "                          \
    "'created_at', strftime(" PROJKEY_RFC3339 ", created_at, 'unixepoch'), "  \
    "'updated_at', strftime(" PROJKEY_RFC3339 ", updated_at, 'unixepoch'), "  \
    "'last_used_at', CASE WHEN last_used_at > 0 THEN "                        \
    "strftime(" PROJKEY_RFC3339 ", last_used_at, 'unixepoch') END, "          \
    "'expires_at', strftime(" PROJKEY_RFC3339 ", expires_at, 'unixepoch'), "  \
    "'previous_preview', CASE WHEN prev_hash IS NOT NULL THEN prev_preview "  \
    "END, 'previous_expires_at', CASE WHEN prev_hash IS NOT NULL THEN "       \
    "strftime(" PROJKEY_RFC3339 ", prev_expires_at, 'unixepoch') END)"

/*
 * A key is expired, whatever its stored status, as KEY shows it: ?10 is the
 * time of the page (numbered: a named parameter would take the number
 * after the largest seen before it, that of a later ?5)
 */
#define PROJKEY_KEY_EXPIRED      "(expires_at IS NOT NULL AND expires_at <= ?10)"

/*
 * A key a page shows: ?4 the status filter (PROJKEY_PAGE_*), ?5 the search
 * text and ?6 the end of a preview it may be, both NULL without a search.
 */
#define PROJKEY_PAGE_OK                                                       \
    "CASE ?4 WHEN 0 THEN 1"                                                   \
    " WHEN 1 THEN status = 1 AND NOT " PROJKEY_KEY_EXPIRED                    \
    " WHEN 2 THEN status = 2 AND NOT " PROJKEY_KEY_EXPIRED                    \
    " ELSE " PROJKEY_KEY_EXPIRED " END"                                       \
    " AND (?5 IS NULL OR projkey_contains(name, ?5)"                          \
    " OR lower(substr(preview, -length(?6))) = lower(?6))"

/* the columns of a page: a key, then its KEY object if the page shows it */
#define PROJKEY_PAGE_JSON        15     /* the columns of PROJKEY_KEY_COLUMNS */
#define PROJKEY_PAGE_COLUMNS                                                  \
    PROJKEY_KEY_COLUMNS ", CASE WHEN " PROJKEY_PAGE_OK                        \
    " THEN " PROJKEY_KEY_JSON " END"

/*
 * The search index, keys_search (FTS5, trigram, case-insensitive), has a
 * row per group of keys of the same created_at and first 5 characters of
 * id (almost always one key), whose rowid sorts as the list does:
 * -(created_at * 62^5 + the 5 characters in base62), negative so that the
 * newest come first in ascending order, which FTS5 reads several times
 * faster than descending.  A page reads it in rowid order, and checks
 * each key of a group itself.
 */
#define PROJKEY_SEARCH_SPAN      916132832          /* 62^5 */

#define PROJKEY_B62                                                           \
    "'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'"
#define PROJKEY_B62_DIGIT(id, i)                                              \
    "(instr(" PROJKEY_B62 ", substr(" id ", " i ", 1)) - 1)"
#define PROJKEY_SEARCH_ROWID(at, id)                                          \
    "(-" at " * 916132832 - ((((" PROJKEY_B62_DIGIT(id, "1") " * 62 + "       \
    PROJKEY_B62_DIGIT(id, "2") ") * 62 + " PROJKEY_B62_DIGIT(id, "3")         \
    ") * 62 + " PROJKEY_B62_DIGIT(id, "4") ") * 62 + "                        \
    PROJKEY_B62_DIGIT(id, "5") "))"

/*
 * A key's project and stored status as one trigram, so that the search
 * index has them as a single term: two characters of the project's code
 * (table projects) and one of the status, in the private use area (no
 * name has them, and they do not fold).
 */
#define PROJKEY_SEARCH_CODE_BASE 0xe000
#define PROJKEY_SEARCH_CODE_SPAN 4096
#define PROJKEY_SEARCH_STATUS    0xf000
#define PROJKEY_SEARCH_TERM                                                   \
    "(SELECT char(57344 + code % 4096, 57344 + code / 4096 % 4096,"          \
    " 61440 + keys.status) FROM projects WHERE projects.project ="            \
    " keys.project)"

/* the group of key (at, id) written again from table keys */
#define PROJKEY_SEARCH_REGROUP(at, id)                                        \
    " DELETE FROM keys_search"                                                \
    " WHERE rowid = " PROJKEY_SEARCH_ROWID(at, id) ";"                        \
    " INSERT INTO keys_search (rowid, fproject, fname, ftail, fcreated,"      \
    " fprefix)"                                                               \
    " SELECT " PROJKEY_SEARCH_ROWID(at, id) ","                               \
    " group_concat(" PROJKEY_SEARCH_TERM ", ' '),"                          \
    " group_concat(name, char(1)),"                                           \
    " group_concat(substr(preview, -4) || char(3), char(1)),"                 \
    " " at ", substr(" id ", 1, 5)"                                           \
    " FROM keys WHERE id >= substr(" id ", 1, 5)"                             \
    " AND id < substr(" id ", 1, 5) || char(1114111)"                         \
    " AND created_at = " at " HAVING count(*) > 0;"

#define PROJKEY_B62_GLOB         "[0-9A-Za-z]"
#define PROJKEY_SEARCH_CHECK_ID(id)                                           \
    " SELECT RAISE(ABORT, 'a key id is 12 base62 characters')"                \
    " WHERE " id " NOT GLOB '" PROJKEY_B62_GLOB PROJKEY_B62_GLOB              \
    PROJKEY_B62_GLOB PROJKEY_B62_GLOB PROJKEY_B62_GLOB PROJKEY_B62_GLOB       \
    PROJKEY_B62_GLOB PROJKEY_B62_GLOB PROJKEY_B62_GLOB PROJKEY_B62_GLOB       \
    PROJKEY_B62_GLOB PROJKEY_B62_GLOB "';"


typedef enum {
    PROJKEY_SQL_BEGIN_READ = 0,
    PROJKEY_SQL_BEGIN_WRITE,
    PROJKEY_SQL_COMMIT,
    PROJKEY_SQL_ROLLBACK,
    PROJKEY_SQL_SEQ,
    PROJKEY_SQL_SEQ_NEXT,
    PROJKEY_SQL_SEQ_ADD,
    PROJKEY_SQL_INSTANCE,
    PROJKEY_SQL_LOAD,
    PROJKEY_SQL_CHANGES,
    PROJKEY_SQL_GET,
    PROJKEY_SQL_LIST,
    PROJKEY_SQL_INSERT,
    PROJKEY_SQL_UPDATE,
    PROJKEY_SQL_TOMBSTONE,
    PROJKEY_SQL_DELETE,
    PROJKEY_SQL_AUDIT,
    PROJKEY_SQL_TOUCH,
    PROJKEY_SQL_LIST_JSON,
    PROJKEY_SQL_AUDIT_JSON,
    PROJKEY_SQL_NODE_BEAT,
    PROJKEY_SQL_NODE_EXPIRE,
    PROJKEY_SQL_NODES,
    PROJKEY_SQL_NODES_JSON,
    PROJKEY_SQL_ROLL,
    PROJKEY_SQL_RETIRE,
    PROJKEY_SQL_AUDIT_ROLL,
    PROJKEY_SQL_PURGE_ANY,
    PROJKEY_SQL_PURGE_LIST,
    PROJKEY_SQL_PURGE,
    PROJKEY_SQL_CURSOR_KEY,
    PROJKEY_SQL_PAGE,
    PROJKEY_SQL_PAGE_STATUS,
    PROJKEY_SQL_PAGE_SEARCH,
    PROJKEY_SQL_PROJECT_CODE,
    PROJKEY_SQL_SEARCH_MERGE,
    PROJKEY_SQL_N
} projkey_sql_e;


struct projkey_sqlite_s {
    sqlite3        *db;
    sqlite3_stmt   *stmt[PROJKEY_SQL_N];
    int             busy_timeout;

    /* the wait for a lock under way: since when, and for how long, in ms */
    struct timespec busy_since;
    int             busy_limit;
    int             bulk;

    /* pages: the cursors' MAC key, the trigram tokenizer's case folding */
    unsigned        has_fold:1;
    fts5_tokenizer  fold;
    Fts5Tokenizer  *fold_tok;
};




/* where a page is, and what it found */
typedef struct {
    int64_t         at;             /* of the cursor, then of the last key */
    char            id[PROJKEY_CURSOR_ID_MAX + 1];
    size_t          id_len;
    int             more;
} projkey_pos_t;


/* text being case-folded by the trigram tokenizer */
typedef struct {
    char           *out;
    size_t          len;
    size_t          size;
    int             tokens;
} projkey_fold_t;


/* a search text as folded once for a statement (sqlite3_set_auxdata) */
typedef struct {
    size_t          len;
    char            data[];
} projkey_needle_t;


/* a key copied out of a statement, to be given to a callback later */
typedef struct {
    projkey_row_t   row;
    unsigned char   hash[PROJKEY_HASH_LEN];
    unsigned char   prev_hash[PROJKEY_HASH_LEN];
    unsigned char   retired_hash[PROJKEY_HASH_LEN];
    char           *buf;
} projkey_snap_t;


static projkey_store_rc_e projkey_sqlite_open(projkey_store_t *st,
    const char *path, int busy_timeout_ms);
static void projkey_sqlite_close(projkey_store_t *st);
static projkey_store_rc_e projkey_sqlite_state(projkey_store_t *st,
    int64_t *seq, char instance[33]);
static projkey_store_rc_e projkey_sqlite_load(projkey_store_t *st,
    projkey_row_pt cb, void *data, int64_t *seq);
static projkey_store_rc_e projkey_sqlite_changes(projkey_store_t *st,
    int64_t since, projkey_row_pt cb, void *data, int64_t *seq);
static projkey_store_rc_e projkey_sqlite_get(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_sqlite_list(projkey_store_t *st,
    const char *project, size_t project_len, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_sqlite_create(projkey_store_t *st,
    const projkey_new_t *key, const projkey_actor_t *actor, projkey_row_pt cb,
    void *data);
static projkey_store_rc_e projkey_sqlite_create_batch(projkey_store_t *st,
    const projkey_new_t *keys, size_t n, const projkey_actor_t *actor);
static projkey_store_rc_e projkey_sqlite_change(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const projkey_change_t *change, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_sqlite_roll(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const unsigned char *hash, const unsigned char *preview,
    int64_t prev_expires_at, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_sqlite_purge(projkey_store_t *st,
    int64_t now, projkey_row_pt cb, void *data, size_t *n);
static projkey_store_rc_e projkey_sqlite_delete(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data);
static projkey_store_rc_e projkey_sqlite_checkpoint(projkey_store_t *st,
    int full, int *complete);
static int projkey_sqlite_busy(void *data, int count);
static projkey_store_rc_e projkey_sqlite_touch(projkey_store_t *st,
    const projkey_touch_t *touch, size_t n);
static projkey_store_rc_e projkey_sqlite_list_json(projkey_store_t *st,
    const char *project, size_t project_len, char **out, size_t *len);
static projkey_store_rc_e projkey_sqlite_audit_json(projkey_store_t *st,
    const char *project, size_t project_len, int64_t before, int limit,
    char **out, size_t *len);
static projkey_store_rc_e projkey_sqlite_nodes_json(projkey_store_t *st,
    int64_t now, char **out, size_t *len);
static projkey_store_rc_e projkey_sqlite_revision(projkey_store_t *st,
    int64_t *seq);
static projkey_store_rc_e projkey_sqlite_heartbeat(projkey_store_t *st,
    const projkey_node_t *node);
static projkey_store_rc_e projkey_sqlite_nodes(projkey_store_t *st,
    int64_t now, projkey_node_pt cb, void *data);
static projkey_store_rc_e projkey_sqlite_search_merge_step(projkey_store_t *st,
    int *more);
static projkey_store_rc_e projkey_sqlite_page(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    projkey_row_pt cb, void *data, char **next);
static projkey_store_rc_e projkey_sqlite_page_json(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    char **out, size_t *len);
static projkey_store_rc_e projkey_store_open_db(projkey_store_t *st,
    const char *path);
static projkey_store_rc_e projkey_store_migrate(projkey_store_t *st);
static projkey_store_rc_e projkey_store_pragma_int(projkey_store_t *st,
    const char *sql, int *value);
static projkey_store_rc_e projkey_store_fail(projkey_store_t *st, int rc);
static int projkey_store_unwritable(projkey_store_t *st);
static sqlite3_stmt *projkey_store_stmt(projkey_store_t *st, projkey_sql_e n,
    projkey_store_rc_e *rc);
static projkey_store_rc_e projkey_store_exec(projkey_store_t *st,
    projkey_sql_e n);
static projkey_store_rc_e projkey_store_begin(projkey_store_t *st, int write);
static projkey_store_rc_e projkey_store_commit(projkey_store_t *st);
static projkey_store_rc_e projkey_store_commit_cb(projkey_store_t *st,
    projkey_row_pt cb, void *data, const projkey_row_t *row);
static void projkey_store_rollback(projkey_store_t *st);
static projkey_store_rc_e projkey_store_seq(projkey_store_t *st,
    projkey_sql_e n, int64_t *seq);
static void projkey_store_row(sqlite3_stmt *s, projkey_row_t *row);
static projkey_store_rc_e projkey_store_walk(projkey_store_t *st,
    sqlite3_stmt *s, projkey_row_pt cb, void *data, int *found);
static projkey_store_rc_e projkey_store_snap(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    projkey_snap_t *snap);
static projkey_store_rc_e projkey_store_insert(projkey_store_t *st,
    const projkey_new_t *key, const projkey_actor_t *actor, int64_t now,
    int64_t seq);
static projkey_store_rc_e projkey_store_audit(projkey_store_t *st,
    int64_t now, const char *project, size_t project_len, const char *id,
    size_t id_len, const char *action, const projkey_actor_t *actor,
    const char *field, const char *from, size_t from_len, const char *to,
    size_t to_len);
static projkey_store_rc_e projkey_store_json(projkey_store_t *st,
    sqlite3_stmt *s, char **out, size_t *len);
static const char *projkey_status_name(int status);
static projkey_store_rc_e projkey_store_retire(projkey_store_t *st,
    const unsigned char *hash, const char *id, size_t id_len,
    const char *project, size_t project_len, int64_t seq);
static int projkey_store_hash_ok(sqlite3_stmt *s, int col);
static projkey_store_rc_e projkey_store_page_walk(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    projkey_row_pt cb, void *data, projkey_buf_t *json, char **next);
static projkey_store_rc_e projkey_store_page_bind(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    const projkey_pos_t *pos, sqlite3_stmt **stmt, char **match);
static char *projkey_store_match(int64_t code, int status, const char *q,
    size_t q_len, const char *tail, size_t tail_len);
static size_t projkey_store_tail(const char *q, size_t len,
    const char **tail);
static int64_t projkey_store_search_rowid(int64_t at, const char *id,
    size_t len);
static projkey_store_rc_e projkey_store_cursor_key(projkey_store_t *st);
static projkey_store_rc_e projkey_store_fold_init(projkey_store_t *st);
static int projkey_store_fold_token(void *data, int flags,
    const char *token, int len, int start, int end);
static char *projkey_store_fold(projkey_store_t *st, const char *text,
    size_t len, size_t *out_len);
static void projkey_store_contains(sqlite3_context *ctx, int argc,
    sqlite3_value **argv);


static const char  *projkey_store_sql[PROJKEY_SQL_N] = {

    "BEGIN",

    "BEGIN IMMEDIATE",

    "COMMIT",

    "ROLLBACK",

    "SELECT v FROM meta WHERE k = 'seq'",

    "UPDATE meta SET v = v + 1 WHERE k = 'seq' RETURNING v",

    "UPDATE meta SET v = v + ?1 WHERE k = 'seq' RETURNING v",

    "SELECT v FROM meta WHERE k = 'instance'",

    /* what the zone needs of a key, in the places of PROJKEY_KEY_COLUMNS */
    "SELECT id, hash, project, name, NULL, NULL, 0, 0, "
    "coalesce(last_used_at, 0), seq, status, "
    "CASE WHEN expires_at IS NULL THEN 0 WHEN expires_at < 1 THEN 1 "
    "ELSE expires_at END, "
    "prev_hash, NULL, coalesce(prev_expires_at, 0) FROM keys",

    /*
     * A deleted key is in "deleted" only: ids are never reused.  A hash
     * out of use comes before the key's row of the same change.
     */
    "SELECT " PROJKEY_KEY_COLUMNS " FROM keys WHERE seq > ?1"
    " UNION ALL"
    " SELECT id, hash, project, NULL, NULL, NULL, 0, 0, 0, seq, 0,"
    " 0, NULL, NULL, 0"
    " FROM deleted WHERE seq > ?1"
    " UNION ALL"
    " SELECT id, hash, project, NULL, NULL, NULL, 0, 0, 0, seq, 0,"
    " 0, NULL, NULL, 0"
    " FROM retired WHERE seq > ?1"
    " ORDER BY 10, 11",

    "SELECT " PROJKEY_KEY_COLUMNS " FROM keys WHERE id = ?1 AND project = ?2",

    "SELECT " PROJKEY_KEY_COLUMNS " FROM keys WHERE project = ?1"
    " ORDER BY created_at DESC, id DESC",

    "INSERT INTO keys (id, project, name, hash, preview, status, created_by,"
    " created_at, updated_at, last_used_at, seq, expires_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, NULL, ?9, ?10)",

    "UPDATE keys SET name = ?3, status = ?4, updated_at = ?5, seq = ?6,"
    " expires_at = ?7"
    " WHERE id = ?1 AND project = ?2",

    "INSERT INTO deleted (id, hash, project, seq) VALUES (?1, ?2, ?3, ?4)",

    "DELETE FROM keys WHERE id = ?1 AND project = ?2",

    /* detail: {"name":TO} for create and delete, else {FIELD:{from,to}} */
    "INSERT INTO audit (at, project, key_id, action, actor, addr, detail)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?7 IS NULL"
    " THEN json_object('name', ?9)"
    " ELSE json_object(?7, json_object('from', ?8, 'to', ?9)) END)",

    "UPDATE keys SET last_used_at = ?2"
    " WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",

    "SELECT json_object('keys', json_group_array(json(k))) FROM"
    " (SELECT " PROJKEY_KEY_JSON " AS k FROM keys WHERE project = ?1"
    " ORDER BY created_at DESC, id DESC)",

    /* a page of "limit" events; "next" only when an older one exists */
    "WITH page AS (SELECT seq AS s, json_object('id', seq,"
    " 'at', strftime(" PROJKEY_RFC3339 ", at, 'unixepoch'),"
    " 'action', action, 'key_id', key_id, 'actor', actor, 'addr', addr,"
    " 'detail', json(detail)) AS e"
    " FROM audit WHERE project = ?1 AND (?2 <= 0 OR seq < ?2)"
    " ORDER BY seq DESC LIMIT ?3)"
    " SELECT json_object("
    "'events', (SELECT json_group_array(json(e)) FROM"
    " (SELECT e FROM page ORDER BY s DESC)),"
    " 'next', (SELECT min(s) FROM page WHERE EXISTS (SELECT 1 FROM audit"
    " WHERE project = ?1 AND seq < (SELECT min(s) FROM page))))",

    /* one row a node name: the last heartbeat of that name wins */
    "INSERT INTO nodes (name, revision, last_seen, zone_keys, zone_used,"
    " zone_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (name) DO UPDATE SET revision = excluded.revision,"
    " last_seen = excluded.last_seen, zone_keys = excluded.zone_keys,"
    " zone_used = excluded.zone_used, zone_size = excluded.zone_size",

    "DELETE FROM nodes WHERE last_seen < ?1",

    "SELECT name, revision, last_seen, zone_keys, zone_used, zone_size,"
    " ?1 - last_seen >= ?2 FROM nodes ORDER BY name",

    /* the counter and the nodes in one statement: one snapshot */
    "SELECT json_object('revision', (SELECT v FROM meta WHERE k = 'seq'),"
    " 'nodes', (SELECT json_group_array(json(n)) FROM"
    " (SELECT json_object('node', name, 'revision', revision,"
    " 'last_seen', strftime(" PROJKEY_RFC3339 ", last_seen, 'unixepoch'),"
    " 'stale', json(CASE WHEN ?1 - last_seen >= ?2"
    " THEN 'true' ELSE 'false' END),"
    " 'zone', json_object('keys', zone_keys, 'used_bytes', zone_used,"
    " 'size_bytes', zone_size)) AS n FROM nodes ORDER BY name)))",

    /* the current secret becomes the previous one */
    "UPDATE keys SET prev_hash = hash, prev_preview = preview,"
    " prev_expires_at = ?5, hash = ?3, preview = ?4, updated_at = ?6,"
    " seq = ?7"
    " WHERE id = ?1 AND project = ?2",

    /* a previous secret out of use: followers take its hash out */
    "INSERT OR REPLACE INTO retired (hash, id, project, seq)"
    " VALUES (?1, ?2, ?3, ?4)",

    "INSERT INTO audit (at, project, key_id, action, actor, addr, detail)"
    " VALUES (?1, ?2, ?3, 'roll', ?4, ?5, json_object('preview',"
    " json_object('from', ?6, 'to', ?7), 'previous_expires_at',"
    " strftime(" PROJKEY_RFC3339 ", ?8, 'unixepoch')))",

    "SELECT 1 FROM keys WHERE prev_hash IS NOT NULL"
    " AND prev_expires_at <= ?1 LIMIT 1",

    "SELECT id, project, prev_hash FROM keys WHERE prev_hash IS NOT NULL"
    " AND prev_expires_at <= ?1 LIMIT " PROJKEY_STR(PROJKEY_PURGE_BATCH),

    "UPDATE keys SET prev_hash = NULL, prev_preview = NULL,"
    " prev_expires_at = NULL, seq = ?2 WHERE id = ?1",

    "SELECT v FROM meta WHERE k = 'cursor_key'",

    /* a page: ?1 the project, (?2, ?3) the cursor's created_at and id */
    "SELECT " PROJKEY_PAGE_COLUMNS " FROM keys"
    " WHERE project = ?1 AND (created_at, id) < (?2, ?3)"
    " ORDER BY created_at DESC, id DESC",

    /* ?7 the stored status */
    "SELECT " PROJKEY_PAGE_COLUMNS " FROM keys"
    " WHERE project = ?1 AND status = ?7 AND (created_at, id) < (?2, ?3)"
    " ORDER BY created_at DESC, id DESC",

    /*
     * ?8 the FTS5 query, ?9 the rowid of the cursor's group (its other
     * keys may follow it); the keys of a group in index order, id DESC
     */
    "SELECT " PROJKEY_PAGE_COLUMNS " FROM keys_search"
    " JOIN keys ON project = ?1 AND created_at = fcreated"
    " AND id >= fprefix AND id < fprefix || char(1114111)"
    " WHERE keys_search MATCH ?8 AND keys_search.rowid >= ?9"
    " AND (created_at, id) < (?2, ?3)"
    " ORDER BY keys_search.rowid",

    "SELECT code FROM projects WHERE project = ?1",

    /* about 1000 pages of merging, whatever the segments' levels */
    "INSERT INTO keys_search (keys_search, rank) VALUES ('merge', -1000)"
};


/*
 * Forward migrations: entry i takes the schema from version i to i + 1.
 * Append only; never edit a step that has shipped.
 */
static const char  *projkey_store_migrations[] = {

    "CREATE TABLE keys ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " project TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " hash BLOB NOT NULL UNIQUE,"
    " preview TEXT NOT NULL,"
    " status INTEGER NOT NULL CHECK (status IN (1, 2)),"
    " created_by TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " last_used_at INTEGER,"
    " seq INTEGER NOT NULL);"
    "CREATE INDEX keys_seq ON keys (seq);"
    "CREATE INDEX keys_project ON keys (project, created_at);"
    "CREATE TABLE deleted ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " hash BLOB NOT NULL,"
    " project TEXT NOT NULL,"
    " seq INTEGER NOT NULL);"
    "CREATE INDEX deleted_seq ON deleted (seq);"
    "CREATE TABLE meta ("
    " k TEXT PRIMARY KEY NOT NULL,"
    " v);"
    "INSERT INTO meta (k, v) VALUES ('seq', 0);"
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " project TEXT NOT NULL,"
    " key_id TEXT NOT NULL,"
    " action TEXT NOT NULL CHECK (action IN"
    " ('create', 'rename', 'disable', 'enable', 'delete')),"
    " actor TEXT NOT NULL,"
    " addr TEXT,"
    " detail TEXT NOT NULL);"
    "CREATE INDEX audit_project ON audit (project, seq);",

    /*
     * 1 -> 2: a change made to the file by hand (the sqlite3 shell) takes
     * a sequence number too, so that running nginxes apply it.  The store's
     * own writes set seq themselves and the triggers stand aside.
     */
    "CREATE TRIGGER keys_changed_by_hand"
    " AFTER UPDATE OF name, status, project, hash ON keys"
    " WHEN NEW.seq = OLD.seq"
    " BEGIN"
    " UPDATE meta SET v = v + 1 WHERE k = 'seq';"
    " UPDATE keys SET seq = (SELECT v FROM meta WHERE k = 'seq')"
    " WHERE id = NEW.id;"
    " END;"
    "CREATE TRIGGER keys_deleted_by_hand"
    " AFTER DELETE ON keys"
    " WHEN NOT EXISTS (SELECT 1 FROM deleted WHERE id = OLD.id)"
    " BEGIN"
    " UPDATE meta SET v = v + 1 WHERE k = 'seq';"
    " INSERT INTO deleted (id, hash, project, seq)"
    " VALUES (OLD.id, OLD.hash, OLD.project,"
    " (SELECT v FROM meta WHERE k = 'seq'));"
    " END;",

    /*
     * 2 -> 3: the nginx instances following the database (GET nodes),
     * each with the revision its zone has applied; heartbeats take no
     * sequence number.
     *
     * Expiry, and the previous secret of a rolled key.  A previous
     * secret taken out of use is a row of "retired", as a deleted key is
     * one of "deleted".  The audit table is made again, its rows and
     * sequence kept, for the CHECK of the new actions.  The triggers cover
     * the new columns, and retire a hash that a change by hand drops.
     */
    "CREATE TABLE nodes ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " revision INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " zone_keys INTEGER NOT NULL,"
    " zone_used INTEGER NOT NULL,"
    " zone_size INTEGER NOT NULL);"
    "ALTER TABLE keys ADD COLUMN expires_at INTEGER;"
    "ALTER TABLE keys ADD COLUMN prev_hash BLOB;"
    "ALTER TABLE keys ADD COLUMN prev_preview TEXT;"
    "ALTER TABLE keys ADD COLUMN prev_expires_at INTEGER;"
    "CREATE INDEX keys_prev_expires ON keys (prev_expires_at)"
    " WHERE prev_hash IS NOT NULL;"
    "CREATE TABLE retired ("
    " hash BLOB PRIMARY KEY NOT NULL,"
    " id TEXT NOT NULL,"
    " project TEXT NOT NULL,"
    " seq INTEGER NOT NULL);"
    "CREATE INDEX retired_seq ON retired (seq);"
    "CREATE TABLE audit_new ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " project TEXT NOT NULL,"
    " key_id TEXT NOT NULL,"
    " action TEXT NOT NULL CHECK (action IN"
    " ('create', 'rename', 'disable', 'enable', 'delete',"
    " 'set_expiry', 'clear_expiry', 'roll')),"
    " actor TEXT NOT NULL,"
    " addr TEXT,"
    " detail TEXT NOT NULL);"
    "INSERT INTO audit_new (seq, at, project, key_id, action, actor, addr,"
    " detail)"
    " SELECT seq, at, project, key_id, action, actor, addr, detail"
    " FROM audit ORDER BY seq;"
    "DELETE FROM sqlite_sequence WHERE name = 'audit_new';"
    "UPDATE sqlite_sequence SET name = 'audit_new' WHERE name = 'audit';"
    "DROP TABLE audit;"
    "ALTER TABLE audit_new RENAME TO audit;"
    "CREATE INDEX audit_project ON audit (project, seq);"
    "DROP TRIGGER keys_changed_by_hand;"
    "CREATE TRIGGER keys_changed_by_hand"
    " AFTER UPDATE OF name, status, project, hash, expires_at, prev_hash,"
    " prev_expires_at ON keys"
    " WHEN NEW.seq = OLD.seq"
    " BEGIN"
    " UPDATE meta SET v = v + 1 WHERE k = 'seq';"
    " INSERT OR REPLACE INTO retired (hash, id, project, seq)"
    " SELECT OLD.hash, OLD.id, OLD.project,"
    " (SELECT v FROM meta WHERE k = 'seq')"
    " WHERE OLD.hash IS NOT NEW.hash AND OLD.hash IS NOT NEW.prev_hash;"
    " INSERT OR REPLACE INTO retired (hash, id, project, seq)"
    " SELECT OLD.prev_hash, OLD.id, OLD.project,"
    " (SELECT v FROM meta WHERE k = 'seq')"
    " WHERE OLD.prev_hash IS NOT NULL"
    " AND OLD.prev_hash IS NOT NEW.prev_hash"
    " AND OLD.prev_hash IS NOT NEW.hash;"
    " UPDATE keys SET seq = (SELECT v FROM meta WHERE k = 'seq')"
    " WHERE id = NEW.id;"
    " END;"
    "DROP TRIGGER keys_deleted_by_hand;"
    "CREATE TRIGGER keys_deleted_by_hand"
    " AFTER DELETE ON keys"
    " WHEN NOT EXISTS (SELECT 1 FROM deleted WHERE id = OLD.id)"
    " BEGIN"
    " UPDATE meta SET v = v + 1 WHERE k = 'seq';"
    " INSERT INTO deleted (id, hash, project, seq)"
    " VALUES (OLD.id, OLD.hash, OLD.project,"
    " (SELECT v FROM meta WHERE k = 'seq'));"
    " INSERT OR REPLACE INTO retired (hash, id, project, seq)"
    " SELECT OLD.prev_hash, OLD.id, OLD.project,"
    " (SELECT v FROM meta WHERE k = 'seq')"
    " WHERE OLD.prev_hash IS NOT NULL;"
    " END;"

    /*
     * Pages of the key list: an index in list order, one per status, the
     * search index kept in step by triggers (changes by hand included),
     * and the key of the cursors' MACs.
     */
    "DROP INDEX IF EXISTS keys_project;"
    "CREATE INDEX IF NOT EXISTS keys_list"
    " ON keys (project, created_at DESC, id DESC);"
    "CREATE INDEX IF NOT EXISTS keys_list_status"
    " ON keys (project, status, created_at DESC, id DESC);"
    "DROP TRIGGER IF EXISTS keys_search_insert;"
    "DROP TRIGGER IF EXISTS keys_search_update;"
    "DROP TRIGGER IF EXISTS keys_search_delete;"
    "DROP TABLE IF EXISTS keys_search;"
    "CREATE TABLE IF NOT EXISTS projects ("
    " code INTEGER PRIMARY KEY,"
    " project TEXT NOT NULL UNIQUE);"
    "INSERT OR IGNORE INTO projects (project)"
    " SELECT DISTINCT project FROM keys;"
    "CREATE VIRTUAL TABLE keys_search USING fts5(fproject, fname, ftail,"
    " fcreated UNINDEXED, fprefix UNINDEXED, tokenize = 'trigram');"
    "INSERT INTO keys_search (rowid, fproject, fname, ftail, fcreated,"
    " fprefix)"
    " SELECT " PROJKEY_SEARCH_ROWID("created_at", "id") ","
    " group_concat(" PROJKEY_SEARCH_TERM ", ' '),"
    " group_concat(name, char(1)),"
    " group_concat(substr(preview, -4) || char(3), char(1)),"
    " created_at, substr(id, 1, 5)"
    " FROM keys GROUP BY 1;"
    /* one segment: a search of a large index reads several times less */
    "INSERT INTO keys_search (keys_search) VALUES ('optimize');"
    "CREATE TRIGGER keys_search_insert AFTER INSERT ON keys"
    " BEGIN"
    PROJKEY_SEARCH_CHECK_ID("NEW.id")
    " INSERT OR IGNORE INTO projects (project) VALUES (NEW.project);"
    PROJKEY_SEARCH_REGROUP("NEW.created_at", "NEW.id")
    " END;"
    "CREATE TRIGGER keys_search_update"
    " AFTER UPDATE OF id, project, name, preview, created_at, status ON keys"
    " WHEN OLD.id IS NOT NEW.id OR OLD.project IS NOT NEW.project"
    " OR OLD.name IS NOT NEW.name OR OLD.preview IS NOT NEW.preview"
    " OR OLD.created_at IS NOT NEW.created_at"
    " OR OLD.status IS NOT NEW.status"
    " BEGIN"
    PROJKEY_SEARCH_CHECK_ID("NEW.id")
    " INSERT OR IGNORE INTO projects (project) VALUES (NEW.project);"
    PROJKEY_SEARCH_REGROUP("OLD.created_at", "OLD.id")
    PROJKEY_SEARCH_REGROUP("NEW.created_at", "NEW.id")
    " END;"
    "CREATE TRIGGER keys_search_delete AFTER DELETE ON keys"
    " BEGIN"
    PROJKEY_SEARCH_REGROUP("OLD.created_at", "OLD.id")
    " END;"
    "INSERT OR IGNORE INTO meta (k, v)"
    " VALUES ('cursor_key', hex(randomblob(32)));"
};

#define PROJKEY_SCHEMA_VERSION                                                \
    ((int) (sizeof(projkey_store_migrations)                                  \
            / sizeof(projkey_store_migrations[0])))


static projkey_store_rc_e
projkey_sqlite_open(projkey_store_t *st, const char *path,
    int busy_timeout_ms)
{
    st->sq = calloc(1, sizeof(projkey_sqlite_t));

    if (st->sq == NULL) {
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    st->sq->busy_timeout = busy_timeout_ms;
    st->sq->busy_limit = busy_timeout_ms;

    return projkey_store_open_db(st, path);
}


static projkey_store_rc_e
projkey_store_open_db(projkey_store_t *st, const char *path)
{
    int                 rc, flags, app, version, tables;
    char                mode[16];
    struct stat         sb;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    if (!(st->flags & PROJKEY_STORE_CREATE) && stat(path, &sb) == -1
        && errno == ENOENT)
    {
        projkey_store_set_errmsg(st, "no such database file \"%s\"", path);
        return PROJKEY_STORE_ERROR;
    }

    if (st->flags & PROJKEY_STORE_RDONLY) {
        /*
         * A read-only connection (the master's load, nginx -t) is one
         * thread's: no mutex around each of its millions of calls.
         */
        flags = SQLITE_OPEN_READONLY|SQLITE_OPEN_NOMUTEX;

    } else {
        flags = SQLITE_OPEN_READWRITE;

        if (st->flags & PROJKEY_STORE_CREATE) {
            flags |= SQLITE_OPEN_CREATE;
        }
    }

    rc = sqlite3_open_v2(path, &st->sq->db, flags, NULL);

    if (rc != SQLITE_OK) {
        if (st->sq->db == NULL) {
            projkey_store_set_errmsg(st, "out of memory");
            return PROJKEY_STORE_ERROR;
        }

        errno = sqlite3_system_errno(st->sq->db);

        if ((rc & 0xff) == SQLITE_CANTOPEN) {
            projkey_store_set_errmsg(st, "cannot open \"%s\": %s", path,
                                     errno ? strerror(errno)
                                           : sqlite3_errmsg(st->sq->db));
            return (flags & SQLITE_OPEN_READWRITE) ? PROJKEY_STORE_READONLY
                                                   : PROJKEY_STORE_ERROR;
        }

        return projkey_store_fail(st, rc);
    }

    sqlite3_extended_result_codes(st->sq->db, 1);
    sqlite3_busy_handler(st->sq->db, projkey_sqlite_busy, st->sq);

    /* the first read: a file that is not SQLite at all fails here */

    src = projkey_store_pragma_int(st, "PRAGMA application_id", &app);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    src = projkey_store_pragma_int(st, "PRAGMA user_version", &version);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    src = projkey_store_pragma_int(st, "SELECT count(*) FROM sqlite_master",
                                   &tables);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    if (app != PROJKEY_APPLICATION_ID && (app != 0 || tables != 0)) {
        projkey_store_set_errmsg(st, "\"%s\" is not a projkey database",
                                 path);
        return PROJKEY_STORE_CORRUPT;
    }

    if (version > PROJKEY_SCHEMA_VERSION) {
        projkey_store_set_errmsg(st, "database schema version %d is newer "
                                 "than this projkey (%d)", version,
                                 PROJKEY_SCHEMA_VERSION);
        return PROJKEY_STORE_ERROR;
    }

    st->version = version;

    if (st->flags & PROJKEY_STORE_RDONLY) {
        if (version < PROJKEY_SCHEMA_VERSION
            && !(st->flags & PROJKEY_STORE_ANY_VERSION))
        {
            projkey_store_set_errmsg(st, "database schema version %d is "
                                     "older than this projkey (%d): run "
                                     "\"projkey migrate\"",
                                     version, PROJKEY_SCHEMA_VERSION);
            return PROJKEY_STORE_ERROR;
        }

        return PROJKEY_STORE_OK;
    }

    if (sqlite3_db_readonly(st->sq->db, "main") == 1) {
        projkey_store_set_errmsg(st, "cannot open \"%s\" for writing: "
                                 "attempt to write a readonly database",
                                 path);
        return PROJKEY_STORE_READONLY;
    }

    /* WAL: readers (the workers) never block the writer, nor it them */

    rc = sqlite3_prepare_v2(st->sq->db, "PRAGMA journal_mode=WAL", -1, &s,
                            NULL);
    if (rc != SQLITE_OK) {
        return projkey_store_fail(st, rc);
    }

    rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        snprintf(mode, sizeof(mode), "%s",
                 (const char *) sqlite3_column_text(s, 0));
        rc = sqlite3_step(s);
    }

    if (rc != SQLITE_DONE) {
        sqlite3_finalize(s);
        return projkey_store_fail(st, rc);
    }

    sqlite3_finalize(s);

    if (strcmp(mode, "wal") != 0) {
        projkey_store_set_errmsg(st, "cannot use the WAL journal mode on "
                                 "\"%s\" (journal mode is \"%s\")", path,
                                 mode);
        return PROJKEY_STORE_ERROR;
    }

    /*
     * The WAL file keeps its largest size when it is reset; the limit
     * gives the disk back after a burst of writes.
     */
    rc = sqlite3_exec(st->sq->db, "PRAGMA synchronous=NORMAL;"
                      "PRAGMA foreign_keys=ON;"
                      "PRAGMA journal_size_limit=" PROJKEY_STORE_WAL_LIMIT,
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return projkey_store_fail(st, rc);
    }

    if (st->flags & PROJKEY_STORE_NO_CHECKPOINT) {
        /* the owner checkpoints with projkey_sqlite_checkpoint() */
        rc = sqlite3_wal_autocheckpoint(st->sq->db, 0);
        if (rc != SQLITE_OK) {
            return projkey_store_fail(st, rc);
        }
    }

    if (version == PROJKEY_SCHEMA_VERSION) {
        return PROJKEY_STORE_OK;
    }

    /* only the owner of the schema changes it: never a running nginx */

    if (version == 0 && tables == 0 && !(st->flags & PROJKEY_STORE_CREATE)) {
        projkey_store_set_errmsg(st, "the database has no schema: run "
                                 "\"projkey init\"");
        return PROJKEY_STORE_ERROR;
    }

    if (version != 0 && !(st->flags & PROJKEY_STORE_MIGRATE)) {
        projkey_store_set_errmsg(st, "database schema version %d is older "
                                 "than this projkey (%d): run \"projkey "
                                 "migrate\"", version,
                                 PROJKEY_SCHEMA_VERSION);
        return PROJKEY_STORE_ERROR;
    }

    src = projkey_store_migrate(st);

    if (src == PROJKEY_STORE_OK) {
        st->version = PROJKEY_SCHEMA_VERSION;
    }

    return src;
}


static projkey_store_rc_e
projkey_store_migrate(projkey_store_t *st)
{
    int                 rc, version, app, tables;
    char                sql[128], hex[33];
    unsigned char       rnd[16];
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    src = projkey_store_begin(st, 1);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    /* again, in the transaction: another process may have migrated it */

    src = projkey_store_pragma_int(st, "PRAGMA user_version", &version);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    src = projkey_store_pragma_int(st, "PRAGMA application_id", &app);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    src = projkey_store_pragma_int(st, "SELECT count(*) FROM sqlite_master",
                                   &tables);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    if (app != PROJKEY_APPLICATION_ID && (app != 0 || tables != 0)) {
        projkey_store_set_errmsg(st, "not a projkey database");
        src = PROJKEY_STORE_CORRUPT;
        goto failed;
    }

    if (version > PROJKEY_SCHEMA_VERSION) {
        projkey_store_set_errmsg(st, "database schema version %d is newer "
                                 "than this projkey (%d)", version,
                                 PROJKEY_SCHEMA_VERSION);
        src = PROJKEY_STORE_ERROR;
        goto failed;
    }

    if (version == PROJKEY_SCHEMA_VERSION) {
        projkey_store_rollback(st);
        return PROJKEY_STORE_OK;
    }

    if (version == 0) {
        rc = sqlite3_exec(st->sq->db, projkey_store_migrations[0], NULL, NULL,
                          NULL);
        if (rc != SQLITE_OK) {
            src = projkey_store_fail(st, rc);
            goto failed;
        }

        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));

        rc = sqlite3_prepare_v2(st->sq->db, "INSERT INTO meta (k, v) "
                                "VALUES ('instance', ?1)", -1, &s, NULL);
        if (rc != SQLITE_OK) {
            src = projkey_store_fail(st, rc);
            goto failed;
        }

        sqlite3_bind_text(s, 1, hex, 32, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);

        if (rc != SQLITE_DONE) {
            src = projkey_store_fail(st, rc);
            goto failed;
        }

        version = 1;
    }

    for ( /* void */ ; version < PROJKEY_SCHEMA_VERSION; version++) {
        rc = sqlite3_exec(st->sq->db, projkey_store_migrations[version], NULL,
                          NULL, NULL);
        if (rc != SQLITE_OK) {
            src = projkey_store_fail(st, rc);
            goto failed;
        }
    }

    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d;"
             "PRAGMA application_id=%d", PROJKEY_SCHEMA_VERSION,
             PROJKEY_APPLICATION_ID);

    rc = sqlite3_exec(st->sq->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    return projkey_store_commit(st);

failed:

    projkey_store_rollback(st);
    return src;
}


static projkey_store_rc_e
projkey_store_pragma_int(projkey_store_t *st, const char *sql, int *value)
{
    int            rc;
    sqlite3_stmt  *s;

    rc = sqlite3_prepare_v2(st->sq->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        return projkey_store_fail(st, rc);
    }

    rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int(s, 0);
        rc = SQLITE_DONE;
    }

    sqlite3_finalize(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    return PROJKEY_STORE_OK;
}


static void
projkey_sqlite_close(projkey_store_t *st)
{
    int  i;

    if (st->sq == NULL) {
        return;
    }

    for (i = 0; i < PROJKEY_SQL_N; i++) {
        sqlite3_finalize(st->sq->stmt[i]);
    }

    if (st->sq->fold_tok != NULL) {
        st->sq->fold.xDelete(st->sq->fold_tok);
    }

    /* with every statement finalized, close cannot fail with SQLITE_BUSY */
    sqlite3_close(st->sq->db);

    free(st->sq);
    st->sq = NULL;
}


/* maps an SQLite result code to ours, with words an operator understands */

static projkey_store_rc_e
projkey_store_fail(projkey_store_t *st, int rc)
{
    int  err;

    switch (rc & 0xff) {

    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        projkey_store_set_errmsg(st, "database is locked by another process "
                                 "(waited %d ms)", st->sq->busy_timeout);
        return PROJKEY_STORE_BUSY;

    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        err = sqlite3_system_errno(st->sq->db);
        projkey_store_set_errmsg(st, "attempt to write a readonly database"
                                 "%s%s", err ? ": " : "",
                                 err ? strerror(err) : "");
        return PROJKEY_STORE_READONLY;

    case SQLITE_FULL:
        projkey_store_set_errmsg(st, "database or disk is full");
        return PROJKEY_STORE_FULL;

    case SQLITE_CORRUPT:
        projkey_store_set_errmsg(st, "the database file is damaged "
                                 "(database disk image is malformed)");
        return PROJKEY_STORE_CORRUPT;

    case SQLITE_NOTADB:
        projkey_store_set_errmsg(st, "the file is not a database "
                                 "(not an SQLite file)");
        return PROJKEY_STORE_CORRUPT;

    case SQLITE_NOMEM:
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;

    case SQLITE_IOERR:
        err = sqlite3_system_errno(st->sq->db);

        if (err == 0) {
            /* SQLite does not always keep errno: ask the file itself */
            err = projkey_store_unwritable(st);
        }

        /* a file made read-only (or immutable) under an open connection */
        if (err == EPERM || err == EACCES || err == EROFS) {
            projkey_store_set_errmsg(st, "attempt to write a readonly "
                                     "database: %s", strerror(err));
            return PROJKEY_STORE_READONLY;
        }

        if (err == ENOSPC || err == EDQUOT) {
            projkey_store_set_errmsg(st, "database or disk is full: %s",
                                     strerror(err));
            return PROJKEY_STORE_FULL;
        }

        projkey_store_set_errmsg(st, "disk I/O error%s%s",
                                 err ? ": " : "", err ? strerror(err) : "");
        return PROJKEY_STORE_ERROR;

    default:
        projkey_store_set_errmsg(st, "%s", st->sq->db != NULL
                                           ? sqlite3_errmsg(st->sq->db)
                                           : sqlite3_errstr(rc));
        return PROJKEY_STORE_ERROR;
    }
}


/* why the database or its WAL cannot be written, or 0 */

static int
projkey_store_unwritable(projkey_store_t *st)
{
    char         wal[4096];
    const char  *path;

    path = sqlite3_db_filename(st->sq->db, "main");

    if (path == NULL || path[0] == '\0') {
        return 0;
    }

    if (access(path, W_OK) == -1) {
        return errno;
    }

    if ((size_t) snprintf(wal, sizeof(wal), "%s-wal", path) < sizeof(wal)
        && access(wal, W_OK) == -1 && errno != ENOENT)
    {
        return errno;
    }

    return 0;
}


/* statements are prepared on first use and kept for the connection's life */

static sqlite3_stmt *
projkey_store_stmt(projkey_store_t *st, projkey_sql_e n,
    projkey_store_rc_e *rc)
{
    int  err;

    *rc = PROJKEY_STORE_OK;

    if (st->sq->stmt[n] != NULL) {
        return st->sq->stmt[n];
    }

    err = sqlite3_prepare_v3(st->sq->db, projkey_store_sql[n], -1,
                             SQLITE_PREPARE_PERSISTENT, &st->sq->stmt[n],
                             NULL);
    if (err != SQLITE_OK) {
        *rc = projkey_store_fail(st, err);
        st->sq->stmt[n] = NULL;
        return NULL;
    }

    return st->sq->stmt[n];
}


/* runs a statement without parameters nor rows */

static projkey_store_rc_e
projkey_store_exec(projkey_store_t *st, projkey_sql_e n)
{
    int                 rc;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    s = projkey_store_stmt(st, n, &src);
    if (s == NULL) {
        return src;
    }

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_store_begin(projkey_store_t *st, int write)
{
    return projkey_store_exec(st, write ? PROJKEY_SQL_BEGIN_WRITE
                                        : PROJKEY_SQL_BEGIN_READ);
}


/* commits, then hands the committed row to the caller's callback, if any */

static projkey_store_rc_e
projkey_store_commit_cb(projkey_store_t *st, projkey_row_pt cb, void *data,
    const projkey_row_t *row)
{
    projkey_store_rc_e  rc;

    rc = projkey_store_commit(st);

    if (rc == PROJKEY_STORE_OK && cb != NULL && cb(data, row) != 0) {
        projkey_store_set_errmsg(st, "stopped by the caller");
        rc = PROJKEY_STORE_ERROR;
    }

    return rc;
}


static projkey_store_rc_e
projkey_store_commit(projkey_store_t *st)
{
    projkey_store_rc_e  rc;

    rc = projkey_store_exec(st, PROJKEY_SQL_COMMIT);

    if (rc != PROJKEY_STORE_OK) {
        projkey_store_rollback(st);
    }

    return rc;
}


/* keeps the error message of what failed before */

static void
projkey_store_rollback(projkey_store_t *st)
{
    char                saved[PROJKEY_ERRMSG_LEN];
    projkey_store_rc_e  rc;

    /* SQLite rolls back by itself after some errors */
    if (sqlite3_get_autocommit(st->sq->db)) {
        return;
    }

    memcpy(saved, st->errmsg, PROJKEY_ERRMSG_LEN);

    rc = projkey_store_exec(st, PROJKEY_SQL_ROLLBACK);

    if (rc == PROJKEY_STORE_OK) {
        memcpy(st->errmsg, saved, PROJKEY_ERRMSG_LEN);
    }
}


/* reads (PROJKEY_SQL_SEQ) or takes (PROJKEY_SQL_SEQ_NEXT) the sequence */

static projkey_store_rc_e
projkey_store_seq(projkey_store_t *st, projkey_sql_e n, int64_t *seq)
{
    int                 rc;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    s = projkey_store_stmt(st, n, &src);
    if (s == NULL) {
        return src;
    }

    rc = sqlite3_step(s);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);

        if (rc == SQLITE_DONE) {
            projkey_store_set_errmsg(st, "the change sequence is missing "
                                     "from table meta");
            return PROJKEY_STORE_CORRUPT;
        }

        return projkey_store_fail(st, rc);
    }

    *seq = sqlite3_column_int64(s, 0);

    /* RETURNING: the update completes only when stepped to its end */
    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_sqlite_state(projkey_store_t *st, int64_t *seq, char instance[33])
{
    int                 rc;
    const char         *p;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    src = projkey_store_begin(st, 0);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    src = projkey_store_seq(st, PROJKEY_SQL_SEQ, seq);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_INSTANCE, &src);
    if (s == NULL) {
        goto failed;
    }

    rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        p = (const char *) sqlite3_column_text(s, 0);
        snprintf(instance, 33, "%s", p != NULL ? p : "");
        rc = SQLITE_DONE;

    } else if (rc == SQLITE_DONE) {
        instance[0] = '\0';
    }

    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    return projkey_store_commit(st);

failed:

    projkey_store_rollback(st);
    return src;
}


/* a row of PROJKEY_KEY_COLUMNS, pointing into the statement's memory */

static void
projkey_store_row(sqlite3_stmt *s, projkey_row_t *row)
{
    row->id = (const char *) sqlite3_column_text(s, 0);
    row->hash = sqlite3_column_blob(s, 1);
    row->project = (const char *) sqlite3_column_text(s, 2);
    row->project_len = sqlite3_column_bytes(s, 2);
    row->name = (const char *) sqlite3_column_text(s, 3);
    row->name_len = sqlite3_column_bytes(s, 3);
    row->preview = (const char *) sqlite3_column_text(s, 4);
    row->created_by = (const char *) sqlite3_column_text(s, 5);
    row->created_at = sqlite3_column_int64(s, 6);
    row->updated_at = sqlite3_column_int64(s, 7);
    row->last_used_at = sqlite3_column_int64(s, 8);
    row->seq = sqlite3_column_int64(s, 9);
    row->status = sqlite3_column_int(s, 10);
    row->expires_at = sqlite3_column_int64(s, 11);
    row->prev_hash = sqlite3_column_blob(s, 12);
    row->prev_preview = (const char *) sqlite3_column_text(s, 13);
    row->prev_expires_at = sqlite3_column_int64(s, 14);
    row->retired_hash = NULL;

    if (row->prev_hash == NULL) {
        row->prev_preview = NULL;
        row->prev_expires_at = 0;
    }
}


/* a hash column is PROJKEY_HASH_LEN bytes; a previous one may be NULL */

static int
projkey_store_hash_ok(sqlite3_stmt *s, int col)
{
    if (col == 12 && sqlite3_column_type(s, col) == SQLITE_NULL) {
        return 1;
    }

    return sqlite3_column_type(s, col) == SQLITE_BLOB
           && sqlite3_column_bytes(s, col) == PROJKEY_HASH_LEN;
}


/* steps a bound statement to its end, a row at a time to cb; resets it */

static projkey_store_rc_e
projkey_store_walk(projkey_store_t *st, sqlite3_stmt *s, projkey_row_pt cb,
    void *data, int *found)
{
    int            rc;
    projkey_row_t  row;

    *found = 0;

    for ( ;; ) {
        rc = sqlite3_step(s);

        if (rc != SQLITE_ROW) {
            break;
        }

        projkey_store_row(s, &row);

        if (row.hash == NULL
            || sqlite3_column_bytes(s, 1) != PROJKEY_HASH_LEN
            || !projkey_store_hash_ok(s, 12))
        {
            sqlite3_reset(s);
            projkey_store_set_errmsg(st, "the key \"%s\" has a damaged hash",
                                     row.id != NULL ? row.id : "");
            return PROJKEY_STORE_CORRUPT;
        }

        (*found)++;

        if (cb != NULL && cb(data, &row) != 0) {
            sqlite3_reset(s);
            projkey_store_set_errmsg(st, "stopped by the caller");
            return PROJKEY_STORE_ERROR;
        }
    }

    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_sqlite_load(projkey_store_t *st, projkey_row_pt cb, void *data,
    int64_t *seq)
{
    int                 found;
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    rc = projkey_store_begin(st, 0);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    rc = projkey_store_seq(st, PROJKEY_SQL_SEQ, seq);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_LOAD, &rc);
    if (s == NULL) {
        goto failed;
    }

    rc = projkey_store_walk(st, s, cb, data, &found);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    return projkey_store_commit(st);

failed:

    projkey_store_rollback(st);
    return rc;
}


static projkey_store_rc_e
projkey_sqlite_changes(projkey_store_t *st, int64_t since, projkey_row_pt cb,
    void *data, int64_t *seq)
{
    int                 found;
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    rc = projkey_store_begin(st, 0);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    rc = projkey_store_seq(st, PROJKEY_SQL_SEQ, seq);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    if (*seq > since) {
        s = projkey_store_stmt(st, PROJKEY_SQL_CHANGES, &rc);
        if (s == NULL) {
            goto failed;
        }

        sqlite3_bind_int64(s, 1, since);

        rc = projkey_store_walk(st, s, cb, data, &found);
        if (rc != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    return projkey_store_commit(st);

failed:

    projkey_store_rollback(st);
    return rc;
}


static projkey_store_rc_e
projkey_sqlite_get(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len, projkey_row_pt cb,
    void *data)
{
    int                 found;
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    s = projkey_store_stmt(st, PROJKEY_SQL_GET, &rc);
    if (s == NULL) {
        return rc;
    }

    sqlite3_bind_text(s, 1, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, project, project_len, SQLITE_STATIC);

    rc = projkey_store_walk(st, s, cb, data, &found);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    if (found == 0) {
        projkey_store_set_errmsg(st, "no such key");
        return PROJKEY_STORE_NOTFOUND;
    }

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_sqlite_list(projkey_store_t *st, const char *project,
    size_t project_len, projkey_row_pt cb, void *data)
{
    int                 found;
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    s = projkey_store_stmt(st, PROJKEY_SQL_LIST, &rc);
    if (s == NULL) {
        return rc;
    }

    sqlite3_bind_text(s, 1, project, project_len, SQLITE_STATIC);

    return projkey_store_walk(st, s, cb, data, &found);
}


/* copies one key, in the transaction, for a callback after the commit */

static projkey_store_rc_e
projkey_store_snap(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len, projkey_snap_t *snap)
{
    int                 rc, i;
    char               *p;
    size_t              size, len[6];
    sqlite3_stmt       *s;
    const char         *str[6];
    projkey_row_t      *row;
    projkey_store_rc_e  src;
    static const int    col[6] = { 0, 2, 3, 4, 5, 13 };

    s = projkey_store_stmt(st, PROJKEY_SQL_GET, &src);
    if (s == NULL) {
        return src;
    }

    sqlite3_bind_text(s, 1, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, project, project_len, SQLITE_STATIC);

    rc = sqlite3_step(s);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);

        if (rc == SQLITE_DONE) {
            projkey_store_set_errmsg(st, "no such key");
            return PROJKEY_STORE_NOTFOUND;
        }

        return projkey_store_fail(st, rc);
    }

    row = &snap->row;
    projkey_store_row(s, row);

    if (row->hash == NULL
        || sqlite3_column_bytes(s, 1) != PROJKEY_HASH_LEN
        || !projkey_store_hash_ok(s, 12))
    {
        sqlite3_reset(s);
        projkey_store_set_errmsg(st, "the key has a damaged hash");
        return PROJKEY_STORE_CORRUPT;
    }

    memcpy(snap->hash, row->hash, PROJKEY_HASH_LEN);
    row->hash = snap->hash;

    if (row->prev_hash != NULL) {
        memcpy(snap->prev_hash, row->prev_hash, PROJKEY_HASH_LEN);
        row->prev_hash = snap->prev_hash;
    }

    size = 0;

    for (i = 0; i < 6; i++) {
        str[i] = (const char *) sqlite3_column_text(s, col[i]);
        len[i] = sqlite3_column_bytes(s, col[i]);
        size += len[i] + 1;
    }

    snap->buf = malloc(size);

    if (snap->buf == NULL) {
        sqlite3_reset(s);
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    p = snap->buf;

    for (i = 0; i < 6; i++) {
        if (len[i] != 0) {
            memcpy(p, str[i], len[i]);
        }

        p[len[i]] = '\0';
        str[i] = p;
        p += len[i] + 1;
    }

    row->id = str[0];
    row->project = str[1];
    row->name = str[2];
    row->preview = str[3];
    row->created_by = str[4];
    row->prev_preview = row->prev_hash != NULL ? str[5] : NULL;

    sqlite3_reset(s);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_store_insert(projkey_store_t *st, const projkey_new_t *key,
    const projkey_actor_t *actor, int64_t now, int64_t seq)
{
    int                 rc;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    s = projkey_store_stmt(st, PROJKEY_SQL_INSERT, &src);
    if (s == NULL) {
        return src;
    }

    sqlite3_bind_text(s, 1, key->id, PROJKEY_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key->project, key->project_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, key->name, key->name_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, key->hash, PROJKEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, (const char *) key->preview, PROJKEY_PREVIEW_LEN,
                      SQLITE_STATIC);
    sqlite3_bind_int(s, 6, key->status != 0 ? key->status
                                            : PROJKEY_STATUS_ACTIVE);
    sqlite3_bind_text(s, 7, actor->user, actor->user_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, now);
    sqlite3_bind_int64(s, 9, seq);

    if (key->expires_at > 0) {
        sqlite3_bind_int64(s, 10, key->expires_at);

    } else {
        sqlite3_bind_null(s, 10);
    }

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
            projkey_store_set_errmsg(st, "cannot create the key: %s",
                                     sqlite3_errmsg(st->sq->db));
            return PROJKEY_STORE_ERROR;
        }

        return projkey_store_fail(st, rc);
    }

    return projkey_store_audit(st, now, key->project, key->project_len,
                               key->id, PROJKEY_ID_LEN, "create", actor,
                               NULL, NULL, 0, key->name, key->name_len);
}


static projkey_store_rc_e
projkey_store_audit(projkey_store_t *st, int64_t now, const char *project,
    size_t project_len, const char *id, size_t id_len, const char *action,
    const projkey_actor_t *actor, const char *field, const char *from,
    size_t from_len, const char *to, size_t to_len)
{
    int                 rc;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    s = projkey_store_stmt(st, PROJKEY_SQL_AUDIT, &src);
    if (s == NULL) {
        return src;
    }

    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, project, project_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, actor->user, actor->user_len, SQLITE_STATIC);

    if (actor->addr != NULL) {
        sqlite3_bind_text(s, 6, actor->addr, actor->addr_len, SQLITE_STATIC);

    } else {
        sqlite3_bind_null(s, 6);
    }

    if (field != NULL) {
        sqlite3_bind_text(s, 7, field, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 8, from, from_len, SQLITE_STATIC);

    } else {
        sqlite3_bind_null(s, 7);
        sqlite3_bind_null(s, 8);
    }

    sqlite3_bind_text(s, 9, to, to_len, SQLITE_STATIC);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_sqlite_create(projkey_store_t *st, const projkey_new_t *key,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data)
{
    int64_t             now, seq;
    const char         *msg;
    projkey_snap_t      snap;
    projkey_store_rc_e  rc;

    snap.buf = NULL;
    now = time(NULL);

    if (key->expires_at > 0) {
        msg = projkey_text_check_expires(key->expires_at, now);
        if (msg != NULL) {
            return projkey_store_invalid(st, msg);
        }
    }

    rc = projkey_store_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    rc = projkey_store_seq(st, PROJKEY_SQL_SEQ_NEXT, &seq);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    rc = projkey_store_insert(st, key, actor, now, seq);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    if (cb != NULL) {
        rc = projkey_store_snap(st, key->project, key->project_len, key->id,
                                PROJKEY_ID_LEN, &snap);
        if (rc != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    rc = projkey_store_commit_cb(st, cb, data, &snap.row);

    free(snap.buf);
    return rc;

failed:

    projkey_store_rollback(st);
    free(snap.buf);
    return rc;
}


static projkey_store_rc_e
projkey_sqlite_create_batch(projkey_store_t *st, const projkey_new_t *keys,
    size_t n, const projkey_actor_t *actor)
{
    size_t              i;
    int64_t             now, seq;
    const char         *msg;
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    if (n == 0) {
        return PROJKEY_STORE_OK;
    }

    now = time(NULL);

    for (i = 0; i < n; i++) {
        if (keys[i].expires_at > 0) {
            msg = projkey_text_check_expires(keys[i].expires_at, now);
            if (msg != NULL) {
                return projkey_store_invalid(st, msg);
            }
        }
    }

    /*
     * Hashes are random, so inserts land all over the hash index: with
     * SQLite's default 2 MB cache, a million keys mean a page read per
     * insert.  Only the bulk path pays this memory, and only once.
     */
    if (!st->sq->bulk) {
        st->sq->bulk = 1;
        (void) sqlite3_exec(st->sq->db, "PRAGMA cache_size=-262144", NULL,
                            NULL, NULL);
    }

    rc = projkey_store_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    /* n sequence numbers at once: the counter ends at the last of them */

    s = projkey_store_stmt(st, PROJKEY_SQL_SEQ_ADD, &rc);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_int64(s, 1, (sqlite3_int64) n);

    rc = projkey_store_seq(st, PROJKEY_SQL_SEQ_ADD, &seq);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    seq -= n;

    for (i = 0; i < n; i++) {
        rc = projkey_store_insert(st, &keys[i], actor, now, seq + i + 1);
        if (rc != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    return projkey_store_commit(st);

failed:

    projkey_store_rollback(st);
    return rc;
}


static projkey_store_rc_e
projkey_sqlite_change(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const projkey_change_t *change, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data)
{
    int                 rc, rename, restatus, reexpire, status;
    char                from[PROJKEY_TIME_LEN], to[PROJKEY_TIME_LEN];
    size_t              name_len;
    int64_t             now, seq, expires;
    const char         *name, *msg;
    sqlite3_stmt       *s;
    projkey_snap_t      snap, after;
    projkey_store_rc_e  src;

    snap.buf = NULL;
    after.buf = NULL;
    now = time(NULL);

    name = change->name;
    name_len = change->name_len;
    status = change->status;
    expires = change->set_expires ? change->expires_at : 0;

    if (status != 0 && status != PROJKEY_STATUS_ACTIVE
        && status != PROJKEY_STATUS_DISABLED)
    {
        projkey_store_set_errmsg(st, "The status must be \"active\" or "
                                 "\"disabled\".");
        return PROJKEY_STORE_INVALID;
    }

    if (expires > 0) {
        msg = projkey_text_check_expires(expires, now);
        if (msg != NULL) {
            return projkey_store_invalid(st, msg);
        }
    }

    src = projkey_store_begin(st, 1);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    src = projkey_store_snap(st, project, project_len, id, id_len, &snap);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    rename = (name != NULL
              && (name_len != snap.row.name_len
                  || memcmp(name, snap.row.name, name_len) != 0));
    restatus = (status != 0 && status != snap.row.status);
    reexpire = (change->set_expires && expires != snap.row.expires_at);

    if (!rename && !restatus && !reexpire) {
        /* nothing to write: a read, and no sequence number taken */
        projkey_store_rollback(st);
        src = PROJKEY_STORE_OK;

        if (cb != NULL && cb(data, &snap.row) != 0) {
            projkey_store_set_errmsg(st, "stopped by the caller");
            src = PROJKEY_STORE_ERROR;
        }

        free(snap.buf);
        return src;
    }

    src = projkey_store_seq(st, PROJKEY_SQL_SEQ_NEXT, &seq);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_UPDATE, &src);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_text(s, 1, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, project, project_len, SQLITE_STATIC);

    if (rename) {
        sqlite3_bind_text(s, 3, name, name_len, SQLITE_STATIC);

    } else {
        sqlite3_bind_text(s, 3, snap.row.name, snap.row.name_len,
                          SQLITE_STATIC);
    }

    sqlite3_bind_int(s, 4, restatus ? status : snap.row.status);
    sqlite3_bind_int64(s, 5, now);
    sqlite3_bind_int64(s, 6, seq);

    if (!reexpire) {
        expires = snap.row.expires_at;
    }

    if (expires > 0) {
        sqlite3_bind_int64(s, 7, expires);

    } else {
        sqlite3_bind_null(s, 7);
    }

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    if (rename) {
        src = projkey_store_audit(st, now, project, project_len, id, id_len,
                                  "rename", actor, "name", snap.row.name,
                                  snap.row.name_len, name, name_len);
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    if (restatus) {
        src = projkey_store_audit(st, now, project, project_len, id, id_len,
                                  status == PROJKEY_STATUS_ACTIVE
                                  ? "enable" : "disable",
                                  actor, "status",
                                  projkey_status_name(snap.row.status),
                                  strlen(projkey_status_name(snap.row.status)),
                                  projkey_status_name(status),
                                  strlen(projkey_status_name(status)));
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    if (reexpire) {
        src = projkey_store_audit(st, now, project, project_len, id, id_len,
                                  expires > 0 ? "set_expiry" : "clear_expiry",
                                  actor, "expires_at",
                                  snap.row.expires_at > 0
                                  ? projkey_text_format_time(
                                        snap.row.expires_at, from)
                                  : NULL,
                                  snap.row.expires_at > 0
                                  ? PROJKEY_TIME_LEN - 1 : 0,
                                  expires > 0
                                  ? projkey_text_format_time(expires, to)
                                  : NULL,
                                  expires > 0 ? PROJKEY_TIME_LEN - 1 : 0);
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    if (cb != NULL || check != NULL) {
        src = projkey_store_snap(st, project, project_len, id, id_len,
                                 &after);
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    if (check != NULL && check(data, &after.row) != 0) {
        projkey_store_set_errmsg(st, "stopped by the caller");
        src = PROJKEY_STORE_ERROR;
        goto failed;
    }

    src = projkey_store_commit_cb(st, cb, data, &after.row);

    free(snap.buf);
    free(after.buf);
    return src;

failed:

    projkey_store_rollback(st);
    free(snap.buf);
    free(after.buf);
    return src;
}


static projkey_store_rc_e
projkey_sqlite_roll(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const unsigned char *hash, const unsigned char *preview,
    int64_t prev_expires_at, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data)
{
    int                 rc;
    int64_t             now, seq;
    const char         *msg;
    sqlite3_stmt       *s;
    projkey_snap_t      snap, after;
    projkey_store_rc_e  src;

    snap.buf = NULL;
    after.buf = NULL;
    now = time(NULL);

    msg = projkey_text_check_previous(&prev_expires_at, now);
    if (msg != NULL) {
        return projkey_store_invalid(st, msg);
    }

    src = projkey_store_begin(st, 1);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    src = projkey_store_snap(st, project, project_len, id, id_len, &snap);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    src = projkey_store_seq(st, PROJKEY_SQL_SEQ_NEXT, &seq);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    /* only one previous secret: an earlier one goes now */

    if (snap.row.prev_hash != NULL) {
        src = projkey_store_retire(st, snap.row.prev_hash, id, id_len,
                                   project, project_len, seq);
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_ROLL, &src);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_text(s, 1, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, project, project_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, hash, PROJKEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, (const char *) preview, PROJKEY_PREVIEW_LEN,
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, prev_expires_at);
    sqlite3_bind_int64(s, 6, now);
    sqlite3_bind_int64(s, 7, seq);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
            projkey_store_set_errmsg(st, "cannot roll the key: %s",
                                     sqlite3_errmsg(st->sq->db));
            src = PROJKEY_STORE_ERROR;

        } else {
            src = projkey_store_fail(st, rc);
        }

        goto failed;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_AUDIT_ROLL, &src);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, project, project_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, actor->user, actor->user_len, SQLITE_STATIC);

    if (actor->addr != NULL) {
        sqlite3_bind_text(s, 5, actor->addr, actor->addr_len, SQLITE_STATIC);

    } else {
        sqlite3_bind_null(s, 5);
    }

    sqlite3_bind_text(s, 6, snap.row.preview, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, (const char *) preview, PROJKEY_PREVIEW_LEN,
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, prev_expires_at);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    src = projkey_store_snap(st, project, project_len, id, id_len, &after);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    if (snap.row.prev_hash != NULL) {
        memcpy(after.retired_hash, snap.row.prev_hash, PROJKEY_HASH_LEN);
        after.row.retired_hash = after.retired_hash;
    }

    if (check != NULL && check(data, &after.row) != 0) {
        projkey_store_set_errmsg(st, "stopped by the caller");
        src = PROJKEY_STORE_ERROR;
        goto failed;
    }

    src = projkey_store_commit_cb(st, cb, data, &after.row);

    free(snap.buf);
    free(after.buf);
    return src;

failed:

    projkey_store_rollback(st);
    free(snap.buf);
    free(after.buf);
    return src;
}


static projkey_store_rc_e
projkey_store_retire(projkey_store_t *st, const unsigned char *hash,
    const char *id, size_t id_len, const char *project, size_t project_len,
    int64_t seq)
{
    int                 rc;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    s = projkey_store_stmt(st, PROJKEY_SQL_RETIRE, &src);
    if (s == NULL) {
        return src;
    }

    sqlite3_bind_blob(s, 1, hash, PROJKEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, project, project_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, seq);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    return PROJKEY_STORE_OK;
}


/* what a purge took out, kept until after the commit */
typedef struct {
    char            id[PROJKEY_ID_LEN + 1];
    unsigned char   hash[PROJKEY_HASH_LEN];
    int64_t         seq;
} projkey_purged_t;


static projkey_store_rc_e
projkey_sqlite_purge(projkey_store_t *st, int64_t now, projkey_row_pt cb,
    void *data, size_t *n)
{
    int                 rc;
    char               *project, *more;
    size_t              i, k, plen, psize;
    int64_t             seq;
    sqlite3_stmt       *s, *u;
    projkey_row_t       row;
    const char         *text;
    projkey_purged_t   *purged;
    projkey_store_rc_e  src;

    *n = 0;

    /* the usual case, nothing expired: one read of an index, no lock */

    s = projkey_store_stmt(st, PROJKEY_SQL_PURGE_ANY, &src);
    if (s == NULL) {
        return src;
    }

    sqlite3_bind_int64(s, 1, now);
    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc == SQLITE_DONE) {
        return PROJKEY_STORE_OK;
    }

    if (rc != SQLITE_ROW) {
        return projkey_store_fail(st, rc);
    }

    purged = malloc(PROJKEY_PURGE_BATCH * sizeof(projkey_purged_t));
    project = NULL;
    psize = 0;
    plen = 0;

    if (purged == NULL) {
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    src = projkey_store_begin(st, 1);
    if (src != PROJKEY_STORE_OK) {
        free(purged);
        return src;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_PURGE_LIST, &src);
    if (s == NULL) {
        goto failed;
    }

    u = projkey_store_stmt(st, PROJKEY_SQL_PURGE, &src);
    if (u == NULL) {
        goto failed;
    }

    sqlite3_bind_int64(s, 1, now);

    /* the projects one after the other in one buffer, NUL-terminated */

    k = 0;

    for ( ;; ) {
        rc = sqlite3_step(s);

        if (rc != SQLITE_ROW) {
            break;
        }

        if (!projkey_store_hash_ok(s, 2)
            || sqlite3_column_bytes(s, 0) != PROJKEY_ID_LEN)
        {
            continue;
        }

        text = (const char *) sqlite3_column_text(s, 1);
        i = sqlite3_column_bytes(s, 1);

        if (plen + i + 1 > psize) {
            psize = (plen + i + 1) * 2;
            more = realloc(project, psize);

            if (more == NULL) {
                sqlite3_reset(s);
                projkey_store_set_errmsg(st, "out of memory");
                src = PROJKEY_STORE_ERROR;
                goto failed;
            }

            project = more;
        }

        memcpy(project + plen, text, i);
        project[plen + i] = '\0';
        plen += i + 1;

        memcpy(purged[k].id, sqlite3_column_text(s, 0), PROJKEY_ID_LEN);
        purged[k].id[PROJKEY_ID_LEN] = '\0';
        memcpy(purged[k].hash, sqlite3_column_blob(s, 2), PROJKEY_HASH_LEN);
        k++;
    }

    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    text = project;

    for (i = 0; i < k; i++) {
        src = projkey_store_seq(st, PROJKEY_SQL_SEQ_NEXT, &seq);
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }

        purged[i].seq = seq;

        src = projkey_store_retire(st, purged[i].hash, purged[i].id,
                                   PROJKEY_ID_LEN, text, strlen(text), seq);
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }

        sqlite3_bind_text(u, 1, purged[i].id, PROJKEY_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(u, 2, seq);

        rc = sqlite3_step(u);
        sqlite3_reset(u);

        if (rc != SQLITE_DONE) {
            src = projkey_store_fail(st, rc);
            goto failed;
        }

        text += strlen(text) + 1;
    }

    src = projkey_store_commit(st);
    if (src != PROJKEY_STORE_OK) {
        goto done;
    }

    *n = k;

    text = project;

    for (i = 0; cb != NULL && i < k; i++) {
        memset(&row, 0, sizeof(projkey_row_t));
        row.id = purged[i].id;
        row.hash = purged[i].hash;
        row.project = text;
        row.project_len = strlen(text);
        row.seq = purged[i].seq;
        row.status = PROJKEY_STATUS_DELETED;

        text += strlen(text) + 1;

        if (cb(data, &row) != 0) {
            projkey_store_set_errmsg(st, "stopped by the caller");
            src = PROJKEY_STORE_ERROR;
            break;
        }
    }

    goto done;

failed:

    projkey_store_rollback(st);

done:

    free(purged);
    free(project);
    return src;
}


static projkey_store_rc_e
projkey_sqlite_delete(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data)
{
    int                 rc;
    int64_t             now, seq;
    sqlite3_stmt       *s;
    projkey_snap_t      snap;
    projkey_store_rc_e  src;

    snap.buf = NULL;
    now = time(NULL);

    src = projkey_store_begin(st, 1);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    src = projkey_store_snap(st, project, project_len, id, id_len, &snap);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    src = projkey_store_seq(st, PROJKEY_SQL_SEQ_NEXT, &seq);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_TOMBSTONE, &src);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_text(s, 1, snap.row.id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, snap.row.hash, PROJKEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, snap.row.project, snap.row.project_len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, seq);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    if (snap.row.prev_hash != NULL) {
        src = projkey_store_retire(st, snap.row.prev_hash, id, id_len,
                                   project, project_len, seq);
        if (src != PROJKEY_STORE_OK) {
            goto failed;
        }
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_DELETE, &src);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_text(s, 1, id, id_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, project, project_len, SQLITE_STATIC);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    src = projkey_store_audit(st, now, project, project_len, id, id_len,
                              "delete", actor, NULL, NULL, 0, snap.row.name,
                              snap.row.name_len);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    /* the revision of the answer: the delete's, as changes() gives it */
    snap.row.seq = seq;

    src = projkey_store_commit_cb(st, cb, data, &snap.row);

    free(snap.buf);
    return src;

failed:

    projkey_store_rollback(st);
    free(snap.buf);
    return src;
}


/*
 * SQLite's own busy handler sleeps 1, 2, 5, 10, ... 100 ms: a writer of
 * another worker would wait milliseconds for a commit that takes a
 * fraction of one.  This one polls every 100 us for the first 10 ms, then
 * every 1 ms, then every 10 ms, until the limit.
 */

static int
projkey_sqlite_busy(void *data, int count)
{
    projkey_sqlite_t *sq = data;

    int64_t          waited;
    struct timespec  now;

    (void) clock_gettime(CLOCK_MONOTONIC, &now);

    if (count == 0) {
        sq->busy_since = now;
    }

    waited = (int64_t) (now.tv_sec - sq->busy_since.tv_sec) * 1000000
             + (now.tv_nsec - sq->busy_since.tv_nsec) / 1000;

    if (waited >= (int64_t) sq->busy_limit * 1000) {
        return 0;
    }

    usleep(waited < 10000 ? 100 : (waited < 100000 ? 1000 : 10000));

    return 1;
}


static projkey_store_rc_e
projkey_sqlite_checkpoint(projkey_store_t *st, int full, int *complete)
{
    int  rc, log, done;

    log = -1;
    done = -1;
    *complete = 0;

    if (full) {
        /* writers wait meanwhile: a reader in the way only a little */
        st->sq->busy_limit = PROJKEY_CHECKPOINT_WAIT;
    }

    rc = sqlite3_wal_checkpoint_v2(st->sq->db, NULL,
                                   full ? SQLITE_CHECKPOINT_RESTART
                                        : SQLITE_CHECKPOINT_PASSIVE,
                                   &log, &done);

    st->sq->busy_limit = st->sq->busy_timeout;

    /* a busy checkpoint is not an error: it is done the next time */

    if (rc == SQLITE_BUSY) {
        return PROJKEY_STORE_OK;
    }

    if (rc != SQLITE_OK) {
        return projkey_store_fail(st, rc);
    }

    *complete = (log == done);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_sqlite_touch(projkey_store_t *st, const projkey_touch_t *touch,
    size_t n)
{
    int                 rc;
    size_t              i;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    if (n == 0) {
        return PROJKEY_STORE_OK;
    }

    src = projkey_store_begin(st, 1);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_TOUCH, &src);
    if (s == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        sqlite3_bind_text(s, 1, touch[i].id, PROJKEY_ID_LEN,
                          SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, touch[i].last_used_at);

        rc = sqlite3_step(s);
        sqlite3_reset(s);

        if (rc != SQLITE_DONE) {
            src = projkey_store_fail(st, rc);
            goto failed;
        }
    }

    return projkey_store_commit(st);

failed:

    projkey_store_rollback(st);
    return src;
}


static const char *
projkey_status_name(int status)
{
    return status == PROJKEY_STATUS_ACTIVE ? "active" : "disabled";
}


/* copies the single text column of a JSON-building statement; resets it */

static projkey_store_rc_e
projkey_store_json(projkey_store_t *st, sqlite3_stmt *s, char **out,
    size_t *len)
{
    int          rc;
    size_t       n;
    const char  *p;

    *out = NULL;

    rc = sqlite3_step(s);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);

        if (rc == SQLITE_DONE) {
            projkey_store_set_errmsg(st, "no JSON built");
            return PROJKEY_STORE_ERROR;
        }

        return projkey_store_fail(st, rc);
    }

    p = (const char *) sqlite3_column_text(s, 0);
    n = sqlite3_column_bytes(s, 0);

    if (p == NULL) {
        sqlite3_reset(s);
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    *out = malloc(n + 1);

    if (*out == NULL) {
        sqlite3_reset(s);
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    memcpy(*out, p, n + 1);

    if (len != NULL) {
        *len = n;
    }

    sqlite3_reset(s);

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_sqlite_list_json(projkey_store_t *st, const char *project,
    size_t project_len, char **out, size_t *len)
{
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    s = projkey_store_stmt(st, PROJKEY_SQL_LIST_JSON, &rc);
    if (s == NULL) {
        *out = NULL;
        return rc;
    }

    sqlite3_bind_text(s, 1, project, project_len, SQLITE_STATIC);

    return projkey_store_json(st, s, out, len);
}


static projkey_store_rc_e
projkey_sqlite_audit_json(projkey_store_t *st, const char *project,
    size_t project_len, int64_t before, int limit, char **out, size_t *len)
{
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    s = projkey_store_stmt(st, PROJKEY_SQL_AUDIT_JSON, &rc);
    if (s == NULL) {
        *out = NULL;
        return rc;
    }

    if (limit <= 0) {
        limit = PROJKEY_AUDIT_LIMIT;

    } else if (limit > PROJKEY_AUDIT_LIMIT_MAX) {
        limit = PROJKEY_AUDIT_LIMIT_MAX;
    }

    sqlite3_bind_text(s, 1, project, project_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, before);
    sqlite3_bind_int(s, 3, limit);

    return projkey_store_json(st, s, out, len);
}


static projkey_store_rc_e
projkey_sqlite_nodes_json(projkey_store_t *st, int64_t now, char **out,
    size_t *len)
{
    sqlite3_stmt       *s;
    projkey_store_rc_e  rc;

    s = projkey_store_stmt(st, PROJKEY_SQL_NODES_JSON, &rc);
    if (s == NULL) {
        *out = NULL;
        return rc;
    }

    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, PROJKEY_NODE_STALE);

    return projkey_store_json(st, s, out, len);
}


static projkey_store_rc_e
projkey_sqlite_revision(projkey_store_t *st, int64_t *seq)
{
    return projkey_store_seq(st, PROJKEY_SQL_SEQ, seq);
}


static projkey_store_rc_e
projkey_sqlite_heartbeat(projkey_store_t *st, const projkey_node_t *node)
{
    int                 rc;
    sqlite3_stmt       *s;
    projkey_store_rc_e  src;

    src = projkey_store_begin(st, 1);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_NODE_BEAT, &src);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_text(s, 1, node->name, node->name_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, node->revision);
    sqlite3_bind_int64(s, 3, node->last_seen);
    sqlite3_bind_int64(s, 4, node->keys);
    sqlite3_bind_int64(s, 5, node->used_bytes);
    sqlite3_bind_int64(s, 6, node->size_bytes);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_NODE_EXPIRE, &src);
    if (s == NULL) {
        goto failed;
    }

    sqlite3_bind_int64(s, 1, node->last_seen - PROJKEY_NODE_EXPIRE);

    rc = sqlite3_step(s);
    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    return projkey_store_commit(st);

failed:

    projkey_store_rollback(st);
    return src;
}


static projkey_store_rc_e
projkey_sqlite_nodes(projkey_store_t *st, int64_t now, projkey_node_pt cb,
    void *data)
{
    int                 rc;
    sqlite3_stmt       *s;
    projkey_node_t      node;
    projkey_store_rc_e  src;

    s = projkey_store_stmt(st, PROJKEY_SQL_NODES, &src);
    if (s == NULL) {
        return src;
    }

    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, PROJKEY_NODE_STALE);

    for ( ;; ) {
        rc = sqlite3_step(s);

        if (rc != SQLITE_ROW) {
            break;
        }

        node.name = (const char *) sqlite3_column_text(s, 0);
        node.name_len = sqlite3_column_bytes(s, 0);
        node.revision = sqlite3_column_int64(s, 1);
        node.last_seen = sqlite3_column_int64(s, 2);
        node.keys = sqlite3_column_int64(s, 3);
        node.used_bytes = sqlite3_column_int64(s, 4);
        node.size_bytes = sqlite3_column_int64(s, 5);
        node.stale = sqlite3_column_int(s, 6);

        if (node.name == NULL) {
            node.name = "";
        }

        if (cb(data, &node) != 0) {
            sqlite3_reset(s);
            projkey_store_set_errmsg(st, "stopped by the caller");
            return PROJKEY_STORE_ERROR;
        }
    }

    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    return PROJKEY_STORE_OK;
}


static projkey_store_rc_e
projkey_sqlite_search_merge_step(projkey_store_t *st, int *more)
{
    int                 before;
    projkey_store_rc_e  rc;

    *more = 0;

    rc = projkey_store_begin(st, 1);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    before = sqlite3_total_changes(st->sq->db);

    rc = projkey_store_exec(st, PROJKEY_SQL_SEARCH_MERGE);
    if (rc != PROJKEY_STORE_OK) {
        projkey_store_rollback(st);
        return rc;
    }

    /* FTS5 did nothing when total_changes() grew by less than 2 */
    *more = (sqlite3_total_changes(st->sq->db) - before >= 2);

    return projkey_store_commit(st);
}


static projkey_store_rc_e
projkey_sqlite_page(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, projkey_row_pt cb,
    void *data, char **next)
{
    return projkey_store_page_walk(st, project, project_len, page, cb, data,
                                   NULL, next);
}


static projkey_store_rc_e
projkey_sqlite_page_json(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, char **out, size_t *len)
{
    char                *next;
    projkey_buf_t        b;
    projkey_store_rc_e   rc;

    *out = NULL;

    memset(&b, 0, sizeof(projkey_buf_t));
    projkey_buf_add(&b, "{\"keys\":[", 9);

    rc = projkey_store_page_walk(st, project, project_len, page, NULL, NULL,
                                 &b, &next);
    if (rc != PROJKEY_STORE_OK) {
        free(b.data);
        return rc;
    }

    /* a cursor is base64url: nothing to escape */

    if (next != NULL) {
        projkey_buf_add(&b, "],\"next\":\"", 10);
        projkey_buf_add(&b, next, strlen(next));
        projkey_buf_add(&b, "\"}", 2);
        free(next);

    } else {
        projkey_buf_add(&b, "],\"next\":null}", 14);
    }

    return projkey_buf_done(st, &b, out, len);
}


/*
 * The keys after the cursor in list order, from the best index for the
 * page; each key the statement returns counts towards PROJKEY_PAGE_SCAN,
 * hit or not.  "next" is the place of the last key looked at, when there
 * may be more: a key found past the page, or the scan's end.
 */

static projkey_store_rc_e
projkey_store_page_walk(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, projkey_row_pt cb,
    void *data, projkey_buf_t *json, char **next)
{
    int                  rc, limit, hits, scanned;
    char                *match;
    size_t               n;
    uint64_t             at;
    const char          *msg, *text;
    sqlite3_stmt        *s;
    projkey_pos_t        pos;
    projkey_row_t        row;
    unsigned char        bin[PROJKEY_CURSOR_MAX];
    unsigned char        mac[PROJKEY_CURSOR_MAC_LEN];
    projkey_store_rc_e   src;

    *next = NULL;
    match = NULL;
    s = NULL;

    msg = projkey_store_check_page(page);

    if (msg != NULL) {
        projkey_store_set_errmsg(st, "%s", msg);
        return PROJKEY_STORE_INVALID;
    }

    limit = page->limit != 0 ? page->limit : PROJKEY_PAGE_LIMIT;

    pos.at = INT64_MAX;
    pos.id[0] = '\0';
    pos.id_len = 0;
    pos.more = 0;

    src = projkey_store_begin(st, 0);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    src = projkey_store_cursor_key(st);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    if (page->after_len != 0) {
        /* checked above: of the right form */
        (void) projkey_store_cursor_decode(page->after, page->after_len, bin,
                                           &n);

        n -= PROJKEY_CURSOR_MAC_LEN;
        projkey_store_cursor_mac(st, project, project_len, page, bin, n, mac);

        /* not one this database made for this project and filter */

        if (sodium_memcmp(mac, bin + n, PROJKEY_CURSOR_MAC_LEN) != 0) {
            projkey_store_set_errmsg(st, "Bad cursor: give the \"next\" of "
                                     "a previous page of the same search.");
            src = PROJKEY_STORE_INVALID;
            goto failed;
        }

        for (at = 0, rc = 1; rc < 9; rc++) {
            at = (at << 8) | bin[rc];
        }

        pos.at = (int64_t) at;
        pos.id_len = bin[9];
        memcpy(pos.id, bin + 10, pos.id_len);
        pos.id[pos.id_len] = '\0';
    }

    src = projkey_store_page_bind(st, project, project_len, page, &pos, &s,
                                  &match);
    if (src != PROJKEY_STORE_OK) {
        goto failed;
    }

    hits = 0;
    scanned = 0;

    for ( ;; ) {
        rc = sqlite3_step(s);

        if (rc != SQLITE_ROW) {
            break;
        }

        text = (const char *) sqlite3_column_text(s, PROJKEY_PAGE_JSON);

        if (text != NULL && hits == limit) {
            /* a key past the page: there is a next one */
            pos.more = 1;
            break;
        }

        projkey_store_row(s, &row);

        if (row.hash == NULL || row.id == NULL
            || sqlite3_column_bytes(s, 1) != PROJKEY_HASH_LEN)
        {
            projkey_store_set_errmsg(st, "the key \"%s\" has a damaged hash",
                                     row.id != NULL ? row.id : "");
            src = PROJKEY_STORE_CORRUPT;
            goto failed;
        }

        n = sqlite3_column_bytes(s, 0);

        if (n > PROJKEY_CURSOR_ID_MAX) {
            projkey_store_set_errmsg(st, "the key id \"%.20s...\" is too "
                                     "long", row.id);
            src = PROJKEY_STORE_CORRUPT;
            goto failed;
        }

        pos.at = row.created_at;
        memcpy(pos.id, row.id, n + 1);
        pos.id_len = n;

        if (text != NULL) {
            if (json != NULL) {
                if (hits != 0) {
                    projkey_buf_add(json, ",", 1);
                }

                projkey_buf_add(json, text,
                                sqlite3_column_bytes(s, PROJKEY_PAGE_JSON));
            }

            hits++;

            if (cb != NULL && cb(data, &row) != 0) {
                projkey_store_set_errmsg(st, "stopped by the caller");
                src = PROJKEY_STORE_ERROR;
                goto failed;
            }
        }

        if (++scanned == PROJKEY_PAGE_SCAN) {
            pos.more = 1;
            break;
        }
    }

    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        src = projkey_store_fail(st, rc);
        goto failed;
    }

    sqlite3_reset(s);
    s = NULL;

    free(match);
    match = NULL;

    if (pos.more) {
        *next = projkey_store_cursor(st, project, project_len, page, pos.at,
                                     pos.id, pos.id_len);

        if (*next == NULL) {
            projkey_store_set_errmsg(st, "out of memory");
            src = PROJKEY_STORE_ERROR;
            goto failed;
        }
    }

    src = projkey_store_commit(st);

    if (src != PROJKEY_STORE_OK) {
        free(*next);
        *next = NULL;
    }

    return src;

failed:

    if (s != NULL) {
        sqlite3_reset(s);
    }

    projkey_store_rollback(st);
    free(match);
    free(*next);
    *next = NULL;

    return src;
}


/*
 * A search of 3 characters or more reads the search index; else the list
 * index (of the status, if one is asked for) is read in order and each key
 * checked: a bounded scan, as 1 or 2 characters make no trigram.
 */

static projkey_store_rc_e
projkey_store_page_bind(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, const projkey_pos_t *pos,
    sqlite3_stmt **stmt, char **match)
{
    int                  i;
    size_t               chars, tail_len;
    int64_t              code;
    const char          *tail;
    sqlite3_stmt        *s;
    projkey_sql_e        n;
    projkey_store_rc_e   src;

    chars = 0;
    tail = NULL;
    tail_len = 0;

    /* every page statement names projkey_contains() */

    src = projkey_store_fold_init(st);
    if (src != PROJKEY_STORE_OK) {
        return src;
    }

    if (page->q_len != 0) {
        (void) projkey_text_check(page->q, page->q_len, &chars);
        tail_len = projkey_store_tail(page->q, page->q_len, &tail);
    }

    if (chars >= 3) {
        n = PROJKEY_SQL_PAGE_SEARCH;

        s = projkey_store_stmt(st, PROJKEY_SQL_PROJECT_CODE, &src);
        if (s == NULL) {
            return src;
        }

        sqlite3_bind_text(s, 1, project, project_len, SQLITE_STATIC);

        i = sqlite3_step(s);
        code = (i == SQLITE_ROW) ? sqlite3_column_int64(s, 0) : -1;
        sqlite3_reset(s);

        if (i != SQLITE_ROW && i != SQLITE_DONE) {
            return projkey_store_fail(st, i);
        }

        /* a project that never had a key: a term that no key has */

        *match = projkey_store_match(code, page->status, page->q,
                                     page->q_len, tail, tail_len);
        if (*match == NULL) {
            projkey_store_set_errmsg(st, "out of memory");
            return PROJKEY_STORE_ERROR;
        }

    } else if (page->status != PROJKEY_PAGE_ANY
               && page->status != PROJKEY_PAGE_EXPIRED)
    {
        /* an expired key is expired whatever its stored status */
        n = PROJKEY_SQL_PAGE_STATUS;

    } else {
        n = PROJKEY_SQL_PAGE;
    }

    s = projkey_store_stmt(st, n, &src);
    if (s == NULL) {
        return src;
    }

    /* the parameters a statement does not have are not bound (SQLITE_RANGE) */

    sqlite3_bind_text(s, 1, project, project_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, pos->at);
    sqlite3_bind_text(s, 3, pos->id, pos->id_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, page->status);

    if (page->q_len != 0) {
        sqlite3_bind_text(s, 5, page->q, page->q_len, SQLITE_STATIC);

    } else {
        sqlite3_bind_null(s, 5);
    }

    if (tail_len != 0) {
        sqlite3_bind_text(s, 6, tail, tail_len, SQLITE_STATIC);

    } else {
        sqlite3_bind_null(s, 6);
    }

    sqlite3_bind_int(s, 7, page->status == PROJKEY_PAGE_DISABLED
                           ? PROJKEY_STATUS_DISABLED : PROJKEY_STATUS_ACTIVE);

    if (*match != NULL) {
        sqlite3_bind_text(s, 8, *match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 9, pos->id_len == 0 ? INT64_MIN
                                 : projkey_store_search_rowid(pos->at,
                                                              pos->id,
                                                              pos->id_len));
    }

    sqlite3_bind_int64(s, 10, (sqlite3_int64) time(NULL));

    *stmt = s;

    return PROJKEY_STORE_OK;
}


/*
 * The FTS5 query of a search: the term of the project and stored status
 * (either status when the page takes both), then the name, or the end of
 * the preview (followed by \3).
 */

static char *
projkey_store_match(int64_t code, int status, const char *q, size_t q_len,
    const char *tail, size_t tail_len)
{
    int      k;
    char    *out, *p;
    size_t   i;
    uint32_t cp[3];

    out = malloc(128 + 2 * (q_len + tail_len));
    if (out == NULL) {
        return NULL;
    }

    p = stpcpy(out, "(");

    for (k = PROJKEY_STATUS_ACTIVE; k <= PROJKEY_STATUS_DISABLED; k++) {
        if ((status == PROJKEY_PAGE_DISABLED && k != PROJKEY_STATUS_DISABLED)
            || (status == PROJKEY_PAGE_ACTIVE && k != PROJKEY_STATUS_ACTIVE))
        {
            continue;
        }

        if (p[-1] != '(') {
            p = stpcpy(p, " OR ");
        }

        if (code < 0) {
            /* not a term of PROJKEY_SEARCH_TERM: no key has it */
            cp[0] = PROJKEY_SEARCH_STATUS;
            cp[1] = PROJKEY_SEARCH_STATUS;
            cp[2] = PROJKEY_SEARCH_STATUS;

        } else {
            cp[0] = PROJKEY_SEARCH_CODE_BASE
                    + code % PROJKEY_SEARCH_CODE_SPAN;
            cp[1] = PROJKEY_SEARCH_CODE_BASE
                    + code / PROJKEY_SEARCH_CODE_SPAN
                      % PROJKEY_SEARCH_CODE_SPAN;
            cp[2] = PROJKEY_SEARCH_STATUS + k;
        }

        p = stpcpy(p, "fproject : \"");

        /* U+E000 to U+F0FF: three bytes of UTF-8 each */
        for (i = 0; i < 3; i++) {
            *p++ = (char) (0xe0 | (cp[i] >> 12));
            *p++ = (char) (0x80 | ((cp[i] >> 6) & 0x3f));
            *p++ = (char) (0x80 | (cp[i] & 0x3f));
        }

        p = stpcpy(p, "\"");
    }

    p = stpcpy(p, ") AND (fname : \"");

    for (i = 0; i < q_len; i++) {
        /* a quote inside an FTS5 string is doubled */
        if (q[i] == '"') {
            *p++ = '"';
        }

        *p++ = q[i];
    }

    p = stpcpy(p, "\"");

    if (tail_len != 0) {
        /* base62: nothing to double */
        p = stpcpy(p, " OR ftail : \"");
        memcpy(p, tail, tail_len);
        p += tail_len;
        p = stpcpy(p, "\x03\"");
    }

    stpcpy(p, ")");

    return out;
}


/*
 * The end of a preview ("sk-project-..." and 4 base62 characters) that
 * ends with q: q itself if it is 1 to 4 base62 characters, its last 4 if
 * what comes before them is an end of "sk-project-..."; 0 if none can.
 */

static size_t
projkey_store_tail(const char *q, size_t len, const char **tail)
{
    size_t       i, n, k;
    const char  *prefix;

    prefix = PROJKEY_PREFIX "...";
    n = len < 4 ? len : 4;

    if (n == 0 || len > PROJKEY_PREVIEW_LEN) {
        return 0;
    }

    for (i = len - n; i < len; i++) {
        if (!((q[i] >= '0' && q[i] <= '9') || (q[i] >= 'A' && q[i] <= 'Z')
              || (q[i] >= 'a' && q[i] <= 'z')))
        {
            return 0;
        }
    }

    k = len - n;

    if (k != 0 && strncasecmp(q, prefix + PROJKEY_PREVIEW_LEN - 4 - k, k)
                  != 0)
    {
        return 0;
    }

    *tail = q + k;

    return n;
}


/* PROJKEY_SEARCH_ROWID() of key (at, id), for the cursor's group */

static int64_t
projkey_store_search_rowid(int64_t at, const char *id, size_t len)
{
    int       d;
    size_t    i;
    int64_t   v;

    if (at >= INT64_MAX / PROJKEY_SEARCH_SPAN - 1) {
        return INT64_MIN;
    }

    if (at <= INT64_MIN / PROJKEY_SEARCH_SPAN + 1) {
        return INT64_MAX;
    }

    for (v = 0, i = 0; i < 5; i++) {
        if (i >= len) {
            d = 0;

        } else if (id[i] >= '0' && id[i] <= '9') {
            d = id[i] - '0';

        } else if (id[i] >= 'A' && id[i] <= 'Z') {
            d = id[i] - 'A' + 10;

        } else if (id[i] >= 'a' && id[i] <= 'z') {
            d = id[i] - 'a' + 36;

        } else {
            d = -1;
        }

        v = v * 62 + d;
    }

    return -(at * PROJKEY_SEARCH_SPAN + v);
}


/* the key of the cursors' MACs, random, made by the schema */

static projkey_store_rc_e
projkey_store_cursor_key(projkey_store_t *st)
{
    int                  rc;
    size_t               n;
    const char          *hex, *end;
    sqlite3_stmt        *s;
    projkey_store_rc_e   src;

    if (st->has_cursor_key) {
        return PROJKEY_STORE_OK;
    }

    s = projkey_store_stmt(st, PROJKEY_SQL_CURSOR_KEY, &src);
    if (s == NULL) {
        return src;
    }

    rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        hex = (const char *) sqlite3_column_text(s, 0);

        if (hex != NULL
            && sodium_hex2bin(st->cursor_key, PROJKEY_CURSOR_KEY_LEN, hex,
                              strlen(hex), NULL, &n, &end) == 0
            && n == PROJKEY_CURSOR_KEY_LEN && *end == '\0')
        {
            st->has_cursor_key = 1;
        }

        rc = SQLITE_DONE;
    }

    sqlite3_reset(s);

    if (rc != SQLITE_DONE) {
        return projkey_store_fail(st, rc);
    }

    if (!st->has_cursor_key) {
        projkey_store_set_errmsg(st, "the cursor key is missing from table "
                                 "meta");
        return PROJKEY_STORE_CORRUPT;
    }

    return PROJKEY_STORE_OK;
}


/*
 * A search folds case as the search index does: with the trigram
 * tokenizer's own folding, through the FTS5 API, so that a 1 or 2
 * character search (no index) and a longer one (the index) agree on
 * every script.  projkey_contains(text, q) is registered for this
 * connection only (never in a trigger: a change by hand has no such
 * function).
 */

static projkey_store_rc_e
projkey_store_fold_init(projkey_store_t *st)
{
    int            rc;
    void          *udata;
    fts5_api      *api;
    sqlite3_stmt  *s;
    static const char  *args[] = { "case_sensitive", "0" };

    if (st->sq->has_fold) {
        return PROJKEY_STORE_OK;
    }

    api = NULL;

    rc = sqlite3_prepare_v2(st->sq->db, "SELECT fts5(?1)", -1, &s, NULL);
    if (rc != SQLITE_OK) {
        return projkey_store_fail(st, rc);
    }

    sqlite3_bind_pointer(s, 1, &api, "fts5_api_ptr", NULL);
    (void) sqlite3_step(s);
    sqlite3_finalize(s);

    if (api == NULL || api->iVersion < 2
        || api->xFindTokenizer(api, "trigram", &udata, &st->sq->fold)
           != SQLITE_OK)
    {
        projkey_store_set_errmsg(st, "SQLite has no FTS5 trigram tokenizer");
        return PROJKEY_STORE_ERROR;
    }

    rc = st->sq->fold.xCreate(udata, args, 2, &st->sq->fold_tok);
    if (rc != SQLITE_OK) {
        st->sq->fold_tok = NULL;
        return projkey_store_fail(st, rc);
    }

    rc = sqlite3_create_function_v2(st->sq->db, "projkey_contains", 2,
                                    SQLITE_UTF8|SQLITE_DETERMINISTIC
                                    |SQLITE_DIRECTONLY,
                                    st, projkey_store_contains, NULL, NULL,
                                    NULL);
    if (rc != SQLITE_OK) {
        return projkey_store_fail(st, rc);
    }

    st->sq->has_fold = 1;

    return PROJKEY_STORE_OK;
}


/* trigrams overlap: the first whole, then the last character of each */

static int
projkey_store_fold_token(void *data, int flags, const char *token, int len,
    int start, int end)
{
    projkey_fold_t *f = data;

    const char  *p;

    if (f->tokens++ != 0) {
        p = token + len - 1;

        while (p > token && (*p & 0xc0) == 0x80) {
            p--;
        }

        len -= p - token;
        token = p;
    }

    if (f->len + len > f->size) {
        return SQLITE_NOMEM;
    }

    memcpy(f->out + f->len, token, len);
    f->len += len;

    return SQLITE_OK;
}


/* text case-folded, malloc()ed; two characters of padding make trigrams */

static char *
projkey_store_fold(projkey_store_t *st, const char *text, size_t len,
    size_t *out_len)
{
    int              rc;
    char            *in;
    projkey_fold_t   f;

    in = malloc(len + 2);
    f.size = 4 * (len + 2);
    f.out = malloc(f.size);
    f.len = 0;
    f.tokens = 0;

    if (in == NULL || f.out == NULL) {
        free(in);
        free(f.out);
        return NULL;
    }

    memcpy(in, text, len);
    in[len] = '\x01';
    in[len + 1] = '\x01';

    rc = st->sq->fold.xTokenize(st->sq->fold_tok, &f, FTS5_TOKENIZE_DOCUMENT,
                                in, (int) len + 2, projkey_store_fold_token);
    free(in);

    if (rc != SQLITE_OK) {
        free(f.out);
        return NULL;
    }

    /* the padding is not folded: it is the last two bytes */
    *out_len = f.len >= 2 ? f.len - 2 : 0;

    return f.out;
}


static void
projkey_store_contains(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    int                found, fresh;
    char              *hay, c;
    size_t             n, i, k;
    const char        *text;
    projkey_store_t   *st;
    projkey_needle_t  *needle;

    st = sqlite3_user_data(ctx);

    if (sqlite3_value_type(argv[0]) == SQLITE_NULL
        || sqlite3_value_type(argv[1]) == SQLITE_NULL)
    {
        return;
    }

    /* the search text is folded once per statement */

    needle = sqlite3_get_auxdata(ctx, 1);
    fresh = 0;

    if (needle == NULL) {
        text = (const char *) sqlite3_value_text(argv[1]);
        n = sqlite3_value_bytes(argv[1]);

        hay = text != NULL ? projkey_store_fold(st, text, n, &n) : NULL;
        needle = hay != NULL ? malloc(sizeof(projkey_needle_t) + n) : NULL;

        if (needle == NULL) {
            free(hay);
            sqlite3_result_error_nomem(ctx);
            return;
        }

        needle->len = n;
        memcpy(needle->data, hay, n);
        free(hay);
        fresh = 1;
    }

    text = (const char *) sqlite3_value_text(argv[0]);
    n = sqlite3_value_bytes(argv[0]);

    if (text == NULL) {
        if (fresh) {
            free(needle);
        }

        sqlite3_result_error_nomem(ctx);
        return;
    }

    /* ASCII folds to ASCII lower case only: no tokenizer needed */

    for (i = 0; i < n; i++) {
        if ((unsigned char) text[i] >= 0x80) {
            break;
        }
    }

    found = 0;

    if (i == n) {
        for (i = 0; i + needle->len <= n && !found; i++) {
            for (k = 0; k < needle->len; k++) {
                c = text[i + k];

                if (c >= 'A' && c <= 'Z') {
                    c += 'a' - 'A';
                }

                if (c != needle->data[k]) {
                    break;
                }
            }

            found = (k == needle->len);
        }

    } else {
        hay = projkey_store_fold(st, text, n, &n);

        if (hay == NULL) {
            if (fresh) {
                free(needle);
            }

            sqlite3_result_error_nomem(ctx);
            return;
        }

        for (i = 0; i + needle->len <= n; i++) {
            if (memcmp(hay + i, needle->data, needle->len) == 0) {
                found = 1;
                break;
            }
        }

        free(hay);
    }

    sqlite3_result_int(ctx, found);

    if (fresh) {
        /* SQLite may free it at once: it is not used after this */
        sqlite3_set_auxdata(ctx, 1, needle, free);
    }
}


const projkey_store_ops_t  projkey_store_sqlite_ops = {
    "SQLite",
    PROJKEY_SCHEMA_VERSION,
    projkey_sqlite_open,
    projkey_sqlite_close,
    projkey_sqlite_state,
    projkey_sqlite_revision,
    projkey_sqlite_load,
    projkey_sqlite_changes,
    projkey_sqlite_get,
    projkey_sqlite_list,
    projkey_sqlite_create,
    projkey_sqlite_create_batch,
    projkey_sqlite_change,
    projkey_sqlite_roll,
    projkey_sqlite_purge,
    projkey_sqlite_delete,
    projkey_sqlite_checkpoint,
    projkey_sqlite_touch,
    projkey_sqlite_heartbeat,
    projkey_sqlite_nodes,
    projkey_sqlite_page,
    projkey_sqlite_page_json,
    projkey_sqlite_search_merge_step,
    projkey_sqlite_list_json,
    projkey_sqlite_audit_json,
    projkey_sqlite_nodes_json,
    NULL,
    NULL,
    NULL,
    NULL,
};
