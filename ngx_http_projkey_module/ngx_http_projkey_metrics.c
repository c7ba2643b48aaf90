
/*
 * projkey: the metrics handler.  "projkey_metrics" answers every zone's
 * counters and gauges in Prometheus' text format, read from shared memory
 * alone: no database, no lock, no walk of the keys.
 */


#include "ngx_http_projkey.h"


/* a worker's slot: whole cache lines */
#define NGX_HTTP_PROJKEY_SLOT_SIZE                                            \
    ngx_align(sizeof(ngx_http_projkey_counters_t), NGX_CPU_CACHE_LINE)

/* the longest sample line, but for the zone name in it */
#define NGX_HTTP_PROJKEY_METRICS_LINE  128

/* sample lines per zone: every status, every admin code, the gauges */
#define NGX_HTTP_PROJKEY_METRICS_LINES                                        \
    (NGX_HTTP_PROJKEY_NSTATUS + NGX_HTTP_PROJKEY_NADMIN + 3 + 5)


typedef enum {
    NGX_HTTP_PROJKEY_M_REQUESTS = 0,
    NGX_HTTP_PROJKEY_M_ADMIN,
    NGX_HTTP_PROJKEY_M_KEYS,
    NGX_HTTP_PROJKEY_M_USED,
    NGX_HTTP_PROJKEY_M_SIZE,
    NGX_HTTP_PROJKEY_M_REVISION,
    NGX_HTTP_PROJKEY_M_STORE_UP,
    NGX_HTTP_PROJKEY_M_CONTACT,
    NGX_HTTP_PROJKEY_M_LAST
} ngx_http_projkey_metric_e;


static ngx_int_t ngx_http_projkey_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_projkey_metrics_family(u_char *p,
    ngx_http_projkey_metric_e family, ngx_http_projkey_zone_t *zone,
    ngx_str_t *name);
static ngx_atomic_uint_t ngx_http_projkey_metrics_sum(
    ngx_http_projkey_shctx_t *sh, size_t offset);
static u_char *ngx_http_projkey_metrics_escape(u_char *dst, ngx_str_t *src);


#define ngx_http_projkey_metric_head(name, type, help)                        \
    ngx_string("# HELP " name " " help "\n# TYPE " name " " type "\n")

static ngx_str_t  ngx_http_projkey_metric_heads[] = {
    ngx_http_projkey_metric_head("projkey_requests_total", "counter",
        "Requests checked against the zone, by their $projkey_status."),
    ngx_http_projkey_metric_head("projkey_admin_requests_total", "counter",
        "Answers of the zone's admin API, by HTTP status code."),
    ngx_http_projkey_metric_head("projkey_keys", "gauge",
        "Keys in the zone, by status."),
    ngx_http_projkey_metric_head("projkey_zone_used_bytes", "gauge",
        "Bytes of the zone in use: its size less its free pages."),
    ngx_http_projkey_metric_head("projkey_zone_size_bytes", "gauge",
        "Size of the zone in bytes."),
    ngx_http_projkey_metric_head("projkey_revision", "gauge",
        "Change sequence of the database that the zone reflects."),
    ngx_http_projkey_metric_head("projkey_store_up", "gauge",
        "1 if the last read of the database worked, else 0."),
    ngx_http_projkey_metric_head("projkey_store_last_contact_seconds",
        "gauge",
        "Unix time of the last read of the database that worked.")
};


/* indexed by ngx_http_projkey_status_e; NONE is no series */
static ngx_str_t  ngx_http_projkey_metrics_statuses[] = {
    ngx_null_string,
    ngx_string("accepted"),
    ngx_string("missing"),
    ngx_string("malformed"),
    ngx_string("unknown"),
    ngx_string("disabled"),
    ngx_string("expired"),
    ngx_string("unavailable")
};


/* what the admin API answers: a bounded label set, the rest is "other" */
static ngx_uint_t  ngx_http_projkey_metrics_codes[] = {
    NGX_HTTP_OK,
    NGX_HTTP_CREATED,
    NGX_HTTP_NO_CONTENT,
    NGX_HTTP_BAD_REQUEST,
    NGX_HTTP_FORBIDDEN,
    NGX_HTTP_NOT_FOUND,
    NGX_HTTP_NOT_ALLOWED,
    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
    NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
    NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_SERVICE_UNAVAILABLE,
    NGX_HTTP_INSUFFICIENT_STORAGE
};


static ngx_str_t  ngx_http_projkey_metrics_type =
    ngx_string("text/plain; version=0.0.4");
static ngx_str_t  ngx_http_projkey_metrics_allow = ngx_string("Allow");
static ngx_str_t  ngx_http_projkey_metrics_get_head = ngx_string("GET, HEAD");


char *
ngx_http_projkey_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_projkey_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_projkey_metrics_handler;

    return NGX_CONF_OK;
}


