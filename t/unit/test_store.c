
/*
 * Unit tests of the key store (projkey_store.c), in a temporary directory;
 * the text and JSON the store does not do are test_text.c's.
 *
 * The tests open a second SQLite connection of their own, to hold locks,
 * damage files and check the JSON the store builds: that is why this test
 * includes <sqlite3.h>.
 *
 * With PROJKEY_TEST_PG_URI (t/05-unit-store-pg.t starts a private
 * PostgreSQL for it), the tests of the store interface run again on that
 * database, and then those of what only PostgreSQL has; the test's own
 * connections to it are libpq's.
 */


#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <libpq-fe.h>

#include "projkey_store.h"
#include "projkey_json.h"
#include "projkey_snapshot.h"
#include "tap.h"
#include "jx.h"


#define T_ROWS_MAX  16


typedef struct {
    char           id[PROJKEY_ID_LEN + 1];
    char           name[512];
    char           project[64];
    char           created_by[64];
    unsigned char  hash[PROJKEY_HASH_LEN];
    int64_t        created_at;
    int64_t        updated_at;
    int64_t        last_used_at;
    int64_t        seq;
    int            status;
    int            has_name;
    int64_t        expires_at;
    unsigned char  prev_hash[PROJKEY_HASH_LEN];
    int            has_prev;
    char           prev_preview[32];
    int64_t        prev_expires_at;
    unsigned char  retired_hash[PROJKEY_HASH_LEN];
    int            has_retired;
} t_row_t;


typedef struct {
    t_row_t        row[T_ROWS_MAX];
    int            n;
} t_rows_t;


/* a key made as the admin API makes it, with its secret kept for checks */
typedef struct {
    unsigned char  secret[PROJKEY_LEN];
    unsigned char  hash[PROJKEY_HASH_LEN];
    unsigned char  preview[PROJKEY_PREVIEW_LEN];
    char           id[PROJKEY_ID_LEN + 1];
    projkey_new_t  new;
} t_key_t;


/*
 * The shipped schema steps, as they shipped (they never change): databases
 * of older versions for the migration tests.
 */
#define T_SCHEMA_1                                                            \
    "CREATE TABLE keys ("                                                     \
    " id TEXT PRIMARY KEY NOT NULL,"                                          \
    " project TEXT NOT NULL,"                                                 \
    " name TEXT NOT NULL,"                                                    \
    " hash BLOB NOT NULL UNIQUE,"                                             \
    " preview TEXT NOT NULL,"                                                 \
    " status INTEGER NOT NULL CHECK (status IN (1, 2)),"                      \
    " created_by TEXT NOT NULL,"                                              \
    " created_at INTEGER NOT NULL,"                                           \
    " updated_at INTEGER NOT NULL,"                                           \
    " last_used_at INTEGER,"                                                  \
    " seq INTEGER NOT NULL);"                                                 \
    "CREATE INDEX keys_seq ON keys (seq);"                                    \
    "CREATE INDEX keys_project ON keys (project, created_at);"                \
    "CREATE TABLE deleted ("                                                  \
    " id TEXT PRIMARY KEY NOT NULL,"                                          \
    " hash BLOB NOT NULL,"                                                    \
    " project TEXT NOT NULL,"                                                 \
    " seq INTEGER NOT NULL);"                                                 \
    "CREATE INDEX deleted_seq ON deleted (seq);"                              \
    "CREATE TABLE meta ("                                                     \
    " k TEXT PRIMARY KEY NOT NULL,"                                           \
    " v);"                                                                    \
    "INSERT INTO meta (k, v) VALUES ('seq', 0);"                              \
    "CREATE TABLE audit ("                                                    \
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"                                 \
    " at INTEGER NOT NULL,"                                                   \
    " project TEXT NOT NULL,"                                                 \
    " key_id TEXT NOT NULL,"                                                  \
    " action TEXT NOT NULL CHECK (action IN"                                  \
    " ('create', 'rename', 'disable', 'enable', 'delete')),"                  \
    " actor TEXT NOT NULL,"                                                   \
    " addr TEXT,"                                                             \
    " detail TEXT NOT NULL);"                                                 \
    "CREATE INDEX audit_project ON audit (project, seq);"                     \
    "INSERT INTO meta (k, v) VALUES ('instance',"                             \
    " '0123456789abcdef0123456789abcdef');"

#define T_SCHEMA_2                                                            \
    "CREATE TRIGGER keys_changed_by_hand"                                     \
    " AFTER UPDATE OF name, status, project, hash ON keys"                    \
    " WHEN NEW.seq = OLD.seq"                                                 \
    " BEGIN"                                                                  \
    " UPDATE meta SET v = v + 1 WHERE k = 'seq';"                             \
    " UPDATE keys SET seq = (SELECT v FROM meta WHERE k = 'seq')"             \
    " WHERE id = NEW.id;"                                                     \
    " END;"                                                                   \
    "CREATE TRIGGER keys_deleted_by_hand"                                     \
    " AFTER DELETE ON keys"                                                   \
    " WHEN NOT EXISTS (SELECT 1 FROM deleted WHERE id = OLD.id)"              \
    " BEGIN"                                                                  \
    " UPDATE meta SET v = v + 1 WHERE k = 'seq';"                             \
    " INSERT INTO deleted (id, hash, project, seq)"                           \
    " VALUES (OLD.id, OLD.hash, OLD.project,"                                 \
    " (SELECT v FROM meta WHERE k = 'seq'));"                                 \
    " END;"


static char             t_dir[] = "/tmp/projkey-test-XXXXXX";
static char             t_short_id[PROJKEY_ID_LEN + 1];
static projkey_json_t  *t_keys_json;     /* the KEY of a store's rows */
static char            *t_pg_uri;


static void t_pg_sql(const char *sql);
static int t_pg_sql_fails(const char *sql);


static const char *
t_path(const char *name)
{
    static char  buf[4][256];
    static int   i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", t_dir, name);

    return buf[i];
}


static int
t_collect(void *data, const projkey_row_t *r)
{
    t_row_t   *row;
    t_rows_t  *rows;

    rows = data;

    if (rows->n == T_ROWS_MAX) {
        return 1;
    }

    row = &rows->row[rows->n++];
    memset(row, 0, sizeof(t_row_t));

    snprintf(row->id, sizeof(row->id), "%s", r->id);
    snprintf(row->project, sizeof(row->project), "%.*s",
             (int) r->project_len, r->project);
    memcpy(row->hash, r->hash, PROJKEY_HASH_LEN);

    if (r->name != NULL) {
        row->has_name = 1;
        snprintf(row->name, sizeof(row->name), "%.*s", (int) r->name_len,
                 r->name);
        snprintf(row->created_by, sizeof(row->created_by), "%s",
                 r->created_by != NULL ? r->created_by : "");
    }

    row->created_at = r->created_at;
    row->updated_at = r->updated_at;
    row->last_used_at = r->last_used_at;
    row->seq = r->seq;
    row->status = r->status;
    row->expires_at = r->expires_at;

    if (r->prev_hash != NULL) {
        row->has_prev = 1;
        memcpy(row->prev_hash, r->prev_hash, PROJKEY_HASH_LEN);
        snprintf(row->prev_preview, sizeof(row->prev_preview), "%s",
                 r->prev_preview != NULL ? r->prev_preview : "(null)");
        row->prev_expires_at = r->prev_expires_at;
    }

    if (r->retired_hash != NULL) {
        row->has_retired = 1;
        memcpy(row->retired_hash, r->retired_hash, PROJKEY_HASH_LEN);
    }

    return 0;
}


/* 1 if rows are in list order: created_at, then id, both descending */

static int
t_list_order(const t_rows_t *rows)
{
    int  i;

    for (i = 1; i < rows->n; i++) {
        if (rows->row[i - 1].created_at < rows->row[i].created_at
            || (rows->row[i - 1].created_at == rows->row[i].created_at
                && strcmp(rows->row[i - 1].id, rows->row[i].id) <= 0))
        {
            return 0;
        }
    }

    return 1;
}


static int
t_count(void *data, const projkey_row_t *r)
{
    (*(long *) data)++;
    return 0;
}


static void
t_make_key(t_key_t *k, const char *project, const char *name)
{
    projkey_generate(k->secret);
    projkey_hash(k->secret, PROJKEY_LEN, k->hash);
    projkey_preview(k->secret, PROJKEY_LEN, k->preview);
    projkey_generate_id((unsigned char *) k->id);
    k->id[PROJKEY_ID_LEN] = '\0';

    k->new.id = k->id;
    k->new.project = project;
    k->new.project_len = strlen(project);
    k->new.name = name;
    k->new.name_len = strlen(name);
    k->new.hash = k->hash;
    k->new.preview = k->preview;
    k->new.status = 0;
    k->new.expires_at = 0;
}


static void
t_sql(const char *path, const char *sql)
{
    sqlite3  *db;

    /* PostgreSQL: the store's own database, whatever the path */
    if (t_pg_uri != NULL) {
        t_pg_sql(sql);
        return;
    }

    if (sqlite3_open(path, &db) != SQLITE_OK
        || sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
    {
        bail_out("cannot run \"%s\" on %s: %s", sql, path,
                 sqlite3_errmsg(db));
    }

    sqlite3_close(db);
}


static int
t_sql_int(const char *path, const char *sql, int *value)
{
    int            rc;
    sqlite3       *db;
    sqlite3_stmt  *s;

    if (sqlite3_open(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }

    rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s) == SQLITE_ROW ? 0 : -1;
        *value = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }

    sqlite3_close(db);

    return rc == 0 ? 0 : -1;
}


static void t_older_schema(void);
static void t_nodes(const char *db);


static int
t_file_has(const char *path, const void *needle, size_t len)
{
    int             found;
    FILE           *f;
    long            size, i;
    unsigned char  *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }

    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(size + 1);
    found = 0;

    if (buf != NULL && fread(buf, 1, size, f) == (size_t) size) {
        for (i = 0; i + (long) len <= size; i++) {
            if (memcmp(buf + i, needle, len) == 0) {
                found = 1;
                break;
            }
        }
    }

    free(buf);
    fclose(f);

    return found;
}


static void
t_open_failures(void)
{
    FILE             *f;
    char              instance[33], instance2[33];
    int64_t           seq;
    unsigned char     junk[4096];
    projkey_store_t  *st;

    is_int(projkey_store_open(t_path("none.db"), 0, 100, &st),
           PROJKEY_STORE_ERROR, "missing file without CREATE is an error");
    ok(strstr(projkey_store_errmsg(st), "no such database file") != NULL,
       "and says so: %s", projkey_store_errmsg(st));
    projkey_store_close(st);
    ok(access(t_path("none.db"), F_OK) != 0, "and creates no file");

    is_int(projkey_store_open(t_path("new.db"), PROJKEY_STORE_CREATE, 100,
                              &st), PROJKEY_STORE_OK, "create a database");
    is_int(projkey_store_state(st, &seq, instance), PROJKEY_STORE_OK,
           "state of a new database");
    is_int(seq, 0, "sequence starts at 0");
    ok(strlen(instance) == 32
       && strspn(instance, "0123456789abcdef") == 32,
       "instance id is 32 hex characters: %s", instance);
    projkey_store_close(st);

    is_int(projkey_store_open(t_path("new.db"), 0, 100, &st),
           PROJKEY_STORE_OK, "reopen without CREATE");
    projkey_store_state(st, &seq, instance2);
    is_str(instance2, instance, "same instance id after reopen");
    projkey_store_close(st);

    is_int(projkey_store_open(t_path("new.db"), PROJKEY_STORE_CREATE, 100,
                              &st), PROJKEY_STORE_OK,
           "reopen with CREATE keeps it");
    projkey_store_state(st, &seq, instance2);
    is_str(instance2, instance, "still the same instance id");
    projkey_store_close(st);

    t_sql(t_path("other.db"), "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    is_int(projkey_store_open(t_path("other.db"), PROJKEY_STORE_CREATE, 100,
                              &st), PROJKEY_STORE_CORRUPT,
           "another application's database is refused");
    ok(strstr(projkey_store_errmsg(st), "not a projkey database") != NULL,
       "and says so: %s", projkey_store_errmsg(st));
    projkey_store_close(st);

    t_sql(t_path("other2.db"), "PRAGMA application_id=42");
    is_int(projkey_store_open(t_path("other2.db"), PROJKEY_STORE_CREATE, 100,
                              &st), PROJKEY_STORE_CORRUPT,
           "an empty database of another application_id is refused");
    projkey_store_close(st);

    f = fopen(t_path("junk.db"), "wb");
    memset(junk, 'x', sizeof(junk));
    memcpy(junk, "not sqlite at all", 17);
    fwrite(junk, 1, sizeof(junk), f);
    fclose(f);

    is_int(projkey_store_open(t_path("junk.db"), PROJKEY_STORE_CREATE, 100,
                              &st), PROJKEY_STORE_CORRUPT,
           "a file that is not SQLite is refused");
    ok(strstr(projkey_store_errmsg(st), "not a database") != NULL,
       "and says so: %s", projkey_store_errmsg(st));
    projkey_store_close(st);

    t_sql(t_path("new.db"), "PRAGMA user_version=99");
    is_int(projkey_store_open(t_path("new.db"), 0, 100, &st),
           PROJKEY_STORE_ERROR, "a newer schema is refused");
    is_str(projkey_store_errmsg(st), "database schema version 99 is newer "
           "than this projkey (3)", "and says so");
    projkey_store_close(st);

    is_int(projkey_store_open(t_path("new.db"), PROJKEY_STORE_RDONLY, 100,
                              &st), PROJKEY_STORE_ERROR,
           "a newer schema is refused read-only too");
    projkey_store_close(st);

    t_older_schema();
}


/* an older schema: only an open with PROJKEY_STORE_MIGRATE changes it */

static void
t_older_schema(void)
{
    int               v;
    projkey_store_t  *st;

    v = -1;

    /* a database as projkey's first schema made it */
    unlink(t_path("new.db"));
    unlink(t_path("new.db-wal"));
    unlink(t_path("new.db-shm"));
    t_sql(t_path("new.db"), T_SCHEMA_1 "PRAGMA user_version=1;"
          "PRAGMA application_id=1886086521;");

    is_int(projkey_store_open(t_path("new.db"), PROJKEY_STORE_CREATE, 100,
                              &st), PROJKEY_STORE_ERROR,
           "an older schema without MIGRATE is refused");
    is_str(projkey_store_errmsg(st), "database schema version 1 is older "
           "than this projkey (3): run \"projkey migrate\"", "and says so");
    projkey_store_close(st);

    is_int(projkey_store_open(t_path("new.db"), PROJKEY_STORE_RDONLY, 100,
                              &st), PROJKEY_STORE_ERROR,
           "and read-only, for a load");
    projkey_store_close(st);

    is_int(projkey_store_open(t_path("new.db"), PROJKEY_STORE_RDONLY
                              | PROJKEY_STORE_ANY_VERSION, 100, &st),
           PROJKEY_STORE_OK, "read-only with ANY_VERSION, for a check");
    is_int(projkey_store_outdated(st), 1, "which says it is outdated");
    is_int(projkey_store_schema(st), 1, "at version 1");
    projkey_store_close(st);

    is_int(t_sql_int(t_path("new.db"), "PRAGMA user_version", &v), 0,
           "read");
    is_int(v, 1, "none of them changed it");

    is_int(projkey_store_open(t_path("new.db"), PROJKEY_STORE_MIGRATE, 100,
                              &st), PROJKEY_STORE_OK, "MIGRATE migrates it");
    is_int(projkey_store_schema(st), 3, "to version 3");
    is_int(projkey_store_outdated(st), 0, "up to date");
    projkey_store_close(st);

    t_sql(t_path("empty.db"), "PRAGMA user_version=0");
    is_int(projkey_store_open(t_path("empty.db"), PROJKEY_STORE_MIGRATE, 100,
                              &st), PROJKEY_STORE_ERROR,
           "an empty file without CREATE gets no schema");
    is_str(projkey_store_errmsg(st), "the database has no schema: run "
           "\"projkey init\"", "and says so");
    projkey_store_close(st);
}


