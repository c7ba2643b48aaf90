
/*
 * projkey: worker 0's notifications from PostgreSQL.  A connection of its
 * own is opened in the thread pool (libpq resolves and connects blocking)
 * and LISTENs; its socket is then read in the event loop, without
 * blocking, and a commit of a revision the zone does not have yet starts a
 * sync at once.  The sync= timer goes on as the poll that catches what a
 * lost connection missed.
 */


#include "ngx_http_projkey.h"


#if (NGX_THREADS)

/* the first retry of a lost connection, doubled up to RECONNECT */
#define NGX_HTTP_PROJKEY_FOLLOW_RETRY  100


struct ngx_http_projkey_follow_s {
    ngx_http_projkey_zone_t   *zone;

    /* the listening connection, and its socket in the event loop */
    projkey_store_t           *store;
    ngx_connection_t          *conn;

    ngx_thread_task_t         *task;
    ngx_flag_t                 opening;
    ngx_event_t                retry;
    ngx_msec_t                 delay;

    /* the task's: why it could not connect */
    char                       error[256];

    /* the event loop's: said once until it works again */
    ngx_flag_t                 lost;
};


static void ngx_http_projkey_follow_connect(ngx_http_projkey_follow_t *f);
static void ngx_http_projkey_follow_open(void *data, ngx_log_t *log);
static void ngx_http_projkey_follow_opened(ngx_event_t *ev);
static void ngx_http_projkey_follow_read(ngx_event_t *rev);
static void ngx_http_projkey_follow_write(ngx_event_t *wev);
static void ngx_http_projkey_follow_retry(ngx_event_t *ev);
static void ngx_http_projkey_follow_lost(ngx_http_projkey_follow_t *f,
    const char *why);
static void ngx_http_projkey_follow_close(ngx_http_projkey_follow_t *f);


ngx_int_t
ngx_http_projkey_follow_start(ngx_http_projkey_zone_t *zone,
    ngx_cycle_t *cycle)
{
    ngx_http_projkey_follow_t  *f;

    if (!zone->pg) {
        return NGX_OK;
    }

    f = ngx_pcalloc(cycle->pool, sizeof(ngx_http_projkey_follow_t));
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (f->task == NULL) {
        return NGX_ERROR;
    }

    f->zone = zone;
    zone->follow = f;

    f->task->ctx = f;
    f->task->handler = ngx_http_projkey_follow_open;
    f->task->event.handler = ngx_http_projkey_follow_opened;
    f->task->event.data = f;

    f->retry.handler = ngx_http_projkey_follow_retry;
    f->retry.data = f;
    f->retry.log = cycle->log;
    f->retry.cancelable = 1;

    ngx_http_projkey_follow_connect(f);

    return NGX_OK;
}


void
ngx_http_projkey_follow_stop(ngx_http_projkey_zone_t *zone)
{
    ngx_http_projkey_follow_t  *f;

    f = zone->follow;

    if (f == NULL) {
        return;
    }

    if (f->retry.timer_set) {
        ngx_del_timer(&f->retry);
    }

    /*
     * nginx ends the thread pools first (a core module): a task posted has
     * finished, and its store is ours to close
     */
    f->opening = 0;
    ngx_http_projkey_follow_close(f);
}


static void
ngx_http_projkey_follow_connect(ngx_http_projkey_follow_t *f)
{
    f->error[0] = '\0';

    if (ngx_thread_task_post(f->zone->thread_pool, f->task) != NGX_OK) {
        ngx_http_projkey_follow_lost(f, "the thread pool is full");
        return;
    }

    f->opening = 1;
}


/* the thread: connect, LISTEN, and make the connection non-blocking */

static void
ngx_http_projkey_follow_open(void *data, ngx_log_t *log)
{
    ngx_http_projkey_follow_t *f = data;

    projkey_store_rc_e  rc;

    rc = projkey_store_open((char *) f->zone->dsn, PROJKEY_STORE_RDONLY,
                            1000, &f->store);

    if (rc == PROJKEY_STORE_OK) {
        rc = projkey_store_listen(f->store);
    }

    if (rc != PROJKEY_STORE_OK) {
        ngx_cpystrn((u_char *) f->error,
                    (u_char *) (f->store ? projkey_store_errmsg(f->store)
                                         : "out of memory"),
                    sizeof(f->error));
        projkey_store_close(f->store);
        f->store = NULL;
    }
}


