
/*
 * projkey: the heartbeat of this node.  Worker 0 records in the database
 * the revision its zone has applied and the zone's use, for GET nodes:
 * every NGX_HTTP_PROJKEY_BEAT, and soon after a sync applied new changes.
 * The write runs in the thread pool, on a connection of its own, never
 * under the zone's mutex; a failed heartbeat only costs a log line.
 */


#include "ngx_http_projkey.h"


/* a heartbeat at least this often, and soon after a change */
#define NGX_HTTP_PROJKEY_BEAT         5000

/* heartbeats for changes come at most this often */
#define NGX_HTTP_PROJKEY_BEAT_MIN     250

/* a heartbeat waits this long for another writer, in its thread */
#define NGX_HTTP_PROJKEY_BEAT_BUSY    1000

/* repeated failures are logged at most this often (seconds) */
#define NGX_HTTP_PROJKEY_BEAT_LOG     300


struct ngx_http_projkey_beat_s {
    ngx_http_projkey_zone_t   *zone;

    ngx_event_t                event;
    ngx_event_t                wait;
#if (NGX_THREADS)
    ngx_thread_task_t         *task;
#endif
    ngx_flag_t                 busy;
    ngx_msec_t                 posted;
    int64_t                    seq;

    /* the task's own: its connection, what it writes, how it went */
    projkey_store_t           *store;
    ino_t                      ino;
    dev_t                      dev;
    projkey_node_t             node;
    projkey_store_rc_e         rc;
    char                       error[256];

    /* the event loop's: failures since the last heartbeat recorded */
    ngx_uint_t                 failures;
    time_t                     logged;
};


static void ngx_http_projkey_beat_handler(ngx_event_t *ev);
static void ngx_http_projkey_beat_post(ngx_http_projkey_beat_t *beat,
    ngx_log_t *log);
