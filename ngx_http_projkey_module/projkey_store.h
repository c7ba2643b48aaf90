
/*
 * projkey: the key store, apart from nginx.  One interface, two engines
 * chosen by projkey_store_open()'s path: an SQLite file, or a PostgreSQL
 * database named by a libpq URI (postgresql://, postgres://); of the
 * store, only projkey_store_sqlite.c includes <sqlite3.h>, only
 * projkey_store_pg.c <libpq-fe.h>.  The text rules are projkey_text.h's,
 * the admin API's bodies and keys in JSON projkey_json.h's.
 *
 * One connection per process (a connection never crosses fork()); not
 * shared between threads at the same time: callers serialize.  Every write
 * is one BEGIN IMMEDIATE transaction; every statement is prepared.  The
 * secret key is never given to the store: only its hash and preview.
 *
 * Every key change (create, rename, status, expiry, roll, delete) takes the
 * next value of a database-wide change sequence, so that another process
 * reads what changed since the sequence it last saw, deletes included, and
 * the hashes of previous secrets taken out of use.
 */


#ifndef _PROJKEY_STORE_H_INCLUDED_
#define _PROJKEY_STORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "projkey_key.h"
#include "projkey_text.h"


typedef struct projkey_store_s  projkey_store_t;


typedef enum {
    PROJKEY_STORE_OK = 0,
    PROJKEY_STORE_NOTFOUND,     /* no such key in this project */
    PROJKEY_STORE_INVALID,      /* bad input: errmsg says what */
    PROJKEY_STORE_BUSY,         /* locked by another writer for too long */
    PROJKEY_STORE_READONLY,     /* the file or its directory is read-only */
    PROJKEY_STORE_FULL,         /* the disk is full */
    PROJKEY_STORE_CORRUPT,      /* not a projkey database, or damaged */
    PROJKEY_STORE_ERROR         /* anything else: errmsg says what */
} projkey_store_rc_e;


#define PROJKEY_STATUS_DELETED   0
#define PROJKEY_STATUS_ACTIVE    1
#define PROJKEY_STATUS_DISABLED  2


/* flags of projkey_store_open() */
#define PROJKEY_STORE_CREATE     0x01   /* create file and schema if missing */
#define PROJKEY_STORE_RDONLY     0x02   /* open read-only, never write */
#define PROJKEY_STORE_NO_CHECKPOINT 0x04 /* commits never checkpoint the WAL */
#define PROJKEY_STORE_ANY_VERSION 0x08  /* with RDONLY: an older schema is
                                           fine (a check, not a load) */
#define PROJKEY_STORE_MIGRATE    0x10   /* migrate an older schema forward */


/*
 * A key as the store returns it.  Strings are NUL-terminated and valid only
 * during the callback that receives the row.  Times are Unix seconds;
 * last_used_at is 0 when the key was never used, expires_at 0 when it never
 * expires.  prev_hash is the previous secret of a rolled key, or NULL; it
 * works until prev_expires_at.  A deleted key (from projkey_store_changes()
 * only) has status PROJKEY_STATUS_DELETED and only id, hash, project and
 * seq set; so has a previous secret taken out of use (its hash in hash).
 * retired_hash, given by a roll and a purge only, is a previous secret's
 * hash that the change took out of use.
 */
typedef struct {
    const char           *id;
    const unsigned char  *hash;          /* PROJKEY_HASH_LEN bytes */
    const char           *project;
    size_t                project_len;
    const char           *name;
    size_t                name_len;
    const char           *preview;
    const char           *created_by;
    int64_t               created_at;
    int64_t               updated_at;
    int64_t               last_used_at;
    int64_t               seq;
    int                   status;
    int64_t               expires_at;
    const unsigned char  *prev_hash;     /* PROJKEY_HASH_LEN bytes, or NULL */
    const char           *prev_preview;
    int64_t               prev_expires_at;
    const unsigned char  *retired_hash;  /* PROJKEY_HASH_LEN bytes, or NULL */
} projkey_row_t;

/* returns 0 to go on; anything else stops the walk with PROJKEY_STORE_ERROR */
typedef int (*projkey_row_pt)(void *data, const projkey_row_t *row);


/* who makes a change, recorded in the audit trail */
typedef struct {
    const char           *user;          /* "created by" */
    size_t                user_len;
    const char           *addr;          /* client address, may be NULL */
    size_t                addr_len;
} projkey_actor_t;


typedef struct {
    const char           *id;            /* PROJKEY_ID_LEN chars */
    const char           *project;
    size_t                project_len;
    const char           *name;          /* already validated */
    size_t                name_len;
    const unsigned char  *hash;          /* PROJKEY_HASH_LEN bytes */
    const unsigned char  *preview;       /* PROJKEY_PREVIEW_LEN bytes */
    int                   status;        /* 0 means active */
    int64_t               expires_at;    /* 0 means never */
} projkey_new_t;


