
/*
 * projkey: what the nginx glue files share (module object, shared zone,
 * admin handler).
 */


#ifndef _NGX_HTTP_PROJKEY_H_INCLUDED_
#define _NGX_HTTP_PROJKEY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "projkey_key.h"
#include "projkey_store.h"
#include "projkey_json.h"


/*
 * The zone keeps the first 16 bytes of a key's BLAKE2b-256: an index into
 * a set of server-made random keys, where 128 bits are far beyond any
 * search, and it keeps a node to 64 bytes.
 */
#define NGX_HTTP_PROJKEY_HASH_LEN    16

#define NGX_HTTP_PROJKEY_DEAD        PROJKEY_STATUS_DELETED
#define NGX_HTTP_PROJKEY_ACTIVE      PROJKEY_STATUS_ACTIVE
#define NGX_HTTP_PROJKEY_DISABLED    PROJKEY_STATUS_DISABLED

/*
 * Flags of a node's status, above the status itself: an active key that
 * never expires is exactly NGX_HTTP_PROJKEY_ACTIVE, so that its check
 * stays one compare.  EXPIRES: the key stops working at the uint32 Unix
 * time stored after the name.  PREVIOUS: the node is the previous secret
 * of a rolled key (it always expires).
 */
#define NGX_HTTP_PROJKEY_STATUS_MASK 0x0f
#define NGX_HTTP_PROJKEY_EXPIRES     0x10
#define NGX_HTTP_PROJKEY_PREVIOUS    0x20

/* an unlinked node is freed only after readers are surely done with it */
#define NGX_HTTP_PROJKEY_GRACE       2

#define NGX_HTTP_PROJKEY_PROJECT_MAX 255

/* at most this long between the retries of a resync that did not fit */
#define NGX_HTTP_PROJKEY_RETRY       (30 * 1000)

/* at most this long between two tries to reach a PostgreSQL server */
#define NGX_HTTP_PROJKEY_RECONNECT   (5 * 1000)

/* by default, last use times reach the database at most this late */
#define NGX_HTTP_PROJKEY_FLUSH       (30 * 1000)

/* the values of ngx_http_projkey_status_e, NONE included */
#define NGX_HTTP_PROJKEY_NSTATUS     8

/* the codes the admin API answers, and one for any other */
#define NGX_HTTP_PROJKEY_NADMIN      13


typedef struct ngx_http_projkey_node_s  ngx_http_projkey_node_t;
typedef struct ngx_http_projkey_beat_s  ngx_http_projkey_beat_t;
typedef struct ngx_http_projkey_follow_s  ngx_http_projkey_follow_t;

/*
 * A key in the zone.  Readers walk the chains without a lock; the one
 * writer (holding shpool->mutex) publishes a fully built node with a single
 * pointer store and never frees a node that a reader may still hold before
 * NGX_HTTP_PROJKEY_GRACE seconds have passed.  data holds the id
 * (PROJKEY_ID_LEN bytes), the project, the name, then, with the
 * NGX_HTTP_PROJKEY_EXPIRES flag only, the expiry (4 bytes, unaligned),
 * which a node never changes: another expiry is another node.
 */
struct ngx_http_projkey_node_s {
    ngx_http_projkey_node_t   *next;
    u_char                     hash[NGX_HTTP_PROJKEY_HASH_LEN];
    uint32_t                   last_used;
    u_char                     status;
    u_char                     project_len;
    uint16_t                   name_len;
    u_char                     data[1];
};

/* a row's project and name fit the lengths a node stores them with */
#define ngx_http_projkey_row_fits(row)                                        \
    ((row)->project_len <= NGX_HTTP_PROJKEY_PROJECT_MAX                       \
     && (row)->name_len <= 0xffff)

#define ngx_http_projkey_node_size(project_len, name_len)                     \
    (offsetof(ngx_http_projkey_node_t, data)                                  \
     + PROJKEY_ID_LEN + (project_len) + (name_len))


