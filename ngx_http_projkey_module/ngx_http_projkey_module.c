
/*
 * projkey: the module object, its directives, the access phase handler
 * that checks "Authorization: Bearer sk-project-..." against the shared
 * zone, and the $projkey_* variables.
 */


#include "ngx_http_projkey.h"


typedef struct {
    ngx_str_t                  code;
    ngx_str_t                  body;
} ngx_http_projkey_error_t;


/* max_stale= passed since worker 0 last read the database: keys unknown */
#define ngx_http_projkey_stale(zone)                                          \
    ((zone)->max_stale                                                        \
     && ngx_time() - (zone)->sh->store_contact > (zone)->max_stale)

/* the status of the page a rejection replaces */
#define ngx_http_projkey_reject_status(ctx)                                   \
    ((ctx)->status == NGX_HTTP_PROJKEY_UNAVAILABLE                            \
     ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_HTTP_UNAUTHORIZED)


/* a context and the pool cleanup that marks it, in one allocation */
typedef struct {
    ngx_pool_cleanup_t         cln;
    ngx_http_projkey_ctx_t     ctx;
} ngx_http_projkey_ctx_cln_t;


static ngx_int_t ngx_http_projkey_handler(ngx_http_request_t *r);
static void ngx_http_projkey_cleanup(void *data);
static ngx_int_t ngx_http_projkey_check(ngx_http_request_t *r,
    ngx_http_projkey_loc_conf_t *plcf, ngx_http_projkey_ctx_t *ctx);
static ngx_http_projkey_status_e ngx_http_projkey_verdict(
    ngx_http_projkey_node_t *node);
static ngx_int_t ngx_http_projkey_accept(ngx_http_request_t *r,
    ngx_http_projkey_ctx_t *ctx, ngx_http_projkey_node_t *node);
static ngx_int_t ngx_http_projkey_reject(ngx_http_request_t *r,
    ngx_http_projkey_loc_conf_t *plcf, ngx_http_projkey_ctx_t *ctx,
    ngx_http_projkey_status_e status);
static ngx_int_t ngx_http_projkey_hide_authorization(ngx_http_request_t *r);
static ngx_int_t ngx_http_projkey_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_projkey_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_projkey_send_body(ngx_http_request_t *r,
    ngx_http_projkey_ctx_t *ctx, ngx_chain_t *in);

