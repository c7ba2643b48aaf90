
/*
 * projkey: the shared zone.  A hash table of keys in nginx shared memory,
 * keyed by the key's hash, loaded from the database by the master and kept
 * in step with it at its revision (ngx_http_projkey_changes.c), by worker
 * 0's sync (ngx_http_projkey_sync.c) and the admin calls.
 *
 * Readers (every request) take no lock: see ngx_http_projkey_node_t.
 * Writers hold shpool->mutex, which nginx force-unlocks when a worker dies,
 * for memory work only: no database call is made under it but by a full
 * resync, and a read of changes too big to copy.
 */


#include "ngx_http_projkey.h"

#include <grp.h>
#include <pwd.h>


/*
 * projkey_keys' counts follow every change of a node: a key is its current
 * secret's node (a previous secret's is not another key); the status is
 * the stored one, under the node's flags
 */
#define ngx_http_projkey_counted(s)                                           \
    (((s) & NGX_HTTP_PROJKEY_PREVIOUS) ? NGX_HTTP_PROJKEY_DEAD               \
                                       : ((s) & NGX_HTTP_PROJKEY_STATUS_MASK))

#define ngx_http_projkey_count(sh, from, to)                                  \
    ngx_http_projkey_count_keys(sh, ngx_http_projkey_counted(from),          \
                                ngx_http_projkey_counted(to))

#define ngx_http_projkey_count_keys(sh, from, to)                             \
    if ((from) != (to)) {                                                     \
        if ((from) == NGX_HTTP_PROJKEY_DEAD) {                                \
            (sh)->nkeys++;                                                    \
        }                                                                     \
        if ((to) == NGX_HTTP_PROJKEY_DEAD) {                                  \
            (sh)->nkeys--;                                                    \
        }                                                                     \
        if ((from) == NGX_HTTP_PROJKEY_DISABLED) {                            \
            (sh)->ndisabled--;                                                \
        }                                                                     \
        if ((to) == NGX_HTTP_PROJKEY_DISABLED) {                              \
            (sh)->ndisabled++;                                                \
        }                                                                     \
    }


typedef struct {
    ngx_http_projkey_zone_t   *zone;
    u_char                    *hashes;
    size_t                     n;
    size_t                     size;
    ngx_uint_t                 failed;
    ngx_uint_t                 toobig;
} ngx_http_projkey_resync_t;