static void t_immutable(projkey_store_t *st, const projkey_actor_t *actor);
static void t_unwritable(void);


static void
t_readonly_and_busy(void)
{
    int64_t           seq, seq2;
    t_key_t           k;
    sqlite3          *db;
    t_rows_t          rows;
    projkey_actor_t   actor = { "alice", 5, NULL, 0 };
    projkey_store_t  *st, *ro;
    struct timeval    t0, t1;
    long              ms;
    char              instance[33];

    projkey_store_open(t_path("ro.db"), PROJKEY_STORE_CREATE, 100, &st);
    t_make_key(&k, "p", "first");
    projkey_store_create(st, &k.new, &actor, NULL, NULL);

    is_int(projkey_store_open(t_path("ro.db"), PROJKEY_STORE_RDONLY, 100,
                              &ro), PROJKEY_STORE_OK, "open read-only");
    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_load(ro, t_collect, &rows, &seq), PROJKEY_STORE_OK,
           "load read-only");
    is_int(rows.n, 1, "one key read-only");

    t_make_key(&k, "p", "second");
    is_int(projkey_store_create(ro, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_READONLY, "a write on a read-only open is READONLY");
    ok(strstr(projkey_store_errmsg(ro), "readonly") != NULL,
       "and says so: %s", projkey_store_errmsg(ro));
    projkey_store_close(ro);

    /* another process holds the write lock */

    sqlite3_open(t_path("ro.db"), &db);
    is_int(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK,
           "another connection takes the write lock");

    projkey_store_state(st, &seq, instance);

    gettimeofday(&t0, NULL);
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_BUSY, "a write meanwhile is BUSY");
    gettimeofday(&t1, NULL);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    ok(ms >= 90 && ms < 1000, "after about busy_timeout (%ld ms)", ms);
    is_str(projkey_store_errmsg(st), "database is locked by another process "
           "(waited 100 ms)", "and says so");

    is_int(projkey_store_update(st, "p", 1, k.id, PROJKEY_ID_LEN, "x", 1, 0,
                                &actor, NULL, NULL),
           PROJKEY_STORE_BUSY, "an update meanwhile is BUSY");

    is_int(projkey_store_load(st, NULL, NULL, &seq2), PROJKEY_STORE_OK,
           "reading is not blocked by the writer (WAL)");

    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);

    projkey_store_state(st, &seq2, instance);
    is_int(seq2, seq, "nothing changed: same sequence");
    is_int(projkey_store_get(st, "p", 1, k.id, PROJKEY_ID_LEN, NULL, NULL),
           PROJKEY_STORE_NOTFOUND, "nothing changed: no key");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "the write succeeds once the lock is gone");

    if (geteuid() == 0) {
        t_immutable(st, &actor);
        projkey_store_close(st);

    } else {
        /* SQLite would lend the new connection this one's descriptor */
        projkey_store_close(st);
        t_unwritable();
    }
}


/*
 * Root: made immutable under the open connection, as chattr +i does; not
 * the -shm file: SQLite maps it, a write to it would be SIGBUS.
 */

static void
t_immutable(projkey_store_t *st, const projkey_actor_t *actor)
{
    t_key_t  k;

    is_int(system("chattr +i ro.db ro.db-wal"), 0,
           "the database is made immutable (chattr +i, as root)");

    t_make_key(&k, "p", "immutable");
    is_int(projkey_store_create(st, &k.new, actor, NULL, NULL),
           PROJKEY_STORE_READONLY, "a write to an immutable file is "
           "READONLY");
    ok(strstr(projkey_store_errmsg(st), "readonly") != NULL,
       "and says so: %s", projkey_store_errmsg(st));
    is_int(system("chattr -i ro.db ro.db-wal"), 0, "chattr -i");
    is_int(projkey_store_get(st, "p", 1, k.id, PROJKEY_ID_LEN, NULL, NULL),
           PROJKEY_STORE_NOTFOUND, "nothing was created");
}


/*
 * Another user (a package build): the file's mode is all that can make it
 * unwritable, and it counts when a connection opens it.
 */

static void
t_unwritable(void)
{
    projkey_store_t  *ro;

    is_int(chmod("ro.db", 0444), 0, "the database is made read-only");

    is_int(projkey_store_open(t_path("ro.db"), 0, 100, &ro),
           PROJKEY_STORE_READONLY, "opening it to write is READONLY");
    ok(strstr(projkey_store_errmsg(ro), "readonly") != NULL,
       "and says so: %s", projkey_store_errmsg(ro));
    projkey_store_close(ro);

    is_int(chmod("ro.db", 0644), 0, "writable again");
}


static void
t_crud(projkey_store_t *st)
{
    int               i;
    char              instance[33], name[512];
    int64_t           seq, seq2;
    t_key_t           k[4];
    t_rows_t          rows;
    projkey_actor_t   actor = { "alice", 5, "192.0.2.1", 9 };

    t_make_key(&k[0], "default", "first");
    t_make_key(&k[1], "default", "second");
    t_make_key(&k[2], "other", "third");
    t_make_key(&k[3], "default", "fourth");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_create(st, &k[0].new, &actor, t_collect, &rows),
           PROJKEY_STORE_OK, "create a key");
    is_int(rows.n, 1, "the callback gets the row");
    is_str(rows.row[0].id, k[0].id, "its id");
    is_str(rows.row[0].name, "first", "its name");
    is_str(rows.row[0].project, "default", "its project");
    is_str(rows.row[0].created_by, "alice", "created by");
    is_int(rows.row[0].status, PROJKEY_STATUS_ACTIVE, "active");
    is_int(rows.row[0].seq, 1, "sequence 1");
    is_int(rows.row[0].last_used_at, 0, "never used");
    ok(memcmp(rows.row[0].hash, k[0].hash, PROJKEY_HASH_LEN) == 0,
       "its hash");

    for (i = 1; i < 4; i++) {
        is_int(projkey_store_create(st, &k[i].new, &actor, NULL, NULL),
               PROJKEY_STORE_OK, "create key %d", i + 1);
    }

    is_int(projkey_store_create(st, &k[1].new, &actor, NULL, NULL),
           PROJKEY_STORE_ERROR, "an existing id cannot be created again");

    projkey_store_state(st, &seq, instance);
    is_int(seq, 4, "four changes");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_list(st, "default", 7, t_collect, &rows),
           PROJKEY_STORE_OK, "list");
    is_int(rows.n, 3, "three keys in project default");

    /* created in the same second, most likely: then in id order */
    ok(t_list_order(&rows), "newest first, then by id");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_get(st, "default", 7, k[1].id, PROJKEY_ID_LEN,
                             t_collect, &rows), PROJKEY_STORE_OK, "get");
    is_str(rows.row[0].name, "second", "get gives the key");

    is_int(projkey_store_get(st, "default", 7, k[2].id, PROJKEY_ID_LEN,
                             NULL, NULL), PROJKEY_STORE_NOTFOUND,
           "a key of another project is not found");
    is_int(projkey_store_get(st, "default", 7, "nosuchkey000", 12, NULL,
                             NULL), PROJKEY_STORE_NOTFOUND,
           "an unknown id is not found");

    /* updates */

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_update(st, "default", 7, k[0].id, PROJKEY_ID_LEN,
                                "renamed", 7, 0, &actor, t_collect, &rows),
           PROJKEY_STORE_OK, "rename");
    is_str(rows.row[0].name, "renamed", "the callback gets the new name");
    is_int(rows.row[0].seq, 5, "rename takes sequence 5");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_update(st, "default", 7, k[0].id, PROJKEY_ID_LEN,
                                "renamed", 7, PROJKEY_STATUS_ACTIVE, &actor,
                                t_collect, &rows),
           PROJKEY_STORE_OK, "an update to what it is");
    is_int(rows.row[0].seq, 5, "takes no sequence number");
    projkey_store_state(st, &seq, instance);
    is_int(seq, 5, "and the database sequence is unchanged");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_update(st, "default", 7, k[0].id, PROJKEY_ID_LEN,
                                NULL, 0, PROJKEY_STATUS_DISABLED, &actor,
                                t_collect, &rows),
           PROJKEY_STORE_OK, "disable");
    is_int(rows.row[0].status, PROJKEY_STATUS_DISABLED, "disabled");
    is_str(rows.row[0].name, "renamed", "name kept");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_update(st, "default", 7, k[0].id, PROJKEY_ID_LEN,
                                "both", 4, PROJKEY_STATUS_ACTIVE, &actor,
                                t_collect, &rows),
           PROJKEY_STORE_OK, "rename and enable at once");
    is_int(rows.row[0].status, PROJKEY_STATUS_ACTIVE, "enabled");
    is_str(rows.row[0].name, "both", "renamed");
    is_int(rows.row[0].seq, 7, "one sequence number for both");

    is_int(projkey_store_update(st, "other", 5, k[0].id, PROJKEY_ID_LEN,
                                "x", 1, 0, &actor, NULL, NULL),
           PROJKEY_STORE_NOTFOUND, "update in another project: not found");
    is_int(projkey_store_update(st, "default", 7, k[0].id, PROJKEY_ID_LEN,
                                NULL, 0, 7, &actor, NULL, NULL),
           PROJKEY_STORE_INVALID, "update to an unknown status: invalid");

    /* delete */

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_delete(st, "default", 7, k[1].id, PROJKEY_ID_LEN,
                                &actor, t_collect, &rows),
           PROJKEY_STORE_OK, "delete");
    is_str(rows.row[0].name, "second", "the callback gets the deleted row");
    is_int(rows.row[0].seq, 8, "with the delete's sequence number");
    is_int(projkey_store_get(st, "default", 7, k[1].id, PROJKEY_ID_LEN,
                             NULL, NULL), PROJKEY_STORE_NOTFOUND,
           "a deleted key is gone");
    is_int(projkey_store_delete(st, "default", 7, k[1].id, PROJKEY_ID_LEN,
                                &actor, NULL, NULL),
           PROJKEY_STORE_NOTFOUND, "deleting it again: not found");
    is_int(projkey_store_delete(st, "default", 7, k[2].id, PROJKEY_ID_LEN,
                                &actor, NULL, NULL),
           PROJKEY_STORE_NOTFOUND, "delete in another project: not found");

    projkey_store_state(st, &seq, instance);
    is_int(seq, 8, "sequence 8 after the delete");

    /* changes */

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_changes(st, 0, t_collect, &rows, &seq2),
           PROJKEY_STORE_OK, "changes since 0");
    is_int(seq2, 8, "as of sequence 8");
    is_int(rows.n, 4, "each key once, the deleted one included");
    ok(rows.row[0].seq < rows.row[1].seq && rows.row[1].seq < rows.row[2].seq
       && rows.row[2].seq < rows.row[3].seq, "in sequence order");
    is_str(rows.row[3].id, k[1].id, "the deletion last");
    is_int(rows.row[3].status, PROJKEY_STATUS_DELETED, "as deleted");
    ok(!rows.row[3].has_name, "with no name");
    ok(memcmp(rows.row[3].hash, k[1].hash, PROJKEY_HASH_LEN) == 0,
       "with its hash");
    is_str(rows.row[3].project, "default", "with its project");

    memset(&rows, 0, sizeof(rows));
    projkey_store_changes(st, 4, t_collect, &rows, &seq2);
    is_int(rows.n, 2, "changes since 4: two keys");
    is_str(rows.row[0].id, k[0].id, "the updated one");
    is_int(rows.row[0].seq, 7, "in its latest state");

    memset(&rows, 0, sizeof(rows));
    projkey_store_changes(st, 8, t_collect, &rows, &seq2);
    is_int(rows.n, 0, "no change since 8");

    t_make_key(&k[1], "default", "short-lived");
    projkey_store_create(st, &k[1].new, &actor, NULL, NULL);
    memcpy(t_short_id, k[1].id, sizeof(t_short_id));
    projkey_store_delete(st, "default", 7, k[1].id, PROJKEY_ID_LEN, &actor,
                         NULL, NULL);
    memset(&rows, 0, sizeof(rows));
    projkey_store_changes(st, 8, t_collect, &rows, &seq2);
    is_int(rows.n, 1, "created then deleted: once");
    is_int(rows.row[0].status, PROJKEY_STATUS_DELETED, "as deleted");
    is_int(rows.row[0].seq, 10, "at the deletion's sequence");

    /* load */

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_load(st, t_collect, &rows, &seq2), PROJKEY_STORE_OK,
           "load");
    is_int(rows.n, 3, "every key not deleted, of every project");
    is_int(seq2, 10, "as of sequence 10");

    /* a multi-byte name, 100 characters */

    name[0] = '\0';

    for (i = 0; i < 100; i++) {
        strcat(name, "\xc3\xa9");
    }

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_update(st, "default", 7, k[0].id, PROJKEY_ID_LEN,
                                name, strlen(name), 0, &actor, t_collect,
                                &rows), PROJKEY_STORE_OK,
           "rename to 100 two-byte characters");
    is_str(rows.row[0].name, name, "kept byte for byte");
}