/*
 * One worker's counters, in shared memory so that they add up across the
 * workers and outlive them.  Each worker has a slot of whole cache lines:
 * a request writes no line another worker writes.
 */
typedef struct {
    ngx_atomic_t               requests[NGX_HTTP_PROJKEY_NSTATUS];
    ngx_atomic_t               admin[NGX_HTTP_PROJKEY_NADMIN];
} ngx_http_projkey_counters_t;
/* the nodes a row needs, made before a commit and published after it */
typedef struct {
    ngx_http_projkey_node_t   *node[2];        /* NULL: status only */
    u_char                     hash[2][NGX_HTTP_PROJKEY_HASH_LEN];
    u_char                     status[2];
    ngx_uint_t                 n;

    /* secrets the change takes out of use: a retired one, a deleted key's */
    u_char                     remove[2][NGX_HTTP_PROJKEY_HASH_LEN];
    ngx_uint_t                 nremove;

    /* the zone when a node was found to need its status only */
    int64_t                    seq;
    uint32_t                   applies;
} ngx_http_projkey_prep_t;


typedef struct {
    ngx_http_projkey_node_t  **buckets;
    ngx_uint_t                 mask;
    ngx_uint_t                 nkeys;

    /* the change sequence of the database that the zone reflects */
    int64_t                    seq;
    u_char                     instance[33];

    /* worker 0's last read of the database worked (in instance's padding) */
    u_char                     store_up;

    /* a new worker 0 of the zone since a reload takes over its last uses */
    u_char                     generation;

    /* of nexpired, those disabled (in instance's padding too) */
    uint32_t                   nexpired_disabled;

    /* keys of the database that did not fit at the last full resync */
    uint32_t                   missing;

    /*
     * Counts the applies that move seq: a read of the changes made after
     * seq is applied only if none came between the read and its apply.
     */
    uint32_t                   applies;

    /* unlinked nodes, linked through their hash, freed after the grace */
    ngx_http_projkey_node_t   *graveyard;

    /* last_used times up to this one are written to the database */
    time_t                     flushed;

    /* of nkeys, those disabled: counted where a status changes */
    ngx_uint_t                 ndisabled;

    /* when worker 0's last read of the database worked */
    time_t                     store_contact;

    /* the workers' counters: nslots cache line aligned slots */
    u_char                    *slots;
    uint32_t                   nslots;

    /* keys past their expiry at worker 0's last walk (each flush) */
    uint32_t                   nexpired;

    /*
     * No more: at 128 bytes the context shares a slab page with nothing a
     * key needs (t/15-zone-full.t counts on a 32k zone's pages).
     */
} ngx_http_projkey_shctx_t;