static ngx_int_t ngx_http_projkey_origin_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_projkey_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_projkey_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_projkey(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_projkey_add_variables(ngx_conf_t *cf);
static void *ngx_http_projkey_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_projkey_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_projkey_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_projkey_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_projkey_init_process(ngx_cycle_t *cycle);
static void ngx_http_projkey_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_projkey_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_projkey_commands[] = {

    { ngx_string("projkey_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_projkey_zone_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("projkey"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_projkey,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("projkey_hide_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_projkey_loc_conf_t, hide_key),
      NULL },

    { ngx_string("projkey_identity_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_projkey_identity_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_projkey_loc_conf_t, identity_headers),
      NULL },

    { ngx_string("projkey_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_projkey_loc_conf_t, log_level),
      &ngx_http_projkey_log_levels },

    { ngx_string("projkey_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_projkey_admin_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("projkey_admin_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_projkey_loc_conf_t, admin_user),
      NULL },

    { ngx_string("projkey_admin_project"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_projkey_loc_conf_t, admin_project),
      NULL },

    { ngx_string("projkey_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_projkey_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_projkey_module_ctx = {
    ngx_http_projkey_add_variables,        /* preconfiguration */
    ngx_http_projkey_init,                 /* postconfiguration */

    ngx_http_projkey_create_main_conf,     /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_projkey_create_loc_conf,      /* create location configuration */
    ngx_http_projkey_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_projkey_module = {
    NGX_MODULE_V1,
    &ngx_http_projkey_module_ctx,          /* module context */
    ngx_http_projkey_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_projkey_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_projkey_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_projkey_vars[] = {

    { ngx_string("projkey_origin"), NULL,
      ngx_http_projkey_origin_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("projkey_key_id"), NULL,
      ngx_http_projkey_str_variable,
      offsetof(ngx_http_projkey_ctx_t, id), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("projkey_key_name"), NULL,
      ngx_http_projkey_str_variable,
      offsetof(ngx_http_projkey_ctx_t, name), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("projkey_project"), NULL,
      ngx_http_projkey_str_variable,
      offsetof(ngx_http_projkey_ctx_t, project), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("projkey_status"), NULL,
      ngx_http_projkey_status_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_projkey_status_names[] = {
    ngx_null_string,
    ngx_string("accepted"),
    ngx_string("missing"),
    ngx_string("malformed"),
    ngx_string("unknown"),
    ngx_string("disabled"),
    ngx_string("expired"),
    ngx_string("unavailable")
};


#define ngx_http_projkey_error(code, message)                                 \
    { ngx_string(code),                                                       \
      ngx_string("{\"error\":{\"code\":\"" code "\",\"message\":\""           \
                 message "\"}}\n") }

static ngx_http_projkey_error_t  ngx_http_projkey_errors[] = {
    ngx_http_projkey_error("", ""),
    ngx_http_projkey_error("", ""),
    ngx_http_projkey_error("missing_api_key",
        "An API key is required: send it as "
        "Authorization: Bearer sk-project-..."),
    ngx_http_projkey_error("invalid_api_key", "The API key is not valid."),
    ngx_http_projkey_error("invalid_api_key", "The API key is not valid."),
    ngx_http_projkey_error("api_key_disabled", "The API key is disabled."),
    ngx_http_projkey_error("api_key_expired", "The API key has expired."),
    ngx_http_projkey_error("key_store_unavailable",
        "The API key store is unavailable: try again later.")
};


static ngx_str_t  ngx_http_projkey_www_authenticate =
    ngx_string("WWW-Authenticate");
static ngx_str_t  ngx_http_projkey_realm =
    ngx_string("Bearer realm=\"projkey\"");
static ngx_str_t  ngx_http_projkey_realm_invalid =
    ngx_string("Bearer realm=\"projkey\", error=\"invalid_token\"");
static ngx_str_t  ngx_http_projkey_origin_api = ngx_string("API");

/* past max_stale= the database is being tried again every few seconds */
static ngx_str_t  ngx_http_projkey_retry_after = ngx_string("Retry-After");
static ngx_str_t  ngx_http_projkey_retry_seconds = ngx_string("5");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_projkey_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_projkey_ctx_t       *ctx;
    ngx_http_projkey_zone_t      *zone;
    ngx_http_projkey_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_projkey_module);

    if (plcf->zone == NULL) {
        rc = NGX_DECLINED;

    } else {
        ctx = ngx_http_projkey_get_ctx(r);
        if (ctx == NULL) {
            /* fail closed */
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_projkey_check(r, plcf, ctx);

        if (!ctx->counted) {
            ctx->counted = 1;
            zone = plcf->zone->data;
            ngx_http_projkey_metrics_count(zone, ctx->status);
        }
    }

    /* also where "projkey off": the client's headers go all the same */

    if (plcf->identity_headers) {
        return ngx_http_projkey_identity_headers(r, rc);
    }

    return rc;
}


/*
 * An internal redirect clears the module contexts, but the key was read and
 * perhaps hidden in the first location: the context lives on in a pool
 * cleanup, as ngx_http_realip_module does it, and the hash in it is checked
 * again against the new location's zone.
 */

ngx_http_projkey_ctx_t *
ngx_http_projkey_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_projkey_ctx_t      *ctx;
    ngx_http_projkey_ctx_cln_t  *cc;

    ctx = ngx_http_get_module_ctx(r, ngx_http_projkey_module);

    if (ctx) {
        return ctx;
    }

    if (r->internal || r->filter_finalize) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_projkey_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_projkey_module);
                return ctx;
            }
        }
    }

    /*
     * What ngx_pool_cleanup_add() does, with one allocation instead of two:
     * this runs on every request.
     */

    cc = ngx_palloc(r->pool, sizeof(ngx_http_projkey_ctx_cln_t));
    if (cc == NULL) {
        return NULL;
    }

    ctx = &cc->ctx;
    ngx_memzero(ctx, sizeof(ngx_http_projkey_ctx_t));

    cc->cln.handler = ngx_http_projkey_cleanup;
    cc->cln.data = ctx;
    cc->cln.next = r->pool->cleanup;
    r->pool->cleanup = &cc->cln;

    ngx_http_set_ctx(r, ctx, ngx_http_projkey_module);

    return ctx;
}


/*
 * Nothing to release: the cleanup only marks the context for
 * ngx_http_projkey_get_ctx().  The hash it holds is no secret (it is what
 * the database stores), so it is not wiped either.
 */

static void
ngx_http_projkey_cleanup(void *data)
{
}


static ngx_int_t
ngx_http_projkey_check(ngx_http_request_t *r,
    ngx_http_projkey_loc_conf_t *plcf, ngx_http_projkey_ctx_t *ctx)
{
    u_char                     hash[PROJKEY_HASH_LEN];
    const u_char              *key;
    ngx_table_elt_t           *h;
    projkey_auth_e             auth;
    ngx_http_projkey_node_t   *node;
    ngx_http_projkey_zone_t   *zone;
    ngx_http_projkey_status_e  status;

    zone = plcf->zone->data;

    if (!ctx->hashed) {
        h = r->headers_in.authorization;

        if (h == NULL) {
            auth = PROJKEY_AUTH_ABSENT;

        } else {
            auth = projkey_parse_auth(h->value.data, h->value.len, &key);
        }

        switch (auth) {

        case PROJKEY_AUTH_KEY:
            break;

        case PROJKEY_AUTH_MALFORMED:
            return ngx_http_projkey_reject(r, plcf, ctx,
                                           NGX_HTTP_PROJKEY_MALFORMED);

        default: /* PROJKEY_AUTH_ABSENT, PROJKEY_AUTH_FOREIGN */

            if (plcf->optional) {
                /* the application authenticates this request its own way */
                ctx->status = NGX_HTTP_PROJKEY_MISSING;
                return NGX_DECLINED;
            }

            return ngx_http_projkey_reject(r, plcf, ctx,
                                           auth == PROJKEY_AUTH_ABSENT
                                           ? NGX_HTTP_PROJKEY_MISSING
                                           : NGX_HTTP_PROJKEY_MALFORMED);
        }

        if (ngx_http_projkey_stale(zone)) {
            return ngx_http_projkey_reject(r, plcf, ctx,
                                           NGX_HTTP_PROJKEY_UNAVAILABLE);
        }

        projkey_hash(key, PROJKEY_LEN, hash);

        ngx_memcpy(ctx->hash, hash, NGX_HTTP_PROJKEY_HASH_LEN);
        ctx->hashed = 1;

        node = ngx_http_projkey_zone_lookup(zone, ctx->hash);

        /*
         * A key in the zone has a valid checksum by construction, so it is
         * checked only on a miss; the verdict is kept for a later location.
         */

        if (node == NULL) {
            ctx->bad_checksum = !projkey_checksum_valid(key, PROJKEY_LEN);
        }

    } else {
        if (ngx_http_projkey_stale(zone)) {
            return ngx_http_projkey_reject(r, plcf, ctx,
                                           NGX_HTTP_PROJKEY_UNAVAILABLE);
        }

        node = ngx_http_projkey_zone_lookup(zone, ctx->hash);
    }

    if (node == NULL) {
        return ngx_http_projkey_reject(r, plcf, ctx,
                                       ctx->bad_checksum
                                       ? NGX_HTTP_PROJKEY_MALFORMED
                                       : NGX_HTTP_PROJKEY_UNKNOWN);
    }

    /* an active key without an expiry is exactly NGX_HTTP_PROJKEY_ACTIVE */

    if (node->status != NGX_HTTP_PROJKEY_ACTIVE) {
        status = ngx_http_projkey_verdict(node);

        if (status != NGX_HTTP_PROJKEY_ACCEPTED) {
            return ngx_http_projkey_reject(r, plcf, ctx, status);
        }
    }

    if (ngx_http_projkey_accept(r, ctx, node) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (plcf->hide_key && r->headers_in.authorization) {
        if (ngx_http_projkey_hide_authorization(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A key past its expiry is expired whatever its status: so says its KEY
 * too.  The status is read once, as a writer may store another.
 */

static ngx_http_projkey_status_e
ngx_http_projkey_verdict(ngx_http_projkey_node_t *node)
{
    ngx_uint_t  status;

    status = ((volatile ngx_http_projkey_node_t *) node)->status;

    if ((status & NGX_HTTP_PROJKEY_EXPIRES)
        && ngx_time() >= ngx_http_projkey_node_expires(node))
    {
        return NGX_HTTP_PROJKEY_KEY_EXPIRED;
    }

    switch (status & NGX_HTTP_PROJKEY_STATUS_MASK) {

    case NGX_HTTP_PROJKEY_ACTIVE:
        return NGX_HTTP_PROJKEY_ACCEPTED;

    case NGX_HTTP_PROJKEY_DISABLED:
        return NGX_HTTP_PROJKEY_KEY_DISABLED;

    default:
        return NGX_HTTP_PROJKEY_UNKNOWN;
    }
}


/*
 * The node may be retired by a writer once we are done: what the variables
 * show is copied out of the zone now.
 */

static ngx_int_t
ngx_http_projkey_accept(ngx_http_request_t *r, ngx_http_projkey_ctx_t *ctx,
    ngx_http_projkey_node_t *node)
{
    u_char    *p;
    size_t     len, project_len, name_len;
    uint32_t   now;

    project_len = node->project_len;
    name_len = node->name_len;

    len = PROJKEY_ID_LEN + project_len + name_len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, node->data, len);

    ctx->id.data = p;
    ctx->id.len = PROJKEY_ID_LEN;
    ctx->project.data = p + PROJKEY_ID_LEN;
    ctx->project.len = project_len;
    ctx->name.data = p + PROJKEY_ID_LEN + project_len;
    ctx->name.len = name_len;

    ctx->status = NGX_HTTP_PROJKEY_ACCEPTED;
    ctx->reject = 0;

    /* written at most once a second: the line is shared by all workers */

    now = (uint32_t) ngx_time();

    if (node->last_used != now) {
        node->last_used = now;
    }

    return NGX_OK;
}


/*
 * Returned to the access phase like auth_basic does, so that "satisfy any"
 * and "auth_delay" apply; the JSON body is put in by the filters below.
 */

static ngx_int_t
ngx_http_projkey_reject(ngx_http_request_t *r,
    ngx_http_projkey_loc_conf_t *plcf, ngx_http_projkey_ctx_t *ctx,
    ngx_http_projkey_status_e status)
{
    ngx_uint_t        level;
    ngx_table_elt_t  *h;

    ctx->status = status;
    ctx->reject = 1;

    /* a client without a key is routine; a bad key is the operator's call */

    level = (status == NGX_HTTP_PROJKEY_MISSING) ? NGX_LOG_INFO
                                                 : plcf->log_level;

    ngx_log_error(level, r->connection->log, 0,
                  "projkey: request rejected: API key %V",
                  &ngx_http_projkey_status_names[status]);

    if (status == NGX_HTTP_PROJKEY_UNAVAILABLE) {
        if (ngx_http_projkey_add_header(r, &ngx_http_projkey_retry_after,
                                        &ngx_http_projkey_retry_seconds)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    h = ngx_http_projkey_add_header(r, &ngx_http_projkey_www_authenticate,
                                    (status == NGX_HTTP_PROJKEY_MISSING)
                                    ? &ngx_http_projkey_realm
                                    : &ngx_http_projkey_realm_invalid);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.www_authenticate = h;

    return NGX_HTTP_UNAUTHORIZED;
}


/* "next" on header elements is 1.23.0's; 1.22 is the floor */

ngx_table_elt_t *
ngx_http_projkey_add_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    h->key = *key;
    h->value = *value;

    return h;
}


/*
 * The proxy, fastcgi and other upstream modules pass r->headers_in.headers
 * as they are, so the Authorization element leaves the list.  No element
 * moves or is copied: the pointers in r->headers_in (host, user_agent, the
 * same-name "next" links) keep naming the list's own headers, which a
 * later module may change through them.  The last part keeps room for
 * pushes: nalloc never exceeds what is left of its block.
 */

static ngx_int_t
ngx_http_projkey_hide_authorization(ngx_http_request_t *r)
{
    ngx_uint_t        k, n;
    ngx_list_t       *list;
    ngx_table_elt_t  *h, *auth;
    ngx_list_part_t  *part, *prev, *tail;

    list = &r->headers_in.headers;
    auth = r->headers_in.authorization;

    prev = NULL;

    for (part = &list->part; part; part = part->next) {
        h = part->elts;

        if (auth >= h && auth < h + part->nelts) {
            break;
        }

        prev = part;
    }

    if (part == NULL) {
        /* not where nginx put it: the header would go on; fail closed */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "projkey: Authorization header not in the header list");
        return NGX_ERROR;
    }

    r->headers_in.authorization = NULL;

    k = auth - h;
    n = part->nelts - k - 1;

    /* a part after the first one is never left empty: loops read its first */

    if (part->nelts == 1 && prev) {
        prev->next = part->next;

        if (list->last == part) {
            /*
             * pushes fill prev no further than it is: another module's
             * removals may have lowered nalloc below its room
             */
            list->last = prev;
            list->nalloc = ngx_max(prev->nelts, 1);
        }

        return NGX_OK;
    }

    if (n == 0) {
        /* the last of its part: a later push may reuse the slot */
        part->nelts--;
        return NGX_OK;
    }

    if (k == 0) {

        /* the first of its part: the part starts one element later */

        part->elts = auth + 1;
        part->nelts--;

        if (list->last == part) {
            list->nalloc--;
        }

        return NGX_OK;
    }

    /* in the middle: the elements after it become a part of their own */

    tail = ngx_palloc(r->pool, sizeof(ngx_list_part_t));
    if (tail == NULL) {
        return NGX_ERROR;
    }

    tail->elts = auth + 1;
    tail->nelts = n;
    tail->next = part->next;

    part->nelts = k;
    part->next = tail;

    if (list->last == part) {
        list->last = tail;
        list->nalloc -= k + 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_projkey_header_filter(ngx_http_request_t *r)
{
    ngx_http_projkey_ctx_t  *ctx;

    /*
     * Only nginx's own 401 or 503 page (err_status is set by the special
     * response handler, not by a proxied one) of the request the module
     * rejected: after an error_page redirect the context is gone and the
     * page is the operator's.
     */

    ctx = ngx_http_get_module_ctx(r, ngx_http_projkey_module);

    if (ctx == NULL
        || !ctx->reject
        || r != r->main
        || r->headers_out.status != ngx_http_projkey_reject_status(ctx)
        || r->err_status != ngx_http_projkey_reject_status(ctx))
    {
        return ngx_http_next_header_filter(r);
    }

    ctx->reject = 0;
    ctx->replace_body = 1;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_null(&r->headers_out.charset);

    r->headers_out.content_length_n =
                            ngx_http_projkey_errors[ctx->status].body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);
    ngx_http_clear_accept_ranges(r);

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_projkey_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_projkey_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_projkey_module);

    if (ctx == NULL || !ctx->replace_body) {
        return ngx_http_next_body_filter(r, in);
    }

    return ngx_http_projkey_send_body(r, ctx, in);
}


/* apart from the filter, so that every other response's pass stays a jump */

static ngx_int_t
ngx_http_projkey_send_body(ngx_http_request_t *r, ngx_http_projkey_ctx_t *ctx,
    ngx_chain_t *in)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl, *out;

    /* nginx's page is static memory: consume it, send the JSON once */

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->replace_body == 2) {
        return NGX_OK;
    }

    ctx->replace_body = 2;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ngx_http_projkey_errors[ctx->status].body.data;
    b->last = b->pos + ngx_http_projkey_errors[ctx->status].body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    /* from the pool, not the stack: the filter then needs no stack guard */

    out = ngx_alloc_chain_link(r->pool);
    if (out == NULL) {
        return NGX_ERROR;
    }

    out->buf = b;
    out->next = NULL;

    return ngx_http_next_body_filter(r, out);
}


static ngx_int_t
ngx_http_projkey_origin_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_projkey_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_projkey_module);

    if (ctx == NULL || ctx->status != NGX_HTTP_PROJKEY_ACCEPTED) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_projkey_origin_api.len;
    v->data = ngx_http_projkey_origin_api.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_projkey_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_projkey_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_projkey_module);

    if (ctx == NULL || ctx->status != NGX_HTTP_PROJKEY_ACCEPTED) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    v->len = s->len;
    v->data = s->data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_projkey_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_projkey_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_projkey_module);

    if (ctx == NULL || ctx->status == NGX_HTTP_PROJKEY_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_projkey_status_names[ctx->status].len;
    v->data = ngx_http_projkey_status_names[ctx->status].data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static char *
ngx_http_projkey(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_projkey_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            return "takes no parameter after \"off\"";
        }

        plcf->zone = NULL;
        plcf->optional = 0;
        return NGX_CONF_OK;
    }

    plcf->optional = 0;

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "optional") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": only \"optional\" "
                               "may follow the zone name", &value[2]);
            return NGX_CONF_ERROR;
        }

        plcf->optional = 1;
    }

    plcf->zone = ngx_http_projkey_zone_get(cf, &value[1]);
    if (plcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_projkey_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_projkey_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_projkey_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_projkey_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_projkey_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&pmcf->zones, cf->pool, 2,
                       sizeof(ngx_http_projkey_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&pmcf->uses, cf->pool, 4,
                       sizeof(ngx_http_projkey_use_t))
        != NGX_OK)
    {
        return NULL;
    }

    return pmcf;
}


