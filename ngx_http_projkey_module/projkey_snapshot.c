
/*
 * projkey: a node's snapshot file (projkey_snapshot.h).
 */


#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "projkey_snapshot.h"


#define PROJKEY_SNAPSHOT_FORMAT  "1"


static int projkey_snapshot_fill(sqlite3 *db, const char *instance,
    int64_t seq, int64_t contact, const projkey_snapshot_node_t *nodes,
    size_t n);
static int projkey_snapshot_sync_dir(const char *path);
static int projkey_snapshot_meta(sqlite3 *db, char instance[33],
    int64_t *seq, int64_t *contact);
static int projkey_snapshot_rows(sqlite3 *db, int64_t seq, projkey_row_pt cb,
    void *data);
static void projkey_snapshot_error(char *err, size_t err_len, sqlite3 *db,
    const char *what);


static const char  projkey_snapshot_schema[] =
    "PRAGMA journal_mode = OFF;"
    "PRAGMA synchronous = FULL;"
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE nodes (hash BLOB NOT NULL, id TEXT NOT NULL,"
    " project TEXT NOT NULL, name TEXT NOT NULL, status INTEGER NOT NULL,"
    " previous INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " last_used_at INTEGER NOT NULL);"
    "CREATE INDEX nodes_previous ON nodes (id) WHERE previous = 1;";


int
projkey_snapshot_write(const char *path, const char *instance, int64_t seq,
    int64_t contact, const projkey_snapshot_node_t *nodes, size_t n,
    char *err, size_t err_len)
{
    int       rc;
    char     *tmp;
    size_t    len;
    sqlite3  *db;

    len = strlen(path) + sizeof(".tmp");

    tmp = malloc(len);
    if (tmp == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }

    snprintf(tmp, len, "%s.tmp", path);

    /* what a crash left of an earlier write */
    (void) unlink(tmp);

    db = NULL;

    rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE
                                   |SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK
        || sqlite3_exec(db, projkey_snapshot_schema, NULL, NULL, NULL)
           != SQLITE_OK
        || projkey_snapshot_fill(db, instance, seq, contact, nodes, n) != 0)
    {
        projkey_snapshot_error(err, err_len, db, tmp);
        sqlite3_close(db);
        (void) unlink(tmp);
        free(tmp);
        return -1;
    }

    if (sqlite3_close(db) != SQLITE_OK) {
        snprintf(err, err_len, "\"%s\" cannot be closed", tmp);
        (void) unlink(tmp);
        free(tmp);
        return -1;
    }

    if (rename(tmp, path) == -1) {
        snprintf(err, err_len, "rename(\"%s\", \"%s\") failed: %s", tmp,
                 path, strerror(errno));
        (void) unlink(tmp);
        free(tmp);
        return -1;
    }

    free(tmp);

    /* the rename itself survives a power cut */
    if (projkey_snapshot_sync_dir(path) != 0) {
        snprintf(err, err_len, "the directory of \"%s\" cannot be synced: %s",
                 path, strerror(errno));
        return -1;
    }

    return 0;
}


static int
projkey_snapshot_fill(sqlite3 *db, const char *instance, int64_t seq,
    int64_t contact, const projkey_snapshot_node_t *nodes, size_t n)
{
    char                           *q;
    size_t                          i;
    sqlite3_stmt                   *stmt;
    const projkey_snapshot_node_t  *nd;

    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        return -1;
    }

    /* the instance is the database's text: quoted by SQLite (%Q) */

    q = sqlite3_mprintf("INSERT INTO meta VALUES ('format', '"
                        PROJKEY_SNAPSHOT_FORMAT "'), ('instance', %Q),"
                        " ('revision', '%lld'), ('contact', '%lld')",
                        instance, (long long) seq, (long long) contact);
    if (q == NULL) {
        return -1;
    }

    if (sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_free(q);
        return -1;
    }

    sqlite3_free(q);

    if (sqlite3_prepare_v2(db, "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?,"
                           " ?, ?)", -1, &stmt, NULL)
        != SQLITE_OK)
    {
        return -1;
    }

    for (i = 0; i < n; i++) {
        nd = &nodes[i];

        sqlite3_bind_blob(stmt, 1, nd->hash, PROJKEY_SNAPSHOT_HASH_LEN,
                          SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, nd->id, PROJKEY_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, nd->project, (int) nd->project_len,
                          SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, nd->name, (int) nd->name_len,
                          SQLITE_STATIC);
        sqlite3_bind_int(stmt, 5, nd->status);
        sqlite3_bind_int(stmt, 6, nd->previous);
        sqlite3_bind_int64(stmt, 7, nd->expires_at);
        sqlite3_bind_int64(stmt, 8, nd->last_used_at);

        if (sqlite3_step(stmt) != SQLITE_DONE) {
            sqlite3_finalize(stmt);
            return -1;
        }

        sqlite3_reset(stmt);
    }

    sqlite3_finalize(stmt);

    return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}