static void
t_json(projkey_store_t *st)
{
    char             *json, *p, buf[32], instance[33];
    size_t            len;
    int64_t           seq_before, seq_after;
    t_key_t           k;
    t_rows_t          rows;
    projkey_touch_t   touch[2];
    projkey_actor_t   actor = { "bob", 3, NULL, 0 };

    t_make_key(&k, "json", "a \"quoted\" name\\");

    memset(&rows, 0, sizeof(rows));
    projkey_store_create(st, &k.new, &actor, t_collect, &rows);

    is_int(projkey_store_list_json(st, "json", 4, &json, &len),
           PROJKEY_STORE_OK, "list_json");
    is_int(len, strlen(json), "its length");
    is_str(t_jx(json, "$.keys[0].id"), k.id, "list: id");
    is_str(t_jx(json, "$.keys[0].name"), "a \"quoted\" name\\",
           "list: name, escaped");
    is_str(t_jx(json, "$.keys[0].status"), "active", "list: status");
    is_str(t_jx(json, "$.keys[0].project"), "json", "list: project");
    is_str(t_jx(json, "$.keys[0].created_by"), "bob", "list: created_by");
    p = t_jx(json, "$.keys[0].created_at");
    ok(p != NULL && strlen(p) == 20
       && p[4] == '-' && p[10] == 'T' && p[19] == 'Z',
       "list: created_at is RFC 3339 UTC: %s", p != NULL ? p : "(null)");
    is_str(t_jx(json, "$.keys[0].last_used_at"), "null",
           "list: last_used_at null");
    p = t_jx(json, "$.keys[0].preview");
    ok(p != NULL
       && memcmp(p, k.preview, PROJKEY_PREVIEW_LEN) == 0
       && strlen(p) == PROJKEY_PREVIEW_LEN, "list: preview");
    is_str(t_jx(json, "$.keys[1]"), NULL, "list: one key");
    projkey_store_free(json);

    is_int(projkey_store_list_json(st, "empty", 5, &json, &len),
           PROJKEY_STORE_OK, "list_json of an empty project");
    is_str(json, "{\"keys\":[]}", "is an empty list");
    projkey_store_free(json);

    is_int(projkey_store_state(st, &seq_before, instance), PROJKEY_STORE_OK,
           "state before touch");

    touch[0].last_used_at = 1700000000;
    memcpy(touch[0].id, k.id, PROJKEY_ID_LEN + 1);
    touch[1].last_used_at = 1600000000;
    memcpy(touch[1].id, k.id, PROJKEY_ID_LEN + 1);
    if (!is_int(projkey_store_touch(st, touch, 2), PROJKEY_STORE_OK,
                "touch"))
    {
        diag("%s", projkey_store_errmsg(st));
    }
    is_int(projkey_store_state(st, &seq_after, instance), PROJKEY_STORE_OK,
           "state after touch");

    memset(&rows, 0, sizeof(rows));
    projkey_store_get(st, "json", 4, k.id, PROJKEY_ID_LEN, t_collect, &rows);
    is_int(rows.row[0].last_used_at, 1700000000, "touch keeps the newest");
    is_int(seq_after, seq_before, "and takes no sequence");

    {
        projkey_row_t  r;

        memset(&r, 0, sizeof(r));
        r.id = rows.row[0].id;
        r.name = rows.row[0].name;
        r.name_len = strlen(rows.row[0].name);
        r.preview = "sk-project-...abcd";
        r.project = "json";
        r.project_len = 4;
        r.created_by = "bob";
        r.created_at = 0;
        r.updated_at = 1764221701;
        r.last_used_at = rows.row[0].last_used_at;
        r.status = PROJKEY_STATUS_DISABLED;

        is_int(projkey_json_row(t_keys_json, &r, time(NULL), &json, &len),
               PROJKEY_STORE_OK, "row_json");
        is_str(t_jx(json, "$.status"), "disabled", "row_json: status");
        is_str(t_jx(json, "$.created_at"), "1970-01-01T00:00:00Z",
               "row_json: created_at");
        is_str(t_jx(json, "$.updated_at"), "2025-11-27T05:35:01Z",
               "row_json: updated_at");
        is_str(t_jx(json, "$.last_used_at"), "2023-11-14T22:13:20Z",
               "row_json: last_used_at");
        ok(strncmp(json, "{\"id\":\"", 7) == 0
           && strstr(json, "\"name\":") != NULL
           && strstr(json, "\"preview\":\"sk-project-...abcd\"") != NULL,
           "row_json: members in the contract's order: %s", json);
        is_int(len, strlen(json), "row_json: length");
        projkey_store_free(json);
    }

    /* the audit trail of project "default" (t_crud) */

    is_int(projkey_store_audit_json(st, "default", 7, 0, 3, &json, &len),
           PROJKEY_STORE_OK, "audit_json, first page of 3");
    is_str(t_jx(json, "$.events[0].action"), "rename",
           "newest first: the multi-byte rename");
    is_str(t_jx(json, "$.events[1].action"), "delete",
           "the short-lived key's deletion");
    is_str(t_jx(json, "$.events[2].action"), "create",
           "the short-lived key's creation");
    is_str(t_jx(json, "$.events[0].actor"), "alice", "actor");
    is_str(t_jx(json, "$.events[0].addr"), "192.0.2.1", "addr");
    is_str(t_jx(json, "$.events[1].detail.name"), "short-lived",
           "delete detail: name");
    is_str(t_jx(json, "$.events[1].key_id"), t_short_id, "key_id");
    is_str(t_jx(json, "$.events[3]"), NULL, "three events");
    p = t_jx(json, "$.next");
    ok(p != NULL && atoll(p) > 0, "next is set: %s", p != NULL ? p : "");
    snprintf(buf, sizeof(buf), "%s", p != NULL ? p : "0");
    is_str(t_jx(json, "$.events[2].id"), buf, "next is the last event's id");
    projkey_store_free(json);

    is_int(projkey_store_audit_json(st, "default", 7, atoll(buf), 100, &json,
                                    &len), PROJKEY_STORE_OK,
           "audit_json, the rest");
    is_str(t_jx(json, "$.next"), "null", "next is null at the end");
    is_str(t_jx(json, "$.events[0].action"), "delete",
           "the first deletion");
    is_str(t_jx(json, "$.events[1].action"), "enable", "enable");
    is_str(t_jx(json, "$.events[1].detail.status.from"), "disabled",
           "enable detail: from");
    is_str(t_jx(json, "$.events[1].detail.status.to"), "active",
           "enable detail: to");
    is_str(t_jx(json, "$.events[2].action"), "rename",
           "a rename with the enable");
    is_str(t_jx(json, "$.events[2].detail.name.from"), "renamed",
           "rename detail: from");
    is_str(t_jx(json, "$.events[2].detail.name.to"), "both",
           "rename detail: to");
    is_str(t_jx(json, "$.events[3].action"), "disable", "disable");
    is_str(t_jx(json, "$.events[4].action"), "rename", "rename");
    is_str(t_jx(json, "$.events[5].action"), "create", "create");
    is_str(t_jx(json, "$.events[7].action"), "create", "create");
    is_str(t_jx(json, "$.events[8]"), NULL,
           "no event of another project, none twice");
    projkey_store_free(json);

    is_int(projkey_store_audit_json(st, "nobody", 6, 0, 10, &json, &len),
           PROJKEY_STORE_OK, "audit_json of an empty project");
    is_str(json, "{\"events\":[],\"next\":null}", "is empty");
    projkey_store_free(json);
}


/* the secret must be nowhere in the files, the WAL included */

static void
t_secret(void)
{
    t_key_t           k;
    projkey_store_t  *st;
    projkey_actor_t   actor = { "alice", 5, NULL, 0 };

    projkey_store_open(t_path("secret.db"), PROJKEY_STORE_CREATE, 1000, &st);
    t_make_key(&k, "default", "secret test");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "create a key for the secret scan");

    ok(access(t_path("secret.db-wal"), F_OK) == 0, "the WAL file exists");
    ok(t_file_has(t_path("secret.db-wal"), k.hash, PROJKEY_HASH_LEN),
       "the scan finds the hash in the WAL (the scan works)");

    ok(!t_file_has(t_path("secret.db"), k.secret, PROJKEY_LEN)
       && !t_file_has(t_path("secret.db-wal"), k.secret, PROJKEY_LEN),
       "the secret is not in the database nor its WAL");
    ok(!t_file_has(t_path("secret.db"), k.secret + PROJKEY_PREFIX_LEN, 48)
       && !t_file_has(t_path("secret.db-wal"), k.secret + PROJKEY_PREFIX_LEN,
                      48), "nor its 48 characters after the prefix");

    projkey_store_close(st);

    ok(!t_file_has(t_path("secret.db"), k.secret + PROJKEY_PREFIX_LEN, 48),
       "nor after the checkpoint on close");
}


/* load speed: PROJKEY_TEST_LOAD=N keys (default 100000) */

static void
t_load_speed(void)
{
    long              n, i, j, count;
    char             *e, names[32];
    int64_t           seq;
    t_key_t          *k;
    projkey_new_t    *batch;
    projkey_store_t  *st;
    struct timeval    t0, t1;
    projkey_actor_t   actor = { "bulk", 4, NULL, 0 };

    e = getenv("PROJKEY_TEST_LOAD");
    n = e != NULL ? atol(e) : 100000;

    projkey_store_open(t_path("load.db"), PROJKEY_STORE_CREATE, 1000, &st);

    k = malloc(10000 * sizeof(t_key_t));
    batch = malloc(10000 * sizeof(projkey_new_t));

    for (i = 0; i < n; i += 10000) {
        for (j = 0; j < 10000 && i + j < n; j++) {
            t_make_key(&k[j], "default", "bulk");
            batch[j] = k[j].new;
        }

        if (projkey_store_create_batch(st, batch, j, &actor)
            != PROJKEY_STORE_OK)
        {
            break;
        }
    }

    snprintf(names, sizeof(names), "%ld", n);
    ok(i >= n, "create_batch of %s keys", names);

    free(k);
    free(batch);

    count = 0;
    gettimeofday(&t0, NULL);
    is_int(projkey_store_load(st, t_count, &count, &seq), PROJKEY_STORE_OK,
           "load them");
    gettimeofday(&t1, NULL);
    is_int(count, n, "every one");
    is_int(seq, n, "as of sequence %ld", n);
    diag("load of %ld keys: %ld ms", n,
         (long) ((t1.tv_sec - t0.tv_sec) * 1000
                 + (t1.tv_usec - t0.tv_usec) / 1000));

    projkey_store_close(st);
}


/* a change made with the sqlite3 shell reaches the change feed too */