static void *
ngx_http_projkey_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_projkey_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_projkey_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->admin_zone = NULL;
     *     conf->admin_file = { 0, NULL };
     *     conf->admin_line = 0;
     *     conf->admin_user = NULL;
     *     conf->admin_project = NULL;
     */

    conf->zone = NGX_CONF_UNSET_PTR;
    conf->optional = NGX_CONF_UNSET;
    conf->hide_key = NGX_CONF_UNSET;
    conf->identity_headers = NGX_CONF_UNSET;
    conf->log_level = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_projkey_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_projkey_loc_conf_t *prev = parent;
    ngx_http_projkey_loc_conf_t *conf = child;

    if (conf->zone == NGX_CONF_UNSET_PTR) {
        conf->zone = prev->zone;
        conf->optional = prev->optional;
    }

    ngx_conf_merge_ptr_value(conf->zone, NULL, NULL);
    ngx_conf_merge_value(conf->optional, 0, 0);
    ngx_conf_merge_value(conf->hide_key, prev->hide_key, 1);
    ngx_conf_merge_value(conf->identity_headers, prev->identity_headers, 0);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_INFO);

    if (conf->admin_user == NULL) {
        conf->admin_user = prev->admin_user;
    }

    /*
     * No default: nginx fills $remote_user from any Basic header a client
     * sends, verified or not, so only the configuration can vouch for one.
     */

    if (conf->admin_zone && conf->admin_user == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"projkey_admin\" needs \"projkey_admin_user\" "
                      "naming a verified identity, e.g. $remote_user behind "
                      "auth_basic (nginx sets $remote_user from any Basic "
                      "header a client sends) in %V:%ui",
                      &conf->admin_file, conf->admin_line);
        return NGX_CONF_ERROR;
    }

    if (conf->admin_project == NULL) {
        conf->admin_project = prev->admin_project;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_projkey_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_projkey_zones_check(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (projkey_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "projkey: libsodium cannot be initialized");
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_projkey_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_projkey_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_projkey_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_projkey_init_process(ngx_cycle_t *cycle)
{
    ngx_http_projkey_metrics_init_process(cycle);

    return ngx_http_projkey_zones_init_process(cycle);
}


static void
ngx_http_projkey_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_projkey_zones_exit_process(cycle);
    ngx_http_projkey_admin_exit_process(cycle);
}
