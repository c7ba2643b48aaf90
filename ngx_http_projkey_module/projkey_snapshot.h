
/*
 * projkey: a node's snapshot (snapshot=PATH of a PostgreSQL zone), a local
 * SQLite file with what its zone held at a revision, so that a node can
 * start while the database is out of reach.  It holds what the zone does:
 * per key the first bytes of its hash, id, project, name, status, expiry
 * and last use, and a rolled key's previous secret the same way; never a
 * secret.  No nginx here.
 */


#ifndef _PROJKEY_SNAPSHOT_H_INCLUDED_
#define _PROJKEY_SNAPSHOT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "projkey_store.h"


/* the bytes of a key's hash that the zone keeps, and the snapshot */
#define PROJKEY_SNAPSHOT_HASH_LEN  16


/* one node of a zone; project and name are not NUL-terminated */
typedef struct {
    unsigned char         hash[PROJKEY_SNAPSHOT_HASH_LEN];
    char                  id[PROJKEY_ID_LEN];
    const char           *project;
    size_t                project_len;
    const char           *name;
    size_t                name_len;
    int                   status;       /* active or disabled */
    int                   previous;     /* a rolled key's previous secret */
    int64_t               expires_at;   /* 0: never */
    int64_t               last_used_at;
} projkey_snapshot_node_t;


/*
 * Writes the n nodes, the database's instance id, revision seq and the
 * time of the last contact with it (Unix seconds) to path,
 * all or nothing: a temporary file next to it, synced, renamed over it.
 * 0, or -1 with the reason in err.
 */
int projkey_snapshot_write(const char *path, const char *instance,
    int64_t seq, int64_t contact, const projkey_snapshot_node_t *nodes,
    size_t n, char *err, size_t err_len);

/* a later contact with the database, the state unchanged: 0 or -1 */
int projkey_snapshot_touch(const char *path, int64_t contact, char *err,
    size_t err_len);

/*
 * Reads path: instance (32 characters and a NUL), revision and the last
 * contact with the database it records, then each key to cb as a row (hash and prev_hash have their
 * first PROJKEY_SNAPSHOT_HASH_LEN bytes, then zeros; seq is the
 * snapshot's).  0; 1 if there is no file; -1 with the reason in err.
 */
int projkey_snapshot_read(const char *path, char instance[33], int64_t *seq,
    int64_t *contact, projkey_row_pt cb, void *data, char *err,
    size_t err_len);


#endif /* _PROJKEY_SNAPSHOT_H_INCLUDED_ */