static ngx_int_t ngx_http_projkey_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_projkey_zone_load(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
static ngx_int_t ngx_http_projkey_check_node(ngx_str_t *node);
static ngx_int_t ngx_http_projkey_zone_file(
    ngx_http_projkey_zone_t *zone, ngx_log_t *log, struct stat *st);
static ngx_int_t ngx_http_projkey_zone_server(
    ngx_http_projkey_zone_t *zone, ngx_log_t *log);
static void ngx_http_projkey_zone_backoff(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
static ngx_int_t ngx_http_projkey_check_files(ngx_conf_t *cf,
    ngx_http_projkey_main_conf_t *pmcf, ngx_http_projkey_zone_t *zone);
static ngx_int_t ngx_http_projkey_zone_load_snapshot(
    ngx_http_projkey_zone_t *zone, ngx_http_projkey_load_t *load,
    ngx_log_t *log);
static ngx_int_t ngx_http_projkey_check_db_uri(ngx_conf_t *cf,
    ngx_http_projkey_zone_t *zone, ngx_str_t *db);
static ngx_int_t ngx_http_projkey_check_db_path(ngx_conf_t *cf,
    ngx_str_t *db, ngx_flag_t *created);
static ngx_int_t ngx_http_projkey_row_text_ok(const projkey_row_t *row);
static ngx_int_t ngx_http_projkey_row_ok(ngx_http_projkey_zone_t *zone,
    const projkey_row_t *row);
static const u_char *ngx_http_projkey_row_secret(const projkey_row_t *row,
    ngx_uint_t i, int64_t *expires, ngx_uint_t *flags);
static ngx_int_t ngx_http_projkey_zone_load_fresh(
    ngx_http_projkey_load_t *load, const projkey_row_t *row);
static void ngx_http_projkey_zone_queue_locked(ngx_http_projkey_load_t *load,
    ngx_http_projkey_node_t *node);
static ngx_int_t ngx_http_projkey_check_owner(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
static ngx_int_t ngx_http_projkey_user_can_write(struct stat *st,
    ngx_core_conf_t *ccf, ngx_log_t *log);
static ngx_int_t ngx_http_projkey_zone_resync_locked(
    ngx_http_projkey_zone_t *zone, ngx_log_t *log);
static int ngx_http_projkey_resync_row(void *data, const projkey_row_t *row);
static int ngx_http_projkey_hash_cmp(const void *a, const void *b);
static void ngx_http_projkey_zone_at_locked(ngx_http_projkey_zone_t *zone,
    int64_t seq);
static void ngx_http_projkey_zone_retry_locked(ngx_http_projkey_zone_t *zone,
    ngx_uint_t changed, ngx_log_t *log);
static void ngx_http_projkey_zone_refresh(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
static int ngx_http_projkey_sync_row(void *data, const projkey_row_t *row);
static void ngx_http_projkey_node_link_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_node_t *node);
static void ngx_http_projkey_node_free_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_node_t *node);
static ngx_int_t ngx_http_projkey_zone_apply_locked(
    ngx_http_projkey_zone_t *zone, const projkey_row_t *row);
static void ngx_http_projkey_zone_remove_locked(ngx_http_projkey_zone_t *zone,
    const u_char *hash);
static void ngx_http_projkey_zone_publish_locked(
    ngx_http_projkey_zone_t *zone, ngx_http_projkey_prep_t *prep);
static ngx_http_projkey_node_t **ngx_http_projkey_zone_find_locked(
    ngx_http_projkey_zone_t *zone, const u_char *hash);
static void ngx_http_projkey_node_fill_secret(ngx_http_projkey_node_t *node,
    const projkey_row_t *row, const u_char *hash, int64_t expires,
    ngx_uint_t flags);
static ngx_flag_t ngx_http_projkey_node_same(ngx_http_projkey_node_t *node,
    const projkey_row_t *row, int64_t expires, ngx_uint_t flags);
static void ngx_http_projkey_node_unlink_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_node_t **np);


char *
ngx_http_projkey_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_projkey_main_conf_t *pmcf = conf;

    u_char                    *p, *dsn;
    ssize_t                    size;
    ngx_str_t                 *value, name, s, db, node, pool, snapshot;
    ngx_int_t                  sync, flush, max_stale;
    ngx_flag_t                 pg;
    ngx_uint_t                 i;
    ngx_shm_zone_t            *shm_zone;
    ngx_core_conf_t           *ccf;
    ngx_http_projkey_zone_t   *zone, **zonep;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\": expected NAME:SIZE",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - name.data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: at least %uzk",
                           &value[1], 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&db);
    ngx_str_null(&pool);
    ngx_str_null(&snapshot);
    node = cf->cycle->hostname;
    sync = 1000;
    flush = NGX_HTTP_PROJKEY_FLUSH;
    max_stale = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0 && value[i].len > 3) {
            db.data = value[i].data + 3;
            db.len = value[i].len - 3;
            continue;
        }

        if (ngx_strncmp(value[i].data, "sync=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            sync = ngx_parse_time(&s, 0);
            if (sync == NGX_ERROR || sync == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid sync interval \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            flush = ngx_parse_time(&s, 0);
            if (flush == NGX_ERROR || flush == 0 || flush > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid flush interval \"%V\": "
                                   "from 1ms to 60s", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_stale=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
                max_stale = 0;
                continue;
            }

            max_stale = ngx_parse_time(&s, 0);
            if (max_stale == NGX_ERROR || max_stale < 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_stale \"%V\": \"off\" or "
                                   "a time of 1s or more", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "snapshot=", 9) == 0
            && value[i].len > 9)
        {
            snapshot.data = value[i].data + 9;
            snapshot.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "node=", 5) == 0) {
            node.data = value[i].data + 5;
            node.len = value[i].len - 5;

            if (ngx_http_projkey_check_node(&node) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid node name \"%V\": 1 to %d "
                                   "printable ASCII characters, no space",
                                   &value[i], PROJKEY_NODE_NAME_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0
            && value[i].len > 12)
        {
            pool.data = value[i].data + 12;
            pool.len = value[i].len - 12;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_projkey_check_node(&node) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the host name \"%V\" cannot name this node: "
                           "give \"%V\" the \"node=\" parameter",
                           &node, &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (db.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have the \"db=\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* worker 0 is in touch once a sync: a shorter limit would flap */

    if (max_stale && max_stale < 2 * sync) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"max_stale=\" must be at least twice "
                           "\"sync=\" (%Mms)", (ngx_msec_t) sync);
        return NGX_CONF_ERROR;
    }

    /* the argument ends in the NUL of the configuration's tokens */
    pg = projkey_store_is_uri((char *) db.data);

    if (pg) {
#if !(NGX_THREADS)
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" with a PostgreSQL database needs nginx "
                           "built with thread pools", &cmd->name);
        return NGX_CONF_ERROR;
#endif

    } else if (ngx_conf_full_name(cf->cycle, &db, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_projkey_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    /* ngx_conf_full_name() leaves no room for the NUL that SQLite needs */

    dsn = ngx_pnalloc(cf->pool, db.len + 1);
    if (dsn == NULL) {
        return NGX_CONF_ERROR;
    }

    *ngx_cpymem(dsn, db.data, db.len) = '\0';

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_projkey_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->name = name;
    zone->dsn = dsn;
    zone->pg = pg;
    zone->snapshot_seq = -1;

#if (NGX_THREADS)
    /* made before the fork, and never held across it */
    if (ngx_thread_mutex_create(&zone->store_mutex, cf->log) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
#endif

    if (snapshot.len) {
        if (!pg) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"snapshot=\" is for a PostgreSQL "
                               "database: an SQLite file is its own");
            return NGX_CONF_ERROR;
        }

        if (ngx_conf_full_name(cf->cycle, &snapshot, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        p = ngx_pnalloc(cf->pool, snapshot.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        *ngx_cpymem(p, snapshot.data, snapshot.len) = '\0';
        snapshot.data = p;
        zone->snapshot = snapshot;
    }

    if (ngx_http_projkey_check_files(cf, pmcf, zone) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* what logs show: a URI without its password */

    if (pg) {
        db.data = ngx_pnalloc(cf->pool, db.len + 64);
        if (db.data == NULL) {
            return NGX_CONF_ERROR;
        }

        projkey_store_display((char *) dsn, (char *) db.data, db.len + 64);
        db.len = ngx_strlen(db.data);

        if (ngx_http_projkey_check_db_uri(cf, zone, &db) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

    } else {
        db.data = dsn;

        if (ngx_http_projkey_check_db_path(cf, &db, &zone->created)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    if (zone->created && geteuid() == 0
        && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT && ccf->user != 0)
    {
        /*
         * "user" came first, as it usually does: the new file is the
         * workers' at once, even if a later error stops this start
         */
        if (chown((char *) db.data, ccf->user, ccf->group) == -1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "chown(\"%V\") failed", &db);
            return NGX_CONF_ERROR;
        }
    }

    zone->shm_zone = shm_zone;
    zone->cycle = cf->cycle;
    zone->name = name;
    zone->db = db;
    zone->sync = (ngx_msec_t) sync;
    zone->flush = (ngx_msec_t) flush;
    zone->max_stale = (time_t) (max_stale / 1000);
    zone->node = node;
    zone->file = cf->conf_file->file.name;
    zone->line = cf->conf_file->line;
    zone->failed_seq = -1;

#if (NGX_THREADS)
    /* a pool of that name must be declared: nginx says so at -t */
    zone->thread_pool = ngx_thread_pool_add(cf, pool.len ? &pool : NULL);
    if (zone->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }
#else
    if (pool.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"thread_pool=\" needs nginx built with "
                           "thread pools");
        return NGX_CONF_ERROR;
    }
#endif

    shm_zone->init = ngx_http_projkey_init_zone;
    shm_zone->data = zone;

    zonep = ngx_array_push(&pmcf->zones);
    if (zonep == NULL) {
        return NGX_CONF_ERROR;
    }

    *zonep = zone;

    return NGX_CONF_OK;
}


/* a node name is shown and stored as it is: plain printable ASCII */

static ngx_int_t
ngx_http_projkey_check_node(ngx_str_t *node)
{
    size_t  i;

    if (node->len == 0 || node->len > PROJKEY_NODE_NAME_MAX) {
        return NGX_DECLINED;
    }

    for (i = 0; i < node->len; i++) {
        if (node->data[i] <= ' ' || node->data[i] >= 0x7f) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * A snapshot is one zone's: another zone's snapshot or SQLite file at the
 * same path would be written over, or loaded as this zone's keys.
 */

static ngx_int_t
ngx_http_projkey_check_files(ngx_conf_t *cf,
    ngx_http_projkey_main_conf_t *pmcf, ngx_http_projkey_zone_t *zone)
{
    ngx_uint_t                 i;
    ngx_http_projkey_zone_t  **zones, *z;

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        z = zones[i];

        if ((zone->snapshot.len
             && ((z->snapshot.len
                  && ngx_strcmp(z->snapshot.data, zone->snapshot.data) == 0)
                 || (!z->pg
                     && ngx_strcmp(z->dsn, zone->snapshot.data) == 0)))
            || (!zone->pg && z->snapshot.len
                && ngx_strcmp(z->snapshot.data, zone->dsn) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "projkey_zone \"%V\" and \"%V\" name the "
                               "same file as a snapshot and a database or "
                               "snapshot", &z->name, &zone->name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A PostgreSQL database is only ever read here, at every check: its schema
 * is made and migrated by "projkey init" and "projkey migrate", never by
 * nginx.  A server that cannot be reached stops the start, as a missing
 * schema does, with libpq's reason.
 */

static ngx_int_t
ngx_http_projkey_check_db_uri(ngx_conf_t *cf, ngx_http_projkey_zone_t *zone,
    ngx_str_t *db)
{
    projkey_store_t    *st;
    projkey_store_rc_e  rc;

    if (ngx_process == NGX_PROCESS_SIGNALLER) {
        return NGX_OK;
    }

    rc = projkey_store_open((char *) zone->dsn, PROJKEY_STORE_RDONLY, 1000,
                            &st);

    if (rc != PROJKEY_STORE_OK && projkey_store_unreachable(st)
        && zone->snapshot.len
        && access((char *) zone->snapshot.data, F_OK) == 0)
    {
        /* out of reach, not wrong: the start loads the snapshot */
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "database \"%V\" cannot be reached: %s; the "
                           "zone starts from snapshot \"%V\"", db,
                           projkey_store_errmsg(st), &zone->snapshot);
        projkey_store_close(st);
        return NGX_OK;
    }

    if (rc != PROJKEY_STORE_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "database \"%V\" cannot be used: %s", db,
                           st ? projkey_store_errmsg(st) : "out of memory");
        projkey_store_close(st);
        return NGX_ERROR;
    }

    projkey_store_close(st);

    return NGX_OK;
}


/*
 * Found at "nginx -t" with the file and line: a directory that does not
 * exist, or a file that is not a projkey database.  A start or "nginx -t"
 * creates a missing file with its schema; a reload refuses to.  An
 * existing one is only read, but on a real start, where an older schema
 * is migrated: "nginx -t", a reload or a binary upgrade may run a newer
 * build's check against a database that running workers use.
 */

static ngx_int_t
ngx_http_projkey_check_db_path(ngx_conf_t *cf, ngx_str_t *db,
    ngx_flag_t *created)
{
    int                 flags;
    u_char             *p, *dir;
    ngx_flag_t          start;
    ngx_file_info_t     fi;
    projkey_store_t    *st;
    projkey_store_rc_e  rc;

    if (ngx_process == NGX_PROCESS_SIGNALLER) {
        /* "nginx -s" only reads the configuration to find the pid file */
        return NGX_OK;
    }

    p = db->data + db->len;

    while (p > db->data && p[-1] != '/') {
        p--;
    }

    dir = ngx_pnalloc(cf->temp_pool, p - db->data + 2);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    if (p == db->data) {
        ngx_cpystrn(dir, (u_char *) ".", 2);

    } else {
        ngx_cpystrn(dir, db->data, p - db->data + 1);
    }

    if (ngx_file_info(dir, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "the directory \"%s\" of database \"%V\" "
                           "does not exist", dir, db);
        return NGX_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" of database \"%V\" is not a directory",
                           dir, db);
        return NGX_ERROR;
    }

    /* a real start, not a check, a reload or a binary upgrade's new master */

    start = !ngx_test_config && !ngx_inherited
            && ngx_is_init_cycle(cf->cycle->old_cycle);

    if (ngx_file_info(db->data, &fi) == NGX_FILE_ERROR) {

        if (!start && !ngx_test_config) {
            /* an empty database in its place would reject every key */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "database \"%V\" is missing: restore it; "
                               "only a start creates one", db);
            return NGX_ERROR;
        }

        *created = 1;
        flags = PROJKEY_STORE_CREATE;

    } else if (ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "database \"%V\" is a directory", db);
        return NGX_ERROR;

    } else if (start) {
        flags = PROJKEY_STORE_CREATE|PROJKEY_STORE_MIGRATE;

    } else {
        flags = PROJKEY_STORE_RDONLY|PROJKEY_STORE_ANY_VERSION;
    }

    rc = projkey_store_open((char *) db->data, flags, 1000, &st);

    if (rc != PROJKEY_STORE_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "database \"%V\" cannot be used: %s", db,
                           st ? projkey_store_errmsg(st) : "out of memory");
        projkey_store_close(st);
        return NGX_ERROR;
    }

    projkey_store_close(st);

    return NGX_OK;
}


ngx_shm_zone_t *
ngx_http_projkey_zone_get(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_shm_zone_t                *shm_zone;
    ngx_http_projkey_use_t        *use;
    ngx_http_projkey_main_conf_t  *pmcf;

    shm_zone = ngx_shared_memory_add(cf, name, 0, &ngx_http_projkey_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    /* the zone may be declared further on: checked in postconfiguration */

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_projkey_module);

    use = ngx_array_push(&pmcf->uses);
    if (use == NULL) {
        return NULL;
    }

    use->shm_zone = shm_zone;
    use->file = cf->conf_file->file.name;
    use->line = cf->conf_file->line;

    return shm_zone;
}


ngx_int_t
ngx_http_projkey_zones_check(ngx_conf_t *cf)
{
    ngx_uint_t                     i;
    ngx_http_projkey_use_t        *use;
    ngx_http_projkey_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_projkey_module);

    use = pmcf->uses.elts;

    for (i = 0; i < pmcf->uses.nelts; i++) {
        if (use[i].shm_zone->data == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown projkey zone \"%V\": no \"projkey_zone\" "
                          "declares it in %V:%ui",
                          &use[i].shm_zone->shm.name, &use[i].file,
                          use[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_projkey_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_projkey_zone_t  *ozone = data;

    size_t                     len;
    ngx_uint_t                 n;
    ngx_slab_pool_t           *shpool;
    ngx_http_projkey_zone_t   *zone;
    ngx_http_projkey_shctx_t  *sh;

    zone = shm_zone->data;
    zone->log = shm_zone->shm.log;

    if (ozone) {

        /*
         * a reload with the same name and size: the zone keeps its keys and
         * the new worker 0 applies what changed since
         */

        if (ngx_strcmp(zone->dsn, ozone->dsn) != 0) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "projkey_zone \"%V\" cannot change its database "
                          "from \"%V\" to \"%V\" on reload: give the zone "
                          "another name or size in %V:%ui",
                          &zone->name, &ozone->db, &zone->db,
                          &zone->file, zone->line);
            return NGX_ERROR;
        }

        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

        ngx_http_projkey_zone_refresh(zone, shm_zone->shm.log);

        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->shpool = shpool;
        zone->sh = shpool->data;

        return NGX_OK;
    }

    zone->shpool = shpool;

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_projkey_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_projkey_shctx_t));

    zone->sh = sh;
    shpool->data = sh;

    /* about one bucket per 128 bytes of zone: chains stay short when full */

    n = 1;
    while (n < shm_zone->shm.size / 128) {
        n <<= 1;
    }

    sh->buckets = ngx_slab_calloc(shpool, n * sizeof(void *));
    if (sh->buckets == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "projkey_zone \"%V\" is too small for its hash table "
                      "in %V:%ui", &zone->name, &zone->file, zone->line);
        return NGX_ERROR;
    }

    sh->mask = n - 1;

    if (ngx_http_projkey_metrics_init_zone(zone, zone->cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    len = sizeof(" in projkey zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in projkey zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is reported by the module with what did not fit */

    shpool->log_nomem = 0;

    if (ngx_http_projkey_check_owner(zone, shm_zone->shm.log) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_projkey_zone_load(zone, shm_zone->shm.log);
}


/* in the master, where blocking is fine; the connection is closed after */

static ngx_int_t
ngx_http_projkey_zone_load(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    int64_t                   seq, last;
    projkey_store_t          *st;
    projkey_store_rc_e        rc;
    ngx_http_projkey_load_t   load;

    ngx_memzero(&load, sizeof(ngx_http_projkey_load_t));
    load.zone = zone;

    /* only a start migrates, and only an SQLite file */

    rc = projkey_store_open((char *) zone->dsn,
                            (ngx_test_config && !zone->pg)
                            ? PROJKEY_STORE_RDONLY|PROJKEY_STORE_ANY_VERSION
                            : PROJKEY_STORE_RDONLY,
                            5000, &st);

    if (rc == PROJKEY_STORE_OK && projkey_store_outdated(st)) {
        /* the schema a real start migrates: its keys are checked then */
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "projkey_zone \"%V\": database \"%V\" has an older "
                      "schema, migrated when nginx starts",
                      &zone->name, &zone->db);
        projkey_store_close(st);
        return NGX_OK;
    }

    if (rc == PROJKEY_STORE_OK) {
        rc = ngx_http_projkey_zone_read(st, &load, &seq, log);

        ngx_http_projkey_zone_load_done_locked(&load);

        if (rc == PROJKEY_STORE_OK) {
            rc = projkey_store_state(st, &last, (char *) zone->sh->instance);
        }
    }

    if (rc != PROJKEY_STORE_OK && zone->snapshot.len
        && projkey_store_unreachable(st) && load.loaded == 0)
    {
        /* out of reach before a key was read: the snapshot instead */
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "projkey_zone \"%V\" cannot load database \"%V\": %s "
                      "in %V:%ui", &zone->name, &zone->db,
                      projkey_store_errmsg(st), &zone->file, zone->line);
        projkey_store_close(st);
        return ngx_http_projkey_zone_load_snapshot(zone, &load, log);
    }

    if (rc != PROJKEY_STORE_OK) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "projkey_zone \"%V\" cannot load database \"%V\": %s "
                      "in %V:%ui", &zone->name, &zone->db,
                      st ? projkey_store_errmsg(st) : "out of memory",
                      &zone->file, zone->line);
        projkey_store_close(st);
        return NGX_ERROR;
    }

    projkey_store_close(st);

    if (load.failed) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "projkey_zone \"%V\" is too small for the %ui keys of "
                      "database \"%V\": only %ui fit; make it larger "
                      "in %V:%ui", &zone->name, load.loaded + load.failed,
                      &zone->db, load.loaded, &zone->file, zone->line);
        return NGX_ERROR;
    }

    zone->sh->seq = seq;

    /* a use within this very second is newer than the load */
    zone->sh->flushed = ngx_time() - 1;

    zone->sh->store_up = 1;
    zone->sh->store_contact = ngx_time();

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "projkey_zone \"%V\": %ui keys loaded from \"%V\"",
                  &zone->name, load.loaded, &zone->db);

    return NGX_OK;
}


