
/*
 * projkey: the master's load of a zone from its database, at start and in
 * nginx -t.  With threads, a thread of its own reads the rows (SQLite's
 * steps, or libpq's cursor) and copies them in batches while the caller
 * links them into the zone: at 10,000,000 keys the read and the links take
 * about as long each, and run on two cores.  The thread has ended before
 * the function returns, long before any fork; the connection is only ever
 * used by one thread at a time.
 */


#include "ngx_http_projkey.h"


#if (NGX_THREADS)

#define NGX_HTTP_PROJKEY_BATCH       1024
#define NGX_HTTP_PROJKEY_BATCH_DATA  (256 * 1024)
#define NGX_HTTP_PROJKEY_BATCHES     4


typedef struct {
    ngx_uint_t                 n;
    size_t                     used;
    projkey_row_t              row[NGX_HTTP_PROJKEY_BATCH];
    u_char                     data[NGX_HTTP_PROJKEY_BATCH_DATA];
} ngx_http_projkey_batch_t;


typedef struct {
    projkey_store_t           *store;
    ngx_log_t                 *log;

    ngx_thread_mutex_t         mutex;
    ngx_thread_cond_t          cond;

    /* batches [taken, filled) are ready; the reader fills "filled" */
    ngx_uint_t                 taken;
    ngx_uint_t                 filled;
    ngx_flag_t                 done;

    int64_t                    seq;
    projkey_store_rc_e         rc;

    ngx_http_projkey_batch_t  *batch[NGX_HTTP_PROJKEY_BATCHES];
} ngx_http_projkey_reader_t;


static void *ngx_http_projkey_reader(void *data);
static int ngx_http_projkey_reader_row(void *data, const projkey_row_t *row);
static ngx_http_projkey_batch_t *ngx_http_projkey_reader_pass(
    ngx_http_projkey_reader_t *rd, ngx_flag_t last);
static u_char *ngx_http_projkey_batch_copy(ngx_http_projkey_batch_t *b,
    const void *p, size_t len, size_t size);


projkey_store_rc_e
ngx_http_projkey_zone_read(projkey_store_t *st, ngx_http_projkey_load_t *load,
    int64_t *seq, ngx_log_t *log)
{
    int                         err;
    ngx_uint_t                  i, n;
    pthread_t                   tid;
    projkey_store_rc_e          rc;
    ngx_http_projkey_batch_t   *b;
    ngx_http_projkey_reader_t   rd;

    ngx_memzero(&rd, sizeof(ngx_http_projkey_reader_t));
    rd.store = st;
    rd.log = log;

    for (n = 0; n < NGX_HTTP_PROJKEY_BATCHES; n++) {
        rd.batch[n] = ngx_alloc(sizeof(ngx_http_projkey_batch_t), log);
        if (rd.batch[n] == NULL) {
            goto direct;
        }
    }

    if (ngx_thread_mutex_create(&rd.mutex, log) != NGX_OK) {
        goto direct;
    }

    if (ngx_thread_cond_create(&rd.cond, log) != NGX_OK) {
        (void) ngx_thread_mutex_destroy(&rd.mutex, log);
        goto direct;
    }

    err = pthread_create(&tid, NULL, ngx_http_projkey_reader, &rd);

    if (err) {
        ngx_log_error(NGX_LOG_WARN, log, err,
                      "pthread_create() failed: the keys are read and "
                      "linked in one thread");
        (void) ngx_thread_cond_destroy(&rd.cond, log);
        (void) ngx_thread_mutex_destroy(&rd.mutex, log);
        goto direct;
    }

    for ( ;; ) {
        (void) ngx_thread_mutex_lock(&rd.mutex, log);

        while (rd.taken == rd.filled && !rd.done) {
            (void) ngx_thread_cond_wait(&rd.cond, &rd.mutex, log);
        }

        if (rd.taken == rd.filled) {
            (void) ngx_thread_mutex_unlock(&rd.mutex, log);
            break;
        }

        b = rd.batch[rd.taken % NGX_HTTP_PROJKEY_BATCHES];

        (void) ngx_thread_mutex_unlock(&rd.mutex, log);

        for (i = 0; i < b->n; i++) {
            (void) ngx_http_projkey_zone_load_row(load, &b->row[i]);
        }

        (void) ngx_thread_mutex_lock(&rd.mutex, log);
        rd.taken++;
        (void) ngx_thread_cond_signal(&rd.cond, log);
        (void) ngx_thread_mutex_unlock(&rd.mutex, log);
    }

    (void) pthread_join(tid, NULL);

    (void) ngx_thread_cond_destroy(&rd.cond, log);
    (void) ngx_thread_mutex_destroy(&rd.mutex, log);

    *seq = rd.seq;
    rc = rd.rc;

    goto done;

direct:

    rc = projkey_store_load(st, ngx_http_projkey_zone_load_row, load, seq);

done:

    for (i = 0; i < n; i++) {
        ngx_free(rd.batch[i]);
    }

    return rc;
}