static void
t_by_hand(void)
{
    char              sql[256];
    int64_t           seq, after;
    t_key_t           a, b;
    t_rows_t          rows;
    projkey_actor_t   actor = { "t", 1, NULL, 0 };
    projkey_store_t  *st;

    if (projkey_store_open(t_path("hand.db"), PROJKEY_STORE_CREATE, 1000,
                           &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot create hand.db");
    }

    t_make_key(&a, "default", "a");
    t_make_key(&b, "default", "b");
    projkey_store_create(st, &a.new, &actor, NULL, NULL);
    projkey_store_create(st, &b.new, &actor, NULL, NULL);
    projkey_store_state(st, &seq, sql);

    snprintf(sql, sizeof(sql), "UPDATE keys SET status = 2 WHERE id = '%s'",
             a.id);
    t_sql(t_path("hand.db"), sql);
    snprintf(sql, sizeof(sql), "DELETE FROM keys WHERE id = '%s'", b.id);
    t_sql(t_path("hand.db"), sql);
    t_sql(t_path("hand.db"), "UPDATE keys SET last_used_at = 5");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_changes(st, seq, t_collect, &rows, &after),
           PROJKEY_STORE_OK, "by hand: changes read");
    is_int(after, seq + 2, "by hand: two changes, the last use not one");
    is_int(rows.n, 2, "by hand: both keys in the feed");
    ok(rows.n == 2 && strcmp(rows.row[0].id, a.id) == 0
       && rows.row[0].status == PROJKEY_STATUS_DISABLED,
       "by hand: the disable");
    ok(rows.n == 2 && strcmp(rows.row[1].id, b.id) == 0
       && rows.row[1].status == PROJKEY_STATUS_DELETED,
       "by hand: the delete");

    /* the store's own writes take one number each, as before */
    is_int(projkey_store_update(st, "default", 7, a.id, PROJKEY_ID_LEN, NULL,
                                0, PROJKEY_STATUS_ACTIVE, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "by hand: then enabled by the store");
    projkey_store_state(st, &seq, sql);
    is_int(seq, after + 1, "by hand: one number for the store's write");

    projkey_store_close(st);
}


/* commits of a NO_CHECKPOINT connection leave the WAL to the checkpoint */

static void
t_checkpoint(void)
{
    int               i, complete;
    char              name[32];
    off_t             wal, db, after;
    double            waited;
    struct timespec   t0, t1;
    sqlite3          *raw;
    t_key_t           k;
    struct stat       sb;
    projkey_actor_t   actor = { "t", 1, NULL, 0 };
    projkey_store_t  *st, *other;

    if (projkey_store_open(t_path("ckpt.db"), PROJKEY_STORE_CREATE
                           | PROJKEY_STORE_NO_CHECKPOINT, 1000, &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot create ckpt.db");
    }

    /* a second connection keeps the WAL from being folded in on close */
    is_int(projkey_store_open(t_path("ckpt.db"), 0, 1000, &other),
           PROJKEY_STORE_OK, "checkpoint: a second connection");

    for (i = 0; i < 1200; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        t_make_key(&k, "default", name);
        if (projkey_store_create(st, &k.new, &actor, NULL, NULL)
            != PROJKEY_STORE_OK)
        {
            break;
        }
    }

    is_int(i, 1200, "checkpoint: 1200 keys created");

    /* past 1000 pages SQLite would have checkpointed and restarted it */
    wal = (stat(t_path("ckpt.db-wal"), &sb) == 0) ? sb.st_size : -1;
    db = (stat(t_path("ckpt.db"), &sb) == 0) ? sb.st_size : -1;
    ok(wal > 4096 * 1000, "checkpoint: the WAL kept every commit (%lld)",
       (long long) wal);

    complete = -1;
    is_int(projkey_store_checkpoint(st, 0, &complete), PROJKEY_STORE_OK,
           "checkpoint: passive checkpoint");
    is_int(complete, 1, "checkpoint: nothing in the way, it is complete");

    after = (stat(t_path("ckpt.db"), &sb) == 0) ? sb.st_size : -1;
    ok(after > db && after > 4096 * 50,
       "checkpoint: the database file now holds the keys (%lld -> %lld)",
       (long long) db, (long long) after);

    /* the next write starts the WAL over and cuts the file to the limit */
    t_make_key(&k, "default", "after the checkpoint");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "checkpoint: a write after it");
    wal = (stat(t_path("ckpt.db-wal"), &sb) == 0) ? sb.st_size : -1;
    ok(wal >= 0 && wal <= 4194304,
       "checkpoint: the WAL was started over and cut to 4 MB (%lld)",
       (long long) wal);

    /* a reader on an older snapshot keeps the newer frames in the WAL */
    if (sqlite3_open(t_path("ckpt.db"), &raw) != SQLITE_OK
        || sqlite3_exec(raw, "BEGIN; SELECT count(*) FROM keys", NULL, NULL,
                        NULL) != SQLITE_OK)
    {
        bail_out("cannot open a reader on ckpt.db");
    }

    t_make_key(&k, "default", "while read");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "checkpoint: a write under an open reader");
    is_int(projkey_store_checkpoint(st, 0, &complete), PROJKEY_STORE_OK,
           "checkpoint: passive under an open reader is no error");
    is_int(complete, 0, "checkpoint: but it is not complete");

    sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(raw);

    is_int(projkey_store_checkpoint(st, 0, &complete), PROJKEY_STORE_OK,
           "checkpoint: again once the reader is gone");
    is_int(complete, 1, "checkpoint: now complete");

    /* full: a reader on an older snapshot is waited for briefly, no more */
    if (sqlite3_open(t_path("ckpt.db"), &raw) != SQLITE_OK
        || sqlite3_exec(raw, "BEGIN; SELECT count(*) FROM keys", NULL, NULL,
                        NULL) != SQLITE_OK)
    {
        bail_out("cannot open a reader on ckpt.db");
    }

    t_make_key(&k, "default", "while read, full");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "checkpoint: a write under an open reader (2)");
    complete = -1;
    is_int(projkey_store_checkpoint(st, 1, &complete), PROJKEY_STORE_OK,
           "checkpoint: full under an open reader is no error");
    is_int(complete, 0, "checkpoint: full, but the reader kept it from "
           "the end");

    sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(raw);

    t_make_key(&k, "default", "before the full one");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "checkpoint: a write before a full one");
    is_int(projkey_store_checkpoint(st, 1, &complete), PROJKEY_STORE_OK,
           "checkpoint: full once the reader is gone");
    is_int(complete, 1, "checkpoint: full, complete");
    t_make_key(&k, "default", "after the full one");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "checkpoint: the connection writes after it");

    /* and waits for another writer as long as before, not 100 ms */
    if (sqlite3_open(t_path("ckpt.db"), &raw) != SQLITE_OK
        || sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    {
        bail_out("cannot take the write lock of ckpt.db");
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    t_make_key(&k, "default", "behind another writer");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_BUSY, "checkpoint: a write behind another writer");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waited = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    ok(waited >= 900 && waited < 3000, "checkpoint: it waited its own "
       "busy timeout of 1000 ms (%.0f ms)", waited);

    sqlite3_exec(raw, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(raw);

    projkey_store_close(other);
    projkey_store_close(st);
}

/* pages of the key list: GET keys?limit&after&q&status */

#define T_PAGE_MAX  6000

typedef struct {
    char           id[T_PAGE_MAX][PROJKEY_ID_LEN + 1];
    int            n;
    char           next[PROJKEY_CURSOR_MAX + 1];
    int            has_next;
} t_page_t;


/* one page as JSON, its ids appended to p->id; the rc of the store */
static int
t_page(projkey_store_t *st, const char *project, const char *q, int status,
    int limit, const char *after, t_page_t *p)
{
    int                  rc;
    char                *json;
    size_t               len;
    sqlite3_stmt        *s;
    const char          *v;
    projkey_page_t       page;

    memset(&page, 0, sizeof(projkey_page_t));
    page.q = q;
    page.q_len = q != NULL ? strlen(q) : 0;
    page.after = after;
    page.after_len = after != NULL ? strlen(after) : 0;
    page.status = status;
    page.limit = limit;

    rc = projkey_store_page_json(st, project, strlen(project), &page, &json,
                                 &len);
    if (rc != PROJKEY_STORE_OK) {
        return rc;
    }

    if (strlen(json) != len) {
        diag("page: length %zu, not %zu", len, strlen(json));
    }

    sqlite3_prepare_v2(t_json_db, "SELECT json_extract(value, '$.id')"
                       " FROM json_each(?1, '$.keys')", -1, &s, NULL);
    sqlite3_bind_text(s, 1, json, -1, SQLITE_STATIC);

    while (sqlite3_step(s) == SQLITE_ROW && p->n < T_PAGE_MAX) {
        v = (const char *) sqlite3_column_text(s, 0);
        snprintf(p->id[p->n++], PROJKEY_ID_LEN + 1, "%s", v ? v : "");
    }

    sqlite3_finalize(s);

    v = t_jx(json, "$.next");
    p->has_next = (v != NULL && strcmp(v, "null") != 0);
    snprintf(p->next, sizeof(p->next), "%s", p->has_next ? v : "");

    projkey_store_free(json);

    return rc;
}


/* every page from the first, appended to p; the number of pages, or -1 */
static int
t_walk(projkey_store_t *st, const char *project, const char *q, int status,
    int limit, t_page_t *p)
{
    int   pages;
    char  after[PROJKEY_CURSOR_MAX + 1];

    after[0] = '\0';

    for (pages = 1; pages < 10000; pages++) {
        if (t_page(st, project, q, status, limit, after[0] ? after : NULL, p)
            != PROJKEY_STORE_OK)
        {
            return -1;
        }

        if (!p->has_next) {
            return pages;
        }

        memcpy(after, p->next, sizeof(after));
    }

    return -1;
}


/* the ids of sql ("SELECT id ..."), in its order, into p */
static void
t_sql_ids(const char *path, const char *sql, t_page_t *p)
{
    sqlite3       *db;
    sqlite3_stmt  *s;

    p->n = 0;

    if (sqlite3_open(path, &db) != SQLITE_OK
        || sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
    {
        bail_out("t_sql_ids: %s", sqlite3_errmsg(db));
    }

    while (sqlite3_step(s) == SQLITE_ROW && p->n < T_PAGE_MAX) {
        snprintf(p->id[p->n++], PROJKEY_ID_LEN + 1, "%s",
                 (const char *) sqlite3_column_text(s, 0));
    }

    sqlite3_finalize(s);
    sqlite3_close(db);
}


static int
t_same_ids(const t_page_t *a, const t_page_t *b)
{
    int  i;

    if (a->n != b->n) {
        diag("%d ids, not %d", a->n, b->n);
        return 0;
    }

    for (i = 0; i < a->n; i++) {
        if (strcmp(a->id[i], b->id[i]) != 0) {
            diag("id %d: %s, not %s", i, a->id[i], b->id[i]);
            return 0;
        }
    }

    return 1;
}


static int
t_has_id(const t_page_t *p, const char *id)
{
    int  i, n;

    for (n = 0, i = 0; i < p->n; i++) {
        n += (strcmp(p->id[i], id) == 0);
    }

    return n;
}


/* n keys of project named prefix-1 .. prefix-n, in one batch */
static void
t_batch(projkey_store_t *st, const char *project, const char *prefix,
    int n, t_key_t *k)
{
    int                i;
    projkey_new_t     *batch;
    static char        names[T_PAGE_MAX][32];
    projkey_actor_t    actor = { "t", 1, NULL, 0 };

    batch = malloc(n * sizeof(projkey_new_t));

    for (i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "%s-%d", prefix, i + 1);
        t_make_key(&k[i], project, names[i]);
        batch[i] = k[i].new;
    }

    if (projkey_store_create_batch(st, batch, n, &actor) != PROJKEY_STORE_OK)
    {
        bail_out("create_batch: %s", projkey_store_errmsg(st));
    }

    free(batch);
}


/* an index grown a key a transaction is merged a step at a time */

static void
t_merge_step(void)
{
    int                i, more, steps;
    char               prefix[16];
    t_key_t            k[1];
    t_page_t          *a;
    projkey_store_t   *st;

    if (projkey_store_open(t_path("merge.db"), PROJKEY_STORE_CREATE, 1000,
                           &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot open merge.db: %s", projkey_store_errmsg(st));
    }

    for (i = 0; i < 64; i++) {
        snprintf(prefix, sizeof(prefix), "mrg%02d", i);
        t_batch(st, "m", prefix, 1, k);
    }

    more = 1;

    for (steps = 0; more && steps < 100; steps++) {
        if (projkey_store_search_merge_step(st, &more) != PROJKEY_STORE_OK) {
            bail_out("merge step: %s", projkey_store_errmsg(st));
        }
    }

    ok(steps >= 2 && !more, "merge: 64 writes' segments merged in %d steps",
       steps);
    is_int(projkey_store_search_merge_step(st, &more), PROJKEY_STORE_OK,
           "merge: a step with nothing to do");
    is_int(more, 0, "merge: and it says so");

    a = calloc(1, sizeof(t_page_t));
    t_walk(st, "m", "mrg", PROJKEY_PAGE_ANY, 1000, a);
    is_int(a->n, 64, "merge: every key is found after it");
    free(a);

    projkey_store_close(st);
}


static void
t_pages(void)
{
    int                i, pages, found;
    char               sql[16384], q[8], cur[PROJKEY_CURSOR_MAX + 1];
    t_key_t           *k, u[6];
    t_page_t          *a, *b;
    projkey_page_t     page;
    projkey_store_t   *st;
    projkey_actor_t    actor = { "t", 1, NULL, 0 };
    static const char *names[6] = { "Clé Über", "ÉCOLE du soir", "Ключ API",
                                    "grp-alpha", "grp-beta", "grp-gamma" };

    if (projkey_store_open(t_path("page.db"), PROJKEY_STORE_CREATE, 1000,
                           &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot create page.db");
    }

    k = malloc(T_PAGE_MAX * sizeof(t_key_t));
    a = calloc(1, sizeof(t_page_t));
    b = calloc(1, sizeof(t_page_t));

    /* 300 keys over 100 seconds, 3 a second: ties broken by id */

    t_batch(st, "p", "key", 300, k);
    t_sql(t_path("page.db"), "UPDATE keys SET created_at = 1700000000"
          " + (CAST(substr(name, 5) AS INTEGER) / 3)");
    t_batch(st, "other", "key", 50, k);

    /* named keys; three of one second share a group of the search index */

    for (i = 0; i < 6; i++) {
        t_make_key(&u[i], "p", names[i]);

        if (i >= 3) {
            memcpy(u[i].id, "GRoUP", 5);
        }

        is_int(projkey_store_create(st, &u[i].new, &actor, NULL, NULL),
               PROJKEY_STORE_OK, "page: create \"%s\"", names[i]);
    }

    snprintf(sql, sizeof(sql), "UPDATE keys SET created_at = 1600000000"
             " WHERE id GLOB 'GRoUP*'");
    t_sql(t_path("page.db"), sql);

    /* every key once, in order, whatever the page size */

    t_sql_ids(t_path("page.db"), "SELECT id FROM keys WHERE project = 'p'"
              " ORDER BY created_at DESC, id DESC", b);
    is_int(b->n, 306, "page: 306 keys in p");

    for (i = 0; i < 4; i++) {
        static const int  limits[4] = { 1, 7, 100, 1000 };

        a->n = 0;
        pages = t_walk(st, "p", NULL, PROJKEY_PAGE_ANY, limits[i], a);
        ok(pages > 0 && t_same_ids(a, b), "page: limit %d walks every key "
           "once, in order (%d pages)", limits[i], pages);
    }

    a->n = 0;
    is_int(t_page(st, "p", NULL, PROJKEY_PAGE_ANY, 0, NULL, a),
           PROJKEY_STORE_OK, "page: no limit");
    is_int(a->n, 100, "page: 100 keys by default");
    ok(a->has_next, "page: and a next");
    ok(strlen(a->next) < 100 && strspn(a->next, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
       "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(a->next),
       "page: the cursor is base64url: %s", a->next);

    a->n = 0;
    is_int(t_page(st, "nobody", NULL, PROJKEY_PAGE_ANY, 10, NULL, a),
           PROJKEY_STORE_OK, "page: a project without keys");
    ok(a->n == 0 && !a->has_next, "page: no keys, next null");

    /* keys created between pages are not shown twice, none is skipped */

    a->n = 0;
    cur[0] = '\0';

    for (pages = 0; pages < 100; pages++) {
        t_page(st, "p", NULL, PROJKEY_PAGE_ANY, 10, cur[0] ? cur : NULL, a);

        if (!a->has_next) {
            break;
        }

        memcpy(cur, a->next, sizeof(cur));

        /* newer ones (now), and one older than the cursor by hand */
        t_make_key(&k[0], "p", "during");
        projkey_store_create(st, &k[0].new, &actor, NULL, NULL);
        t_make_key(&k[1], "p", "during, old");
        projkey_store_create(st, &k[1].new, &actor, NULL, NULL);
        snprintf(sql, sizeof(sql), "UPDATE keys SET created_at = 1500000000"
                 " WHERE id = '%s'", k[1].id);
        t_sql(t_path("page.db"), sql);
    }

    for (found = 1, i = 0; i < b->n; i++) {
        found &= (t_has_id(a, b->id[i]) == 1);
    }

    ok(found, "page: with inserts between pages, each key once");

    for (found = 1, i = 0; i < a->n; i++) {
        found &= (t_has_id(a, a->id[i]) == 1);
    }

    ok(found, "page: no key twice (%d keys in %d pages)", a->n, pages + 1);

    t_sql(t_path("page.db"), "DELETE FROM keys WHERE name GLOB 'during*'");

    /* search: the name, case-insensitively, in any script */

    a->n = 0;
    t_walk(st, "p", "KEY-29", PROJKEY_PAGE_ANY, 3, a);
    t_sql_ids(t_path("page.db"), "SELECT id FROM keys WHERE project = 'p'"
              " AND name LIKE '%key-29%' ORDER BY created_at DESC, id DESC",
              b);
    ok(b->n == 11 && t_same_ids(a, b), "search \"KEY-29\": key-29, "
       "key-290 .. 299, in order, over pages of 3");

    for (i = 0; i < 10; i++) {
        static const struct {
            const char  *q;
            int          key;
        } cases[10] = {
            { "über", 0 }, { "ÜBER", 0 }, { "ü", 0 }, { "cLÉ", 0 },
            { "é ü", 0 }, { "école", 1 }, { "É", -1 }, { "ключ", 2 },
            { "Ю", 2 }, { "ЧA", -2 }
        };

        a->n = 0;
        t_walk(st, "p", cases[i].q, PROJKEY_PAGE_ANY, 100, a);

        if (cases[i].key >= 0) {
            ok(a->n >= 1 && t_has_id(a, u[cases[i].key].id) == 1,
               "search \"%s\": \"%s\" (%d found)", cases[i].q,
               names[cases[i].key], a->n);

        } else if (cases[i].key == -1) {
            ok(a->n == 2 && t_has_id(a, u[0].id) && t_has_id(a, u[1].id),
               "search \"%s\": both keys with an e acute", cases[i].q);

        } else {
            /* Cyrillic "Ч", then a Latin "A": no key has both in a row */
            is_int(a->n, 0, "search \"%s\": none", cases[i].q);
        }
    }

    /* keys of one group of the search index are checked one by one */

    a->n = 0;
    t_walk(st, "p", "alpha", PROJKEY_PAGE_ANY, 100, a);
    ok(a->n == 1 && t_has_id(a, u[3].id), "search \"alpha\": only grp-alpha "
       "of its group");
    a->n = 0;
    t_walk(st, "p", "grp-", PROJKEY_PAGE_ANY, 1, a);
    ok(a->n == 3 && t_has_id(a, u[3].id) && t_has_id(a, u[4].id)
       && t_has_id(a, u[5].id) && strcmp(a->id[0], a->id[1]) > 0
       && strcmp(a->id[1], a->id[2]) > 0,
       "search \"grp-\": the whole group, in id order, a key a page");

    /* search: the end of the preview */

    snprintf(q, sizeof(q), "%.4s", u[0].preview + PROJKEY_PREVIEW_LEN - 4);

    for (i = 0; i < 6; i++) {
        char  v[300];

        switch (i) {
        case 0: snprintf(v, sizeof(v), "%s", q); break;
        case 1: snprintf(v, sizeof(v), "%s", q + 1); break;
        case 2: snprintf(v, sizeof(v), "%s", q + 2); break;
        case 3: snprintf(v, sizeof(v), "...%s", q); break;
        case 4: snprintf(v, sizeof(v), "%.*s", (int) PROJKEY_PREVIEW_LEN,
                         (const char *) u[0].preview); break;
        default:
            snprintf(v, sizeof(v), "%s", q);
            v[0] = (v[0] >= 'a' && v[0] <= 'z') ? v[0] - 32
                   : (v[0] >= 'A' && v[0] <= 'Z') ? v[0] + 32 : v[0];
        }

        a->n = 0;
        t_walk(st, "p", v, PROJKEY_PAGE_ANY, 1000, a);
        ok(t_has_id(a, u[0].id) == 1, "search \"%s\": the key whose "
           "preview ends so (%d found)", v, a->n);
    }

    a->n = 0;
    t_walk(st, "p", "xsk-project-...", PROJKEY_PAGE_ANY, 100, a);
    is_int(a->n, 0, "search \"xsk-project-...\": no preview ends so");

    /* search and status together; no other project's key, ever */

    a->n = 0;
    t_walk(st, "other", "Über", PROJKEY_PAGE_ANY, 100, a);
    is_int(a->n, 0, "search in \"other\": not p's keys");
    a->n = 0;
    t_walk(st, "other", "key", PROJKEY_PAGE_ANY, 100, a);
    t_sql_ids(t_path("page.db"), "SELECT id FROM keys WHERE project ="
              " 'other' ORDER BY created_at DESC, id DESC", b);
    ok(t_same_ids(a, b), "search \"key\" in \"other\": its 50 keys only");

    /* status */

    for (i = 0; i < 300; i += 7) {
        snprintf(sql, sizeof(sql), "UPDATE keys SET status = 2 WHERE"
                 " project = 'p' AND name = 'key-%d'", i + 1);
        t_sql(t_path("page.db"), sql);
    }

    t_sql_ids(t_path("page.db"), "SELECT id FROM keys WHERE project = 'p'"
              " AND status = 2 ORDER BY created_at DESC, id DESC", b);
    a->n = 0;
    t_walk(st, "p", NULL, PROJKEY_PAGE_DISABLED, 5, a);
    ok(b->n == 43 && t_same_ids(a, b), "status disabled: the 43, in order");

    t_sql_ids(t_path("page.db"), "SELECT id FROM keys WHERE project = 'p'"
              " AND status = 1 ORDER BY created_at DESC, id DESC", b);
    a->n = 0;
    t_walk(st, "p", NULL, PROJKEY_PAGE_ACTIVE, 50, a);
    ok(t_same_ids(a, b), "status active: the others");

    a->n = 0;
    t_walk(st, "p", NULL, PROJKEY_PAGE_EXPIRED, 50, a);
    is_int(a->n, 0, "status expired: none (no expiry in this schema)");

    t_sql_ids(t_path("page.db"), "SELECT id FROM keys WHERE project = 'p'"
              " AND status = 2 AND name LIKE 'key-2%'"
              " ORDER BY created_at DESC, id DESC", b);
    a->n = 0;
    t_walk(st, "p", "key-2", PROJKEY_PAGE_DISABLED, 4, a);
    ok(b->n > 0 && t_same_ids(a, b), "search and status: %d keys", b->n);
    a->n = 0;
    t_walk(st, "p", "y-", PROJKEY_PAGE_DISABLED, 4, a);
    t_sql_ids(t_path("page.db"), "SELECT id FROM keys WHERE project = 'p'"
              " AND status = 2 ORDER BY created_at DESC, id DESC", b);
    ok(t_same_ids(a, b), "2-character search and status");

    /* changes by hand reach the search index */

    snprintf(sql, sizeof(sql), "UPDATE keys SET name = 'Renamed by hand'"
             " WHERE id = '%s'", u[1].id);
    t_sql(t_path("page.db"), sql);
    a->n = 0;
    t_walk(st, "p", "by hand", PROJKEY_PAGE_ANY, 10, a);
    ok(a->n == 1 && t_has_id(a, u[1].id), "by hand: a rename is found");
    a->n = 0;
    t_walk(st, "p", "école", PROJKEY_PAGE_ANY, 10, a);
    is_int(a->n, 0, "by hand: the old name is not");

    snprintf(sql, sizeof(sql), "DELETE FROM keys WHERE id = '%s'", u[4].id);
    t_sql(t_path("page.db"), sql);
    a->n = 0;
    t_walk(st, "p", "grp-", PROJKEY_PAGE_ANY, 10, a);
    ok(a->n == 2 && !t_has_id(a, u[4].id), "by hand: a deleted key is not "
       "found, its group's others are");

    {
        sqlite3  *db;
        char     *err;

        err = NULL;
        sqlite3_open(t_path("page.db"), &db);
        i = sqlite3_exec(db, "INSERT INTO keys (id, project, name, hash,"
                         " preview, status, created_by, created_at,"
                         " updated_at, seq) VALUES ('bad id', 'p', 'x',"
                         " randomblob(32), 'sk-project-...abcd', 1, 'me', 1,"
                         " 1, 1)", NULL, NULL, &err);
        ok(i != SQLITE_OK && err != NULL
           && strstr(err, "12 base62 characters") != NULL,
           "by hand: a key whose id is not 12 base62 characters is refused:"
           " %s", err ? err : "");
        sqlite3_free(err);
        sqlite3_close(db);
    }

    /* bad pages */

    memset(&page, 0, sizeof(projkey_page_t));

    for (i = 0; i < 9; i++) {
        static const struct {
            int          limit;
            int          status;
            const char  *q;
            const char  *msg;
        } bad[9] = {
            { -1, 0, "", "limit" }, { 1001, 0, "", "limit" },
            { 0, 4, "", "status" }, { 0, -1, "", "status" },
            { 0, 0, "\xc3", "UTF-8" }, { 0, 0, "a\tb", "control" },
            { 0, 0, "\xed\xa0\x80", "UTF-8" },
            { 0, 0, "\xc0\xaf", "UTF-8" },
            { 0, 0, "01234567890123456789012345678901234567890123456789"
                    "012345678901234567890123456789012345678901234567890",
              "100 characters" }
        };
        const char  *msg;

        page.limit = bad[i].limit;
        page.status = bad[i].status;
        page.q = bad[i].q;
        page.q_len = strlen(bad[i].q);

        msg = projkey_store_check_page(&page);
        ok(msg != NULL && strstr(msg, bad[i].msg) != NULL,
           "check_page refuses a bad %s: %s", bad[i].msg, msg ? msg : "");
        a->n = 0;
        is_int(t_page(st, "p", bad[i].q, bad[i].status, bad[i].limit, NULL,
                      a), PROJKEY_STORE_INVALID, "and so does the page");
    }

    page.limit = 0;
    page.status = 0;
    page.q_len = 0;

    /* cursors: only the store's own, for this project and filter */

    a->n = 0;
    t_page(st, "p", "key", PROJKEY_PAGE_ANY, 2, NULL, a);
    memcpy(cur, a->next, sizeof(cur));

    a->n = 0;
    is_int(t_page(st, "p", "key", PROJKEY_PAGE_ANY, 2, cur, a),
           PROJKEY_STORE_OK, "cursor: its own next page");
    is_int(t_page(st, "other", "key", PROJKEY_PAGE_ANY, 2, cur, a),
           PROJKEY_STORE_INVALID, "cursor: of another project, refused");
    is_str(projkey_store_errmsg(st), "Bad cursor: give the \"next\" of a "
           "previous page of the same search.", "and says so");
    is_int(t_page(st, "p", "kez", PROJKEY_PAGE_ANY, 2, cur, a),
           PROJKEY_STORE_INVALID, "cursor: of another search, refused");
    is_int(t_page(st, "p", "key", PROJKEY_PAGE_ACTIVE, 2, cur, a),
           PROJKEY_STORE_INVALID, "cursor: of another status, refused");
    is_int(t_page(st, "p", NULL, PROJKEY_PAGE_ANY, 2, cur, a),
           PROJKEY_STORE_INVALID, "cursor: of a search, without it, refused");

    for (i = 0; i < 7; i++) {
        char  bad[PROJKEY_CURSOR_MAX + 8];

        snprintf(bad, sizeof(bad), "%s", cur);

        switch (i) {
        case 0: bad[10] = bad[10] == 'A' ? 'B' : 'A'; break;
        case 1: bad[strlen(bad) - 1] = '\0'; break;
        case 2: strcat(bad, "A"); break;
        case 3: strcat(bad, "="); break;
        case 4: bad[3] = '+'; break;
        case 5: snprintf(bad, sizeof(bad), "300"); break;
        default:
            /* the last character's unused low bits set */
            bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'A' ? 'B' : 'A';
        }

        is_int(t_page(st, "p", "key", PROJKEY_PAGE_ANY, 2, bad, a),
               PROJKEY_STORE_INVALID, "cursor: %s, refused",
               i == 0 ? "a changed character" : i == 1 ? "cut short"
               : i == 2 ? "a character more" : i == 3 ? "padded"
               : i == 4 ? "not base64url" : i == 5 ? "a row number"
               : "another last character");
    }

    /* a page is the same whatever the connection: one MAC key a database */

    projkey_store_close(st);

    if (projkey_store_open(t_path("page.db"), PROJKEY_STORE_RDONLY, 1000,
                           &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot open page.db read-only");
    }

    a->n = 0;
    is_int(t_page(st, "p", "key", PROJKEY_PAGE_ANY, 2, cur, a),
           PROJKEY_STORE_OK, "cursor: good on another connection");
    projkey_store_close(st);

    /* a search no index answers looks at PROJKEY_PAGE_SCAN keys a page */

    if (projkey_store_open(t_path("page.db"), 0, 1000, &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot open page.db");
    }

    t_batch(st, "big", "filler", 5000, k);
    t_make_key(&k[0], "big", "the z! needle");
    projkey_store_create(st, &k[0].new, &actor, NULL, NULL);
    snprintf(sql, sizeof(sql), "UPDATE keys SET created_at = 1 WHERE id"
             " = '%s'", k[0].id);
    t_sql(t_path("page.db"), sql);

    a->n = 0;
    is_int(t_page(st, "big", "z!", PROJKEY_PAGE_ANY, 10, NULL, a),
           PROJKEY_STORE_OK, "scan: a 2-character search");
    ok(a->n == 0 && a->has_next, "scan: the first page looks at %d keys: "
       "none, and a next", PROJKEY_PAGE_SCAN);
    a->n = 0;
    pages = t_walk(st, "big", "z!", PROJKEY_PAGE_ANY, 10, a);
    ok(a->n == 1 && t_has_id(a, k[0].id)
       && pages == (5001 + PROJKEY_PAGE_SCAN - 1) / PROJKEY_PAGE_SCAN,
       "scan: the needle, on page %d", pages);

    a->n = 0;
    pages = t_walk(st, "big", "z! needle", PROJKEY_PAGE_ANY, 10, a);
    ok(a->n == 1 && pages == 1, "index: a longer search, the first page");

    projkey_store_close(st);

    /* an older database gets the search index of the keys it has */

    snprintf(sql, sizeof(sql), T_SCHEMA_1 T_SCHEMA_2
             "PRAGMA user_version=2;"
             "PRAGMA application_id=1886086521;"
             "ATTACH '%s' AS old;"
             "INSERT INTO keys SELECT id, project, name, hash, preview,"
             " status, created_by, created_at, updated_at, last_used_at, seq"
             " FROM old.keys;", t_path("page.db"));
    t_sql(t_path("page2.db"), sql);

    if (projkey_store_open(t_path("page2.db"), PROJKEY_STORE_MIGRATE, 1000,
                           &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot migrate page2.db: %s", projkey_store_errmsg(st));
    }

    a->n = 0;
    t_walk(st, "p", "grp-", PROJKEY_PAGE_ANY, 10, a);
    ok(a->n == 2, "migrated: the search index has the keys");
    a->n = 0;
    t_walk(st, "p", "key", PROJKEY_PAGE_ANY, 1000, a);
    is_int(a->n, 300, "migrated: and all of them");

    projkey_store_close(st);

    free(k);
    free(a);
    free(b);
}


typedef struct {
    char           name[PROJKEY_NODE_NAME_MAX + 1];
    int64_t        revision;
    int64_t        last_seen;
    int            stale;
} t_node_t;


typedef struct {
    t_node_t       node[T_ROWS_MAX];
    int            n;
} t_nodes_t;


static int
t_collect_node(void *data, const projkey_node_t *node)
{
    t_node_t   *n;
    t_nodes_t  *nodes;

    nodes = data;

    if (nodes->n == T_ROWS_MAX) {
        return 1;
    }

    n = &nodes->node[nodes->n++];
    snprintf(n->name, sizeof(n->name), "%.*s", (int) node->name_len,
             node->name);
    n->revision = node->revision;
    n->last_seen = node->last_seen;
    n->stale = node->stale;

    return 0;
}


/* heartbeats: one row a name, the last one wins; stale; old rows go */

static void
t_nodes(const char *db)
{
    char              *json, *p;
    size_t             len;
    int64_t            seq, now;
    t_key_t            k;
    t_nodes_t          nodes;
    projkey_node_t     node;
    projkey_actor_t    actor;
    projkey_store_t   *st, *ro;

    actor.user = "alice";
    actor.user_len = 5;
    actor.addr = NULL;
    actor.addr_len = 0;

    if (projkey_store_open(db, PROJKEY_STORE_CREATE, 1000, &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot open: %s", projkey_store_errmsg(st));
    }

    is_int(projkey_store_nodes_json(st, 1000, &json, &len), PROJKEY_STORE_OK,
           "nodes of a new database");
    is_str(json, "{\"revision\":0,\"nodes\":[]}", "none, at revision 0");
    is_int(len, strlen(json), "its length");
    projkey_store_free(json);

    t_make_key(&k, "default", "one");
    projkey_store_create(st, &k.new, &actor, NULL, NULL);
    t_make_key(&k, "default", "two");
    projkey_store_create(st, &k.new, &actor, NULL, NULL);

    is_int(projkey_store_revision(st, &seq), PROJKEY_STORE_OK, "revision");
    is_int(seq, 2, "is the change sequence");

    now = 1795000000;

    memset(&node, 0, sizeof(projkey_node_t));
    node.name = "gw-b";
    node.name_len = 4;
    node.revision = 1;
    node.last_seen = now - 10;
    node.keys = 1;
    node.used_bytes = 8192;
    node.size_bytes = 4194304;

    is_int(projkey_store_heartbeat(st, &node), PROJKEY_STORE_OK,
           "a heartbeat");

    node.revision = 2;
    node.last_seen = now - 5;
    node.keys = 2;
    is_int(projkey_store_heartbeat(st, &node), PROJKEY_STORE_OK,
           "the same node again");

    node.name = "gw-a";
    node.revision = 2;
    node.last_seen = now - PROJKEY_NODE_STALE;
    is_int(projkey_store_heartbeat(st, &node), PROJKEY_STORE_OK,
           "another node");

    projkey_store_revision(st, &seq);
    is_int(seq, 2, "heartbeats take no sequence number");

    memset(&nodes, 0, sizeof(nodes));
    is_int(projkey_store_nodes(st, now, t_collect_node, &nodes),
           PROJKEY_STORE_OK, "nodes");
    is_int(nodes.n, 2, "two nodes: one row a name");
    is_str(nodes.node[0].name, "gw-a", "by name");
    is_int(nodes.node[0].stale, 1, "unseen for 60 s: stale");
    is_str(nodes.node[1].name, "gw-b", "then the other");
    is_int(nodes.node[1].revision, 2, "the last heartbeat wins");
    is_int(nodes.node[1].last_seen, now - 5, "with its time");
    is_int(nodes.node[1].stale, 0, "seen 5 s ago: not stale");

    memset(&nodes, 0, sizeof(nodes));
    projkey_store_nodes(st, now - 1, t_collect_node, &nodes);
    is_int(nodes.node[0].stale, 0, "seen 59 s ago: not stale");

    is_int(projkey_store_nodes_json(st, now, &json, &len), PROJKEY_STORE_OK,
           "nodes as JSON");
    is_str(t_jx(json, "$.revision"), "2", "revision: the database's");
    is_str(t_jx(json, "$.nodes[0].node"), "gw-a", "node");
    is_str(t_jx(json, "$.nodes[0].stale"), "1", "stale: true");
    is_str(t_jx(json, "$.nodes[1].node"), "gw-b", "the other node");
    is_str(t_jx(json, "$.nodes[1].revision"), "2", "its revision");
    is_str(t_jx(json, "$.nodes[1].last_seen"), "2026-11-18T11:06:35Z",
           "last_seen in RFC 3339 UTC");
    is_str(t_jx(json, "$.nodes[1].stale"), "0", "stale: false");
    is_str(t_jx(json, "$.nodes[1].zone.keys"), "2", "zone keys");
    is_str(t_jx(json, "$.nodes[1].zone.used_bytes"), "8192", "used_bytes");
    is_str(t_jx(json, "$.nodes[1].zone.size_bytes"), "4194304",
           "size_bytes");
    p = strstr(json, "\"stale\":false");
    ok(p != NULL && strstr(json, "\"stale\":true") != NULL,
       "stale is a JSON boolean: %s", json);
    projkey_store_free(json);

    /* a node unseen for a week goes at the next heartbeat */

    t_sql(db, "UPDATE nodes SET last_seen = 1000"
          " WHERE name = 'gw-a'");
    node.name = "gw-b";
    node.last_seen = now;
    projkey_store_heartbeat(st, &node);
    memset(&nodes, 0, sizeof(nodes));
    projkey_store_nodes(st, now, t_collect_node, &nodes);
    is_int(nodes.n, 1, "a node unseen for 7 days is dropped");
    is_str(nodes.node[0].name, "gw-b", "the other one stays");

    node.name_len = 0;
    is_int(projkey_store_heartbeat(st, &node), PROJKEY_STORE_INVALID,
           "an empty node name is refused");
    node.name_len = PROJKEY_NODE_NAME_MAX + 1;
    is_int(projkey_store_heartbeat(st, &node), PROJKEY_STORE_INVALID,
           "and one too long");

    /* a read-only connection: the heartbeat fails, reads go on */

    is_int(projkey_store_open(db, PROJKEY_STORE_RDONLY, 100, &ro),
           PROJKEY_STORE_OK, "read-only open");
    node.name_len = 4;
    is_int(projkey_store_heartbeat(ro, &node), PROJKEY_STORE_READONLY,
           "a heartbeat on it is READONLY");
    is_int(projkey_store_nodes_json(ro, now, &json, &len), PROJKEY_STORE_OK,
           "GET nodes still reads");
    projkey_store_free(json);
    projkey_store_close(ro);

    projkey_store_close(st);
}


static int
t_veto(void *data, const projkey_row_t *row)
{
    return t_collect(data, row) == 0 ? 1 : 1;
}


static void
t_expiry_roll(projkey_store_t *st)
{
    char              sql[256], *json;
    int64_t           now, seq, seq2;
    size_t            n;
    t_key_t           k, r1, r2, d;
    t_rows_t          rows;
    projkey_change_t  ch;
    projkey_actor_t   actor = { "alice", 5, NULL, 0 };

    now = time(NULL);

    /* create with an expiry */

    t_make_key(&k, "x", "expiring");
    k.new.expires_at = now + 3600;
    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_create(st, &k.new, &actor, t_collect, &rows),
           PROJKEY_STORE_OK, "expiry: created with one");
    is_int(rows.row[0].expires_at, now + 3600, "expiry: in the row");

    projkey_json_row(t_keys_json, &(projkey_row_t) {
        .id = k.id, .hash = k.hash, .project = "x", .project_len = 1,
        .name = "e", .name_len = 1, .preview = "p", .created_by = "a",
        .status = 1, .expires_at = now - 1 }, now, &json, NULL);
    is_str(t_jx(json, "$.status"), "expired", "expiry: row JSON, passed");
    projkey_store_free(json);

    t_make_key(&d, "x", "past");
    d.new.expires_at = now - 1;
    is_int(projkey_store_create(st, &d.new, &actor, NULL, NULL),
           PROJKEY_STORE_INVALID, "expiry: create in the past refused");

    /* set, then passed by hand: the list says expired, status stays */

    projkey_store_state(st, &seq, sql);
    memset(&ch, 0, sizeof(ch));
    ch.set_expires = 1;
    ch.expires_at = now + 7200;
    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_change(st, "x", 1, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, NULL, t_collect, &rows),
           PROJKEY_STORE_OK, "expiry: changed");
    is_int(rows.row[0].expires_at, now + 7200, "expiry: the new one");
    projkey_store_state(st, &seq2, sql);
    is_int(seq2, seq + 1, "expiry: one change");
    is_int(projkey_store_change(st, "x", 1, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, NULL, NULL, NULL),
           PROJKEY_STORE_OK, "expiry: the same again");
    projkey_store_state(st, &seq, sql);
    is_int(seq, seq2, "expiry: is no change");

    snprintf(sql, sizeof(sql), "UPDATE keys SET expires_at = %lld "
             "WHERE id = '%s'", (long long) now - 5, k.id);
    t_sql(t_path("crud.db"), sql);
    projkey_store_state(st, &seq2, sql);
    is_int(seq2, seq + 1, "expiry: set by hand takes a number");

    projkey_store_list_json(st, "x", 1, &json, NULL);
    is_str(t_jx(json, "$.keys[0].status"), "expired", "expiry: list says "
           "expired");
    ok(t_jx(json, "$.keys[0].expires_at") != NULL
       && strlen(t_jx(json, "$.keys[0].expires_at")) == 20,
       "expiry: list has expires_at");
    is_str(t_jx(json, "$.keys[0].previous_preview"), "null",
           "expiry: no previous_preview");
    projkey_store_free(json);

    ch.expires_at = 0;
    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_change(st, "x", 1, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, NULL, t_collect, &rows),
           PROJKEY_STORE_OK, "expiry: cleared");
    is_int(rows.row[0].expires_at, 0, "expiry: never");
    is_int(rows.row[0].status, PROJKEY_STATUS_ACTIVE, "expiry: active");

    ch.expires_at = now + 11 * 366 * 86400LL;
    is_int(projkey_store_change(st, "x", 1, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, NULL, NULL, NULL),
           PROJKEY_STORE_INVALID, "expiry: 11 years refused by the store");

    ch.expires_at = now + 60;
    projkey_store_state(st, &seq, sql);
    is_int(projkey_store_change(st, "x", 1, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, t_veto, NULL, &rows),
           PROJKEY_STORE_ERROR, "expiry: a caller's veto");
    projkey_store_state(st, &seq2, sql);
    is_int(seq2, seq, "expiry: changes nothing");

    projkey_store_audit_json(st, "x", 1, 0, 10, &json, NULL);
    is_str(t_jx(json, "$.events[0].action"), "clear_expiry",
           "audit: clear_expiry");
    is_str(t_jx(json, "$.events[0].detail.expires_at.to"), "null",
           "audit: to null");
    is_str(t_jx(json, "$.events[1].action"), "set_expiry",
           "audit: set_expiry");
    ok(t_jx(json, "$.events[1].detail.expires_at.from") != NULL
       && strlen(t_jx(json, "$.events[1].detail.expires_at.from")) == 20,
       "audit: from a time");
    projkey_store_free(json);

    /* roll */

    t_make_key(&r1, "x", "unused");
    t_make_key(&r2, "x", "unused");
    projkey_store_state(st, &seq, sql);
    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_roll(st, "x", 1, k.id, PROJKEY_ID_LEN, r1.hash,
                              r1.preview, now + 600, &actor, t_collect,
                              t_collect, &rows),
           PROJKEY_STORE_OK, "roll: done");
    is_int(rows.n, 2, "roll: the check, then the committed row");
    ok(memcmp(rows.row[1].hash, r1.hash, PROJKEY_HASH_LEN) == 0,
       "roll: the new hash");
    ok(rows.row[1].has_prev
       && memcmp(rows.row[1].prev_hash, k.hash, PROJKEY_HASH_LEN) == 0,
       "roll: the old hash is the previous one");
    is_int(rows.row[1].prev_expires_at, now + 600, "roll: until T");
    ok(strncmp(rows.row[1].prev_preview, (char *) k.preview,
               PROJKEY_PREVIEW_LEN) == 0, "roll: the previous preview");
    ok(!rows.row[1].has_retired, "roll: nothing retired the first time");
    ok(strcmp(rows.row[1].id, k.id) == 0
       && strcmp(rows.row[1].name, "expiring") == 0, "roll: same id, name");
    projkey_store_state(st, &seq2, sql);
    is_int(seq2, seq + 1, "roll: one change");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_roll(st, "x", 1, k.id, PROJKEY_ID_LEN, r2.hash,
                              r2.preview, 0, &actor, NULL, t_collect, &rows),
           PROJKEY_STORE_OK, "roll: twice, at once");
    ok(rows.row[0].has_prev
       && memcmp(rows.row[0].prev_hash, r1.hash, PROJKEY_HASH_LEN) == 0,
       "roll twice: the first roll's secret is the previous one");
    ok(rows.row[0].has_retired
       && memcmp(rows.row[0].retired_hash, k.hash, PROJKEY_HASH_LEN) == 0,
       "roll twice: the original one is retired");
    ok(rows.row[0].prev_expires_at >= now
       && rows.row[0].prev_expires_at <= now + 2, "roll twice: at once");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_changes(st, seq2, t_collect, &rows, &seq),
           PROJKEY_STORE_OK, "roll: changes read");
    is_int(rows.n, 2, "roll: the key and a retired hash");
    ok(rows.n == 2 && rows.row[0].status == PROJKEY_STATUS_DELETED
       && memcmp(rows.row[0].hash, k.hash, PROJKEY_HASH_LEN) == 0
       && strcmp(rows.row[0].id, k.id) == 0,
       "roll: the retired hash, as deleted");
    ok(rows.n == 2 && rows.row[1].status == PROJKEY_STATUS_ACTIVE
       && rows.row[1].has_prev, "roll: the key with its previous secret");

    is_int(projkey_store_roll(st, "x", 1, k.id, PROJKEY_ID_LEN, k.hash,
                              k.preview, now + 31 * 86400, &actor, NULL,
                              NULL, NULL),
           PROJKEY_STORE_INVALID, "roll: 31 days refused");
    is_int(projkey_store_roll(st, "x", 1, "nosuchkey123", PROJKEY_ID_LEN,
                              k.hash, k.preview, 0, &actor, NULL, NULL, NULL),
           PROJKEY_STORE_NOTFOUND, "roll: no such key");
    is_int(projkey_store_roll(st, "y", 1, k.id, PROJKEY_ID_LEN, k.hash,
                              k.preview, 0, &actor, NULL, NULL, NULL),
           PROJKEY_STORE_NOTFOUND, "roll: another project's key");
    projkey_store_state(st, &seq, sql);
    is_int(projkey_store_roll(st, "x", 1, k.id, PROJKEY_ID_LEN, k.hash,
                              k.preview, 0, &actor, t_veto, NULL, &rows),
           PROJKEY_STORE_ERROR, "roll: a caller's veto");
    projkey_store_state(st, &seq2, sql);
    is_int(seq2, seq, "roll: vetoed, nothing changed");

    projkey_store_list_json(st, "x", 1, &json, NULL);
    ok(strncmp(t_jx(json, "$.keys[0].previous_preview"), (char *) r1.preview,
               PROJKEY_PREVIEW_LEN) == 0, "roll: list has previous_preview");
    ok(strlen(t_jx(json, "$.keys[0].previous_expires_at")) == 20,
       "roll: list has previous_expires_at");
    projkey_store_free(json);

    projkey_store_audit_json(st, "x", 1, 0, 1, &json, NULL);
    is_str(t_jx(json, "$.events[0].action"), "roll", "audit: roll");
    ok(strncmp(t_jx(json, "$.events[0].detail.preview.to"),
               (char *) r2.preview, PROJKEY_PREVIEW_LEN) == 0,
       "audit: roll's new preview");
    ok(t_jx(json, "$.events[0].detail.previous_expires_at") != NULL,
       "audit: roll's previous_expires_at");
    projkey_store_free(json);

    /* purge */

    n = 99;
    is_int(projkey_store_purge(st, now - 10, t_collect, &rows, &n),
           PROJKEY_STORE_OK, "purge: before the end");
    is_int(n, 0, "purge: nothing");

    projkey_store_state(st, &seq, sql);
    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_purge(st, now + 5, t_collect, &rows, &n),
           PROJKEY_STORE_OK, "purge: after the end");
    is_int(n, 1, "purge: one previous secret");
    ok(rows.n == 1 && rows.row[0].status == PROJKEY_STATUS_DELETED
       && memcmp(rows.row[0].hash, r1.hash, PROJKEY_HASH_LEN) == 0,
       "purge: its hash, as deleted");
    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_changes(st, seq, t_collect, &rows, &seq2),
           PROJKEY_STORE_OK, "purge: changes read");
    ok(rows.n == 2 && rows.row[0].status == PROJKEY_STATUS_DELETED
       && memcmp(rows.row[0].hash, r1.hash, PROJKEY_HASH_LEN) == 0
       && !rows.row[1].has_prev, "purge: the hash out, the key without it");
    is_int(projkey_store_purge(st, now + 5, NULL, NULL, &n),
           PROJKEY_STORE_OK, "purge: again");
    is_int(n, 0, "purge: nothing left");

    /* a key deleted with a previous secret: both hashes go */

    is_int(projkey_store_roll(st, "x", 1, k.id, PROJKEY_ID_LEN, r1.hash,
                              r1.preview, now + 60, &actor, NULL, NULL,
                              NULL),
           PROJKEY_STORE_OK, "delete: rolled first");
    projkey_store_state(st, &seq, sql);
    is_int(projkey_store_delete(st, "x", 1, k.id, PROJKEY_ID_LEN, &actor,
                                NULL, NULL),
           PROJKEY_STORE_OK, "delete: a key with a previous secret");
    memset(&rows, 0, sizeof(rows));
    projkey_store_changes(st, seq, t_collect, &rows, &seq2);
    ok(rows.n == 2 && rows.row[0].status == PROJKEY_STATUS_DELETED
       && rows.row[1].status == PROJKEY_STATUS_DELETED
       && (memcmp(rows.row[0].hash, r1.hash, PROJKEY_HASH_LEN) == 0
           || memcmp(rows.row[1].hash, r1.hash, PROJKEY_HASH_LEN) == 0)
       && (memcmp(rows.row[0].hash, r2.hash, PROJKEY_HASH_LEN) == 0
           || memcmp(rows.row[1].hash, r2.hash, PROJKEY_HASH_LEN) == 0),
       "delete: both hashes deleted in the feed");
}