/* what projkey_store_change() changes */
typedef struct {
    const char           *name;          /* already validated, or NULL */
    size_t                name_len;
    int                   status;        /* 0: unchanged */
    int                   set_expires;   /* 1: expires_at below is set */
    int64_t               expires_at;    /* 0: never expires */
} projkey_change_t;


/* a key's last use, kept in the zone and written in batches */
typedef struct {
    char                  id[PROJKEY_ID_LEN + 1];
    int64_t               last_used_at;
} projkey_touch_t;


/*
 * Opens (with PROJKEY_STORE_CREATE: creates, with its schema) the database,
 * sets WAL, busy_timeout and foreign keys, checks that it is a projkey
 * database and, with PROJKEY_STORE_MIGRATE only, migrates an older schema
 * forward; without it an older schema is an error.  A PostgreSQL URI
 * connects instead (busy_timeout_ms is its lock_timeout); its schema is
 * created only with both PROJKEY_STORE_CREATE and PROJKEY_STORE_MIGRATE
 * (projkey init), never by PROJKEY_STORE_CREATE alone (nginx).  *st is set whenever memory
 * allows, even on failure, so that projkey_store_errmsg() can say why;
 * the caller always calls projkey_store_close(*st).
 */
projkey_store_rc_e projkey_store_open(const char *path, int flags,
    int busy_timeout_ms, projkey_store_t **st);
void projkey_store_close(projkey_store_t *st);

/* 1 if db is a PostgreSQL URI (postgresql://, postgres://), not a file */
int projkey_store_is_uri(const char *db);

/*
 * db as a log may show it: a URI's passwords (user:PASSWORD@, password=)
 * become "..."; cut to size - 1 bytes, always NUL-terminated
 */
void projkey_store_display(const char *db, char *out, size_t size);

/*
 * 1 if the open failed for want of a server that answers (refused, timed
 * out, no route): not one that answered and refused (authentication, no
 * such database), nor a URI libpq cannot parse
 */
int projkey_store_unreachable(projkey_store_t *st);

/*
 * 1 if st is NULL or its connection to the server is lost: open another.
 * An idle connection is looked at without blocking: a server that has
 * closed it (a restart) is found before a query fails on it.
 */
int projkey_store_broken(projkey_store_t *st);

/*
 * PostgreSQL only (an error for SQLite): listen() subscribes st's
 * connection to the notifications of commits and makes it non-blocking,
 * for st to be used by nothing else after; socket() is its descriptor, to
 * wait on; notified() reads what has arrived without blocking and sets
 * *seq to the highest revision notified, 0 if none (PROJKEY_STORE_ERROR:
 * the connection is lost).
 */
projkey_store_rc_e projkey_store_listen(projkey_store_t *st);
int projkey_store_socket(projkey_store_t *st);
projkey_store_rc_e projkey_store_notified(projkey_store_t *st, int64_t *seq);

/* 1 if the schema is older than this projkey's (PROJKEY_STORE_ANY_VERSION) */
int projkey_store_outdated(projkey_store_t *st);

/* the schema version as opened, or as migrated to */
int projkey_store_schema(projkey_store_t *st);

/* the last error in words, e.g. "database is locked"; never a secret */
const char *projkey_store_errmsg(projkey_store_t *st);

/* the current change sequence and this database's random instance id */
projkey_store_rc_e projkey_store_state(projkey_store_t *st, int64_t *seq,
    char instance[33]);

/*
 * Every key (not deleted), in one read transaction; *seq as of that read.
 * Its rows carry what the zone keeps: no preview, creator, creation or
 * update time (NULL and 0), read from millions of keys for nothing.
 */
projkey_store_rc_e projkey_store_load(projkey_store_t *st, projkey_row_pt cb,
    void *data, int64_t *seq);

/*
 * Every key changed after sequence since, in one read transaction, each
 * once, in its latest state (deleted ones with PROJKEY_STATUS_DELETED),
 * in sequence order; *seq is the sequence as of that read.
 */
projkey_store_rc_e projkey_store_changes(projkey_store_t *st, int64_t since,
    projkey_row_pt cb, void *data, int64_t *seq);

/* one key of project by id; PROJKEY_STORE_NOTFOUND if absent */
projkey_store_rc_e projkey_store_get(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len, projkey_row_pt cb,
    void *data);

/* every key of a project, newest first */
projkey_store_rc_e projkey_store_list(projkey_store_t *st, const char *project,
    size_t project_len, projkey_row_pt cb, void *data);

