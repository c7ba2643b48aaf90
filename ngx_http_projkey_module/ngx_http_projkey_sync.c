
/*
 * projkey: worker 0's periodic tasks on a zone.  The sync (every sync=, and
 * at once on a notification) applies what other processes committed; the
 * flush (every flush=) writes the keys' last uses in one batch, purges the
 * previous secrets past their end, and checkpoints the WAL.  Both run in
 * the thread pool (without threads, in the event loop), on the process's
 * connection; the zone's mutex is taken for memory work only, but by a
 * full resync or a read of changes too big to copy.
 */


#include "ngx_http_projkey.h"


static void ngx_http_projkey_sync_handler(ngx_event_t *ev);
static void ngx_http_projkey_sync_store(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log);
static void ngx_http_projkey_flush_handler(ngx_event_t *ev);
static void ngx_http_projkey_flush(void *data, ngx_log_t *log);
static int ngx_http_projkey_purge_row(void *data, const projkey_row_t *row);
static void ngx_http_projkey_checkpoint(ngx_http_projkey_zone_t *zone,
    ino_t ino, dev_t dev, ngx_log_t *log);
#if (NGX_THREADS)
static ngx_int_t ngx_http_projkey_sync_post(ngx_http_projkey_zone_t *zone,
    ngx_thread_task_t **taskp, void (*handler)(void *data, ngx_log_t *log),
    ngx_event_handler_pt done);
static void ngx_http_projkey_sync(void *data, ngx_log_t *log);
static void ngx_http_projkey_sync_done(ngx_event_t *ev);
static void ngx_http_projkey_flush_wait_handler(ngx_event_t *ev);
static void ngx_http_projkey_flush_done(ngx_event_t *ev);
#endif