/* a database of schema 2, with keys and audit events, migrated to 3 */

static void
t_migrate_v2(void)
{
    int               v;
    char              sql[512];
    int64_t           seq, seq2;
    t_rows_t          rows;
    projkey_store_t  *st;
    projkey_change_t  ch;
    projkey_actor_t   actor = { "m", 1, NULL, 0 };

    t_sql(t_path("v2.db"), T_SCHEMA_1 T_SCHEMA_2
          "PRAGMA user_version=2;"
          "PRAGMA application_id=1886086521;"
          "INSERT INTO keys VALUES ('aaaaaaaaaaaa', 'default', 'one',"
          " zeroblob(32), 'sk-project-...aaaa', 1, 'op', 10, 10, 20, 1);"
          "INSERT INTO keys VALUES ('bbbbbbbbbbbb', 'default', 'two',"
          " randomblob(32), 'sk-project-...bbbb', 2, 'op', 11, 11, NULL, 2);"
          "INSERT INTO deleted VALUES ('cccccccccccc', randomblob(32),"
          " 'default', 3);"
          "UPDATE meta SET v = 3 WHERE k = 'seq';"
          "INSERT INTO audit (at, project, key_id, action, actor, addr,"
          " detail) VALUES (10, 'default', 'aaaaaaaaaaaa', 'create', 'op',"
          " NULL, '{\"name\":\"one\"}'), (11, 'default', 'bbbbbbbbbbbb',"
          " 'create', 'op', NULL, '{}'), (12, 'default', 'cccccccccccc',"
          " 'delete', 'op', NULL, '{}');"
          /* the newest event was lost: the sequence must not go back */
          "DELETE FROM audit WHERE seq = 3;");

    is_int(projkey_store_open(t_path("v2.db"), PROJKEY_STORE_MIGRATE, 1000,
                              &st), PROJKEY_STORE_OK, "migrate 2: opened");
    is_int(projkey_store_schema(st), 3, "migrate 2: to 3");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_load(st, t_collect, &rows, &seq), PROJKEY_STORE_OK,
           "migrate 2: load");
    is_int(rows.n, 2, "migrate 2: both keys");
    is_int(seq, 3, "migrate 2: the sequence kept");
    ok(rows.n == 2 && strcmp(rows.row[0].name, "one") == 0
       && rows.row[0].last_used_at == 20 && rows.row[0].expires_at == 0
       && !rows.row[0].has_prev && rows.row[1].status == 2,
       "migrate 2: the keys as they were, no expiry, no previous");
    is_int(t_sql_int(t_path("v2.db"), "SELECT count(*) FROM audit", &v), 0,
           "migrate 2: audit read");
    is_int(v, 2, "migrate 2: the audit events kept");

    memset(&ch, 0, sizeof(ch));
    ch.set_expires = 1;
    ch.expires_at = time(NULL) + 100;
    is_int(projkey_store_change(st, "default", 7, "aaaaaaaaaaaa", 12, &ch,
                                &actor, NULL, NULL, NULL),
           PROJKEY_STORE_OK, "migrate 2: a new action is allowed");
    is_int(t_sql_int(t_path("v2.db"), "SELECT max(seq) FROM audit", &v), 0,
           "migrate 2: audit read again");
    is_int(v, 4, "migrate 2: the audit sequence goes on after the lost one");

    projkey_store_state(st, &seq, sql);
    t_sql(t_path("v2.db"), "UPDATE keys SET prev_hash = randomblob(32),"
          " prev_expires_at = 5 WHERE id = 'bbbbbbbbbbbb'");
    t_sql(t_path("v2.db"), "UPDATE keys SET prev_hash = NULL"
          " WHERE id = 'bbbbbbbbbbbb'");
    memset(&rows, 0, sizeof(rows));
    projkey_store_changes(st, seq, t_collect, &rows, &seq2);
    is_int(seq2, seq + 2, "migrate 2: the new columns by hand take numbers");
    ok(rows.n == 2 && rows.row[0].status == PROJKEY_STATUS_DELETED
       && strcmp(rows.row[0].id, "bbbbbbbbbbbb") == 0,
       "migrate 2: a previous hash dropped by hand is retired");

    projkey_store_close(st);
}


