
/*
 * projkey: the changes of the database, read without the zone's mutex and
 * applied under it at their revision.  The zone's seq says which revision
 * it reflects; a read of what came after it is copied, and applied only if
 * nothing moved seq in between (sh->applies): a read that saw an older
 * state never overwrites a newer one.  An admin call's own change, whose
 * nodes it made before its commit, is published only on top of the
 * revision just before it.  The mutex is held for memory work alone.
 */


#include "ngx_http_projkey.h"


/* reads that lost the race to another apply, before a catch-up gives up */
#define NGX_HTTP_PROJKEY_CATCH_UP_TRIES  8

/* rows copied at most (about 13 MB); a larger read is applied as read */
#define NGX_HTTP_PROJKEY_CHANGES_MAX     65536


static ngx_int_t ngx_http_projkey_changes_read(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_changes_t *ch, ngx_log_t *log);
static ngx_int_t ngx_http_projkey_changes_apply(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_changes_t *ch, ngx_http_projkey_prep_t **prep,
    ngx_log_t *log);
static int ngx_http_projkey_changes_row(void *data, const projkey_row_t *row);
static const char *ngx_http_projkey_changes_str(ngx_pool_t *pool,
    const char *s, size_t len);
static const u_char *ngx_http_projkey_changes_hash(ngx_pool_t *pool,
    const u_char *hash);


/*
 * The zone at revision seq at least, with prep's nodes published if they
 * are the change of seq.  NGX_ERROR: the zone could not be brought there
 * (the caller takes its key out: fail closed); prep is used up either way.
 */

ngx_int_t
ngx_http_projkey_zone_catch_up(ngx_http_projkey_zone_t *zone, int64_t seq,
    ngx_http_projkey_prep_t *prep, ngx_log_t *log)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_http_projkey_changes_t  ch;

    for (i = 0; i < NGX_HTTP_PROJKEY_CATCH_UP_TRIES; i++) {

        ngx_shmtx_lock(&zone->shpool->mutex);
        rc = ngx_http_projkey_zone_publish_at_locked(zone, seq, prep);
        ngx_shmtx_unlock(&zone->shpool->mutex);

        if (rc == NGX_OK) {
            return NGX_OK;
        }

        /* a change of another process before seq is not in the zone yet */

        if (i == NGX_HTTP_PROJKEY_CATCH_UP_TRIES - 1) {
            /* the last try reads under the lock: it cannot lose the race */
            ngx_memzero(&ch, sizeof(ngx_http_projkey_changes_t));
            ch.overflow = 1;
            rc = NGX_AGAIN;

        } else {
            rc = ngx_http_projkey_changes_read(zone, &ch, log);
        }

        if (rc == NGX_ERROR) {
            break;
        }

        rc = ngx_http_projkey_changes_apply(zone, &ch, &prep, log);

        if (rc == NGX_DECLINED) {
            continue;
        }

        /*
         * A read that had seq is enough: a row of it that did not fit is
         * out of the zone, and read again by the next sync.
         */

        if (rc == NGX_OK && ch.last >= seq) {
            return NGX_OK;
        }

        break;
    }

    if (prep != NULL) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        ngx_http_projkey_zone_discard_locked(zone, prep);
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "projkey_zone \"%V\": revision %L of database \"%V\" "
                  "could not be applied", &zone->name, seq, &zone->db);

    return NGX_ERROR;
}


/*
 * Worker 0's sync, and the master's on reload: what others committed.  A
 * read that lost the race to another apply is made again at once, as it
 * may have more than what that apply brought.
 */