static void
ngx_http_projkey_follow_opened(ngx_event_t *ev)
{
    ngx_http_projkey_follow_t *f = ev->data;

    ngx_socket_t              fd;
    ngx_connection_t         *c;
    ngx_http_projkey_zone_t  *zone;

    zone = f->zone;
    f->opening = 0;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_http_projkey_follow_close(f);
        return;
    }

    if (f->store == NULL) {
        ngx_http_projkey_follow_lost(f, f->error);
        return;
    }

    fd = projkey_store_socket(f->store);

    c = ngx_get_connection(fd, zone->log);
    if (c == NULL) {
        projkey_store_close(f->store);
        f->store = NULL;
        ngx_http_projkey_follow_lost(f, "no free connection");
        return;
    }

    /* libpq owns the socket: nginx only waits on it */

    c->data = f;
    c->log = zone->log;
    c->read->log = zone->log;
    c->write->log = zone->log;
    c->read->handler = ngx_http_projkey_follow_read;
    c->write->handler = ngx_http_projkey_follow_write;
    f->conn = c;

    /* level-triggered: libpq may leave bytes in the socket after a read */

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_http_projkey_follow_close(f);
        ngx_http_projkey_follow_lost(f, "the socket cannot be watched");
        return;
    }

    if (f->lost) {
        ngx_log_error(NGX_LOG_NOTICE, zone->log, 0,
                      "projkey_zone \"%V\": the notifications of database "
                      "\"%V\" are received again", &zone->name, &zone->db);
        f->lost = 0;
    }

    f->delay = 0;

    /* what was committed before LISTEN took effect came without a word */
    ngx_http_projkey_zone_sync_now(zone);
}


static void
ngx_http_projkey_follow_read(ngx_event_t *rev)
{
    ngx_connection_t          *c = rev->data;
    ngx_http_projkey_follow_t *f = c->data;

    int64_t             seq;
    projkey_store_rc_e  rc;

    rc = projkey_store_notified(f->store, &seq);

    if (rc != PROJKEY_STORE_OK) {
        ngx_cpystrn((u_char *) f->error,
                    (u_char *) projkey_store_errmsg(f->store),
                    sizeof(f->error));
        ngx_http_projkey_follow_close(f);
        ngx_http_projkey_follow_lost(f, f->error);
        return;
    }

    /* an admin call of this node has already applied its own write */

    if (seq > f->zone->sh->seq) {
        ngx_http_projkey_zone_sync_now(f->zone);
    }
}


static void
ngx_http_projkey_follow_write(ngx_event_t *wev)
{
}


static void
ngx_http_projkey_follow_retry(ngx_event_t *ev)
{
    ngx_http_projkey_follow_t *f = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_projkey_follow_connect(f);
}


/* said once; tried again at growing intervals; the sync timer polls */

static void
ngx_http_projkey_follow_lost(ngx_http_projkey_follow_t *f, const char *why)
{
    ngx_http_projkey_zone_t  *zone;

    zone = f->zone;

    if (!f->lost) {
        ngx_log_error(NGX_LOG_WARN, zone->log, 0,
                      "projkey_zone \"%V\": no notifications from database "
                      "\"%V\": %s; changes are read every %M ms until they "
                      "come again", &zone->name, &zone->db, why, zone->sync);
        f->lost = 1;
    }

    f->delay = f->delay ? ngx_min(f->delay * 2, NGX_HTTP_PROJKEY_RECONNECT)
                        : NGX_HTTP_PROJKEY_FOLLOW_RETRY;

    ngx_add_timer(&f->retry, f->delay);
}


static void
ngx_http_projkey_follow_close(ngx_http_projkey_follow_t *f)
{
    ngx_connection_t  *c;

    c = f->conn;

    if (c != NULL) {

        /*
         * libpq closes the socket of a connection it finds lost, which
         * takes it out of epoll; else nginx stops waiting on it first
         */

        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT,
                                 projkey_store_socket(f->store) == -1
                                 ? NGX_CLOSE_EVENT : 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        /* the socket is closed by libpq, not by nginx */
        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        f->conn = NULL;
    }

    if (!f->opening) {
        projkey_store_close(f->store);
        f->store = NULL;
    }
}

#endif