/* cb, if not NULL, receives the committed row */
projkey_store_rc_e projkey_store_create(projkey_store_t *st,
    const projkey_new_t *key, const projkey_actor_t *actor,
    projkey_row_pt cb, void *data);

/*
 * Creates n keys in one transaction, all or none: for bulk provisioning
 * (the CLI's create --count), where a transaction per key is too slow.
 * Each key takes its own sequence number and audit row.
 */
projkey_store_rc_e projkey_store_create_batch(projkey_store_t *st,
    const projkey_new_t *keys, size_t n, const projkey_actor_t *actor);

/*
 * Renames (name != NULL) and/or sets status (status != 0); cb, if not NULL,
 * receives the committed row.  A change to what the key already is changes
 * nothing and takes no sequence number.
 */
projkey_store_rc_e projkey_store_update(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const char *name, size_t name_len, int status,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data);

/*
 * Like projkey_store_update(), and sets or clears the expiry.  check, if
 * not NULL, receives the row as it is about to be committed, inside the
 * transaction: anything but 0 rolls it back (PROJKEY_STORE_ERROR, "stopped
 * by the caller"), e.g. when the caller's zone has no room for it.
 */
projkey_store_rc_e projkey_store_change(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const projkey_change_t *change, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data);

/*
 * Gives a key a new secret (its hash and preview); the current one becomes
 * the previous secret, which works until prev_expires_at (at once when it
 * is not in the future; at most PROJKEY_ROLL_MAX ahead).  A previous secret
 * of an earlier roll is taken out of use (the row's retired_hash).  check
 * and cb as for projkey_store_change().
 */
projkey_store_rc_e projkey_store_roll(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const unsigned char *hash, const unsigned char *preview,
    int64_t prev_expires_at, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data);

/*
 * Takes out of use the previous secrets that expired at now or before,
 * each a change of its own; after the commit cb, if not NULL, receives
 * each as a deleted row (status PROJKEY_STATUS_DELETED, hash the previous
 * secret's).  *n is how many.  Nothing to do costs one indexed read.
 */
projkey_store_rc_e projkey_store_purge(projkey_store_t *st, int64_t now,
    projkey_row_pt cb, void *data, size_t *n);

/*
 * cb, if not NULL, receives the row as it was before it was deleted, with
 * the delete's sequence number
 */
projkey_store_rc_e projkey_store_delete(projkey_store_t *st,
    const char *project, size_t project_len, const char *id, size_t id_len,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data);

/*
 * Copies what the WAL holds into the database, for connections opened
 * with PROJKEY_STORE_NO_CHECKPOINT, so that the fsync of a checkpoint is
 * not paid inside somebody's commit.  Passive unless full: it waits for
 * no one.  full: SQLite's RESTART, which holds off the writers meanwhile
 * (and waits up to PROJKEY_CHECKPOINT_WAIT ms for readers on an older
 * snapshot), so that writes that never pause cannot keep the WAL from
 * starting over (SQLite resets it only once all of it is copied).
 * *complete is 1 when the checkpoint copied every frame the WAL held
 * when it began; if nothing was written meanwhile the next write then
 * starts the WAL over.  Busy (another checkpoint runs, a reader in the
 * way) is not an error: *complete is 0.
 */
#define PROJKEY_CHECKPOINT_WAIT  100

projkey_store_rc_e projkey_store_checkpoint(projkey_store_t *st, int full,
    int *complete);

/* records last use times in one transaction; no sequence number taken */
projkey_store_rc_e projkey_store_touch(projkey_store_t *st,
    const projkey_touch_t *touch, size_t n);

/*
 * A node: an nginx instance following the database, as its heartbeat
 * records it (GET nodes).  Its name is its own (projkey_zone node=): two
 * instances of one name share one row, the last heartbeat's.
 */
#define PROJKEY_NODE_NAME_MAX    255    /* bytes */
#define PROJKEY_NODE_STALE       60     /* seconds unseen: "stale" */
#define PROJKEY_NODE_EXPIRE      (7 * 86400) /* seconds unseen: dropped */

typedef struct {
    const char           *name;
    size_t                name_len;
    int64_t               revision;      /* the sequence its zone applied */
    int64_t               last_seen;     /* Unix seconds */
    int64_t               keys;          /* of its zone */
    int64_t               used_bytes;
    int64_t               size_bytes;
    int                   stale;         /* from projkey_store_nodes() */
} projkey_node_t;

/* returns 0 to go on; anything else stops the walk with PROJKEY_STORE_ERROR */
typedef int (*projkey_node_pt)(void *data, const projkey_node_t *node);

/* the current change sequence (the database's revision) */
projkey_store_rc_e projkey_store_revision(projkey_store_t *st, int64_t *seq);