/*
 * A fresh zone's counter slots: one per worker, for as many workers as
 * the configuration or the CPUs may have.  The zone is kept on reload, and
 * with it the slots and their counts; a worker beyond them shares a slot.
 */

ngx_int_t
ngx_http_projkey_metrics_init_zone(ngx_http_projkey_zone_t *zone,
    ngx_cycle_t *cycle)
{
    u_char                    *p;
    ngx_uint_t                 n;
    ngx_core_conf_t           *ccf;
    ngx_http_projkey_shctx_t  *sh;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    n = (ngx_uint_t) ngx_max(ngx_ncpu, 1);

    if (ccf && ccf->worker_processes > 0
        && (ngx_uint_t) ccf->worker_processes > n)
    {
        n = ccf->worker_processes;
    }

    sh = zone->sh;

    p = ngx_slab_calloc(zone->shpool,
                        n * NGX_HTTP_PROJKEY_SLOT_SIZE + NGX_CPU_CACHE_LINE);
    if (p == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "projkey_zone \"%V\" is too small for the counters "
                      "of %ui workers in %V:%ui", &zone->name, n,
                      &zone->file, zone->line);
        return NGX_ERROR;
    }

    sh->slots = ngx_align_ptr(p, NGX_CPU_CACHE_LINE);
    sh->nslots = n;

    return NGX_OK;
}


void
ngx_http_projkey_metrics_init_process(ngx_cycle_t *cycle)
{
    u_char                        *slot;
    ngx_uint_t                     i;
    ngx_http_projkey_zone_t      **zones;
    ngx_http_projkey_shctx_t      *sh;
    ngx_http_projkey_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_projkey_module);
    if (pmcf == NULL) {
        return;
    }

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        sh = zones[i]->sh;
        slot = sh->slots
               + (ngx_worker % sh->nslots) * NGX_HTTP_PROJKEY_SLOT_SIZE;

        zones[i]->counters = (ngx_http_projkey_counters_t *) slot;
    }
}


/* the admin API's answer, its code final: a request of its location */

void
ngx_http_projkey_metrics_admin(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_uint_t                    i;
    ngx_http_projkey_zone_t      *zone;
    ngx_http_projkey_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_projkey_module);
    zone = plcf->admin_zone->data;

    for (i = 0; i < NGX_HTTP_PROJKEY_NADMIN - 1; i++) {
        if (ngx_http_projkey_metrics_codes[i] == status) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&zone->counters->admin[i], 1);
}