int
ngx_http_projkey_zone_load_row(void *data, const projkey_row_t *row)
{
    ngx_http_projkey_load_t *load = data;

    if (load->failed) {
        load->failed++;
        return 0;
    }

    switch (ngx_http_projkey_zone_load_fresh(load, row)) {

    case NGX_OK:
        load->loaded++;
        break;

    case NGX_ABORT:
        /* rejected, and said so */
        break;

    default:
        load->failed++;
    }

    return 0;
}


/*
 * A start loads an empty zone, millions of keys: a node is filled at once
 * and linked NGX_HTTP_PROJKEY_AHEAD nodes later, its bucket and that
 * bucket's first node prefetched meanwhile, so that the cache misses of the
 * keys overlap instead of following one another.  Nothing can be in the
 * zone already that a node would have to match.
 */

static ngx_int_t
ngx_http_projkey_zone_load_fresh(ngx_http_projkey_load_t *load,
    const projkey_row_t *row)
{
    int64_t                    expires;
    ngx_int_t                  rc;
    ngx_uint_t                 i, n, flags;
    const u_char              *hash;
    ngx_http_projkey_zone_t   *zone;
    ngx_http_projkey_node_t   *node[2];

    zone = load->zone;

    rc = ngx_http_projkey_row_ok(zone, row);
    if (rc != NGX_OK) {
        return rc;
    }

    n = (row->prev_hash != NULL) ? 2 : 1;

    for (i = 0; i < n; i++) {
        hash = ngx_http_projkey_row_secret(row, i, &expires, &flags);

        node[i] = ngx_http_projkey_node_alloc_ex_locked(zone,
                                                        row->project_len,
                                                        row->name_len,
                                                        expires > 0);
        if (node[i] == NULL) {
            if (i == 1) {
                ngx_slab_free_locked(zone->shpool, node[0]);
            }

            return NGX_DECLINED;
        }

        ngx_http_projkey_node_fill_secret(node[i], row, hash, expires, flags);
    }

    for (i = 0; i < n; i++) {
        ngx_http_projkey_zone_queue_locked(load, node[i]);
    }

    return NGX_OK;
}