/* the tests' own connection to the PostgreSQL of PROJKEY_TEST_PG_URI */

static PGconn *
t_pg_connect(void)
{
    PGconn    *c;
    PGresult  *res;

    c = PQconnectdb(t_pg_uri);

    if (PQstatus(c) != CONNECTION_OK) {
        bail_out("cannot connect to PostgreSQL: %s", PQerrorMessage(c));
    }

    res = PQexec(c, "SET search_path = projkey;"
                 " SET client_min_messages = warning");
    PQclear(res);

    return c;
}


static void
t_pg_sql(const char *sql)
{
    PGconn    *c;
    PGresult  *res;

    c = t_pg_connect();
    res = PQexec(c, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        bail_out("cannot run \"%s\": %s", sql, PQerrorMessage(c));
    }

    PQclear(res);
    PQfinish(c);
}


/* 1 if PostgreSQL refuses sql */

static int
t_pg_sql_fails(const char *sql)
{
    int        rc;
    PGconn    *c;
    PGresult  *res;

    c = t_pg_connect();
    res = PQexec(c, sql);
    rc = (PQresultStatus(res) == PGRES_FATAL_ERROR);
    PQclear(res);
    PQfinish(c);

    return rc;
}


/* runs sql on c; 0 if it did */

static int
t_pg_exec(PGconn *c, const char *sql)
{
    int        rc;
    PGresult  *res;

    res = PQexec(c, sql);
    rc = (PQresultStatus(res) == PGRES_COMMAND_OK
          || PQresultStatus(res) == PGRES_TUPLES_OK) ? 0 : -1;

    if (rc != 0) {
        diag("%s: %s", sql, PQerrorMessage(c));
    }

    PQclear(res);

    return rc;
}


