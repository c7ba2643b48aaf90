
/*
 * projkey: projkey_identity_headers, the accepted key's identity set by the
 * module itself on the request headers that every upstream module passes
 * (proxy, fastcgi, uwsgi, scgi, grpc), and any client header of the same
 * names removed.
 */


#include "ngx_http_projkey.h"


#define NGX_HTTP_PROJKEY_IDENTITY_N  4


typedef struct {
    ngx_str_t                  key;
    ngx_str_t                  lowcase_key;
    ngx_uint_t                 hash;
} ngx_http_projkey_identity_t;


static ngx_uint_t ngx_http_projkey_identity_match(ngx_str_t *name);
static ngx_int_t ngx_http_projkey_identity_remove(ngx_http_request_t *r,
    ngx_uint_t n, ngx_uint_t found);
static void ngx_http_projkey_identity_repoint(ngx_http_request_t *r,
    ngx_http_core_main_conf_t *cmcf, ngx_table_elt_t *old,
    ngx_table_elt_t *h);
static ngx_int_t ngx_http_projkey_identity_add(ngx_http_request_t *r,
    ngx_http_projkey_ctx_t *ctx);


/* hashes are set by the directive, once the configuration is read */

static ngx_http_projkey_identity_t
    ngx_http_projkey_identity[NGX_HTTP_PROJKEY_IDENTITY_N] =
{
    { ngx_string("X-Projkey-Origin"), ngx_string("x-projkey-origin"), 0 },
    { ngx_string("X-Projkey-Key-Id"), ngx_string("x-projkey-key-id"), 0 },
    { ngx_string("X-Projkey-Key-Name"), ngx_string("x-projkey-key-name"), 0 },
    { ngx_string("X-Projkey-Project"), ngx_string("x-projkey-project"), 0 }
};


static ngx_str_t  ngx_http_projkey_identity_api = ngx_string("API");


char *
ngx_http_projkey_identity_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_uint_t                    i;
    ngx_http_projkey_identity_t  *id;

    for (i = 0; i < NGX_HTTP_PROJKEY_IDENTITY_N; i++) {
        id = &ngx_http_projkey_identity[i];
        id->hash = ngx_hash_key(id->lowcase_key.data, id->lowcase_key.len);
    }

    return ngx_conf_set_flag_slot(cf, cmd, conf);
}


/*
 * Called after the key check with its result, for every request of a
 * location where the directive is on: the client's headers of these names
 * go, and an accepted key's identity (what the $projkey_* variables show)
 * is added.  Run again after an internal redirect, it removes what it
 * added before, so nothing is ever there twice.
 */

ngx_int_t
ngx_http_projkey_identity_headers(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_uint_t               i, n, found;
    ngx_table_elt_t         *h;
    ngx_list_part_t         *part;
    ngx_http_projkey_ctx_t  *ctx;

    /* also a rejected request: "satisfy any" may still let it pass */

    if (rc != NGX_OK && rc != NGX_DECLINED && rc != NGX_HTTP_UNAUTHORIZED) {
        return rc;
    }

    n = 0;
    found = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            found += ngx_http_projkey_identity_match(&h[i].key);
        }

        n += part->nelts;
    }

    if (found && ngx_http_projkey_identity_remove(r, n, found) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_projkey_module);

    if (ctx == NULL || ctx->status != NGX_HTTP_PROJKEY_ACCEPTED) {
        return rc;
    }

    if (ngx_http_projkey_identity_add(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return rc;
}


/*
 * Any case, '-' or '_' alike: fastcgi, uwsgi and scgi pass X_Projkey_Origin
 * (underscores_in_headers on) as HTTP_X_PROJKEY_ORIGIN too.
 */

static ngx_uint_t
ngx_http_projkey_identity_match(ngx_str_t *name)
{
    u_char      c, *lc;
    ngx_uint_t  i, k;

    if (name->len < sizeof("x-projkey-origin") - 1
        || name->len > sizeof("x-projkey-key-name") - 1)
    {
        return 0;
    }

    for (k = 0; k < NGX_HTTP_PROJKEY_IDENTITY_N; k++) {

        if (ngx_http_projkey_identity[k].lowcase_key.len != name->len) {
            continue;
        }

        lc = ngx_http_projkey_identity[k].lowcase_key.data;

        for (i = 0; i < name->len; i++) {
            c = name->data[i];

            if (c >= 'A' && c <= 'Z') {
                c |= 0x20;

            } else if (c == '_') {
                c = '-';
            }

            if (c != lc[i]) {
                break;
            }
        }

        if (i == name->len) {
            return 1;
        }
    }

    return 0;
}


/*
 * The list is copied without them, as projkey_hide_key does it, with room
 * for the identity headers.  Unlike there, the copies take the place of
 * the old elements in r->headers_in too: this may run after an internal
 * redirect, and a later projkey_hide_key (or a module that changes a
 * header through its pointer) must find the elements that are passed.
 */

static ngx_int_t
ngx_http_projkey_identity_remove(ngx_http_request_t *r, ngx_uint_t n,
    ngx_uint_t found)
{
    ngx_uint_t                  i;
    ngx_list_t                  headers;
    ngx_table_elt_t            *h, *nh;
    ngx_list_part_t            *part;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_list_init(&headers, r->pool,
                      n - found + NGX_HTTP_PROJKEY_IDENTITY_N,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    nh = headers.part.elts;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {

            if (ngx_http_projkey_identity_match(&h[i].key)) {
                ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "projkey: header \"%V\" removed", &h[i].key);
                continue;
            }

            *nh = h[i];
            ngx_http_projkey_identity_repoint(r, cmcf, &h[i], nh);
            nh++;
        }
    }

    headers.part.nelts = nh - (ngx_table_elt_t *) headers.part.elts;

    /* "last" of the copy points into this frame: at its own part instead */

    r->headers_in.headers = headers;
    r->headers_in.headers.last = &r->headers_in.headers.part;

#if (nginx_version >= 1023000)
    /* an upstream module links the headers of one name again */
    r->headers_in.multi_linked = 0;
#endif

    return NGX_OK;
}