typedef struct {
    ngx_http_projkey_shctx_t  *sh;
    ngx_slab_pool_t           *shpool;
    ngx_shm_zone_t            *shm_zone;
    ngx_cycle_t               *cycle;

    ngx_str_t                  name;
    ngx_str_t                  db;             /* as logs show it */
    u_char                    *dsn;            /* what is opened */
    ngx_flag_t                 pg;             /* a PostgreSQL URI */
    ngx_msec_t                 sync;
    ngx_msec_t                 flush;
    time_t                     max_stale;      /* seconds; 0: off */
    ngx_flag_t                 created;

    /* this nginx instance in GET nodes (node=), and worker 0's heartbeat */
    ngx_str_t                  node;
    ngx_http_projkey_beat_t   *beat;

    /* where the zone was declared, for errors found when it is loaded */
    ngx_str_t                  file;
    ngx_uint_t                 line;

    /*
     * This process's own connection, and the file it has open: used by one
     * thread at a time (store_mutex), never under the zone's mutex.
     */
    projkey_store_t           *store;
    projkey_json_t            *json;          /* KEY objects, as store */
    ino_t                      ino;
    dev_t                      dev;
    char                       error[256];

    /*
     * Worker 0's checkpoint connection, kept open: one opened for each
     * checkpoint left its freed memory in another thread's malloc arena
     * each time, and the worker's memory crept up.
     */
    projkey_store_t           *ckpt;
    ino_t                      ckpt_ino;
    dev_t                      ckpt_dev;

    ngx_event_t                sync_event;
    ngx_event_t                flush_event;
    ngx_flag_t                 flushing;
    u_char                     generation;
#if (NGX_THREADS)
    ngx_thread_task_t         *flush_task;
    ngx_event_t                flush_wait;
    ngx_thread_task_t         *sync_task;
    ngx_flag_t                 syncing;
    ngx_flag_t                 sync_again;

    /* PostgreSQL: worker 0's notifications */
    ngx_http_projkey_follow_t *follow;
#endif
    int64_t                    failed_seq;
    ngx_log_t                 *log;

    /* snapshot=, and what worker 0 last wrote to it */
    ngx_str_t                  snapshot;
    int64_t                    snapshot_seq;
    time_t                     snapshot_contact;
    u_char                     snapshot_instance[33];

    /* PostgreSQL: out of reach since the last connection broke */
    ngx_flag_t                 down;
    ngx_msec_t                 reconnect;
    ngx_msec_t                 reconnect_delay;

    /* worker 0's next retry of a resync that left keys out */
    ngx_msec_t                 retry;
    ngx_msec_t                 retry_delay;

#if (NGX_THREADS)
    ngx_thread_pool_t         *thread_pool;
    ngx_thread_mutex_t         store_mutex;
#endif

    /* this worker's slot in sh->slots */
    ngx_http_projkey_counters_t  *counters;
} ngx_http_projkey_zone_t;


/* the process's connection: a worker's threads take turns with it */
#if (NGX_THREADS)
#define ngx_http_projkey_store_lock(zone, log)                                \
    (void) ngx_thread_mutex_lock(&(zone)->store_mutex, log)
#define ngx_http_projkey_store_unlock(zone, log)                              \
    (void) ngx_thread_mutex_unlock(&(zone)->store_mutex, log)
#else
#define ngx_http_projkey_store_lock(zone, log)
#define ngx_http_projkey_store_unlock(zone, log)
#endif


/* the nodes of a start's load wait this many links for their cache lines */
#define NGX_HTTP_PROJKEY_AHEAD       32

/* a load of rows into the zone: at start, and by a sync */
typedef struct {
    ngx_http_projkey_zone_t   *zone;
    ngx_uint_t                 loaded;
    ngx_uint_t                 failed;
    int64_t                    applied;

    /* a start's load: nodes filled, not yet linked */
    ngx_uint_t                 queued;
    ngx_http_projkey_node_t   *ahead[NGX_HTTP_PROJKEY_AHEAD];
} ngx_http_projkey_load_t;


/* a read of the changes after a revision, copied to be applied later */
typedef struct {
    ngx_pool_t                *pool;
    ngx_array_t                rows;           /* of projkey_row_t */
    int64_t                    since;
    int64_t                    last;
    uint32_t                   applies;        /* the zone's, at the read */
    ngx_uint_t                 loaded;
    unsigned                   overflow:1;     /* too many rows to copy */
} ngx_http_projkey_changes_t;


/* a "projkey" or "projkey_admin" naming a zone, checked once all is read */
typedef struct {
    ngx_shm_zone_t            *shm_zone;
    ngx_str_t                  file;
    ngx_uint_t                 line;
} ngx_http_projkey_use_t;


typedef struct {
    ngx_array_t                zones;          /* of ngx_http_projkey_zone_t * */
    ngx_array_t                uses;           /* of ngx_http_projkey_use_t */
} ngx_http_projkey_main_conf_t;