#if (defined __GNUC__)
#define ngx_http_projkey_prefetch(p)  __builtin_prefetch(p)
#else
#define ngx_http_projkey_prefetch(p)
#endif


static void
ngx_http_projkey_zone_queue_locked(ngx_http_projkey_load_t *load,
    ngx_http_projkey_node_t *node)
{
    uint64_t                   h;
    ngx_uint_t                 slot;
    ngx_http_projkey_node_t   *half, *head;
    ngx_http_projkey_shctx_t  *sh;

    sh = load->zone->sh;
    slot = load->queued & (NGX_HTTP_PROJKEY_AHEAD - 1);

    if (load->queued >= NGX_HTTP_PROJKEY_AHEAD) {
        ngx_http_projkey_node_link_locked(load->zone, load->ahead[slot]);
    }

    load->ahead[slot] = node;

    ngx_memcpy(&h, node->hash, sizeof(uint64_t));
    ngx_http_projkey_prefetch(&sh->buckets[h & sh->mask]);

    /* halfway: the bucket is in the cache, the node it starts with next */

    if (load->queued >= NGX_HTTP_PROJKEY_AHEAD / 2) {
        half = load->ahead[(load->queued - NGX_HTTP_PROJKEY_AHEAD / 2)
                           & (NGX_HTTP_PROJKEY_AHEAD - 1)];

        ngx_memcpy(&h, half->hash, sizeof(uint64_t));
        head = sh->buckets[h & sh->mask];

        if (head != NULL) {
            ngx_http_projkey_prefetch(head->hash);
        }
    }

    load->queued++;
}


/* links the nodes still waiting, in the order they were read */

void
ngx_http_projkey_zone_load_done_locked(ngx_http_projkey_load_t *load)
{
    ngx_uint_t  i;

    i = (load->queued > NGX_HTTP_PROJKEY_AHEAD)
        ? load->queued - NGX_HTTP_PROJKEY_AHEAD : 0;

    for ( /* void */ ; i < load->queued; i++) {
        ngx_http_projkey_node_link_locked(load->zone,
                         load->ahead[i & (NGX_HTTP_PROJKEY_AHEAD - 1)]);
    }

    load->queued = 0;
}


/* the database out of reach at start: its snapshot, if there is one */

static ngx_int_t
ngx_http_projkey_zone_load_snapshot(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_load_t *load, ngx_log_t *log)
{
    ngx_int_t  rc;

    ngx_memzero(load, sizeof(ngx_http_projkey_load_t));
    load->zone = zone;

    rc = ngx_http_projkey_snapshot_load(zone, load, log);

    ngx_http_projkey_zone_load_done_locked(load);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (load->failed) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "projkey_zone \"%V\" is too small for the %ui keys of "
                      "snapshot \"%V\": only %ui fit; make it larger "
                      "in %V:%ui", &zone->name, load->loaded + load->failed,
                      &zone->snapshot, load->loaded, &zone->file, zone->line);
        return NGX_ERROR;
    }

    zone->sh->flushed = ngx_time() - 1;
    zone->sh->store_up = 0;

    return NGX_OK;
}


/*
 * The master runs as root and the workers as the "user" of nginx.conf:
 * SQLite's WAL makes the workers create files next to the database, so the
 * directory and the file must be theirs to write.  A file the master has
 * just created is given to them.
 */

static ngx_int_t
ngx_http_projkey_check_owner(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    u_char           *p, *dir;
    struct stat       st;
    ngx_core_conf_t  *ccf;

    /* ngx_cycle is still the old cycle here */

    ccf = (ngx_core_conf_t *) ngx_get_conf(zone->cycle->conf_ctx,
                                           ngx_core_module);

    /* PostgreSQL: no file of nginx's to own */

    if (zone->pg || geteuid() != 0 || ccf == NULL
        || ccf->user == (ngx_uid_t) 0
        || ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT)
    {
        return NGX_OK;
    }

    p = zone->db.data + zone->db.len;

    while (p > zone->db.data && p[-1] != '/') {
        p--;
    }

    dir = ngx_alloc(p - zone->db.data + 2, log);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(dir, zone->db.data, p - zone->db.data + 1);

    if (stat((char *) dir, &st) == -1
        || ngx_http_projkey_user_can_write(&st, ccf, log) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "projkey_zone \"%V\": the directory \"%s\" of database "
                      "\"%V\" must be writable by the worker user \"%s\" "
                      "(SQLite creates its WAL files there) in %V:%ui",
                      &zone->name, dir, &zone->db, ccf->username,
                      &zone->file, zone->line);
        ngx_free(dir);
        return NGX_ERROR;
    }

    ngx_free(dir);

    if (stat((char *) zone->db.data, &st) == -1) {
        return NGX_OK;
    }

    if (zone->created
        && chown((char *) zone->db.data, ccf->user, ccf->group) == 0)
    {
        /* a new database, made a moment ago by the configuration check */
        return NGX_OK;
    }

    if (ngx_http_projkey_user_can_write(&st, ccf, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "projkey_zone \"%V\": database \"%V\" must be "
                      "writable by the worker user \"%s\" in %V:%ui",
                      &zone->name, &zone->db, ccf->username,
                      &zone->file, zone->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_projkey_user_can_write(struct stat *st, ngx_core_conf_t *ccf,
    ngx_log_t *log)
{
    int         i, n, size;
    gid_t      *groups;
    ngx_int_t   rc;

    if (st->st_uid == ccf->user) {
        return (st->st_mode & S_IWUSR) ? NGX_OK : NGX_DECLINED;
    }

    /* as many groups as the user is in: getgrouplist() says how many */

    size = 64;

    for ( ;; ) {
        groups = ngx_alloc(size * sizeof(gid_t), log);
        if (groups == NULL) {
            return NGX_ERROR;
        }

        n = size;

        if (getgrouplist(ccf->username, ccf->group, groups, &n) != -1) {
            break;
        }

        ngx_free(groups);

        if (size >= 65536) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "getgrouplist(\"%s\") gives more than %d groups",
                          ccf->username, size);
            return NGX_ERROR;
        }

        size = (n > size) ? n : size * 2;
    }

    rc = (st->st_mode & S_IWOTH) ? NGX_OK : NGX_DECLINED;

    for (i = 0; i < n; i++) {
        if (st->st_gid == groups[i]) {
            rc = (st->st_mode & S_IWGRP) ? NGX_OK : NGX_DECLINED;
            break;
        }
    }

    ngx_free(groups);

    return rc;
}


ngx_int_t
ngx_http_projkey_zones_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_http_projkey_zone_t      **zones, *zone;
    ngx_http_projkey_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_projkey_module);
    if (pmcf == NULL) {
        return NGX_OK;
    }

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        zone = zones[i];
        zone->log = cycle->log;

#if !(NGX_THREADS)

        /*
         * each worker its own connection: none crosses fork(); opened now
         * (with threads, at the first use: in a thread, as every use of it)
         */

        (void) ngx_http_projkey_zone_store(zone, cycle->log);

#endif

        if (ngx_worker != 0 || ngx_process == NGX_PROCESS_HELPER) {
            continue;
        }

        if (ngx_http_projkey_sync_start(zone, cycle) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


void
ngx_http_projkey_zones_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_http_projkey_zone_t      **zones;
    ngx_http_projkey_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_projkey_module);
    if (pmcf == NULL) {
        return;
    }

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {

        ngx_http_projkey_sync_stop(zones[i], cycle);

        projkey_store_close(zones[i]->store);
        zones[i]->store = NULL;

        projkey_json_close(zones[i]->json);
        zones[i]->json = NULL;
    }
}


/*
 * A read of the changes after ch->since, applied if the zone is still where
 * it was when the read began (NGX_DECLINED: another process applied since,
 * and the read may be older than what it applied).
 */