static void *
ngx_http_projkey_reader(void *data)
{
    ngx_http_projkey_reader_t *rd = data;

    /* the first batch is the reader's from the start */

    rd->batch[0]->n = 0;
    rd->batch[0]->used = 0;

    rd->rc = projkey_store_load(rd->store, ngx_http_projkey_reader_row, rd,
                                &rd->seq);

    (void) ngx_http_projkey_reader_pass(rd, 1);

    return NULL;
}


/* a row copied into the batch being filled: the store's is gone after */

static int
ngx_http_projkey_reader_row(void *data, const projkey_row_t *row)
{
    ngx_http_projkey_reader_t *rd = data;

    size_t                     len, need;
    ngx_flag_t                 strings;
    projkey_row_t             *r;
    ngx_http_projkey_batch_t  *b;

    /* a row the zone refuses for its lengths needs no strings */

    strings = ngx_http_projkey_row_fits(row);

    need = ngx_align(PROJKEY_ID_LEN + 1, 8) + 3 * PROJKEY_HASH_LEN;

    if (strings) {
        need += ngx_align(row->project_len, 8) + ngx_align(row->name_len, 8);
    }

    b = rd->batch[rd->filled % NGX_HTTP_PROJKEY_BATCHES];

    if (b->n == NGX_HTTP_PROJKEY_BATCH
        || b->used + need > NGX_HTTP_PROJKEY_BATCH_DATA)
    {
        b = ngx_http_projkey_reader_pass(rd, 0);
    }

    /* a load's row has no preview or creator to point into the store */

    r = &b->row[b->n++];
    *r = *row;

    /* the zone takes PROJKEY_ID_LEN bytes of an id: a shorter one is padded */

    len = ngx_strlen(row->id);
    r->id = (char *) b->data + b->used;
    ngx_memzero(b->data + b->used, PROJKEY_ID_LEN + 1);
    (void) ngx_http_projkey_batch_copy(b, row->id,
                                       ngx_min(len, PROJKEY_ID_LEN),
                                       PROJKEY_ID_LEN + 1);

    r->hash = ngx_http_projkey_batch_copy(b, row->hash,
                                          PROJKEY_HASH_LEN,
                                          PROJKEY_HASH_LEN);

    if (row->prev_hash != NULL) {
        r->prev_hash = ngx_http_projkey_batch_copy(b, row->prev_hash,
                                                   PROJKEY_HASH_LEN,
                                                   PROJKEY_HASH_LEN);
    }

    if (row->retired_hash != NULL) {
        r->retired_hash = ngx_http_projkey_batch_copy(b, row->retired_hash,
                                                    PROJKEY_HASH_LEN,
                                                    PROJKEY_HASH_LEN);
    }

    if (strings) {
        r->project = (char *) ngx_http_projkey_batch_copy(b, row->project,
                                                          row->project_len,
                                                          row->project_len);
        r->name = (char *) ngx_http_projkey_batch_copy(b, row->name,
                                                       row->name_len,
                                                       row->name_len);
    } else {
        r->project = "";
        r->name = "";
    }

    return 0;
}


/*
 * Hands the filled batch to the caller and waits for a free one; the last
 * pass only says that no more come.
 */

static ngx_http_projkey_batch_t *
ngx_http_projkey_reader_pass(ngx_http_projkey_reader_t *rd, ngx_flag_t last)
{
    ngx_http_projkey_batch_t  *b;

    (void) ngx_thread_mutex_lock(&rd->mutex, rd->log);

    if (rd->batch[rd->filled % NGX_HTTP_PROJKEY_BATCHES]->n) {
        rd->filled++;
    }

    if (last) {
        rd->done = 1;
        b = NULL;

    } else {
        while (rd->filled - rd->taken == NGX_HTTP_PROJKEY_BATCHES) {
            (void) ngx_thread_cond_wait(&rd->cond, &rd->mutex, rd->log);
        }

        b = rd->batch[rd->filled % NGX_HTTP_PROJKEY_BATCHES];
        b->n = 0;
        b->used = 0;
    }

    (void) ngx_thread_cond_signal(&rd->cond, rd->log);
    (void) ngx_thread_mutex_unlock(&rd->mutex, rd->log);

    return b;
}


/* len bytes of p, in room for size: the next copy 8-aligned */

static u_char *
ngx_http_projkey_batch_copy(ngx_http_projkey_batch_t *b, const void *p,
    size_t len, size_t size)
{
    u_char  *d;

    d = b->data + b->used;
    ngx_memcpy(d, p, len);

    b->used += ngx_align(size, 8);

    return d;
}

#else


projkey_store_rc_e
ngx_http_projkey_zone_read(projkey_store_t *st, ngx_http_projkey_load_t *load,
    int64_t *seq, ngx_log_t *log)
{
    return projkey_store_load(st, ngx_http_projkey_zone_load_row, load, seq);
}

#endif