static int
projkey_snapshot_sync_dir(const char *path)
{
    int          fd, rc;
    char        *dir, *slash;

    dir = strdup(path);
    if (dir == NULL) {
        return -1;
    }

    slash = strrchr(dir, '/');

    if (slash == NULL) {
        strcpy(dir, ".");

    } else if (slash == dir) {
        dir[1] = '\0';

    } else {
        *slash = '\0';
    }

    fd = open(dir, O_RDONLY|O_DIRECTORY);
    free(dir);

    if (fd == -1) {
        return -1;
    }

    rc = fsync(fd);
    close(fd);

    return rc;
}


int
projkey_snapshot_touch(const char *path, int64_t contact, char *err,
    size_t err_len)
{
    char     *q;
    sqlite3  *db;

    db = NULL;
    q = sqlite3_mprintf("UPDATE meta SET v = '%lld' WHERE k = 'contact'",
                        (long long) contact);

    if (q == NULL
        || sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE
                                      |SQLITE_OPEN_NOMUTEX, NULL)
           != SQLITE_OK
        || sqlite3_exec(db, "PRAGMA journal_mode = DELETE;"
                        " PRAGMA synchronous = FULL", NULL, NULL, NULL)
           != SQLITE_OK
        || sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_changes(db) != 1)
    {
        projkey_snapshot_error(err, err_len, db, path);
        sqlite3_free(q);
        sqlite3_close(db);
        return -1;
    }

    sqlite3_free(q);

    return sqlite3_close(db) == SQLITE_OK ? 0 : -1;
}


int
projkey_snapshot_read(const char *path, char instance[33], int64_t *seq,
    int64_t *contact, projkey_row_pt cb, void *data, char *err,
    size_t err_len)
{
    int       rc;
    sqlite3  *db;

    if (access(path, F_OK) == -1 && errno == ENOENT) {
        return 1;
    }

    db = NULL;

    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY|SQLITE_OPEN_NOMUTEX,
                         NULL);

    if (rc != SQLITE_OK
        || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
    {
        projkey_snapshot_error(err, err_len, db, path);
        sqlite3_close(db);
        return -1;
    }

    rc = projkey_snapshot_meta(db, instance, seq, contact);

    if (rc == 0) {
        rc = projkey_snapshot_rows(db, *seq, cb, data);
    }

    if (rc != 0) {
        if (rc == -2) {
            snprintf(err, err_len, "\"%s\" is not a projkey snapshot, or a "
                     "damaged one", path);

        } else {
            projkey_snapshot_error(err, err_len, db, path);
        }

        sqlite3_close(db);
        return -1;
    }

    sqlite3_close(db);

    return 0;
}


/* -2: not a snapshot of this format */