ngx_int_t
ngx_http_projkey_zone_apply_changes_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_changes_t *ch)
{
    ngx_uint_t                i;
    projkey_row_t            *row;
    ngx_http_projkey_load_t   load;

    /* seq too: a check that costs nothing */

    if (zone->sh->applies != ch->applies || zone->sh->seq != ch->since) {
        return NGX_DECLINED;
    }

    if (ch->rows.nelts == 0 && ch->last == ch->since) {
        /* nothing new: no apply, which would make the others read again */
        return NGX_OK;
    }

    ngx_memzero(&load, sizeof(ngx_http_projkey_load_t));
    load.zone = zone;
    load.applied = ch->since;

    row = ch->rows.elts;

    for (i = 0; i < ch->rows.nelts; i++) {
        (void) ngx_http_projkey_sync_row(&load, &row[i]);
    }

    /* from the first change not applied on, all is read again */
    ngx_http_projkey_zone_at_locked(zone, load.failed ? load.applied
                                                      : ch->last);

    ch->loaded = load.loaded;

    return NGX_OK;
}


/*
 * An admin call's own change of revision seq, its nodes made before the
 * commit: published only on top of seq - 1, as any other order could put
 * a state older than the zone's in it.  NGX_AGAIN: changes before seq are
 * still to be read; NGX_OK: the zone is at seq or past it.
 */

ngx_int_t
ngx_http_projkey_zone_publish_at_locked(ngx_http_projkey_zone_t *zone,
    int64_t seq, ngx_http_projkey_prep_t *prep)
{
    ngx_uint_t  i;

    if (zone->sh->seq >= seq) {
        if (prep != NULL) {
            /* applied from a read, which had this change or a later one */
            ngx_http_projkey_zone_discard_locked(zone, prep);
        }

        return NGX_OK;
    }

    if (prep == NULL || zone->sh->seq != seq - 1) {
        return NGX_AGAIN;
    }

    /*
     * A node kept for a status change may have been replaced since by a
     * change of an earlier revision (another name, an expiry): the status
     * alone would then leave that state, so the changes are read instead.
     */

    for (i = 0; i < prep->n; i++) {
        if (prep->node[i] == NULL
            && (prep->applies != zone->sh->applies || prep->seq != seq - 1))
        {
            return NGX_AGAIN;
        }
    }

    ngx_http_projkey_zone_publish_locked(zone, prep);
    ngx_http_projkey_zone_at_locked(zone, seq);

    return NGX_OK;
}


/*
 * A read too big to copy (a bulk import, a long outage) is applied as it
 * is read, under the lock, as a full resync is: rare, and bounded memory.
 */

ngx_int_t
ngx_http_projkey_zone_read_locked(ngx_http_projkey_zone_t *zone,
    int64_t *last, ngx_uint_t *loaded, ngx_log_t *log)
{
    int64_t                   seq;
    projkey_store_rc_e        rc;
    ngx_http_projkey_load_t   load;

    ngx_memzero(&load, sizeof(ngx_http_projkey_load_t));
    load.zone = zone;
    load.applied = zone->sh->seq;

    rc = projkey_store_changes(zone->store, zone->sh->seq,
                               ngx_http_projkey_sync_row, &load, &seq);

    if (rc != PROJKEY_STORE_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "projkey_zone \"%V\": cannot read changes of "
                      "database \"%V\": %s", &zone->name, &zone->db,
                      projkey_store_errmsg(zone->store));

        /* what was applied before the error is read again from there */
        ngx_http_projkey_zone_at_locked(zone, load.applied);
        return NGX_ERROR;
    }

    ngx_http_projkey_zone_at_locked(zone, load.failed ? load.applied : seq);

    *last = seq;
    *loaded = load.loaded;

    return NGX_OK;
}


/*
 * Fail closed: a key whose change of revision seq could not be applied
 * leaves the zone until a read of the changes brings it back, unless one
 * did already; 1 if it was taken out.
 */

ngx_flag_t
ngx_http_projkey_zone_withdraw_locked(ngx_http_projkey_zone_t *zone,
    int64_t seq, const u_char *hash)
{
    if (zone->sh->seq >= seq
        || *ngx_http_projkey_zone_find_locked(zone, hash) == NULL)
    {
        return 0;
    }

    ngx_http_projkey_zone_remove_locked(zone, hash);

    /* a read begun before this must not bring the old state back */
    zone->sh->applies++;

    return 1;
}


static void
ngx_http_projkey_zone_at_locked(ngx_http_projkey_zone_t *zone, int64_t seq)
{
    zone->sh->seq = seq;
    zone->sh->applies++;
}


/* after a sync's apply: the grace's nodes, and keys a resync left out */

void
ngx_http_projkey_zone_synced_locked(ngx_http_projkey_zone_t *zone,
    ngx_uint_t changed, ngx_log_t *log)
{
    ngx_http_projkey_zone_sweep_locked(zone);

    if (zone->sh->store_up && zone->sh->missing) {
        ngx_http_projkey_zone_retry_locked(zone, changed, log);
    }
}


/*
 * Keys a full resync left out for want of room come back only with another
 * one, O(keys): it is tried soon after a change, which may have made room
 * once the grace has freed its nodes, else at growing intervals.
 */

static void
ngx_http_projkey_zone_retry_locked(ngx_http_projkey_zone_t *zone,
    ngx_uint_t changed, ngx_log_t *log)
{
    ngx_msec_t  now, at;

    now = ngx_current_msec;

    if (changed) {
        at = now + (NGX_HTTP_PROJKEY_GRACE + 1) * 1000 + zone->sync;

        /* a due retry waits for that room, once; a later one comes sooner */

        if ((ngx_msec_int_t) (now - zone->retry) >= 0
            || (ngx_msec_int_t) (at - zone->retry) < 0)
        {
            zone->retry = at;
        }

        zone->retry_delay = zone->sync;
        return;
    }

    if ((ngx_msec_int_t) (now - zone->retry) < 0) {
        return;
    }

    (void) ngx_http_projkey_zone_resync_locked(zone, log);

    zone->retry_delay = ngx_max(zone->retry_delay * 2, zone->sync);
    zone->retry_delay = ngx_min(zone->retry_delay, NGX_HTTP_PROJKEY_RETRY);
    zone->retry = now + zone->retry_delay;
}


/*
 * On reload the master brings the kept zone up to date before it starts
 * the new workers, so that they never serve an older state than the old
 * ones; the connection is closed before the fork.
 */

static void
ngx_http_projkey_zone_refresh(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    if (ngx_http_projkey_zone_store(zone, log) == NGX_OK) {
        ngx_http_projkey_zone_follow(zone, log);
    }

    projkey_store_close(zone->store);
    zone->store = NULL;
}


/*
 * A key that does not fit is rejected, said once, and read again at the
 * next sync; the walk goes on, so that a disable or a delete after it,
 * which needs no room, is never held back by a full zone.
 */

static int
ngx_http_projkey_sync_row(void *data, const projkey_row_t *row)
{
    ngx_http_projkey_load_t *load = data;

    ngx_int_t                 rc;
    ngx_http_projkey_zone_t  *zone;

    zone = load->zone;

    rc = ngx_http_projkey_zone_apply_locked(zone, row);

    if (rc == NGX_ABORT) {
        /* rejected for good, and said so: not to be read again */
        return 0;
    }

    if (rc != NGX_OK) {

        if (row->seq > zone->failed_seq) {
            zone->failed_seq = row->seq;
            ngx_log_error(NGX_LOG_CRIT, zone->log, 0,
                          "projkey_zone \"%V\" is full: key \"%s\" of "
                          "database \"%V\" is not loaded and is rejected; "
                          "make the zone larger", &zone->name, row->id,
                          &zone->db);
        }

        if (!load->failed) {
            load->failed = 1;
            load->applied = row->seq - 1;
        }

        return 0;
    }

    if (!load->failed) {
        load->applied = row->seq;
    }

    load->loaded++;

    return 0;
}


/*
 * The process's connection, (re)opened when the file at the path is not
 * the one it has open: a database replaced by a restore or another file is
 * followed, and if it is another database (its instance id differs) or an
 * older copy of it, the zone is made to match it in full.  A missing file
 * is an error, never a new empty database that would reject every key.
 */