void
ngx_http_projkey_zone_follow(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, loaded;
    ngx_http_projkey_changes_t  ch;

    loaded = 0;

    for (i = 0; i < NGX_HTTP_PROJKEY_CATCH_UP_TRIES; i++) {

        rc = ngx_http_projkey_changes_read(zone, &ch, log);

        if (rc != NGX_ERROR) {
            rc = ngx_http_projkey_changes_apply(zone, &ch, NULL, log);
        }

        ngx_shmtx_lock(&zone->shpool->mutex);

        zone->sh->store_up = (rc != NGX_ERROR);

        if (rc != NGX_ERROR) {
            zone->sh->store_contact = ngx_time();
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        if (rc != NGX_DECLINED) {
            loaded = ch.loaded;
            break;
        }
    }

    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_projkey_zone_synced_locked(zone, loaded, log);
    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * A read applied, if nothing was applied since it began (NGX_DECLINED:
 * read again).  The caller's own nodes are given back first: the read has
 * the caller's change, and its row takes that room.  NGX_AGAIN from the
 * read (too many rows): they are read again and applied as they come.
 */

static ngx_int_t
ngx_http_projkey_changes_apply(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_changes_t *ch, ngx_http_projkey_prep_t **prep,
    ngx_log_t *log)
{
    ngx_int_t  rc, copied;

    copied = !ch->overflow;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (prep != NULL && *prep != NULL
        && (ch->overflow || zone->sh->applies == ch->applies))
    {
        ngx_http_projkey_zone_discard_locked(zone, *prep);
        *prep = NULL;
    }

    if (copied) {
        rc = ngx_http_projkey_zone_apply_changes_locked(zone, ch);

    } else {
        rc = ngx_http_projkey_zone_read_locked(zone, &ch->last, &ch->loaded,
                                               log);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (copied) {
        ngx_destroy_pool(ch->pool);
    }

    if (rc == NGX_OK) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "projkey sync: %ui changes, seq %L",
                       ch->loaded, ch->last);
    }

    return rc;
}


/*
 * NGX_OK: ch has the rows, in ch->pool; NGX_AGAIN: too many to copy (no
 * pool left); NGX_ERROR: logged.
 */

static ngx_int_t
ngx_http_projkey_changes_read(ngx_http_projkey_zone_t *zone,
    ngx_http_projkey_changes_t *ch, ngx_log_t *log)
{
    projkey_store_rc_e  rc;

    ngx_memzero(ch, sizeof(ngx_http_projkey_changes_t));

    ngx_shmtx_lock(&zone->shpool->mutex);
    ch->since = zone->sh->seq;
    ch->applies = zone->sh->applies;
    ngx_shmtx_unlock(&zone->shpool->mutex);

    ch->pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, log);
    if (ch->pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&ch->rows, ch->pool, 16, sizeof(projkey_row_t))
        != NGX_OK)
    {
        ngx_destroy_pool(ch->pool);
        return NGX_ERROR;
    }

    rc = projkey_store_changes(zone->store, ch->since,
                               ngx_http_projkey_changes_row, ch, &ch->last);

    if (ch->overflow) {
        ngx_destroy_pool(ch->pool);
        ch->pool = NULL;
        return NGX_AGAIN;
    }

    if (rc != PROJKEY_STORE_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "projkey_zone \"%V\": cannot read changes of "
                      "database \"%V\": %s", &zone->name, &zone->db,
                      projkey_store_errmsg(zone->store));
        ngx_destroy_pool(ch->pool);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the row's strings outlive the callback: copied into the read's pool */

static int
ngx_http_projkey_changes_row(void *data, const projkey_row_t *row)
{
    ngx_http_projkey_changes_t *ch = data;

    ngx_pool_t     *pool;
    projkey_row_t  *copy;

    pool = ch->pool;

    if (ch->rows.nelts == NGX_HTTP_PROJKEY_CHANGES_MAX) {
        ch->overflow = 1;
        return 1;
    }

    copy = ngx_array_push(&ch->rows);
    if (copy == NULL) {
        return 1;
    }

    *copy = *row;

    copy->id = ngx_http_projkey_changes_str(pool, row->id,
                                            ngx_strlen(row->id));
    copy->hash = ngx_http_projkey_changes_hash(pool, row->hash);
    copy->project = ngx_http_projkey_changes_str(pool, row->project,
                                                 row->project_len);
    copy->name = ngx_http_projkey_changes_str(pool, row->name,
                                              row->name_len);

    /* the zone keeps no preview or creator: not copied */
    copy->preview = NULL;
    copy->created_by = NULL;
    copy->prev_preview = NULL;

    copy->prev_hash = ngx_http_projkey_changes_hash(pool, row->prev_hash);
    copy->retired_hash = ngx_http_projkey_changes_hash(pool,
                                                       row->retired_hash);

    if ((row->id && copy->id == NULL)
        || (row->hash && copy->hash == NULL)
        || (row->project && copy->project == NULL)
        || (row->name && copy->name == NULL)
        || (row->prev_hash && copy->prev_hash == NULL)
        || (row->retired_hash && copy->retired_hash == NULL))
    {
        return 1;
    }

    return 0;
}


static const char *
ngx_http_projkey_changes_str(ngx_pool_t *pool, const char *s, size_t len)
{
    u_char  *p;

    if (s == NULL) {
        return NULL;
    }

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_cpymem(p, s, len) = '\0';

    return (const char *) p;
}


static const u_char *
ngx_http_projkey_changes_hash(ngx_pool_t *pool, const u_char *hash)
{
    u_char  *p;

    if (hash == NULL) {
        return NULL;
    }

    /* the whole hash, as a row has it, though the zone keeps a part */

    p = ngx_pnalloc(pool, PROJKEY_HASH_LEN);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, hash, PROJKEY_HASH_LEN);

    return p;
}