static int
projkey_snapshot_meta(sqlite3 *db, char instance[33], int64_t *seq,
    int64_t *contact)
{
    int                   found;
    const char           *k;
    sqlite3_stmt         *stmt;
    const unsigned char  *v;

    if (sqlite3_prepare_v2(db, "SELECT k, v FROM meta", -1, &stmt, NULL)
        != SQLITE_OK)
    {
        return -2;
    }

    found = 0;

    while (sqlite3_step(stmt) == SQLITE_ROW) {
        k = (const char *) sqlite3_column_text(stmt, 0);
        v = sqlite3_column_text(stmt, 1);

        if (k == NULL || v == NULL) {
            continue;
        }

        if (strcmp(k, "format") == 0
            && strcmp((const char *) v, PROJKEY_SNAPSHOT_FORMAT) == 0)
        {
            found |= 1;

        } else if (strcmp(k, "instance") == 0 && strlen((char *) v) == 32) {
            memcpy(instance, v, 33);
            found |= 2;

        } else if (strcmp(k, "revision") == 0) {
            *seq = strtoll((const char *) v, NULL, 10);
            found |= 4;

        } else if (strcmp(k, "contact") == 0) {
            *contact = strtoll((const char *) v, NULL, 10);
            found |= 8;
        }
    }

    sqlite3_finalize(stmt);

    return (found == 15 && *seq >= 0) ? 0 : -2;
}


static int
projkey_snapshot_rows(sqlite3 *db, int64_t seq, projkey_row_pt cb,
    void *data)
{
    int             rc;
    sqlite3_stmt   *stmt;
    projkey_row_t   row;
    unsigned char   hash[PROJKEY_HASH_LEN], prev[PROJKEY_HASH_LEN];

    if (sqlite3_prepare_v2(db,
            "SELECT m.hash, m.id, m.project, m.name, m.status, m.expires_at,"
            " m.last_used_at, p.hash, p.expires_at"
            " FROM nodes m LEFT JOIN nodes p"
            " ON p.id = m.id AND p.previous = 1"
            " WHERE m.previous = 0", -1, &stmt, NULL)
        != SQLITE_OK)
    {
        return -2;
    }

    memset(hash, 0, sizeof(hash));
    memset(prev, 0, sizeof(prev));

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {

        if (sqlite3_column_bytes(stmt, 0) != PROJKEY_SNAPSHOT_HASH_LEN
            || sqlite3_column_bytes(stmt, 1) != PROJKEY_ID_LEN
            || (sqlite3_column_type(stmt, 7) != SQLITE_NULL
                && sqlite3_column_bytes(stmt, 7) != PROJKEY_SNAPSHOT_HASH_LEN))
        {
            sqlite3_finalize(stmt);
            return -2;
        }

        memset(&row, 0, sizeof(projkey_row_t));

        memcpy(hash, sqlite3_column_blob(stmt, 0), PROJKEY_SNAPSHOT_HASH_LEN);
        row.hash = hash;
        row.id = (const char *) sqlite3_column_text(stmt, 1);
        row.project = (const char *) sqlite3_column_text(stmt, 2);
        row.project_len = sqlite3_column_bytes(stmt, 2);
        row.name = (const char *) sqlite3_column_text(stmt, 3);
        row.name_len = sqlite3_column_bytes(stmt, 3);
        row.status = sqlite3_column_int(stmt, 4);
        row.expires_at = sqlite3_column_int64(stmt, 5);
        row.last_used_at = sqlite3_column_int64(stmt, 6);
        row.seq = seq;

        if (sqlite3_column_type(stmt, 7) != SQLITE_NULL) {
            memcpy(prev, sqlite3_column_blob(stmt, 7),
                   PROJKEY_SNAPSHOT_HASH_LEN);
            row.prev_hash = prev;
            row.prev_expires_at = sqlite3_column_int64(stmt, 8);
        }

        if (row.project == NULL || row.name == NULL
            || (row.status != PROJKEY_STATUS_ACTIVE
                && row.status != PROJKEY_STATUS_DISABLED))
        {
            sqlite3_finalize(stmt);
            return -2;
        }

        if (cb(data, &row) != 0) {
            sqlite3_finalize(stmt);
            return -1;
        }
    }

    sqlite3_finalize(stmt);

    return (rc == SQLITE_DONE) ? 0 : -1;
}


static void
projkey_snapshot_error(char *err, size_t err_len, sqlite3 *db,
    const char *what)
{
    snprintf(err, err_len, "\"%s\": %s", what,
             db ? sqlite3_errmsg(db) : "out of memory");
}