static ngx_int_t
ngx_http_projkey_metrics_handler(ngx_http_request_t *r)
{
    u_char                        *p, *out;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_str_t                     *names;
    ngx_uint_t                     i, f;
    ngx_chain_t                    cl;
    ngx_table_elt_t               *h;
    ngx_http_projkey_zone_t      **zones;
    ngx_http_projkey_main_conf_t  *pmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        h = ngx_http_projkey_add_header(r, &ngx_http_projkey_metrics_allow,
                                        &ngx_http_projkey_metrics_get_head);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_projkey_module);
    zones = pmcf->zones.elts;

    names = ngx_palloc(r->pool, (pmcf->zones.nelts + 1) * sizeof(ngx_str_t));
    if (names == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = 0;

    for (f = 0; f < NGX_HTTP_PROJKEY_M_LAST; f++) {
        len += ngx_http_projkey_metric_heads[f].len;
    }

    /* a zone name may hold any byte that nginx.conf can quote */

    for (i = 0; i < pmcf->zones.nelts; i++) {
        names[i].data = ngx_pnalloc(r->pool, 2 * zones[i]->name.len + 1);
        if (names[i].data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_http_projkey_metrics_escape(names[i].data, &zones[i]->name);
        names[i].len = p - names[i].data;

        len += NGX_HTTP_PROJKEY_METRICS_LINES
               * (NGX_HTTP_PROJKEY_METRICS_LINE + names[i].len);
    }

    out = ngx_pnalloc(r->pool, len);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = out;

    /* a family's samples follow its HELP and TYPE lines, all zones in turn */

    for (f = 0; f < NGX_HTTP_PROJKEY_M_LAST; f++) {
        p = ngx_cpymem(p, ngx_http_projkey_metric_heads[f].data,
                       ngx_http_projkey_metric_heads[f].len);

        for (i = 0; i < pmcf->zones.nelts; i++) {
            p = ngx_http_projkey_metrics_family(p, f, zones[i], &names[i]);
        }
    }

    len = p - out;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type = ngx_http_projkey_metrics_type;
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = out;
    b->last = p;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}


/*
 * Read without the zone's lock: each figure is one aligned word, and a
 * scrape that sees a change a moment early or late is still a true one.
 */

static u_char *
ngx_http_projkey_metrics_family(u_char *p, ngx_http_projkey_metric_e family,
    ngx_http_projkey_zone_t *zone, ngx_str_t *name)
{
    size_t                     used;
    ngx_uint_t                 i, nkeys, ndisabled, nexpired,
                               nexpired_disabled, nexpired_active;
    ngx_atomic_uint_t          n;
    ngx_http_projkey_shctx_t  *sh;

    sh = zone->sh;

    switch (family) {

    case NGX_HTTP_PROJKEY_M_REQUESTS:

        for (i = 1; i < NGX_HTTP_PROJKEY_NSTATUS; i++) {
            n = ngx_http_projkey_metrics_sum(sh,
                    offsetof(ngx_http_projkey_counters_t, requests)
                    + i * sizeof(ngx_atomic_t));

            p = ngx_sprintf(p, "projkey_requests_total{zone=\"%V\","
                            "status=\"%V\"} %uA\n",
                            name, &ngx_http_projkey_metrics_statuses[i], n);
        }

        break;

    case NGX_HTTP_PROJKEY_M_ADMIN:

        for (i = 0; i < NGX_HTTP_PROJKEY_NADMIN; i++) {
            n = ngx_http_projkey_metrics_sum(sh,
                    offsetof(ngx_http_projkey_counters_t, admin)
                    + i * sizeof(ngx_atomic_t));

            if (i < NGX_HTTP_PROJKEY_NADMIN - 1) {
                p = ngx_sprintf(p, "projkey_admin_requests_total{zone=\"%V\","
                                "code=\"%ui\"} %uA\n", name,
                                ngx_http_projkey_metrics_codes[i], n);

            } else if (n) {
                p = ngx_sprintf(p, "projkey_admin_requests_total{zone=\"%V\","
                                "code=\"other\"} %uA\n", name, n);
            }
        }

        break;

    case NGX_HTTP_PROJKEY_M_KEYS:

        /*
         * nkeys and ndisabled move under the mutex, the expired counts at
         * each flush: read apart, clamped.  An expired key counts as
         * expired whatever its stored status, as KEY shows it.
         */

        nkeys = sh->nkeys;
        ndisabled = ngx_min(sh->ndisabled, nkeys);
        nexpired = ngx_min(sh->nexpired, nkeys);
        nexpired_disabled = ngx_min(sh->nexpired_disabled,
                                    ngx_min(nexpired, ndisabled));
        nexpired_active = ngx_min(nexpired - nexpired_disabled,
                                  nkeys - ndisabled);

        p = ngx_sprintf(p, "projkey_keys{zone=\"%V\",status=\"active\"} %ui\n"
                        "projkey_keys{zone=\"%V\",status=\"disabled\"} %ui\n"
                        "projkey_keys{zone=\"%V\",status=\"expired\"} %ui\n",
                        name, nkeys - ndisabled - nexpired_active,
                        name, ndisabled - nexpired_disabled,
                        name, nexpired_active + nexpired_disabled);
        break;

    case NGX_HTTP_PROJKEY_M_USED:

        used = zone->shm_zone->shm.size - zone->shpool->pfree * ngx_pagesize;

        p = ngx_sprintf(p, "projkey_zone_used_bytes{zone=\"%V\"} %uz\n",
                        name, used);
        break;

    case NGX_HTTP_PROJKEY_M_SIZE:
        p = ngx_sprintf(p, "projkey_zone_size_bytes{zone=\"%V\"} %uz\n",
                        name, zone->shm_zone->shm.size);
        break;

    case NGX_HTTP_PROJKEY_M_REVISION:
        p = ngx_sprintf(p, "projkey_revision{zone=\"%V\"} %L\n",
                        name, sh->seq);
        break;

    case NGX_HTTP_PROJKEY_M_STORE_UP:
        p = ngx_sprintf(p, "projkey_store_up{zone=\"%V\"} %ui\n",
                        name, sh->store_up ? 1 : 0);
        break;

    default: /* NGX_HTTP_PROJKEY_M_CONTACT */
        p = ngx_sprintf(p, "projkey_store_last_contact_seconds{zone=\"%V\"} "
                        "%T\n", name, sh->store_contact);
        break;
    }

    return p;
}


static ngx_atomic_uint_t
ngx_http_projkey_metrics_sum(ngx_http_projkey_shctx_t *sh, size_t offset)
{
    u_char             *slot;
    ngx_uint_t          i;
    ngx_atomic_uint_t   n;

    n = 0;
    slot = sh->slots + offset;

    for (i = 0; i < sh->nslots; i++) {
        n += *(ngx_atomic_t *) slot;
        slot += NGX_HTTP_PROJKEY_SLOT_SIZE;
    }

    return n;
}


/* a label value: backslash, double quote and line feed escaped */

static u_char *
ngx_http_projkey_metrics_escape(u_char *dst, ngx_str_t *src)
{
    u_char  *s, *end;

    end = src->data + src->len;

    for (s = src->data; s < end; s++) {

        switch (*s) {

        case '\\':
        case '"':
            *dst++ = '\\';
            *dst++ = *s;
            break;

        case '\n':
            *dst++ = '\\';
            *dst++ = 'n';
            break;

        default:
            *dst++ = *s;
        }
    }

    return dst;
}