typedef struct {
    ngx_shm_zone_t            *zone;           /* NULL: "projkey off" */
    ngx_flag_t                 optional;
    ngx_flag_t                 hide_key;
    ngx_flag_t                 identity_headers;
    ngx_uint_t                 log_level;

    ngx_shm_zone_t            *admin_zone;
    ngx_str_t                  admin_file;
    ngx_uint_t                 admin_line;
    ngx_http_complex_value_t  *admin_user;
    ngx_http_complex_value_t  *admin_project;
} ngx_http_projkey_loc_conf_t;


typedef enum {
    NGX_HTTP_PROJKEY_NONE = 0,
    NGX_HTTP_PROJKEY_ACCEPTED,
    NGX_HTTP_PROJKEY_MISSING,
    NGX_HTTP_PROJKEY_MALFORMED,
    NGX_HTTP_PROJKEY_UNKNOWN,
    NGX_HTTP_PROJKEY_KEY_DISABLED,
    NGX_HTTP_PROJKEY_KEY_EXPIRED,
    NGX_HTTP_PROJKEY_UNAVAILABLE
} ngx_http_projkey_status_e;


typedef struct {
    ngx_http_projkey_status_e  status;

    /* kept, not the key, so that an internal redirect can check it again */
    u_char                     hash[NGX_HTTP_PROJKEY_HASH_LEN];
    unsigned                   hashed:1;
    unsigned                   bad_checksum:1;

    /* the 401 body replaces nginx's own page for this request */
    unsigned                   reject:1;
    unsigned                   replace_body:2;

    /* in projkey_requests_total, once however many locations check it */
    unsigned                   counted:1;

    ngx_str_t                  id;
    ngx_str_t                  name;
    ngx_str_t                  project;

    /* an admin request's task, while its body is read */
    void                      *admin;
} ngx_http_projkey_ctx_t;