/* a key created by the schema's function, as an application would */

static void
t_pg_create_sql(const char *name, char *sql, size_t size)
{
    t_key_t  k;
    char     hex[2 * PROJKEY_HASH_LEN + 1];
    size_t   i;

    t_make_key(&k, "pg", name);

    for (i = 0; i < PROJKEY_HASH_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", k.hash[i]);
    }

    snprintf(sql, size, "SELECT projkey.create_key('%s', 'pg', '%s',"
             " '\\x%s', '%.*s', 1, 0, %lld, 'app', NULL)", k.id, name, hex,
             (int) PROJKEY_PREVIEW_LEN, (const char *) k.preview,
             (long long) time(NULL));
}


/*
 * Two writers, the first holding its transaction open: the second waits
 * for the counter row, so that a reader never sees revision N + 1 while
 * N may still commit.
 */

static void
t_pg_revisions(projkey_store_t *st)
{
    char               sql[512];
    int64_t            seq0, seq;
    PGconn            *a, *b;
    t_rows_t           rows;
    PGresult          *res;

    a = t_pg_connect();
    b = t_pg_connect();

    is_int(projkey_store_revision(st, &seq0), PROJKEY_STORE_OK,
           "pg: revision");

    t_pg_create_sql("first", sql, sizeof(sql));
    ok(t_pg_exec(a, "BEGIN") == 0 && t_pg_exec(a, sql) == 0,
       "pg: writer A takes revision N, its transaction open");

    t_pg_create_sql("second", sql, sizeof(sql));
    ok(t_pg_exec(b, "BEGIN") == 0 && PQsendQuery(b, sql) == 1,
       "pg: writer B starts its change");

    usleep(300000);
    PQconsumeInput(b);
    ok(PQisBusy(b), "pg: B waits for A's counter row");

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_changes(st, seq0, t_collect, &rows, &seq),
           PROJKEY_STORE_OK, "pg: a reader meanwhile");
    ok(rows.n == 0 && seq == seq0, "pg: sees neither N nor N + 1");

    ok(t_pg_exec(a, "COMMIT") == 0, "pg: A commits");

    res = PQgetResult(b);
    ok(PQresultStatus(res) == PGRES_TUPLES_OK
       && strtoll(PQgetvalue(res, 0, 0), NULL, 10) == seq0 + 2,
       "pg: B then gets N + 1");
    PQclear(res);

    while ((res = PQgetResult(b)) != NULL) {
        PQclear(res);
    }

    memset(&rows, 0, sizeof(rows));
    projkey_store_changes(st, seq0, t_collect, &rows, &seq);
    ok(rows.n == 1 && rows.row[0].seq == seq0 + 1 && seq == seq0 + 1,
       "pg: before B commits, the reader sees N alone");

    ok(t_pg_exec(b, "COMMIT") == 0, "pg: B commits");

    memset(&rows, 0, sizeof(rows));
    projkey_store_changes(st, seq0, t_collect, &rows, &seq);
    ok(rows.n == 2 && rows.row[0].seq == seq0 + 1
       && rows.row[1].seq == seq0 + 2 && seq == seq0 + 2,
       "pg: then N and N + 1, in order");

    /* a writer that rolls back leaves no hole: the number is taken again */

    ok(t_pg_exec(a, "BEGIN") == 0 && t_pg_exec(a, sql) != 0
       && t_pg_exec(a, "ROLLBACK") == 0, "pg: a failed change rolls back");
    t_pg_create_sql("third", sql, sizeof(sql));
    ok(t_pg_exec(a, sql) == 0, "pg: the next one");
    projkey_store_revision(st, &seq);
    is_int(seq, seq0 + 3, "pg: takes the next number, no gap");

    snprintf(sql, sizeof(sql), "SELECT count(*) = 3 AND min(revision) = %lld"
             " AND max(revision) = %lld FROM projkey.changes"
             " WHERE revision > %lld", (long long) seq0 + 1,
             (long long) seq0 + 3, (long long) seq0);
    res = PQexec(a, sql);
    ok(PQresultStatus(res) == PGRES_TUPLES_OK
       && PQgetvalue(res, 0, 0)[0] == 't',
       "pg: one change-log row a revision");
    PQclear(res);

    PQfinish(a);
    PQfinish(b);
}


static int
t_refuse(void *data, const projkey_row_t *row)
{
    return 1;
}


/* the notifications a listener has, as "N,N,..." */

static void
t_pg_notes(PGconn *l, char *out, size_t size)
{
    size_t    n;
    PGnotify  *note;

    usleep(200000);
    PQconsumeInput(l);

    out[0] = '\0';
    n = 0;

    while ((note = PQnotifies(l)) != NULL) {
        n += snprintf(out + n, n < size ? size - n : 0, "%s%s",
                      n ? "," : "", note->extra);
        PQfreemem(note);
    }
}


static void
t_pg_notify(projkey_store_t *st)
{
    char              notes[256], want[64];
    int64_t           seq;
    PGconn           *l;
    t_key_t           k;
    projkey_change_t  ch;
    projkey_actor_t   actor = { "alice", 5, NULL, 0 };

    l = t_pg_connect();
    ok(t_pg_exec(l, "LISTEN projkey") == 0, "notify: listening");

    t_make_key(&k, "pg", "notified");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "notify: a create");
    projkey_store_revision(st, &seq);
    t_pg_notes(l, notes, sizeof(notes));
    snprintf(want, sizeof(want), "%lld", (long long) seq);
    is_str(notes, want, "notify: once, with its revision, on commit");

    memset(&ch, 0, sizeof(ch));
    ch.status = PROJKEY_STATUS_DISABLED;
    is_int(projkey_store_change(st, "pg", 2, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, t_refuse, NULL, NULL),
           PROJKEY_STORE_ERROR, "notify: a change the caller refuses");
    t_pg_notes(l, notes, sizeof(notes));
    is_str(notes, "", "notify: none on rollback");
    projkey_store_revision(st, &seq);
    snprintf(want, sizeof(want), "%lld", (long long) seq);

    is_int(projkey_store_change(st, "pg", 2, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, NULL, NULL, NULL),
           PROJKEY_STORE_OK, "notify: the change again");
    t_pg_notes(l, notes, sizeof(notes));
    snprintf(want, sizeof(want), "%lld", (long long) seq + 1);
    is_str(notes, want, "notify: its number follows, no gap");

    is_int(projkey_store_change(st, "pg", 2, k.id, PROJKEY_ID_LEN, &ch,
                                &actor, NULL, NULL, NULL),
           PROJKEY_STORE_OK, "notify: a change to what it is");
    t_pg_notes(l, notes, sizeof(notes));
    is_str(notes, "", "notify: none, nothing changed");

    PQfinish(l);
}


/* until fd has something to read, or ms pass */

static void
t_wait_readable(int fd, int ms)
{
    struct pollfd  pfd;

    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;

    (void) poll(&pfd, 1, ms);
}


/* the store's own listening: what the module's follower uses */

static void
t_pg_listen(projkey_store_t *st)
{
    int               fd, i;
    int64_t           seq, rev, got;
    t_key_t           k;
    projkey_store_t  *l;
    projkey_actor_t   actor = { "alice", 5, NULL, 0 };

    if (projkey_store_open(t_pg_uri, PROJKEY_STORE_RDONLY, 1000, &l)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot open: %s", projkey_store_errmsg(l));
    }

    is_int(projkey_store_listen(l), PROJKEY_STORE_OK, "listen: LISTEN");
    fd = projkey_store_socket(l);
    ok(fd >= 0, "listen: a socket to wait on");

    is_int(projkey_store_notified(l, &seq), PROJKEY_STORE_OK,
           "listen: nothing yet, and no wait");
    is_int((int) seq, 0, "listen: revision 0 when nothing came");

    t_make_key(&k, "pg", "listened");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "listen: a create");
    t_make_key(&k, "pg", "listened 2");
    is_int(projkey_store_create(st, &k.new, &actor, NULL, NULL),
           PROJKEY_STORE_OK, "listen: and another");
    projkey_store_revision(st, &rev);

    /* both may come in one read or two */
    seq = 0;

    for (i = 0; i < 50 && seq < rev; i++) {
        t_wait_readable(fd, 100);

        if (projkey_store_notified(l, &got) != PROJKEY_STORE_OK) {
            break;
        }

        seq = got > seq ? got : seq;
    }

    ok(seq == rev, "listen: the socket wakes, with the last revision");

    t_pg_sql("SELECT pg_notify('projkey', 'not a number')");
    t_wait_readable(fd, 2000);
    projkey_store_notified(l, &seq);
    ok(seq == INT64_MAX, "listen: a foreign payload still says look");

    t_pg_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE pid <> pg_backend_pid()"
             " AND datname = current_database()"
             " AND query = 'LISTEN projkey'");

    /* the server's last words may come in a read before its EOF */
    for (i = 0; i < 20; i++) {
        t_wait_readable(fd, 100);

        if (projkey_store_notified(l, &seq) != PROJKEY_STORE_OK) {
            break;
        }
    }

    ok(i < 20, "listen: an ended session is an error");
    ok(projkey_store_broken(l), "listen: and broken");

    projkey_store_close(l);
}


/* the ids of a walk through every page of a search, and how many pages */

typedef struct {
    int   n;
    char  ids[1100][PROJKEY_ID_LEN + 1];
} t_pg_ids_t;


static int
t_pg_id(void *data, const projkey_row_t *row)
{
    t_pg_ids_t  *ids;

    ids = data;

    if (ids->n < 1100) {
        snprintf(ids->ids[ids->n++], PROJKEY_ID_LEN + 1, "%s", row->id);
    }

    return 0;
}


static int
t_pg_walk(projkey_store_t *st, const char *q, int status, int limit,
    t_pg_ids_t *ids)
{
    int             pages;
    char           *next, *after;
    projkey_page_t  page;

    memset(ids, 0, sizeof(t_pg_ids_t));
    after = NULL;

    for (pages = 0; pages < 100; pages++) {
        memset(&page, 0, sizeof(page));
        page.q = q;
        page.q_len = strlen(q);
        page.status = status;
        page.limit = limit;
        page.after = after;
        page.after_len = after != NULL ? strlen(after) : 0;

        if (projkey_store_page(st, "pgp", 3, &page, t_pg_id, ids, &next)
            != PROJKEY_STORE_OK)
        {
            diag("page: %s", projkey_store_errmsg(st));
            free(after);
            return -1;
        }

        free(after);
        after = next;

        if (next == NULL) {
            return pages + 1;
        }
    }

    free(after);
    return -1;
}


/* pages of 1,004 keys: a bounded scan for filters no index answers */

static void
t_pg_pages(projkey_store_t *st)
{
    int               i, dup;
    char              name[32], *next;
    t_key_t          *k;
    t_pg_ids_t       *ids;
    projkey_page_t    page;
    projkey_change_t  ch;
    projkey_new_t    *news;
    projkey_actor_t   actor = { "alice", 5, NULL, 0 };

    k = calloc(1004, sizeof(t_key_t));
    news = calloc(1004, sizeof(projkey_new_t));
    ids = calloc(1, sizeof(t_pg_ids_t));

    if (k == NULL || news == NULL || ids == NULL) {
        bail_out("out of memory");
    }

    for (i = 0; i < 1003; i++) {
        snprintf(name, sizeof(name), "k-%04d", i);
        t_make_key(&k[i], "pgp", "");
        k[i].new.name = strdup(name);
        k[i].new.name_len = strlen(name);
        news[i] = k[i].new;
    }

    t_make_key(&k[1003], "pgp", "the Needle");
    news[1003] = k[1003].new;

    is_int(projkey_store_create_batch(st, news, 1004, &actor),
           PROJKEY_STORE_OK, "pages: 1004 keys in one batch");
    t_pg_sql("UPDATE keys SET created_at = created_at - 10"
             " WHERE name = 'the Needle'");

    is_int(t_pg_walk(st, "", PROJKEY_PAGE_ANY, 400, ids), 3,
           "pages: every key in 3 pages of 400");
    is_int(ids->n, 1004, "pages: each key");

    for (dup = 0, i = 1; i < ids->n; i++) {
        dup += (strcmp(ids->ids[i - 1], ids->ids[i]) <= 0
                && strcmp(ids->ids[i], k[1003].id) != 0);
    }

    is_int(dup, 0, "pages: newest first, then by id, no key twice");
    is_str(ids->ids[1003], k[1003].id, "pages: the oldest last");

    /* 2 characters: no index, the scan stops at PROJKEY_PAGE_SCAN keys */
    /* (a blank: no preview has one) */
    is_int(t_pg_walk(st, " n", PROJKEY_PAGE_ANY, 10, ids), 2,
           "pages: a short search takes a page per 1000 keys looked at");
    ok(ids->n == 1 && strcmp(ids->ids[0], k[1003].id) == 0,
       "pages: and finds the key, whatever the case");

    is_int(t_pg_walk(st, "NEEDL", PROJKEY_PAGE_ANY, 10, ids), 1,
           "pages: a longer search is one page (pg_trgm)");
    ok(ids->n == 1 && strcmp(ids->ids[0], k[1003].id) == 0,
       "pages: the same key");

    /* (a "-": no preview ends with one) */
    is_int(t_pg_walk(st, "k-01", PROJKEY_PAGE_ANY, 50, ids), 2,
           "pages: 100 hits by 50: two pages");
    is_int(ids->n, 100, "pages: all of them");

    memset(&ch, 0, sizeof(ch));
    ch.status = PROJKEY_STATUS_DISABLED;
    projkey_store_change(st, "pgp", 3, k[1003].id, PROJKEY_ID_LEN, &ch,
                         &actor, NULL, NULL, NULL);
    is_int(t_pg_walk(st, "", PROJKEY_PAGE_DISABLED, 100, ids), 2,
           "pages: a status filter is a bounded scan too");
    ok(ids->n == 1 && strcmp(ids->ids[0], k[1003].id) == 0,
       "pages: the disabled key");

    /* a cursor of another search, or tampered with, is refused */
    memset(&page, 0, sizeof(page));
    page.limit = 1;
    projkey_store_page(st, "pgp", 3, &page, NULL, NULL, &next);
    page.q = "k";
    page.q_len = 1;
    page.after = next;
    page.after_len = next != NULL ? strlen(next) : 0;
    is_int(projkey_store_page(st, "pgp", 3, &page, NULL, NULL, &next),
           PROJKEY_STORE_INVALID,
           "pages: a cursor of another search is refused");
    free((void *) page.after);

    for (i = 0; i < 1003; i++) {
        free((void *) k[i].new.name);
    }

    free(ids);
    free(news);
    free(k);
}