static void ngx_http_projkey_beat_run(void *data, ngx_log_t *log);
static void ngx_http_projkey_beat_done(ngx_http_projkey_beat_t *beat,
    ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_projkey_beat_wait_handler(ngx_event_t *ev);
static void ngx_http_projkey_beat_done_handler(ngx_event_t *ev);
#endif


ngx_int_t
ngx_http_projkey_beat_start(ngx_http_projkey_zone_t *zone, ngx_cycle_t *cycle)
{
    ngx_http_projkey_beat_t  *beat;

    beat = ngx_pcalloc(cycle->pool, sizeof(ngx_http_projkey_beat_t));
    if (beat == NULL) {
        return NGX_ERROR;
    }

    beat->zone = zone;
    beat->seq = -1;
    zone->beat = beat;

    beat->event.handler = ngx_http_projkey_beat_handler;
    beat->event.data = beat;
    beat->event.log = cycle->log;
    beat->event.cancelable = 1;

    /* the first one as soon as the worker runs */
    ngx_add_timer(&beat->event, 1);

    return NGX_OK;
}


/* the sync timer's: a heartbeat soon after the zone applied changes */

void
ngx_http_projkey_beat_changed(ngx_http_projkey_zone_t *zone, ngx_log_t *log)
{
    ngx_http_projkey_beat_t  *beat;

    beat = zone->beat;

    if (beat == NULL || beat->busy || zone->sh->seq == beat->seq
        || ngx_current_msec - beat->posted < NGX_HTTP_PROJKEY_BEAT_MIN)
    {
        return;
    }

    ngx_http_projkey_beat_post(beat, log);
}


void
ngx_http_projkey_beat_stop(ngx_http_projkey_zone_t *zone)
{
    ngx_http_projkey_beat_t  *beat;

    beat = zone->beat;

    if (beat == NULL) {
        return;
    }

    /* a task still running (a fast shutdown) keeps its connection */

    if (!beat->busy) {
        projkey_store_close(beat->store);
        beat->store = NULL;
    }

    zone->beat = NULL;
}


static void
ngx_http_projkey_beat_handler(ngx_event_t *ev)
{
    ngx_http_projkey_beat_t  *beat = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (!beat->busy) {
        ngx_http_projkey_beat_post(beat, ev->log);
    }

    ngx_add_timer(ev, NGX_HTTP_PROJKEY_BEAT);
}


/*
 * What the heartbeat says is read here, without the lock: words that the
 * writer stores whole, and a slightly old value is what a heartbeat is.
 */

static void
ngx_http_projkey_beat_post(ngx_http_projkey_beat_t *beat, ngx_log_t *log)
{
#if (NGX_THREADS)
    ngx_thread_task_t         *task;
#endif
    ngx_http_projkey_zone_t   *zone;

    zone = beat->zone;

    beat->node.name = (char *) zone->node.data;
    beat->node.name_len = zone->node.len;
    beat->node.revision = zone->sh->seq;
    beat->node.last_seen = ngx_time();
    beat->node.keys = zone->sh->nkeys;
    beat->node.size_bytes = zone->shm_zone->shm.size;
    beat->node.used_bytes = zone->shm_zone->shm.size
                            - zone->shpool->pfree * ngx_pagesize;

    beat->posted = ngx_current_msec;

    /* a failed one is tried again at the next beat, not at each sync */
    beat->seq = beat->node.revision;

#if (NGX_THREADS)

    task = beat->task;

    if (task == NULL) {
        task = ngx_thread_task_alloc(ngx_cycle->pool, 0);
        if (task == NULL) {
            return;
        }

        task->ctx = beat;
        task->handler = ngx_http_projkey_beat_run;
        task->event.handler = ngx_http_projkey_beat_done_handler;
        task->event.data = beat;

        beat->task = task;
    }

    if (ngx_thread_task_post(zone->thread_pool, task) != NGX_OK) {
        return;
    }

    beat->busy = 1;

    /* an exiting worker waits for the heartbeat it started */
    beat->wait.handler = ngx_http_projkey_beat_wait_handler;
    beat->wait.data = beat;
    beat->wait.log = log;
    ngx_add_timer(&beat->wait, 60000);

#else

    ngx_http_projkey_beat_run(beat, log);
    ngx_http_projkey_beat_done(beat, log);

#endif
}


/* the thread: the database only, on the heartbeat's own connection */

static void
ngx_http_projkey_beat_run(void *data, ngx_log_t *log)
{
    ngx_http_projkey_beat_t *beat = data;

    struct stat               st;
    ngx_http_projkey_zone_t  *zone;

    zone = beat->zone;
    beat->error[0] = '\0';

    /* a file replaced at the path is followed; a missing one not made */

    ngx_memzero(&st, sizeof(struct stat));

    if (!zone->pg && stat((char *) zone->dsn, &st) == -1) {
        beat->rc = PROJKEY_STORE_ERROR;
        ngx_snprintf((u_char *) beat->error, sizeof(beat->error) - 1,
                     "the database file is missing (%s)%Z", strerror(errno));
        goto failed;
    }

    if (beat->store != NULL
        && (st.st_ino != beat->ino || st.st_dev != beat->dev))
    {
        projkey_store_close(beat->store);
        beat->store = NULL;
    }

    if (beat->store == NULL) {
        beat->rc = projkey_store_open((char *) zone->dsn,
                                      PROJKEY_STORE_NO_CHECKPOINT,
                                      NGX_HTTP_PROJKEY_BEAT_BUSY,
                                      &beat->store);
        if (beat->rc != PROJKEY_STORE_OK) {
            goto failed;
        }

        beat->ino = st.st_ino;
        beat->dev = st.st_dev;
    }

    beat->rc = projkey_store_heartbeat(beat->store, &beat->node);

    if (beat->rc == PROJKEY_STORE_OK) {
        return;
    }

failed:

    if (beat->error[0] == '\0') {
        ngx_cpystrn((u_char *) beat->error,
                    (u_char *) projkey_store_errmsg(beat->store),
                    sizeof(beat->error));
    }

    /* opened again next time: the file may be writable again by then */
    projkey_store_close(beat->store);
    beat->store = NULL;
}


/* the event loop: failures said once, then at most every few minutes */

static void
ngx_http_projkey_beat_done(ngx_http_projkey_beat_t *beat, ngx_log_t *log)
{
    time_t                    now;
    ngx_http_projkey_zone_t  *zone;

    zone = beat->zone;
    now = ngx_time();

    if (beat->rc == PROJKEY_STORE_OK) {
        if (beat->failures) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "projkey_zone \"%V\": the heartbeat of node "
                          "\"%V\" is recorded again in database \"%V\" "
                          "after %ui failures", &zone->name, &zone->node,
                          &zone->db, beat->failures);
            beat->failures = 0;
        }

        return;
    }

    beat->failures++;

    if (beat->failures == 1 || now - beat->logged >= NGX_HTTP_PROJKEY_BEAT_LOG)
    {
        beat->logged = now;
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "projkey_zone \"%V\": the heartbeat of node \"%V\" "
                      "cannot be recorded in database \"%V\": %s (%ui "
                      "times); keys are checked as before", &zone->name,
                      &zone->node, &zone->db, beat->error, beat->failures);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "projkey heartbeat failed: %s (%ui times)",
                   beat->error, beat->failures);
}


#if (NGX_THREADS)

static void
ngx_http_projkey_beat_wait_handler(ngx_event_t *ev)
{
    ngx_add_timer(ev, 60000);
}


static void
ngx_http_projkey_beat_done_handler(ngx_event_t *ev)
{
    ngx_http_projkey_beat_t *beat = ev->data;

    beat->busy = 0;

    if (beat->wait.timer_set) {
        ngx_del_timer(&beat->wait);
    }

    ngx_http_projkey_beat_done(beat, beat->event.log);
}

#endif