ngx_int_t
ngx_http_projkey_zone_store(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    int64_t             seq, seen;
    u_char              instance[33], had[33];
    ngx_int_t           found, rv;
    struct stat         st;
    projkey_store_rc_e  rc;

    if (zone->pg) {
        found = ngx_http_projkey_zone_server(zone, log);
        ngx_memzero(&st, sizeof(struct stat));

    } else {
        found = ngx_http_projkey_zone_file(zone, log, &st);
    }

    if (found != NGX_DECLINED) {
        return found;
    }

    /* the zone's revision before the database's is read: others move it on */

    ngx_shmtx_lock(&zone->shpool->mutex);
    seen = zone->sh->seq;
    ngx_memcpy(had, zone->sh->instance, sizeof(had));
    ngx_shmtx_unlock(&zone->shpool->mutex);

    rc = projkey_store_open((char *) zone->dsn,
                            PROJKEY_STORE_NO_CHECKPOINT, 5000, &zone->store);

    if (rc == PROJKEY_STORE_OK) {
        rc = projkey_store_state(zone->store, &seq, (char *) instance);
    }

    if (rc != PROJKEY_STORE_OK) {
        ngx_snprintf((u_char *) zone->error, sizeof(zone->error) - 1,
                     "the database \"%V\" cannot be opened: %s%Z",
                     &zone->db, zone->store ? projkey_store_errmsg(zone->store)
                                            : "out of memory");
        ngx_http_projkey_zone_backoff(zone, log);
        projkey_store_close(zone->store);
        zone->store = NULL;
        return NGX_ERROR;
    }

    if (zone->pg && zone->down) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0, "projkey_zone \"%V\": "
                      "database \"%V\" is reachable again",
                      &zone->name, &zone->db);
    }

    zone->down = 0;
    zone->reconnect_delay = 0;
    zone->ino = st.st_ino;
    zone->dev = st.st_dev;

    if (ngx_strcmp(instance, had) == 0 && seq >= seen) {
        return NGX_OK;
    }

    /* keys the zone has from commits the server no longer has */

    if (zone->pg && ngx_strcmp(instance, had) == 0) {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "projkey_zone \"%V\": database "
                      "\"%V\" is at revision %L, behind the %L this node "
                      "applied: commits were lost (an asynchronous standby "
                      "promoted?); every key is read again from it",
                      &zone->name, &zone->db, seq, seen);
    }

    /* rare (another database at the path, a lost commit): under the lock */

    ngx_shmtx_lock(&zone->shpool->mutex);
    rv = ngx_http_projkey_zone_resync_locked(zone, log);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rv;
}


/*
 * SQLite: the connection stays while the file at the path is the one it
 * has open (NGX_OK); NGX_DECLINED: open one.
 */

static ngx_int_t
ngx_http_projkey_zone_file(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log, struct stat *st)
{
    if (stat((char *) zone->dsn, st) == -1) {
        ngx_snprintf((u_char *) zone->error, sizeof(zone->error) - 1,
                     "the database file \"%V\" is missing (%s): restore it"
                     "%Z", &zone->db, strerror(errno));

        if (zone->store) {
            ngx_log_error(NGX_LOG_ALERT, log, 0, "projkey_zone \"%V\": %s",
                          &zone->name, zone->error);
            projkey_store_close(zone->store);
            zone->store = NULL;
        }

        return NGX_ERROR;
    }

    if (zone->store != NULL && st->st_ino == zone->ino
        && st->st_dev == zone->dev)
    {
        return NGX_OK;
    }

    if (zone->store != NULL) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "projkey_zone \"%V\": database \"%V\" was replaced, "
                      "reopening it", &zone->name, &zone->db);
        projkey_store_close(zone->store);
        zone->store = NULL;
    }

    return NGX_DECLINED;
}


/*
 * PostgreSQL: the connection stays until it breaks; then another is tried,
 * at growing intervals while the server cannot be reached, so that a
 * connect timeout does not hold every writer of the zone each time.
 */

static ngx_int_t
ngx_http_projkey_zone_server(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log)
{
    if (zone->store != NULL && !projkey_store_broken(zone->store)) {
        return NGX_OK;
    }

    if (zone->store != NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "projkey_zone \"%V\": the connection to database "
                      "\"%V\" is lost (%s); keys are checked against the "
                      "zone as it is", &zone->name, &zone->db,
                      projkey_store_errmsg(zone->store));
        projkey_store_close(zone->store);
        zone->store = NULL;
        zone->down = 1;
        zone->reconnect = 0;
    }

    return NGX_DECLINED;
}


/*
 * Worker 0's own tasks (sync, flush) wait for the next try while the
 * server is out of reach; an admin call, made by someone, tries at once.
 */

ngx_int_t
ngx_http_projkey_zone_task_store(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log)
{
    if (zone->pg && zone->store == NULL && zone->reconnect_delay
        && (ngx_msec_int_t) (ngx_current_msec - zone->reconnect) < 0)
    {
        /* zone->error still says why */
        return NGX_ERROR;
    }

    return ngx_http_projkey_zone_store(zone, log);
}


/* a failed open: said, and for PostgreSQL not tried again for a while */

static void
ngx_http_projkey_zone_backoff(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    if (!zone->pg) {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "projkey_zone \"%V\": %s; keys "
                      "are checked against the zone as it is",
                      &zone->name, zone->error);
        return;
    }

    /* a server out of reach is said once, not at each try */

    if (!zone->down) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "projkey_zone \"%V\": %s; keys "
                      "are checked against the zone as it is",
                      &zone->name, zone->error);
    }

    zone->down = 1;

    zone->reconnect_delay = zone->reconnect_delay
                            ? ngx_min(zone->reconnect_delay * 2,
                                      NGX_HTTP_PROJKEY_RECONNECT)
                            : 100;
    zone->reconnect = ngx_current_msec + zone->reconnect_delay;
}


static int
ngx_http_projkey_hash_cmp(const void *a, const void *b)
{
    return ngx_memcmp(a, b, NGX_HTTP_PROJKEY_HASH_LEN);
}


static int
ngx_http_projkey_resync_row(void *data, const projkey_row_t *row)
{
    ngx_http_projkey_resync_t *rs = data;

    u_char  *more;

    /* room for the key's hash and its previous secret's */

    if (rs->n + 2 > rs->size) {
        rs->size = rs->size ? rs->size * 2 : 1024;

        more = realloc(rs->hashes, rs->size * NGX_HTTP_PROJKEY_HASH_LEN);
        if (more == NULL) {
            return 1;
        }

        rs->hashes = more;
    }

    ngx_memcpy(rs->hashes + rs->n * NGX_HTTP_PROJKEY_HASH_LEN, row->hash,
               NGX_HTTP_PROJKEY_HASH_LEN);
    rs->n++;

    if (row->prev_hash != NULL) {
        ngx_memcpy(rs->hashes + rs->n * NGX_HTTP_PROJKEY_HASH_LEN,
                   row->prev_hash, NGX_HTTP_PROJKEY_HASH_LEN);
        rs->n++;
    }

    switch (ngx_http_projkey_zone_apply_locked(rs->zone, row)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        rs->failed++;
        break;

    case NGX_ABORT:
        break;

    default:
        rs->toobig++;
    }

    return 0;
}


/* every key of the database in, every other key out; rare, O(n log n) */

static ngx_int_t
ngx_http_projkey_zone_resync_locked(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log)
{
    int64_t                    seq, last;
    ngx_uint_t                 i, removed, keys, disabled, status;
    projkey_store_rc_e         rc;
    ngx_http_projkey_node_t   *node, **np;
    ngx_http_projkey_shctx_t  *sh;
    ngx_http_projkey_resync_t  rs;

    sh = zone->sh;

    ngx_memzero(&rs, sizeof(ngx_http_projkey_resync_t));
    rs.zone = zone;

    rc = projkey_store_load(zone->store, ngx_http_projkey_resync_row, &rs,
                            &seq);

    /* seq is the load's own: a change committed since is read next time */

    if (rc == PROJKEY_STORE_OK) {
        rc = projkey_store_state(zone->store, &last, (char *) sh->instance);
    }

    if (rc != PROJKEY_STORE_OK) {
        free(rs.hashes);
        ngx_snprintf((u_char *) zone->error, sizeof(zone->error) - 1,
                     "the database \"%V\" cannot be read: %s%Z",
                     &zone->db, projkey_store_errmsg(zone->store));
        ngx_log_error(NGX_LOG_ALERT, log, 0, "projkey_zone \"%V\": %s",
                      &zone->name, zone->error);
        projkey_store_close(zone->store);
        zone->store = NULL;
        return NGX_ERROR;
    }

    if (rs.n) {
        qsort(rs.hashes, rs.n, NGX_HTTP_PROJKEY_HASH_LEN,
              ngx_http_projkey_hash_cmp);
    }

    removed = 0;
    keys = 0;
    disabled = 0;

    for (i = 0; i <= sh->mask; i++) {
        np = &sh->buckets[i];

        while (*np) {
            node = *np;

            if (rs.n
                && bsearch(node->hash, rs.hashes, rs.n,
                           NGX_HTTP_PROJKEY_HASH_LEN,
                           ngx_http_projkey_hash_cmp)
                   != NULL)
            {
                status = ngx_http_projkey_counted(node->status);
                keys += (status != NGX_HTTP_PROJKEY_DEAD);
                disabled += (status == NGX_HTTP_PROJKEY_DISABLED);
                np = &node->next;
                continue;
            }

            ngx_http_projkey_node_unlink_locked(zone, np);
            removed++;
        }
    }

    /* counted again while the walk is here: a killed writer's miscount ends */
    sh->nkeys = keys;
    sh->ndisabled = disabled;

    free(rs.hashes);

    ngx_http_projkey_zone_at_locked(zone, seq);

    if (rs.toobig) {
        ngx_log_error(NGX_LOG_CRIT, log, 0,
                      "projkey_zone \"%V\": %ui keys of database \"%V\" "
                      "have a project or name too long for the zone and "
                      "are rejected", &zone->name, rs.toobig, &zone->db);
    }

    if (rs.failed) {
        /* rejected until they fit: read again at the next sync */
        if (rs.failed != sh->missing) {
            ngx_log_error(NGX_LOG_CRIT, log, 0,
                          "projkey_zone \"%V\" is full: %ui of the %uz keys "
                          "of database \"%V\" are not loaded and are "
                          "rejected; make the zone larger",
                          &zone->name, rs.failed, rs.n, &zone->db);
        }

    } else if (sh->missing) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "projkey_zone \"%V\": every key of database \"%V\" "
                      "is loaded again: %uz keys, %ui removed",
                      &zone->name, &zone->db, rs.n, removed);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "projkey_zone \"%V\" now matches database \"%V\": "
                      "%uz keys, %ui removed", &zone->name, &zone->db, rs.n,
                      removed);
    }

    sh->missing = (uint32_t) rs.failed;

    return NGX_OK;
}