static void
ngx_http_projkey_identity_repoint(ngx_http_request_t *r,
    ngx_http_core_main_conf_t *cmcf, ngx_table_elt_t *old,
    ngx_table_elt_t *h)
{
    ngx_table_elt_t     **ph;
    ngx_http_header_t    *hh;
#if (nginx_version < 1023000)
    ngx_uint_t            i;
    ngx_array_t          *a;
#endif

    hh = ngx_hash_find(&cmcf->headers_in_hash, old->hash, old->lowcase_key,
                       old->key.len);

    if (hh == NULL) {
        return;
    }

#if (nginx_version < 1023000)

    /* 1.22 keeps the repeated ones in arrays */

    if (hh->offset == offsetof(ngx_http_headers_in_t, cookies)
#if (NGX_HTTP_X_FORWARDED_FOR)
        || hh->offset == offsetof(ngx_http_headers_in_t, x_forwarded_for)
#endif
       )
    {
        a = (ngx_array_t *) ((char *) &r->headers_in + hh->offset);
        ph = a->elts;

        for (i = 0; i < a->nelts; i++) {
            if (ph[i] == old) {
                ph[i] = h;
            }
        }

        return;
    }

#endif

    /*
     * The first of a name is in r->headers_in, the next ones (1.23.0) are
     * linked to it: earlier elements are copies already, so the link to
     * the old element is found walking from the first.
     */

    ph = (ngx_table_elt_t **) ((char *) &r->headers_in + hh->offset);

#if (nginx_version >= 1023000)
    for ( /* void */ ; *ph; ph = &(*ph)->next) {
        if (*ph == old) {
            *ph = h;
            break;
        }
    }
#else
    if (*ph == old) {
        *ph = h;
    }
#endif
}


/*
 * A name is UTF-8 without control characters by the admin API's and the
 * CLI's rules, but the database may be changed by hand: a value with a
 * control character is never sent, it could end a header line.
 */

static ngx_int_t
ngx_http_projkey_identity_add(ngx_http_request_t *r,
    ngx_http_projkey_ctx_t *ctx)
{
    u_char           *p, *last;
    ngx_str_t        *value[NGX_HTTP_PROJKEY_IDENTITY_N];
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    value[0] = &ngx_http_projkey_identity_api;
    value[1] = &ctx->id;
    value[2] = &ctx->name;
    value[3] = &ctx->project;

    for (i = 1; i < NGX_HTTP_PROJKEY_IDENTITY_N; i++) {
        last = value[i]->data + value[i]->len;

        for (p = value[i]->data; p < last; p++) {
            if (*p < 0x20 || *p == 0x7f) {
                goto failed;
            }
        }
    }

    for (i = 0; i < NGX_HTTP_PROJKEY_IDENTITY_N; i++) {
        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = ngx_http_projkey_identity[i].hash;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        h->key = ngx_http_projkey_identity[i].key;
        h->lowcase_key = ngx_http_projkey_identity[i].lowcase_key.data;
        h->value = *value[i];
    }

    return NGX_OK;

failed:

    /* nor is it logged: the id itself may be the value at fault */

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "projkey: the %V of the accepted key holds a control "
                  "character, request refused",
                  &ngx_http_projkey_identity[i].key);

    return NGX_ERROR;
}