/* ngx_http_projkey_module.c */
ngx_http_projkey_ctx_t *ngx_http_projkey_get_ctx(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_projkey_add_header(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *value);

/* ngx_http_projkey_zone.c */
char *ngx_http_projkey_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_shm_zone_t *ngx_http_projkey_zone_get(ngx_conf_t *cf, ngx_str_t *name);
ngx_int_t ngx_http_projkey_zones_check(ngx_conf_t *cf);
ngx_int_t ngx_http_projkey_zones_init_process(ngx_cycle_t *cycle);
void ngx_http_projkey_zones_exit_process(ngx_cycle_t *cycle);

/* the caller holds the store's lock: ngx_http_projkey_store_lock() */
ngx_int_t ngx_http_projkey_zone_store(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
ngx_http_projkey_node_t *ngx_http_projkey_zone_lookup(
    ngx_http_projkey_zone_t *zone, u_char *hash);
time_t ngx_http_projkey_node_expires(ngx_http_projkey_node_t *node);

/* of a node no reader sees yet: no lock */
void ngx_http_projkey_node_fill(ngx_http_projkey_node_t *node,
    const projkey_row_t *row);

/* the caller holds shpool->mutex */
void ngx_http_projkey_zone_sweep_locked(ngx_http_projkey_zone_t *zone);
ngx_int_t ngx_http_projkey_zone_apply_changes_locked(
    ngx_http_projkey_zone_t *zone, ngx_http_projkey_changes_t *ch);
ngx_int_t ngx_http_projkey_zone_publish_at_locked(
    ngx_http_projkey_zone_t *zone, int64_t seq, ngx_http_projkey_prep_t *prep);
void ngx_http_projkey_zone_synced_locked(ngx_http_projkey_zone_t *zone,
    ngx_uint_t changed, ngx_log_t *log);
ngx_int_t ngx_http_projkey_zone_read_locked(ngx_http_projkey_zone_t *zone,
    int64_t *last, ngx_uint_t *loaded, ngx_log_t *log);
ngx_flag_t ngx_http_projkey_zone_withdraw_locked(
    ngx_http_projkey_zone_t *zone, int64_t seq, const u_char *hash);

/* ngx_http_projkey_changes.c: the caller holds the store's lock */
ngx_int_t ngx_http_projkey_zone_catch_up(ngx_http_projkey_zone_t *zone,
    int64_t seq, ngx_http_projkey_prep_t *prep, ngx_log_t *log);
void ngx_http_projkey_zone_follow(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);

ngx_int_t ngx_http_projkey_zone_task_store(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);

/* ngx_http_projkey_sync.c */
ngx_int_t ngx_http_projkey_sync_start(ngx_http_projkey_zone_t *zone,
    ngx_cycle_t *cycle);
void ngx_http_projkey_sync_stop(ngx_http_projkey_zone_t *zone,
    ngx_cycle_t *cycle);

#if (NGX_THREADS)
void ngx_http_projkey_zone_sync_now(ngx_http_projkey_zone_t *zone);

/* ngx_http_projkey_follow.c */
ngx_int_t ngx_http_projkey_follow_start(ngx_http_projkey_zone_t *zone,
    ngx_cycle_t *cycle);
void ngx_http_projkey_follow_stop(ngx_http_projkey_zone_t *zone);
#endif

/* a row into the zone at start (data: ngx_http_projkey_load_t) */
int ngx_http_projkey_zone_load_row(void *data, const projkey_row_t *row);
void ngx_http_projkey_zone_load_done_locked(ngx_http_projkey_load_t *load);

/* ngx_http_projkey_load.c */
projkey_store_rc_e ngx_http_projkey_zone_read(projkey_store_t *st,
    ngx_http_projkey_load_t *load, int64_t *seq, ngx_log_t *log);

/* ngx_http_projkey_snapshot.c */
void ngx_http_projkey_snapshot_take(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
ngx_int_t ngx_http_projkey_snapshot_load(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_load_t *load, ngx_log_t *log);

/* ngx_http_projkey_nodes.c */
ngx_int_t ngx_http_projkey_beat_start(ngx_http_projkey_zone_t *zone,
    ngx_cycle_t *cycle);
void ngx_http_projkey_beat_changed(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
void ngx_http_projkey_beat_stop(ngx_http_projkey_zone_t *zone);

/* ngx_http_projkey_identity.c */
char *ngx_http_projkey_identity_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_projkey_identity_headers(ngx_http_request_t *r,
    ngx_int_t rc);
ngx_http_projkey_node_t *ngx_http_projkey_node_alloc_ex_locked(
    ngx_http_projkey_zone_t *zone, size_t project_len, size_t name_len,
    ngx_flag_t expires);
ngx_int_t ngx_http_projkey_zone_prepare_locked(ngx_http_projkey_zone_t *zone,
    const projkey_row_t *row, ngx_http_projkey_prep_t *prep);
void ngx_http_projkey_zone_discard_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_prep_t *prep);

/* ngx_http_projkey_admin.c */
char *ngx_http_projkey_admin_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_projkey_admin_exit_process(ngx_cycle_t *cycle);

/* ngx_http_projkey_metrics.c */
char *ngx_http_projkey_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_projkey_metrics_init_zone(ngx_http_projkey_zone_t *zone,
    ngx_cycle_t *cycle);
void ngx_http_projkey_metrics_init_process(ngx_cycle_t *cycle);
void ngx_http_projkey_metrics_admin(ngx_http_request_t *r, ngx_uint_t status);

/*
 * Atomic: on a reload, an old and a new worker of the same number write
 * the same slot for a while, and a plain add would lose counts.
 */
#define ngx_http_projkey_metrics_count(zone, status)                          \
    (void) ngx_atomic_fetch_add(&(zone)->counters->requests[status], 1)


extern ngx_module_t  ngx_http_projkey_module;


#endif /* _NGX_HTTP_PROJKEY_H_INCLUDED_ */