/*
 * No lock: see ngx_http_projkey_node_t.  A node that the writer has retired
 * is marked dead before its hash is reused, so the status is read after the
 * hash: a dead node means the chain changed under us, and the walk starts
 * again to find the node that replaced it, if any.
 */

ngx_http_projkey_node_t *
ngx_http_projkey_zone_lookup(ngx_http_projkey_zone_t *zone, u_char *hash)
{
    uint64_t                   h;
    ngx_int_t                  match;
    ngx_uint_t                 tries;
    ngx_http_projkey_node_t   *node;
    ngx_http_projkey_shctx_t  *sh;

    sh = zone->sh;

    ngx_memcpy(&h, hash, sizeof(uint64_t));

    for (tries = 0; tries < 4; tries++) {

        node = ((ngx_http_projkey_node_t * volatile *) sh->buckets)
                                                               [h & sh->mask];

        while (node) {
            match = (ngx_memcmp(node->hash, hash, NGX_HTTP_PROJKEY_HASH_LEN)
                     == 0);

            ngx_memory_barrier();

            if (((volatile ngx_http_projkey_node_t *) node)->status
                == NGX_HTTP_PROJKEY_DEAD)
            {
                break;
            }

            if (match) {
                return node;
            }

            node = ((volatile ngx_http_projkey_node_t *) node)->next;
        }

        if (node == NULL) {
            return NULL;
        }
    }

    /* the chain kept changing: fail closed */

    return NULL;
}


/* a node of a key that expires has 4 bytes more, for its expiry */

ngx_http_projkey_node_t *
ngx_http_projkey_node_alloc_ex_locked(ngx_http_projkey_zone_t *zone,
    size_t project_len, size_t name_len, ngx_flag_t expires)
{
    ngx_http_projkey_zone_sweep_locked(zone);

    return ngx_slab_alloc_locked(zone->shpool,
                                 ngx_http_projkey_node_size(project_len,
                                                            name_len)
                                 + (expires ? sizeof(uint32_t) : 0));
}


/* the node of a key's current secret; it needs the room of its expiry */

void
ngx_http_projkey_node_fill(ngx_http_projkey_node_t *node,
    const projkey_row_t *row)
{
    ngx_http_projkey_node_fill_secret(node, row, row->hash, row->expires_at,
                                      0);
}


static void
ngx_http_projkey_node_fill_secret(ngx_http_projkey_node_t *node,
    const projkey_row_t *row, const u_char *hash, int64_t expires,
    ngx_uint_t flags)
{
    u_char    *p;
    uint32_t   e;

    if (expires > 0) {
        flags |= NGX_HTTP_PROJKEY_EXPIRES;
    }

    node->next = NULL;
    ngx_memcpy(node->hash, hash, NGX_HTTP_PROJKEY_HASH_LEN);
    node->last_used = (uint32_t) row->last_used_at;
    node->status = (u_char) (row->status | flags);
    node->project_len = (u_char) row->project_len;
    node->name_len = (uint16_t) row->name_len;

    p = ngx_cpymem(node->data, row->id, PROJKEY_ID_LEN);
    p = ngx_cpymem(p, row->project, row->project_len);
    p = ngx_cpymem(p, row->name, row->name_len);

    if (expires > 0) {
        /* Unix time in 32 bits lasts until 2106 */
        e = (expires > 0xffffffff) ? 0xffffffff : (uint32_t) expires;
        ngx_memcpy(p, &e, sizeof(uint32_t));
    }
}


/*
 * What the admin API and the CLI refuse may still come from a change by
 * hand; the zone's strings end up in headers ($projkey_key_name,
 * projkey_identity_headers), where a CR LF would start another one.
 */

static ngx_int_t
ngx_http_projkey_row_text_ok(const projkey_row_t *row)
{
    size_t  chars;

    if (projkey_text_check(row->id, PROJKEY_ID_LEN, &chars)
            != PROJKEY_TEXT_OK
        || projkey_text_check(row->project, row->project_len, &chars)
            != PROJKEY_TEXT_OK
        || projkey_text_check(row->name, row->name_len, &chars)
            != PROJKEY_TEXT_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* when a node with NGX_HTTP_PROJKEY_EXPIRES stops working; 0 without */

time_t
ngx_http_projkey_node_expires(ngx_http_projkey_node_t *node)
{
    uint32_t  e;

    if (!(node->status & NGX_HTTP_PROJKEY_EXPIRES)) {
        return 0;
    }

    ngx_memcpy(&e, node->data + PROJKEY_ID_LEN + node->project_len
                   + node->name_len, sizeof(uint32_t));

    return (time_t) e;
}


/* the same key in the same form: only its status may differ */

static ngx_flag_t
ngx_http_projkey_node_same(ngx_http_projkey_node_t *node,
    const projkey_row_t *row, int64_t expires, ngx_uint_t flags)
{
    u_char  *p;

    if (expires > 0) {
        flags |= NGX_HTTP_PROJKEY_EXPIRES;
    }

    if ((node->status & ~NGX_HTTP_PROJKEY_STATUS_MASK) != flags
        || node->name_len != row->name_len
        || node->project_len != row->project_len)
    {
        return 0;
    }

    p = node->data + PROJKEY_ID_LEN + node->project_len;

    if (ngx_memcmp(node->data, row->id, PROJKEY_ID_LEN) != 0
        || ngx_memcmp(node->data + PROJKEY_ID_LEN, row->project,
                      row->project_len) != 0
        || ngx_memcmp(p, row->name, row->name_len) != 0)
    {
        return 0;
    }

    return expires <= 0
           || ngx_http_projkey_node_expires(node)
              == (time_t) ((expires > 0xffffffff) ? 0xffffffff : expires);
}


static ngx_http_projkey_node_t **
ngx_http_projkey_zone_find_locked(ngx_http_projkey_zone_t *zone,
    const u_char *hash)
{
    uint64_t                   h;
    ngx_http_projkey_node_t  **np;

    ngx_memcpy(&h, hash, sizeof(uint64_t));

    for (np = &zone->sh->buckets[h & zone->sh->mask];
         *np;
         np = &(*np)->next)
    {
        if (ngx_memcmp((*np)->hash, hash, NGX_HTTP_PROJKEY_HASH_LEN) == 0) {
            return np;
        }
    }

    return np;
}


/*
 * Publishes a filled node: it replaces a node of the same hash, or heads its
 * chain.  Readers see the old node or the new one, never half of either.
 */

static void
ngx_http_projkey_node_link_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_node_t *node)
{
    ngx_http_projkey_node_t   *old, **np;

    np = ngx_http_projkey_zone_find_locked(zone, node->hash);
    old = *np;

    if (old) {
        node->next = old->next;
        if (node->last_used < old->last_used) {
            node->last_used = old->last_used;
        }

        ngx_http_projkey_count(zone->sh, old->status, node->status);

    } else {
        np = &zone->sh->buckets[*(uint64_t *) node->hash & zone->sh->mask];
        node->next = *np;

        ngx_http_projkey_count(zone->sh, NGX_HTTP_PROJKEY_DEAD, node->status);
    }

    ngx_memory_barrier();

    *np = node;

    if (old) {
        ngx_http_projkey_node_free_locked(zone, old);
    }
}


/* defers the free: a reader may be walking through the node right now */

static void
ngx_http_projkey_node_free_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_node_t *node)
{
    node->status = NGX_HTTP_PROJKEY_DEAD;

    ngx_memory_barrier();

    /* the hash no longer matters; it links the graveyard */

    *(ngx_http_projkey_node_t **) (void *) node->hash = zone->sh->graveyard;
    node->last_used = (uint32_t) ngx_time();

    zone->sh->graveyard = node;
}