/*
 * Records a node's heartbeat (last_seen as given) in one transaction that
 * also drops the nodes unseen for PROJKEY_NODE_EXPIRE; no sequence number
 * taken.
 */
projkey_store_rc_e projkey_store_heartbeat(projkey_store_t *st,
    const projkey_node_t *node);

/* every node, by name; stale when unseen for PROJKEY_NODE_STALE at now */
projkey_store_rc_e projkey_store_nodes(projkey_store_t *st, int64_t now,
    projkey_node_pt cb, void *data);

/* status filters of a page (projkey_page_t.status) */
#define PROJKEY_PAGE_ANY         0
#define PROJKEY_PAGE_ACTIVE      1      /* active and not expired */
#define PROJKEY_PAGE_DISABLED    2
#define PROJKEY_PAGE_EXPIRED     3      /* expires_at passed, either status */

#define PROJKEY_PAGE_LIMIT       100    /* keys of a page by default */
#define PROJKEY_PAGE_LIMIT_MAX   1000
#define PROJKEY_SEARCH_MAX       100    /* characters of a search text */
#define PROJKEY_CURSOR_MAX       400    /* bytes of a cursor */

/*
 * The keys one page looks at, at most, hits or not: what bounds the cost
 * of a page whose filter no index answers (a 1 or 2 character search, a
 * status that is rare).  Such a page may hold fewer than limit keys, even
 * none, and still have a next cursor.
 */
#define PROJKEY_PAGE_SCAN        1000


/*
 * A page of the key list: newest first (created_at, then id, both
 * descending), after the cursor "after" (a "next" of a page of the same
 * project, search and status; NULL or "" for the first page).  q, if not
 * empty, is matched case-insensitively against the name (a substring) and
 * the preview (its end: "x7Qa", "7qa", "...x7Qa").
 */
typedef struct {
    const char           *q;             /* UTF-8, checked */
    size_t                q_len;
    const char           *after;
    size_t                after_len;
    int                   status;        /* PROJKEY_PAGE_* */
    int                   limit;         /* 0: PROJKEY_PAGE_LIMIT */
} projkey_page_t;


/*
 * What a page request must be, checked without a database: NULL, or the
 * error in words.  A cursor of the right form may still be refused by
 * projkey_store_page(), which knows the cursors it made.
 */
const char *projkey_store_check_page(const projkey_page_t *page);

/*
 * One page, in one read transaction: cb gets every key of the page; *next
 * (malloc()ed, freed with projkey_store_free()) is the cursor of the next
 * page, or NULL on the last.  PROJKEY_STORE_INVALID for a bad page or a
 * cursor that is not one of this database for this project and filter.
 */
projkey_store_rc_e projkey_store_page(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    projkey_row_pt cb, void *data, char **next);

/* the same page as {"keys":[KEY,...],"next":CURSOR|null} */
projkey_store_rc_e projkey_store_page_json(projkey_store_t *st,
    const char *project, size_t project_len, const projkey_page_t *page,
    char **out, size_t *len);

/*
 * Merges the search index's segments, in short write transactions (some
 * 100 ms each at 1,000,000 keys), until it is one: after many keys were
 * added at once (create_batch), a search reads several times less.
 */
projkey_store_rc_e projkey_store_search_merge(projkey_store_t *st);

/*
 * One step of that merging (about 1,000 pages, one short transaction):
 * *more is 1 when it did some, and another step may do more.  Worker 0
 * takes one a flush, so that an index grown key by key (through the admin
 * API) does not keep a segment for each write.
 */
projkey_store_rc_e projkey_store_search_merge_step(projkey_store_t *st,
    int *more);

/*
 * JSON built by the engine's own JSON functions (PostgreSQL's KEY
 * objects by projkey_json's), malloc()ed, NUL-terminated, freed with
 * projkey_store_free().
 *   list:  {"keys":[KEY,...]} of a project, newest first
 *   audit: {"events":[...],"next":N|null} of a project, newest first,
 *          at most limit events with sequence below before (0: from the
 *          newest)
 *   nodes: {"revision":N,"nodes":[{"node","revision","last_seen","stale",
 *          "zone":{"keys","used_bytes","size_bytes"}},...]} by name,
 *          stale as of now
 */
projkey_store_rc_e projkey_store_list_json(projkey_store_t *st,
    const char *project, size_t project_len, char **out, size_t *len);
projkey_store_rc_e projkey_store_audit_json(projkey_store_t *st,
    const char *project, size_t project_len, int64_t before, int limit,
    char **out, size_t *len);
projkey_store_rc_e projkey_store_nodes_json(projkey_store_t *st, int64_t now,
    char **out, size_t *len);
void projkey_store_free(void *p);


#endif /* _PROJKEY_STORE_H_INCLUDED_ */