/* a key deleted by the application's own SQL reaches the readers too */

static void
t_pg_by_hand(projkey_store_t *st)
{
    char              sql[128];
    int64_t           seq0, seq;
    t_key_t           k;
    t_rows_t          rows;
    projkey_actor_t   actor = { "alice", 5, NULL, 0 };

    t_make_key(&k, "pg", "by hand");
    projkey_store_create(st, &k.new, &actor, NULL, NULL);
    projkey_store_revision(st, &seq0);

    /* a secret changed by hand would stay valid where it was loaded */
    snprintf(sql, sizeof(sql),
             "UPDATE keys SET prev_hash = hash WHERE id = '%s'", k.id);
    ok(t_pg_sql_fails(sql), "by hand: a secret is not changed by UPDATE");
    snprintf(sql, sizeof(sql),
             "UPDATE keys SET project = 'other' WHERE id = '%s'", k.id);
    ok(t_pg_sql_fails(sql), "by hand: nor a project");
    projkey_store_revision(st, &seq);
    is_int(seq, seq0, "by hand: a refused UPDATE takes no revision");

    snprintf(sql, sizeof(sql), "DELETE FROM keys WHERE id = '%s'", k.id);
    t_pg_sql(sql);

    memset(&rows, 0, sizeof(rows));
    is_int(projkey_store_changes(st, seq0, t_collect, &rows, &seq),
           PROJKEY_STORE_OK, "by hand: changes after a DELETE");
    is_int(seq, seq0 + 1, "by hand: the DELETE took one revision");
    ok(rows.n == 1 && strcmp(rows.row[0].id, k.id) == 0
       && rows.row[0].status == PROJKEY_STATUS_DELETED
       && rows.row[0].seq == seq0 + 1
       && memcmp(rows.row[0].hash, k.hash, PROJKEY_HASH_LEN) == 0,
       "by hand: the key as deleted, with its hash");
}


/* the store's tests on PostgreSQL, then PostgreSQL's own */

/* the snapshot file of a PostgreSQL node: written whole, read back */

typedef struct {
    int   n;
    int   prev;
    char  names[4][32];
    int   status[4];
} t_snap_t;


static int
t_snap_row(void *data, const projkey_row_t *row)
{
    t_snap_t  *s = data;

    if (s->n < 4) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%.*s",
                 (int) row->name_len, row->name);
        s->status[s->n] = row->status;
    }

    s->n++;
    s->prev += (row->prev_hash != NULL && row->prev_hash[0] == 0xbb
                && row->prev_hash[16] == 0 && row->prev_expires_at == 1900);

    return 0;
}


static void
t_snapshot(void)
{
    char                     err[512], instance[33];
    int64_t                  seq, at;
    t_snap_t                 s;
    projkey_snapshot_node_t  n[3];

    memset(n, 0, sizeof(n));
    memset(&s, 0, sizeof(s));

    memset(n[0].hash, 0xaa, PROJKEY_SNAPSHOT_HASH_LEN);
    memcpy(n[0].id, "aaaaaaaaaaaa", PROJKEY_ID_LEN);
    n[0].project = "p";
    n[0].project_len = 1;
    n[0].name = "rolled key";
    n[0].name_len = 10;
    n[0].status = PROJKEY_STATUS_ACTIVE;

    n[1] = n[0];
    memset(n[1].hash, 0xbb, PROJKEY_SNAPSHOT_HASH_LEN);
    n[1].previous = 1;
    n[1].expires_at = 1900;

    memset(n[2].hash, 0xcc, PROJKEY_SNAPSHOT_HASH_LEN);
    memcpy(n[2].id, "bbbbbbbbbbbb", PROJKEY_ID_LEN);
    n[2].project = "p";
    n[2].project_len = 1;
    n[2].name = "off";
    n[2].name_len = 3;
    n[2].status = PROJKEY_STATUS_DISABLED;

    is_int(projkey_snapshot_read(t_path("snap.db"), instance, &seq, &at,
                                 t_snap_row, &s, err, sizeof(err)),
           1, "snapshot: none yet");

    is_int(projkey_snapshot_write(t_path("snap.db"),
                                  "0123456789abcdef0123456789abcdef", 42,
                                  1800000000, n, 3, err, sizeof(err)),
           0, "snapshot: written");

    ok(access(t_path("snap.db.tmp"), F_OK) != 0, "snapshot: no temporary file");

    is_int(projkey_snapshot_read(t_path("snap.db"), instance, &seq, &at,
                                 t_snap_row, &s, err, sizeof(err)),
           0, "snapshot: read");
    is_str(instance, "0123456789abcdef0123456789abcdef", "snapshot: instance");
    is_int((int) seq, 42, "snapshot: revision");
    is_int((int) at, 1800000000, "snapshot: the last contact");

    is_int(projkey_snapshot_touch(t_path("snap.db"), 1800000100, err,
                                  sizeof(err)),
           0, "snapshot: a later contact");
    memset(&s, 0, sizeof(s));
    projkey_snapshot_read(t_path("snap.db"), instance, &seq, &at, t_snap_row,
                          &s, err, sizeof(err));
    ok(at == 1800000100 && s.n == 2, "snapshot: it, and the same keys");
    is_int(s.n, 2, "snapshot: two keys");
    is_int(s.prev, 1, "snapshot: one with its previous secret and its end");

    is_int(projkey_snapshot_write(t_path("nodir/snap.db"), "x", 1, 0, n, 3,
                                  err, sizeof(err)),
           -1, "snapshot: a directory that is not there");
    ok(strstr(err, "nodir") != NULL, "snapshot: says where");

    /* an SQLite file that is not a snapshot */
    is_int(projkey_snapshot_read(t_path("crud.db"), instance, &seq, &at,
                                 t_snap_row, &s, err, sizeof(err)),
           -1, "snapshot: another database is refused");
    ok(strstr(err, "not a projkey snapshot") != NULL, "snapshot: says so");
}


/* what a log may show of a database: a URI without its passwords */

static void
t_display(void)
{
    char                 out[128];
    projkey_store_t     *st;
    size_t               i;
    static const char   *cases[][2] = {
        { "/var/lib/projkey/keys.db", "/var/lib/projkey/keys.db" },
        { "postgresql://u:s3cret@db1:5432/keys",
          "postgresql://u:...@db1:5432/keys" },
        { "postgres://u@db1/keys", "postgres://u@db1/keys" },
        { "postgresql://db1,db2/keys?target_session_attrs=read-write",
          "postgresql://db1,db2/keys?target_session_attrs=read-write" },
        { "postgresql://u:p%40ss@h/d?password=two&sslmode=require",
          "postgresql://u:...@h/d?password=...&sslmode=require" },
        { "postgresql:///keys?host=/run/pg&password=x&sslpassword=y",
          "postgresql:///keys?host=/run/pg&password=...&sslpassword=..." },
        { "postgresql://u:@h/d?password=", "postgresql://u:@h/d?password=" },
        { "postgresql://a:b@c:d@h/x", "postgresql://a:...@h/x" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        projkey_store_display(cases[i][0], out, sizeof(out));
        is_str(out, cases[i][1], "display: %s", cases[i][1]);
    }

    projkey_store_display("postgresql://u:s3cret@db1/keys", out, 20);
    is_str(out, "postgresql://u:...@", "display: cut to its size");

    projkey_store_display("postgresql://u:s3cret@db1/keys", out, 17);
    is_str(out, "postgresql://u:.", "display: even within the dots");

    ok(projkey_store_is_uri("postgres://h/d")
       && projkey_store_is_uri("postgresql://h/d")
       && !projkey_store_is_uri("postgresql:/h/d")
       && !projkey_store_is_uri("keys.db"), "is_uri: the two schemes only");

    if (projkey_store_open(t_path("listen.db"), PROJKEY_STORE_CREATE, 1000,
                           &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot open: %s", projkey_store_errmsg(st));
    }

    is_int(projkey_store_listen(st), PROJKEY_STORE_ERROR,
           "listen: not with SQLite");
    ok(strstr(projkey_store_errmsg(st), "no notifications") != NULL,
       "listen: it says so");
    is_int(projkey_store_socket(st), -1, "listen: no socket with SQLite");
    projkey_store_close(st);
}


/* a connection the server ends is said to be broken, and only then */

static void
t_pg_broken(void)
{
    int               i;
    int64_t           seq;
    projkey_store_t  *st;

    ok(projkey_store_broken(NULL), "pg: no store is broken");

    /* out of reach, or there and refusing: a snapshot is for the first */
    {
        char         other[512];
        const char  *at;

        is_int(projkey_store_open("postgresql://u@127.0.0.1:1/x", 0, 1000,
                                  &st),
               PROJKEY_STORE_ERROR, "pg: a port nobody listens on");
        ok(projkey_store_unreachable(st), "pg: is out of reach");
        projkey_store_close(st);

        at = strchr(t_pg_uri, '@');
        snprintf(other, sizeof(other), "postgresql://nosuchrole:x%s", at);
        is_int(projkey_store_open(other, 0, 1000, &st), PROJKEY_STORE_ERROR,
               "pg: a role the server refuses");
        ok(!projkey_store_unreachable(st), "pg: is not out of reach");
        projkey_store_close(st);

        is_int(projkey_store_open("postgresql://u:p%zz@127.0.0.1:1/x", 0,
                                  1000, &st),
               PROJKEY_STORE_ERROR, "pg: a URI libpq cannot parse");
        ok(!projkey_store_unreachable(st), "pg: is a mistake, not a server");
        ok(strstr(projkey_store_errmsg(st), "p%zz") == NULL,
           "pg: and its password is not shown");
        projkey_store_close(st);
    }

    if (projkey_store_open(t_pg_uri, 0, 1000, &st) != PROJKEY_STORE_OK) {
        bail_out("cannot open: %s", projkey_store_errmsg(st));
    }

    ok(projkey_store_revision(st, &seq) == PROJKEY_STORE_OK
       && !projkey_store_broken(st), "pg: a working connection is not broken");

    t_pg_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE pid <> pg_backend_pid()"
             " AND datname = current_database()"
             " AND backend_type = 'client backend'");

    /* found without a query: the server's goodbye is read */
    for (i = 0; i < 50 && !projkey_store_broken(st); i++) {
        usleep(20000);
    }

    ok(projkey_store_broken(st), "pg: an ended connection is broken");
    is_int(projkey_store_revision(st, &seq), PROJKEY_STORE_ERROR,
           "pg: a query on it fails");
    ok(strstr(projkey_store_errmsg(st), "unreachable") != NULL,
       "pg: unreachable, it says");

    projkey_store_close(st);
}


static void
t_pg(void)
{
    projkey_store_t  *st;

    is_int(projkey_store_open(t_pg_uri, 0, 1000, &st), PROJKEY_STORE_CORRUPT,
           "pg: no schema, and only init makes it");
    ok(strstr(projkey_store_errmsg(st), "init") != NULL, "pg: says so");
    projkey_store_close(st);

    is_int(projkey_store_open(t_pg_uri, PROJKEY_STORE_MIGRATE, 1000, &st),
           PROJKEY_STORE_CORRUPT, "pg: nor migrate");
    projkey_store_close(st);

    is_int(projkey_store_open(t_pg_uri,
                              PROJKEY_STORE_CREATE|PROJKEY_STORE_MIGRATE,
                              1000, &st),
           PROJKEY_STORE_OK, "pg: init");
    is_int(projkey_store_schema(st), 1, "pg: schema version 1");
    ok(!projkey_store_outdated(st), "pg: up to date");
    projkey_store_close(st);

    if (projkey_store_open(t_pg_uri, PROJKEY_STORE_CREATE, 1000, &st)
        != PROJKEY_STORE_OK)
    {
        bail_out("cannot open: %s", projkey_store_errmsg(st));
    }

    t_crud(st);
    t_json(st);
    t_expiry_roll(st);

    t_pg_pages(st);
    t_pg_revisions(st);
    t_pg_notify(st);
    t_pg_listen(st);
    t_pg_by_hand(st);

    projkey_store_close(st);

    t_pg_broken();

    /* a new database for the tests that count from revision 0 */
    t_pg_sql("DROP SCHEMA projkey CASCADE");
    is_int(projkey_store_open(t_pg_uri,
                              PROJKEY_STORE_CREATE|PROJKEY_STORE_MIGRATE,
                              1000, &st),
           PROJKEY_STORE_OK, "pg: init again");
    projkey_store_close(st);

    t_nodes(t_pg_uri);
}


int
main(void)
{
    char              cmd[64];
    projkey_store_t  *st;

    if (mkdtemp(t_dir) == NULL) {
        bail_out("mkdtemp: cannot make a temporary directory");
    }

    if (projkey_init() != 0 || sqlite3_open(":memory:", &t_json_db) != 0
        || projkey_json_open(&t_keys_json) != PROJKEY_STORE_OK)
    {
        bail_out("cannot initialize");
    }

    if (chdir(t_dir) != 0) {
        bail_out("cannot enter %s", t_dir);
    }

    t_pg_uri = getenv("PROJKEY_TEST_PG_URI");

    if (t_pg_uri != NULL && t_pg_uri[0] != '\0') {
        t_pg();
        goto done;
    }

    t_pg_uri = NULL;

    t_open_failures();
    t_readonly_and_busy();
    t_migrate_v2();

    if (projkey_store_open(t_path("crud.db"), PROJKEY_STORE_CREATE, 1000,
                           &st) != PROJKEY_STORE_OK)
    {
        bail_out("cannot open: %s", projkey_store_errmsg(st));
    }

    t_crud(st);
    t_json(st);
    t_expiry_roll(st);

    projkey_store_close(st);
    projkey_store_close(NULL);

    t_secret();
    t_nodes(t_path("nodes.db"));
    t_merge_step();
    t_checkpoint();
    t_by_hand();
    t_pages();
    t_display();
    t_snapshot();
    t_load_speed();

done:

    sqlite3_close(t_json_db);
    projkey_json_close(t_keys_json);

    /* the temporary directory goes, unless kept to look into it */

    if (getenv("PROJKEY_TEST_KEEP") == NULL) {
        if (chdir("/") == 0) {
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
            if (system(cmd) != 0) {
                diag("cannot remove %s", t_dir);
            }
        }

    } else {
        diag("kept %s", t_dir);
    }

    return done_testing();
}
