
/*
 * projkey: what a store engine (SQLite, PostgreSQL) gives projkey_store.c,
 * which holds the parts that need no database and dispatches the rest
 * through the engine's operations.  Private to the store's files.
 */


#ifndef _PROJKEY_STORE_ENGINE_H_INCLUDED_
#define _PROJKEY_STORE_ENGINE_H_INCLUDED_


#include "projkey_store.h"


#define PROJKEY_ERRMSG_LEN       512

/* a cursor: base64url of version, created_at, id length, id and a MAC */
#define PROJKEY_CURSOR_VERSION   1
#define PROJKEY_CURSOR_KEY_LEN   32
#define PROJKEY_CURSOR_MAC_LEN   16
#define PROJKEY_CURSOR_ID_MAX    255
#define PROJKEY_CURSOR_FIXED     (1 + 8 + 1 + PROJKEY_CURSOR_MAC_LEN)


typedef struct projkey_sqlite_s  projkey_sqlite_t;
typedef struct projkey_pg_s      projkey_pg_t;


/* each as the projkey_store_* function of its name (projkey_store.h) */
typedef struct {
    const char          *name;
    int                  schema_version;   /* the newest this engine knows */

    /* path is NULL for a store without a database (SQLite only) */
    projkey_store_rc_e (*open)(projkey_store_t *st, const char *path,
        int busy_timeout_ms);
    void (*close)(projkey_store_t *st);

    projkey_store_rc_e (*state)(projkey_store_t *st, int64_t *seq,
        char instance[33]);
    projkey_store_rc_e (*revision)(projkey_store_t *st, int64_t *seq);
    projkey_store_rc_e (*load)(projkey_store_t *st, projkey_row_pt cb,
        void *data, int64_t *seq);
    projkey_store_rc_e (*changes)(projkey_store_t *st, int64_t since,
        projkey_row_pt cb, void *data, int64_t *seq);
    projkey_store_rc_e (*get)(projkey_store_t *st, const char *project,
        size_t project_len, const char *id, size_t id_len,
        projkey_row_pt cb, void *data);
    projkey_store_rc_e (*list)(projkey_store_t *st, const char *project,
        size_t project_len, projkey_row_pt cb, void *data);
    projkey_store_rc_e (*create)(projkey_store_t *st,
        const projkey_new_t *key, const projkey_actor_t *actor,
        projkey_row_pt cb, void *data);
    projkey_store_rc_e (*create_batch)(projkey_store_t *st,
        const projkey_new_t *keys, size_t n, const projkey_actor_t *actor);
    projkey_store_rc_e (*change)(projkey_store_t *st, const char *project,
        size_t project_len, const char *id, size_t id_len,
        const projkey_change_t *change, const projkey_actor_t *actor,
        projkey_row_pt check, projkey_row_pt cb, void *data);
    projkey_store_rc_e (*roll)(projkey_store_t *st, const char *project,
        size_t project_len, const char *id, size_t id_len,
        const unsigned char *hash, const unsigned char *preview,
        int64_t prev_expires_at, const projkey_actor_t *actor,
        projkey_row_pt check, projkey_row_pt cb, void *data);
    projkey_store_rc_e (*purge)(projkey_store_t *st, int64_t now,
        projkey_row_pt cb, void *data, size_t *n);
    projkey_store_rc_e (*delete)(projkey_store_t *st, const char *project,
        size_t project_len, const char *id, size_t id_len,
        const projkey_actor_t *actor, projkey_row_pt cb, void *data);
    projkey_store_rc_e (*checkpoint)(projkey_store_t *st, int full,
        int *complete);
    projkey_store_rc_e (*touch)(projkey_store_t *st,
        const projkey_touch_t *touch, size_t n);
    projkey_store_rc_e (*heartbeat)(projkey_store_t *st,
        const projkey_node_t *node);
    projkey_store_rc_e (*nodes)(projkey_store_t *st, int64_t now,
        projkey_node_pt cb, void *data);
    projkey_store_rc_e (*page)(projkey_store_t *st, const char *project,
        size_t project_len, const projkey_page_t *page, projkey_row_pt cb,
        void *data, char **next);
    projkey_store_rc_e (*page_json)(projkey_store_t *st, const char *project,
        size_t project_len, const projkey_page_t *page, char **out,
        size_t *len);
    projkey_store_rc_e (*search_merge_step)(projkey_store_t *st, int *more);
    projkey_store_rc_e (*list_json)(projkey_store_t *st, const char *project,
        size_t project_len, char **out, size_t *len);
    projkey_store_rc_e (*audit_json)(projkey_store_t *st,
        const char *project, size_t project_len, int64_t before, int limit,
        char **out, size_t *len);
    projkey_store_rc_e (*nodes_json)(projkey_store_t *st, int64_t now,
        char **out, size_t *len);

    /* PostgreSQL only: NULL for SQLite */
    int (*alive)(projkey_store_t *st);
    projkey_store_rc_e (*listen)(projkey_store_t *st);
    int (*socket)(projkey_store_t *st);
    projkey_store_rc_e (*notified)(projkey_store_t *st, int64_t *seq);
} projkey_store_ops_t;


/* a store: what every engine shares, and its own state */
struct projkey_store_s {
    const projkey_store_ops_t  *ops;
    projkey_sqlite_t           *sq;          /* the SQLite engine's */
    projkey_pg_t               *pg;          /* the PostgreSQL engine's */
    int                         flags;       /* of projkey_store_open() */
    int                         version;     /* the schema's, as opened */
    unsigned                    has_cursor_key:1;
    unsigned                    broken:1;    /* the connection is lost */
    unsigned                    unreachable:1;  /* no server answered */
    unsigned char               cursor_key[PROJKEY_CURSOR_KEY_LEN];
    char                        errmsg[PROJKEY_ERRMSG_LEN];
};


extern const projkey_store_ops_t  projkey_store_sqlite_ops;
extern const projkey_store_ops_t  projkey_store_pg_ops;


void projkey_store_set_errmsg(projkey_store_t *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* msg (one of projkey_text's) as errmsg: PROJKEY_STORE_INVALID */
projkey_store_rc_e projkey_store_invalid(projkey_store_t *st,
    const char *msg);

/* a cursor's bytes, checked for form (not its MAC): 0, or -1 */
int projkey_store_cursor_decode(const char *cursor, size_t len,
    unsigned char *bin, size_t *bin_len);

/* a cursor's MAC (of project, search, status and bin) with st's key */
void projkey_store_cursor_mac(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, const unsigned char *bin,
    size_t len, unsigned char *mac);

/* the cursor of the place (at, id) of a page, malloc()ed; NULL: no memory */
char *projkey_store_cursor(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, int64_t at,
    const char *id, size_t id_len);

/* a growing malloc()ed string, always NUL-terminated, for JSON answers */
typedef struct {
    char                  *data;
    size_t                 len;            /* without the NUL */
    size_t                 size;
    int                    failed;
} projkey_buf_t;

void projkey_buf_add(projkey_buf_t *b, const char *p, size_t len);

/* the string to *out (its length to *len); out of memory: freed, an error */
projkey_store_rc_e projkey_buf_done(projkey_store_t *st, projkey_buf_t *b,
    char **out, size_t *len);


#endif /* _PROJKEY_STORE_ENGINE_H_INCLUDED_ */