ngx_int_t
ngx_http_projkey_sync_start(ngx_http_projkey_zone_t *zone, ngx_cycle_t *cycle)
{
    ngx_shmtx_lock(&zone->shpool->mutex);
    zone->generation = ++zone->sh->generation;
    ngx_shmtx_unlock(&zone->shpool->mutex);

    zone->sync_event.handler = ngx_http_projkey_sync_handler;
    zone->sync_event.data = zone;
    zone->sync_event.log = cycle->log;
    zone->sync_event.cancelable = 1;

    ngx_add_timer(&zone->sync_event, zone->sync);

    zone->flush_event.handler = ngx_http_projkey_flush_handler;
    zone->flush_event.data = zone;
    zone->flush_event.log = cycle->log;
    zone->flush_event.cancelable = 1;

    ngx_add_timer(&zone->flush_event, zone->flush);

    if (ngx_http_projkey_beat_start(zone, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

#if (NGX_THREADS)
    if (ngx_http_projkey_follow_start(zone, cycle) != NGX_OK) {
        return NGX_ERROR;
    }
#endif

    return NGX_OK;
}


void
ngx_http_projkey_sync_stop(ngx_http_projkey_zone_t *zone, ngx_cycle_t *cycle)
{
    /*
     * The uses since the last batch are not lost with the worker: it
     * writes them, even if it has not opened the database yet, unless a
     * reload started a new worker 0 on the same zone, which writes them
     * with its own batch (a walk of every key here would hold the reload
     * up).
     */

    if (ngx_worker == 0 && !zone->flushing
        && zone->sh->generation == zone->generation)
    {
        ngx_http_projkey_flush(zone, cycle->log);
    }

    projkey_store_close(zone->ckpt);
    zone->ckpt = NULL;

    ngx_http_projkey_beat_stop(zone);

#if (NGX_THREADS)
    ngx_http_projkey_follow_stop(zone);
#endif
}


#if (NGX_THREADS)

/* a periodic task of worker 0: made at its first use, then posted again */

static ngx_int_t
ngx_http_projkey_sync_post(ngx_http_projkey_zone_t *zone,
    ngx_thread_task_t **taskp, void (*handler)(void *data, ngx_log_t *log),
    ngx_event_handler_pt done)
{
    ngx_thread_task_t  *task;

    task = *taskp;

    if (task == NULL) {
        task = ngx_thread_task_alloc(ngx_cycle->pool, 0);
        if (task == NULL) {
            return NGX_ERROR;
        }

        task->ctx = zone;
        task->handler = handler;
        task->event.handler = done;
        task->event.data = zone;

        *taskp = task;
    }

    return ngx_thread_task_post(zone->thread_pool, task);
}

#endif


/*
 * Worker 0 applies what other processes changed in the database.  The
 * read is of the changes only, and in WAL mode it never waits for a writer.
 * It runs in the thread pool: SQLite never runs in the event loop, and its
 * memory stays out of the heap the requests' pools come from.
 */

static void
ngx_http_projkey_sync_handler(ngx_event_t *ev)
{
    ngx_http_projkey_zone_t  *zone = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

#if (NGX_THREADS)

    if (zone->syncing) {
        /* the last one has not finished: it re-arms the timer */
        return;
    }

    if (ngx_http_projkey_sync_post(zone, &zone->sync_task,
                                   ngx_http_projkey_sync,
                                   ngx_http_projkey_sync_done)
        == NGX_OK)
    {
        zone->syncing = 1;
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "projkey_zone \"%V\": changes are not read this time",
                  &zone->name);

#else

    /* in the event loop: no thread to wait for the database in */

    ngx_http_projkey_sync_store(zone, ev->log);

#endif

    /* what this sync or an admin call applied: in GET nodes soon */
    ngx_http_projkey_beat_changed(zone, ev->log);

    ngx_add_timer(ev, zone->sync);
}


/* the connection is shared with this worker's other tasks: its own lock */

static void
ngx_http_projkey_sync_store(ngx_http_projkey_zone_t *zone,
    ngx_log_t *log)
{
    ngx_http_projkey_store_lock(zone, log);

    if (ngx_http_projkey_zone_task_store(zone, log) == NGX_OK) {
        ngx_http_projkey_zone_follow(zone, log);

    } else {
        ngx_shmtx_lock(&zone->shpool->mutex);
        zone->sh->store_up = 0;
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    ngx_http_projkey_store_unlock(zone, log);
}


#if (NGX_THREADS)

static void
ngx_http_projkey_sync(void *data, ngx_log_t *log)
{
    ngx_http_projkey_zone_t  *zone = data;

    ngx_http_projkey_sync_store(zone, log);
}


static void
ngx_http_projkey_sync_done(ngx_event_t *ev)
{
    ngx_http_projkey_zone_t  *zone = ev->data;

    zone->syncing = 0;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a task's event has no log of its own */
    ngx_http_projkey_beat_changed(zone, zone->log);

    if (zone->sync_again) {
        /* a notification came during the sync: it may be past its read */
        zone->sync_again = 0;
        ngx_http_projkey_sync_handler(&zone->sync_event);
        return;
    }

    ngx_add_timer(&zone->sync_event, zone->sync);
}


/* a commit notified: read the changes now, not at the next sync */

void
ngx_http_projkey_zone_sync_now(ngx_http_projkey_zone_t *zone)
{
    if (zone->syncing) {
        zone->sync_again = 1;
        return;
    }

    if (zone->sync_event.timer_set) {
        ngx_del_timer(&zone->sync_event);
    }

    ngx_http_projkey_sync_handler(&zone->sync_event);
}

#endif


/*
 * Worker 0 writes the keys' last use times to the database in one batch:
 * requests only store a time in the zone.  The zone is scanned in a thread,
 * so a million keys cost the event loop nothing.
 */

static void
ngx_http_projkey_flush_handler(ngx_event_t *ev)
{
    ngx_http_projkey_zone_t  *zone = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

#if (NGX_THREADS)

    if (ngx_http_projkey_sync_post(zone, &zone->flush_task,
                                   ngx_http_projkey_flush,
                                   ngx_http_projkey_flush_done)
        == NGX_OK)
    {
        zone->flushing = 1;

        /* an exiting worker waits for the batch it started */
        zone->flush_wait.handler = ngx_http_projkey_flush_wait_handler;
        zone->flush_wait.data = zone;
        zone->flush_wait.log = ev->log;
        ngx_add_timer(&zone->flush_wait, 60000);

        return;
    }

#else

    ngx_http_projkey_flush(zone, ev->log);

#endif

    ngx_add_timer(ev, zone->flush);
}


#if (NGX_THREADS)

static void
ngx_http_projkey_flush_wait_handler(ngx_event_t *ev)
{
    ngx_add_timer(ev, 60000);
}


static void
ngx_http_projkey_flush_done(ngx_event_t *ev)
{
    ngx_http_projkey_zone_t  *zone = ev->data;

    zone->flushing = 0;

    if (zone->flush_wait.timer_set) {
        ngx_del_timer(&zone->flush_wait);
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(&zone->flush_event, zone->flush);
}

#endif


static void
ngx_http_projkey_flush(void *data, ngx_log_t *log)
{
    ngx_http_projkey_zone_t  *zone = data;

    ino_t                      ino;
    dev_t                      dev;
    time_t                     since, now;
    int64_t                    last;
    size_t                     n, size, purged;
    ngx_uint_t                 i, expired, expired_disabled;
    projkey_touch_t           *touch, *more;
    projkey_store_rc_e         rc;
    ngx_http_projkey_node_t   *node;
    ngx_http_projkey_shctx_t  *sh;

    touch = NULL;
    size = 0;
    n = 0;
    ino = 0;
    dev = 0;

    sh = zone->sh;
    now = ngx_time();
    last = 0;

    ngx_http_projkey_store_lock(zone, log);

    if (ngx_http_projkey_zone_task_store(zone, log) != NGX_OK) {
        goto done;
    }

    /* the file the zone's connection has open, for the checkpoint */
    ino = zone->ino;
    dev = zone->dev;

    /*
     * Previous secrets past their end leave the database and the zone, a
     * flush interval after it: until then a client is told
     * "api_key_expired", not "invalid_api_key", whenever the flush comes.
     */

    rc = projkey_store_purge(zone->store,
                             now - (time_t) (zone->flush / 1000),
                             ngx_http_projkey_purge_row,
                             &last, &purged);

    if (rc != PROJKEY_STORE_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "projkey_zone \"%V\": previous secrets past their end "
                      "are not removed from database \"%V\": %s; will "
                      "retry", &zone->name, &zone->db,
                      projkey_store_errmsg(zone->store));

    } else if (purged) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "projkey_zone \"%V\": %uz previous secrets past their "
                      "end removed", &zone->name, purged);
    }

    /* the purged secrets are rejected as expired meanwhile: nothing opens */

    if (last > 0) {
        (void) ngx_http_projkey_zone_catch_up(zone, last, NULL, log);
    }

    /* the walk is memory only; the batch is written after it, unlocked */

    ngx_shmtx_lock(&zone->shpool->mutex);

    since = sh->flushed;
    expired = 0;
    expired_disabled = 0;

    for (i = 0; i <= sh->mask; i++) {
        for (node = sh->buckets[i]; node; node = node->next) {

            /* projkey_keys' expired count: the walk is here anyway */

            if ((node->status
                 & (NGX_HTTP_PROJKEY_EXPIRES|NGX_HTTP_PROJKEY_PREVIOUS))
                   == NGX_HTTP_PROJKEY_EXPIRES
                && now >= ngx_http_projkey_node_expires(node))
            {
                expired++;
                expired_disabled += ((node->status
                                      & NGX_HTTP_PROJKEY_STATUS_MASK)
                                     == NGX_HTTP_PROJKEY_DISABLED);
            }

            if ((time_t) node->last_used <= since) {
                continue;
            }

            if (n == size) {
                size = size ? size * 2 : 256;

                more = realloc(touch, size * sizeof(projkey_touch_t));
                if (more == NULL) {
                    ngx_shmtx_unlock(&zone->shpool->mutex);
                    goto done;
                }

                touch = more;
            }

            ngx_memcpy(touch[n].id, node->data, PROJKEY_ID_LEN);
            touch[n].id[PROJKEY_ID_LEN] = '\0';
            touch[n].last_used_at = node->last_used;
            n++;
        }
    }

    sh->nexpired = (uint32_t) expired;
    sh->nexpired_disabled = (uint32_t) expired_disabled;

    if (n == 0) {
        /* a use within this very second may come after the scan */
        sh->flushed = now - 1;
        ngx_shmtx_unlock(&zone->shpool->mutex);
        goto done;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    rc = projkey_store_touch(zone->store, touch, n);

    if (rc == PROJKEY_STORE_OK) {
        /* a use within this very second is written again next time */
        sh->flushed = now - 1;

    } else {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "projkey_zone \"%V\": last use times of %uz keys are "
                      "not written to database \"%V\": %s; will retry",
                      &zone->name, n, &zone->db,
                      projkey_store_errmsg(zone->store));
    }

done:

    ngx_http_projkey_store_unlock(zone, log);

    free(touch);

    if (ino != 0) {
        ngx_http_projkey_checkpoint(zone, ino, dev, log);
    }

    ngx_http_projkey_snapshot_take(zone, log);
}


/* a previous secret the purge took out: applied as a change, by its seq */

static int
ngx_http_projkey_purge_row(void *data, const projkey_row_t *row)
{
    int64_t  *last = data;

    *last = ngx_max(*last, row->seq);

    return 0;
}


/*
 * The nginx connections never checkpoint in a commit: an admin call would
 * pay for the fsync of the database.  Worker 0 does it here, after each
 * batch, on a connection of its own, first passively; other processes (the
 * CLI) checkpoint as SQLite does by default.
 *
 * SQLite starts the WAL over only once all of it is in the database, and
 * a passive checkpoint never gets there while admin writes keep coming
 * (it copies what the WAL held when it began; frames are added behind it):
 * the WAL then grows without end, hundreds of MB in a soak.  So a second,
 * full pass holds the writers off with SQLite's own lock while it copies
 * the rest: it is short (the frames of one pass, nothing at all when
 * idle), and after it the next write starts the WAL over.
 */

static void
ngx_http_projkey_checkpoint(ngx_http_projkey_zone_t *zone, ino_t ino,
    dev_t dev, ngx_log_t *log)
{
    int                  complete, more;
    projkey_store_t     *st;
    projkey_store_rc_e   rc;

    st = zone->ckpt;

    /* a file replaced at the path is followed, as the zone's connection is */

    if (st != NULL && (zone->ckpt_ino != ino || zone->ckpt_dev != dev)) {
        projkey_store_close(st);
        st = NULL;
    }

    if (st == NULL) {
        rc = projkey_store_open((char *) zone->dsn,
                                PROJKEY_STORE_NO_CHECKPOINT, 1000, &st);
        if (rc != PROJKEY_STORE_OK) {
            goto failed;
        }

        zone->ckpt_ino = ino;
        zone->ckpt_dev = dev;
    }

    zone->ckpt = st;

    /*
     * The search index keeps a segment for each write until merged: a step
     * a flush, without the zone's lock (it changes no key), before the
     * checkpoint copies it; a failure (busy, read-only) waits for the next
     */

    if (projkey_store_search_merge_step(st, &more) != PROJKEY_STORE_OK) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "projkey search index merge of \"%V\" not done: %s",
                       &zone->db, projkey_store_errmsg(st));
    }

    rc = projkey_store_checkpoint(st, 0, &complete);
    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    rc = projkey_store_checkpoint(st, 1, &complete);

    if (rc != PROJKEY_STORE_OK) {
        goto failed;
    }

    if (!complete) {
        /* a reader or writer of another process: done next time */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "projkey checkpoint of \"%V\" not complete",
                       &zone->db);
    }

    return;

failed:

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "projkey_zone \"%V\": checkpoint of database \"%V\" "
                  "failed: %s", &zone->name, &zone->db,
                  st ? projkey_store_errmsg(st) : "out of memory");

    /* opened again next time */
    projkey_store_close(st);
    zone->ckpt = NULL;
}