static void
ngx_http_projkey_zone_remove_locked(ngx_http_projkey_zone_t *zone,
    const u_char *hash)
{
    ngx_http_projkey_node_t   *node, **np;

    np = ngx_http_projkey_zone_find_locked(zone, hash);
    node = *np;

    if (node == NULL) {
        return;
    }

    ngx_http_projkey_node_unlink_locked(zone, np);
}


/*
 * Unlinked first, then marked dead: a writer killed in between leaves an
 * unreachable node (a few bytes lost), never a dead node in a chain that
 * would hide the keys behind it from every reader.
 */

static void
ngx_http_projkey_node_unlink_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_node_t **np)
{
    ngx_http_projkey_node_t  *node;

    node = *np;
    *np = node->next;

    ngx_http_projkey_count(zone->sh, node->status, NGX_HTTP_PROJKEY_DEAD);

    ngx_memory_barrier();

    ngx_http_projkey_node_free_locked(zone, node);
}


void
ngx_http_projkey_zone_sweep_locked(ngx_http_projkey_zone_t *zone)
{
    uint32_t                   now;
    ngx_http_projkey_node_t   *node, *next, **np;

    now = (uint32_t) ngx_time();
    np = &zone->sh->graveyard;

    for (node = *np; node; node = next) {
        next = *(ngx_http_projkey_node_t **) (void *) node->hash;

        if (now - node->last_used < NGX_HTTP_PROJKEY_GRACE + 1) {
            np = (ngx_http_projkey_node_t **) (void *) node->hash;
            continue;
        }

        *np = next;
        ngx_slab_free_locked(zone->shpool, node);
    }
}


/* NGX_ERROR: too big for a node; NGX_ABORT: rejected, and said so */

static ngx_int_t
ngx_http_projkey_row_ok(ngx_http_projkey_zone_t *zone,
    const projkey_row_t *row)
{
    if (!ngx_http_projkey_row_fits(row)) {
        return NGX_ERROR;
    }

    if (ngx_http_projkey_row_text_ok(row) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, zone->log ? zone->log : ngx_cycle->log, 0,
                      "projkey_zone \"%V\": the key of change %L has a "
                      "control character or invalid UTF-8 in its id, name "
                      "or project (a change by hand?) and is rejected",
                      &zone->name, row->seq);
        return NGX_ABORT;
    }

    return NGX_OK;
}


/* a row's secret i: 0 the current one, 1 a rolled key's previous one */

static const u_char *
ngx_http_projkey_row_secret(const projkey_row_t *row, ngx_uint_t i,
    int64_t *expires, ngx_uint_t *flags)
{
    if (i == 0) {
        *expires = row->expires_at;
        *flags = 0;
        return row->hash;
    }

    *expires = row->prev_expires_at;
    *flags = NGX_HTTP_PROJKEY_PREVIOUS;

    /* the old secret of a key never outlives the key */
    if (row->expires_at > 0
        && (*expires <= 0 || row->expires_at < *expires))
    {
        *expires = row->expires_at;
    }

    /* a previous secret always ends; a past end is a second ago */
    if (*expires <= 0) {
        *expires = 1;
    }

    return row->prev_hash;
}


/*
 * The nodes of a row: its secret and, of a rolled key, its previous one.
 * A node unchanged but for its status is kept and takes the status at
 * publish; any other change (a name, an expiry) takes a new node, made
 * here, so that a caller that must not commit without room learns it
 * first; a status change needs no room.  NGX_DECLINED: no room,
 * NGX_ERROR: too big for a node; nothing taken either way.
 */

ngx_int_t
ngx_http_projkey_zone_prepare_locked(ngx_http_projkey_zone_t *zone,
    const projkey_row_t *row, ngx_http_projkey_prep_t *prep)
{
    int64_t                    expires;
    ngx_int_t                  rc;
    ngx_uint_t                 i, flags;
    const u_char              *hash;
    ngx_http_projkey_node_t   *node;

    ngx_memzero(prep, sizeof(ngx_http_projkey_prep_t));

    rc = ngx_http_projkey_row_ok(zone, row);
    if (rc != NGX_OK) {
        return rc;
    }

    prep->n = (row->prev_hash != NULL) ? 2 : 1;

    for (i = 0; i < prep->n; i++) {

        hash = ngx_http_projkey_row_secret(row, i, &expires, &flags);

        ngx_memcpy(prep->hash[i], hash, NGX_HTTP_PROJKEY_HASH_LEN);
        prep->status[i] = (u_char) (row->status | flags
                                    | (expires > 0
                                       ? NGX_HTTP_PROJKEY_EXPIRES : 0));

        node = *ngx_http_projkey_zone_find_locked(zone, hash);

        if (node != NULL
            && ngx_http_projkey_node_same(node, row, expires, flags))
        {
            continue;
        }

        node = ngx_http_projkey_node_alloc_ex_locked(zone, row->project_len,
                                                     row->name_len,
                                                     expires > 0);
        if (node == NULL) {
            ngx_http_projkey_zone_discard_locked(zone, prep);
            return NGX_DECLINED;
        }

        ngx_http_projkey_node_fill_secret(node, row, hash, expires, flags);
        prep->node[i] = node;
    }

    if (row->retired_hash != NULL) {
        ngx_memcpy(prep->remove[0], row->retired_hash,
                   NGX_HTTP_PROJKEY_HASH_LEN);
        prep->nremove = 1;
    }

    prep->seq = zone->sh->seq;
    prep->applies = zone->sh->applies;

    return NGX_OK;
}


static void
ngx_http_projkey_zone_publish_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_prep_t *prep)
{
    ngx_uint_t                 i;
    ngx_http_projkey_node_t  **np;

    for (i = 0; i < prep->n; i++) {

        if (prep->node[i] != NULL) {
            ngx_http_projkey_node_link_locked(zone, prep->node[i]);
            prep->node[i] = NULL;
            continue;
        }

        np = ngx_http_projkey_zone_find_locked(zone, prep->hash[i]);

        if (*np != NULL) {
            ngx_http_projkey_count(zone->sh, (*np)->status, prep->status[i]);
            (*np)->status = prep->status[i];
        }
    }

    for (i = 0; i < prep->nremove; i++) {
        ngx_http_projkey_zone_remove_locked(zone, prep->remove[i]);
    }

    prep->n = 0;
    prep->nremove = 0;
}


/* nodes made and never published: no reader has seen them */

void
ngx_http_projkey_zone_discard_locked(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_prep_t *prep)
{
    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        if (prep->node[i] != NULL) {
            ngx_slab_free_locked(zone->shpool, prep->node[i]);
            prep->node[i] = NULL;
        }
    }

    prep->n = 0;
    prep->nremove = 0;
}


/*
 * Brings the zone to a row's state.  An unchanged key is left alone; a new
 * name, expiry or secret takes a new node; a status is a single store.  A
 * row that does not fit takes the key out of the zone, both its secrets:
 * it is rejected until a later sync finds room for it.
 */

static ngx_int_t
ngx_http_projkey_zone_apply_locked(ngx_http_projkey_zone_t *zone,
    const projkey_row_t *row)
{
    ngx_int_t                 rc;
    ngx_http_projkey_prep_t   prep;

    if (row->status == PROJKEY_STATUS_DELETED) {
        ngx_http_projkey_zone_remove_locked(zone, row->hash);
        return NGX_OK;
    }

    rc = ngx_http_projkey_zone_prepare_locked(zone, row, &prep);

    if (rc != NGX_OK) {
        /* fail closed: the key's old state must not outlive its change */
        ngx_http_projkey_zone_remove_locked(zone, row->hash);

        if (row->prev_hash != NULL) {
            ngx_http_projkey_zone_remove_locked(zone, row->prev_hash);
        }

        return rc;
    }

    ngx_http_projkey_zone_publish_locked(zone, &prep);

    return NGX_OK;
}
