
/*
 * projkey: the admin JSON API of a zone (projkey_admin).
 *
 * A request is routed (projkey_api) and checked in full first, its body
 * included (projkey_json), with no database and no lock.  Its database
 * work then runs in a thread pool task on the process's own connection,
 * never under the zone's mutex: the commit, then the zone brought to the
 * change's revision, then the response.  The event loop never waits on
 * the disk.
 */


#include "ngx_http_projkey.h"
#include "projkey_api.h"


typedef struct {
    projkey_api_op_e           op;
    ngx_http_projkey_zone_t   *zone;

    /* NUL-terminated copies: the task never touches the request's pool */
    u_char                    *project;
    size_t                     project_len;
    u_char                    *id;
    size_t                     id_len;
    u_char                    *user;
    size_t                     user_len;
    u_char                    *addr;
    size_t                     addr_len;
    u_char                    *name;           /* a new name, checked */
    size_t                     name_len;
    int                        to_status;      /* a new status, or 0 */
    int64_t                    before;
    int                        limit;
    int64_t                    expires_at;     /* 0: never */
    int64_t                    prev_expires_at;
    unsigned                   has_expires:1;
    projkey_page_t             page;           /* GET keys */

    /* the result: a status and a malloc()ed JSON body */
    ngx_uint_t                 status;
    const char                *code;
    char                      *json;
    size_t                     json_len;
    char                       message[256];
    u_char                     secret[PROJKEY_LEN];
    unsigned                   has_secret:1;

    /* a write's: the change sequence after it, in the answer */
    int64_t                    revision;

    /* a pending timer keeps a gracefully exiting worker for the answer */
    ngx_event_t                wait;

    /* what the store's callback hands over */
    projkey_row_t              row;
    u_char                     row_id[PROJKEY_ID_LEN + 1];
    u_char                     row_hash[PROJKEY_HASH_LEN];
    ngx_http_projkey_node_t   *node;
    unsigned                   found:1;

    /* the nodes of a change, made inside its transaction */
    ngx_http_projkey_prep_t    prep;
    u_char                     row_prev_hash[PROJKEY_HASH_LEN];
    u_char                     row_retired[PROJKEY_HASH_LEN];
    unsigned                   has_prev:1;
    unsigned                   has_retired:1;
    unsigned                   prepared:1;
    unsigned                   full:1;
    unsigned                   unfit:1;
} ngx_http_projkey_admin_task_t;


static ngx_int_t ngx_http_projkey_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_projkey_admin_text(ngx_str_t *s);
static ngx_int_t ngx_http_projkey_admin_route(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t);
static unsigned ngx_http_projkey_admin_method(ngx_http_request_t *r);
static ngx_int_t ngx_http_projkey_admin_audit_args(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t);
static ngx_int_t ngx_http_projkey_admin_page_args(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t);
static ngx_int_t ngx_http_projkey_admin_unescape(ngx_pool_t *pool,
    u_char *p, u_char *last, ngx_str_t *out);
static void ngx_http_projkey_admin_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_projkey_admin_read_body(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t);
static ngx_int_t ngx_http_projkey_admin_parse(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t, u_char *body, size_t len);
static ngx_int_t ngx_http_projkey_admin_post(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_run(void *data, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_projkey_admin_wait_handler(ngx_event_t *ev);
static void ngx_http_projkey_admin_done(ngx_event_t *ev);
#endif
static ngx_int_t ngx_http_projkey_admin_respond(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t);
static ngx_int_t ngx_http_projkey_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);
static ngx_int_t ngx_http_projkey_admin_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *data, size_t len, ngx_flag_t wipe);
static void ngx_http_projkey_admin_wipe(void *data);

static void ngx_http_projkey_admin_list(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_get(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_create(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_update(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_delete(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_audit(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_nodes(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_roll(ngx_http_projkey_admin_task_t *t);
static int ngx_http_projkey_admin_prepare(void *data,
    const projkey_row_t *row);
static void ngx_http_projkey_admin_changed(ngx_http_projkey_admin_task_t *t,
    projkey_store_rc_e rc, const char *what);
static int ngx_http_projkey_admin_keep_row(void *data,
    const projkey_row_t *row);
static void ngx_http_projkey_admin_store_error(
    ngx_http_projkey_admin_task_t *t, projkey_store_rc_e rc);
static void ngx_http_projkey_admin_apply(ngx_http_projkey_admin_task_t *t,
    ngx_log_t *log);
static void ngx_http_projkey_admin_discard(ngx_http_projkey_admin_task_t *t);
static void ngx_http_projkey_admin_set_error(
    ngx_http_projkey_admin_task_t *t, ngx_uint_t status, const char *code,
    const char *message);


/* the process's JSON parser: an in-memory SQLite, no database */
static projkey_json_t  *ngx_http_projkey_admin_json;

static ngx_str_t  ngx_http_projkey_json_type = ngx_string("application/json");
static ngx_str_t  ngx_http_projkey_allow = ngx_string("Allow");
static ngx_str_t  ngx_http_projkey_cache_control = ngx_string("Cache-Control");
static ngx_str_t  ngx_http_projkey_no_store = ngx_string("no-store");
static ngx_str_t  ngx_http_projkey_revision = ngx_string("X-Projkey-Revision");
static ngx_str_t  ngx_http_projkey_updated =
    ngx_string("The API key has been updated.");


char *
ngx_http_projkey_admin_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_projkey_loc_conf_t *plcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->admin_zone) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* the API's paths are what follows the location's prefix */

#if (NGX_PCRE)
    if (clcf->regex) {
        return "cannot be in a regex location: use a prefix location";
    }
#endif

    if (clcf->named) {
        return "cannot be in a named location: use a prefix location";
    }

    value = cf->args->elts;

    plcf->admin_zone = ngx_http_projkey_zone_get(cf, &value[1]);
    if (plcf->admin_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    plcf->admin_file = cf->conf_file->file.name;
    plcf->admin_line = cf->conf_file->line;

    clcf->handler = ngx_http_projkey_admin_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_projkey_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                       user, project;
    ngx_http_projkey_loc_conf_t    *plcf;
    ngx_http_projkey_admin_task_t  *t;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_projkey_module);

    t = ngx_pcalloc(r->pool, sizeof(ngx_http_projkey_admin_task_t));
    if (t == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t->zone = plcf->admin_zone->data;

    if (ngx_http_complex_value(r, plcf->admin_user, &user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (user.len == 0) {
        return ngx_http_projkey_admin_error(r, NGX_HTTP_FORBIDDEN,
                   "forbidden",
                   "Only a project administrator can manage API keys.");
    }

    /* they may come from a client's header: recorded and shown as text */

    if (ngx_http_projkey_admin_text(&user) != NGX_OK) {
        return ngx_http_projkey_admin_error(r, NGX_HTTP_FORBIDDEN,
                   "forbidden", "The administrator's name is not valid text.");
    }

    ngx_str_set(&project, "default");

    if (plcf->admin_project
        && ngx_http_complex_value(r, plcf->admin_project, &project) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (project.len == 0 || project.len > NGX_HTTP_PROJKEY_PROJECT_MAX
        || ngx_http_projkey_admin_text(&project) != NGX_OK)
    {
        return ngx_http_projkey_admin_error(r, NGX_HTTP_FORBIDDEN,
                   "forbidden", "No project to manage API keys of.");
    }

    t->user = ngx_pstrdup(r->pool, &user);
    t->project = ngx_pnalloc(r->pool, project.len + 1);
    t->addr = ngx_pnalloc(r->pool, r->connection->addr_text.len + 1);

    if (t->user == NULL || t->project == NULL || t->addr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t->user_len = user.len;
    t->project_len = project.len;
    *ngx_cpymem(t->project, project.data, project.len) = '\0';
    t->addr_len = r->connection->addr_text.len;
    *ngx_cpymem(t->addr, r->connection->addr_text.data, t->addr_len) = '\0';

    rc = ngx_http_projkey_admin_route(r, t);

    if (rc == NGX_DECLINED) {
        return ngx_http_projkey_admin_error(r, t->status, t->code,
                                            t->message);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (t->op == PROJKEY_API_CREATE || t->op == PROJKEY_API_UPDATE
        || t->op == PROJKEY_API_ROLL)
    {
        return ngx_http_projkey_admin_read_body(r, t);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_projkey_admin_post(r, t);
    if (rc != NGX_AGAIN) {
        return rc;
    }

    r->main->count++;

    return NGX_DONE;
}


/* valid UTF-8 without control characters, as a name must be */

static ngx_int_t
ngx_http_projkey_admin_text(ngx_str_t *s)
{
    size_t  chars;

    return projkey_text_check((char *) s->data, s->len, &chars)
           == PROJKEY_TEXT_OK ? NGX_OK : NGX_DECLINED;
}


/*
 * Paths are relative to the location (projkey_api_route()).  A path that
 * is none is 404, another method 405 with Allow; both NGX_DECLINED with
 * the error in the task.
 */

static ngx_int_t
ngx_http_projkey_admin_route(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t)
{
    ngx_str_t                  path, methods;
    projkey_api_route_t        route;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    path = r->uri;

    if (path.len >= clcf->name.len
        && ngx_strncmp(path.data, clcf->name.data, clcf->name.len) == 0)
    {
        path.data += clcf->name.len;
        path.len -= clcf->name.len;
    }

    projkey_api_route((char *) path.data, path.len,
                      ngx_http_projkey_admin_method(r), &route);

    if (route.allow != NULL) {
        methods.data = (u_char *) route.allow;
        methods.len = ngx_strlen(route.allow);

        if (ngx_http_projkey_add_header(r, &ngx_http_projkey_allow, &methods)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (route.status) {
        ngx_http_projkey_admin_set_error(t, route.status, route.code,
                                         route.message);
        return NGX_DECLINED;
    }

    t->op = route.op;

    if (route.id != NULL) {
        t->id_len = PROJKEY_ID_LEN;

        t->id = ngx_pnalloc(r->pool, t->id_len + 1);
        if (t->id == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(t->id, route.id, t->id_len) = '\0';
    }

    if (t->op == PROJKEY_API_LIST) {
        return ngx_http_projkey_admin_page_args(r, t);
    }

    if (t->op == PROJKEY_API_AUDIT) {
        return ngx_http_projkey_admin_audit_args(r, t);
    }

    return NGX_OK;
}


static unsigned
ngx_http_projkey_admin_method(ngx_http_request_t *r)
{
    switch (r->method) {

    case NGX_HTTP_GET:
        return PROJKEY_HTTP_GET;

    case NGX_HTTP_HEAD:
        return PROJKEY_HTTP_HEAD;

    case NGX_HTTP_POST:
        return PROJKEY_HTTP_POST;

    case NGX_HTTP_PATCH:
        return PROJKEY_HTTP_PATCH;

    case NGX_HTTP_DELETE:
        return PROJKEY_HTTP_DELETE;

    default:
        return 0;
    }
}


/* GET audit?limit=N&before=ID */

static ngx_int_t
ngx_http_projkey_admin_audit_args(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t)
{
    ngx_int_t  n;
    ngx_str_t  arg;

    t->limit = 50;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &arg) == NGX_OK) {
        n = ngx_atoi(arg.data, arg.len);
        if (n < 1 || n > 1000) {
            ngx_http_projkey_admin_set_error(t, NGX_HTTP_BAD_REQUEST,
                "invalid_request",
                "The limit must be a number from 1 to 1000.");
            return NGX_DECLINED;
        }

        t->limit = (int) n;
    }

    if (ngx_http_arg(r, (u_char *) "before", 6, &arg) == NGX_OK) {
        n = ngx_atoi(arg.data, arg.len);
        if (n < 1) {
            ngx_http_projkey_admin_set_error(t, NGX_HTTP_BAD_REQUEST,
                "invalid_request", "before must be a positive event id.");
            return NGX_DECLINED;
        }

        t->before = n;
    }

    return NGX_OK;
}


/*
 * GET keys?limit=N&after=CURSOR&q=TEXT&status=S: each at most once, its
 * value percent-decoded strictly ('+' is a space, as a form sends it); an
 * empty one is as if absent.  Another parameter is refused, as an unknown
 * field of a body is.  NGX_DECLINED with the 400 in the task.
 */

static ngx_int_t
ngx_http_projkey_admin_page_args(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t)
{
    u_char       *p, *last, *amp, *eq, *name;
    size_t        len;
    u_char        text[128];
    ngx_int_t     n;
    ngx_str_t     value, args[4];
    ngx_uint_t    i, seen;
    const char   *msg;

    static ngx_str_t  names[4] = {
        ngx_string("limit"), ngx_string("after"), ngx_string("q"),
        ngx_string("status")
    };

    seen = 0;
    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');

        if (amp == NULL) {
            amp = last;
        }

        if (amp == p) {
            p++;
            continue;
        }

        name = p;
        eq = ngx_strlchr(p, amp, '=');
        len = (eq != NULL ? eq : amp) - name;

        for (i = 0; i < 4; i++) {
            if (len == names[i].len
                && ngx_strncmp(name, names[i].data, len) == 0)
            {
                break;
            }
        }

        if (i == 4) {
            /* the name is quoted only if it is a plain word */

            for (n = 0; n < (ngx_int_t) len && len <= 32; n++) {
                if (!((name[n] >= 'a' && name[n] <= 'z')
                      || (name[n] >= 'A' && name[n] <= 'Z')
                      || (name[n] >= '0' && name[n] <= '9')
                      || name[n] == '_' || name[n] == '-' || name[n] == '.'))
                {
                    break;
                }
            }

            if (len != 0 && len <= 32 && n == (ngx_int_t) len) {
                *ngx_snprintf(text, sizeof(text) - 1,
                              "Unknown query parameter \"%*s\".", len, name)
                    = '\0';

            } else {
                ngx_cpystrn(text, (u_char *) "Unknown query parameter.",
                            sizeof(text));
            }

            goto invalid;
        }

        if (seen & (1 << i)) {
            *ngx_snprintf(text, sizeof(text) - 1,
                          "Duplicate query parameter \"%V\".", &names[i])
                = '\0';
            goto invalid;
        }

        seen |= 1 << i;

        if (ngx_http_projkey_admin_unescape(r->pool,
                                            eq != NULL ? eq + 1 : amp, amp,
                                            &args[i])
            != NGX_OK)
        {
            if (args[i].data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            *ngx_snprintf(text, sizeof(text) - 1,
                          "The value of \"%V\" is not valid "
                          "percent-encoding.", &names[i])
                = '\0';
            goto invalid;
        }

        p = amp + 1;
    }

    ngx_memzero(&t->page, sizeof(projkey_page_t));

    if ((seen & 1) && args[0].len != 0) {
        n = ngx_atoi(args[0].data, args[0].len);

        if (n < 1 || n > PROJKEY_PAGE_LIMIT_MAX) {
            ngx_cpystrn(text, (u_char *) "The limit must be a number from 1 "
                        "to 1000.", sizeof(text));
            goto invalid;
        }

        t->page.limit = (int) n;
    }

    if (seen & 2) {
        t->page.after = (char *) args[1].data;
        t->page.after_len = args[1].len;
    }

    if (seen & 4) {
        t->page.q = (char *) args[2].data;
        t->page.q_len = args[2].len;
    }

    if ((seen & 8) && args[3].len != 0) {
        value = args[3];

        if (value.len == 6 && ngx_strncmp(value.data, "active", 6) == 0) {
            t->page.status = PROJKEY_PAGE_ACTIVE;

        } else if (value.len == 8
                   && ngx_strncmp(value.data, "disabled", 8) == 0)
        {
            t->page.status = PROJKEY_PAGE_DISABLED;

        } else if (value.len == 7
                   && ngx_strncmp(value.data, "expired", 7) == 0)
        {
            t->page.status = PROJKEY_PAGE_EXPIRED;

        } else {
            t->page.status = -1;
        }
    }

    msg = projkey_store_check_page(&t->page);

    if (msg != NULL) {
        ngx_cpystrn(text, (u_char *) msg, sizeof(text));
        goto invalid;
    }

    return NGX_OK;

invalid:

    ngx_http_projkey_admin_set_error(t, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", (char *) text);
    return NGX_DECLINED;
}


/* strict: '%' takes two hex digits; *out is NUL-terminated, in pool */

static ngx_int_t
ngx_http_projkey_admin_unescape(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_str_t *out)
{
    u_char     *d;
    ngx_int_t   hi, lo;

    out->data = ngx_pnalloc(pool, last - p + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    d = out->data;

    while (p < last) {
        if (*p == '+') {
            *d++ = ' ';
            p++;
            continue;
        }

        if (*p != '%') {
            *d++ = *p++;
            continue;
        }

        if (last - p < 3) {
            return NGX_DECLINED;
        }

        hi = ngx_hextoi(p + 1, 1);
        lo = ngx_hextoi(p + 2, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_DECLINED;
        }

        *d++ = (u_char) (hi << 4 | lo);
        p += 3;
    }

    *d = '\0';
    out->len = d - out->data;

    return NGX_OK;
}


/*
 * Only application/json: a cross-site HTML form can send only
 * form encodings and text/plain, so it cannot create or change keys.
 */

static ngx_int_t
ngx_http_projkey_admin_read_body(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t)
{
    u_char                  *p, *last;
    ngx_int_t                rc;
    ngx_str_t               *type;
    ngx_http_projkey_ctx_t  *ctx;

    if (r->headers_in.content_type == NULL) {
        goto unsupported;
    }

    type = &r->headers_in.content_type->value;
    p = type->data;
    last = p + type->len;

    if (type->len < ngx_http_projkey_json_type.len
        || ngx_strncasecmp(p, ngx_http_projkey_json_type.data,
                           ngx_http_projkey_json_type.len) != 0)
    {
        goto unsupported;
    }

    p += ngx_http_projkey_json_type.len;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p != last && *p != ';') {
        goto unsupported;
    }

    if (r->headers_in.content_length_n > PROJKEY_BODY_MAX) {
        return ngx_http_projkey_admin_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "payload_too_large",
                   "The request body must be at most 16 KiB.");
    }

    ctx = ngx_http_projkey_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->admin = t;

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                    ngx_http_projkey_admin_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;

unsupported:

    return ngx_http_projkey_admin_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
               "unsupported_media_type",
               "The request body must be application/json.");
}


static void
ngx_http_projkey_admin_body_handler(ngx_http_request_t *r)
{
    u_char                         *p, *body;
    size_t                          len;
    ssize_t                         n;
    ngx_buf_t                      *b;
    ngx_int_t                       rc;
    ngx_chain_t                    *cl;
    ngx_http_projkey_ctx_t         *ctx;
    ngx_http_projkey_admin_task_t  *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_projkey_module);
    t = ctx->admin;

    if (r->request_body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > PROJKEY_BODY_MAX) {
        ngx_http_finalize_request(r, ngx_http_projkey_admin_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "payload_too_large",
                   "The request body must be at most 16 KiB."));
        return;
    }

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* at most 16 KiB, from a file just written: a short read */
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            p += n;
            continue;
        }

        if (b->last != b->pos) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';

    rc = ngx_http_projkey_admin_parse(r, t, body, p - body);

    if (rc == NGX_OK) {
        rc = ngx_http_projkey_admin_post(r, t);

    } else if (rc == NGX_DECLINED) {
        rc = ngx_http_projkey_admin_error(r, t->status, t->code, t->message);
    }

    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * A body that is not what the contract says is NGX_DECLINED, with the
 * 400 in the task, as for a path.
 */

static ngx_int_t
ngx_http_projkey_admin_parse(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t, u_char *body, size_t len)
{
    projkey_body_t      parsed;
    projkey_store_rc_e  rc;

    if (ngx_http_projkey_admin_json == NULL) {
        rc = projkey_json_open(&ngx_http_projkey_admin_json);

        if (rc != PROJKEY_STORE_OK) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "projkey: no JSON parser: %s",
                          projkey_json_errmsg(ngx_http_projkey_admin_json));
            projkey_json_close(ngx_http_projkey_admin_json);
            ngx_http_projkey_admin_json = NULL;
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (t->op == PROJKEY_API_ROLL) {
        rc = projkey_json_parse_roll(ngx_http_projkey_admin_json,
                                     (char *) body, len, &parsed);

    } else {
        rc = projkey_json_parse_body(ngx_http_projkey_admin_json,
                                     (char *) body, len,
                                     t->op == PROJKEY_API_UPDATE,
                                     &parsed);
    }

    if (rc == PROJKEY_STORE_INVALID) {
        ngx_http_projkey_admin_set_error(t, NGX_HTTP_BAD_REQUEST,
            "invalid_request",
            projkey_json_errmsg(ngx_http_projkey_admin_json));
        return NGX_DECLINED;
    }

    if (rc != PROJKEY_STORE_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "projkey: cannot parse a request body: %s",
                      projkey_json_errmsg(ngx_http_projkey_admin_json));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t->op == PROJKEY_API_CREATE && parsed.name == NULL) {
        projkey_json_free_body(&parsed);
        ngx_http_projkey_admin_set_error(t, NGX_HTTP_BAD_REQUEST,
            "invalid_request", "A name is required.");
        return NGX_DECLINED;
    }

    if (parsed.name) {
        t->name = ngx_pnalloc(r->pool, parsed.name_len + 1);
        if (t->name == NULL) {
            projkey_json_free_body(&parsed);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(t->name, parsed.name, parsed.name_len + 1);
        t->name_len = parsed.name_len;
    }

    t->to_status = parsed.status;
    t->has_expires = parsed.has_expires;
    t->expires_at = parsed.expires_at;
    t->prev_expires_at = parsed.prev_expires_at;

    projkey_json_free_body(&parsed);

    return NGX_OK;
}


void
ngx_http_projkey_admin_exit_process(ngx_cycle_t *cycle)
{
    projkey_json_close(ngx_http_projkey_admin_json);
    ngx_http_projkey_admin_json = NULL;
}


static ngx_int_t
ngx_http_projkey_admin_post(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t)
{
#if (NGX_THREADS)
    ngx_thread_task_t  *task;

    task = ngx_thread_task_alloc(r->pool, 0);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    task->ctx = t;
    task->handler = ngx_http_projkey_admin_run;
    task->event.handler = ngx_http_projkey_admin_done;
    task->event.data = r;

    if (ngx_thread_task_post(t->zone->thread_pool, task) != NGX_OK) {
        return ngx_http_projkey_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                   "unavailable", "The server is overloaded: try again.");
    }

    /* the request must outlive the task, as with aio threads */

    r->main->blocked++;
    r->aio = 1;

    t->wait.handler = ngx_http_projkey_admin_wait_handler;
    t->wait.data = r;
    t->wait.log = r->connection->log;

    ngx_add_timer(&t->wait, 60000);

    return NGX_AGAIN;

#else

    /* without thread pools the work is done here, in the event loop */

    ngx_http_projkey_admin_run(t, r->connection->log);

    return ngx_http_projkey_admin_respond(r, t);

#endif
}


#if (NGX_THREADS)

static void
ngx_http_projkey_admin_wait_handler(ngx_event_t *ev)
{
    /* the task waits for a busy database: wait on */

    ngx_add_timer(ev, 60000);
}


static void
ngx_http_projkey_admin_done(ngx_event_t *ev)
{
    ngx_http_request_t  *r = ev->data;

    ngx_connection_t               *c;
    ngx_thread_task_t              *task;
    ngx_http_projkey_admin_task_t  *t;

    task = (ngx_thread_task_t *) ((u_char *) ev
                                  - offsetof(ngx_thread_task_t, event));
    t = task->ctx;
    c = r->connection;

    r->main->blocked--;
    r->aio = 0;

    if (t->wait.timer_set) {
        ngx_del_timer(&t->wait);
    }

    ngx_http_finalize_request(r, ngx_http_projkey_admin_respond(r, t));

    ngx_http_run_posted_requests(c);
}

#endif


static ngx_int_t
ngx_http_projkey_admin_respond(ngx_http_request_t *r,
    ngx_http_projkey_admin_task_t *t)
{
    u_char     *p, *out;
    size_t      len;
    ngx_int_t   rc;
    ngx_str_t   value;

    if (t->code) {
        return ngx_http_projkey_admin_error(r, t->status, t->code,
                                            t->message);
    }

    if (t->status == NGX_HTTP_NO_CONTENT) {
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%L", t->revision) - p;

        if (ngx_http_projkey_add_header(r, &ngx_http_projkey_revision, &value)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_projkey_admin_send(r, NGX_HTTP_NO_CONTENT, NULL, 0, 0);
    }

    if (t->json == NULL) {
        projkey_wipe(t->secret, PROJKEY_LEN);
        return ngx_http_projkey_admin_error(r,
                   NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                   "The change was made, but its result cannot be shown.");
    }

    len = t->json_len + 1;

    if (t->has_secret) {
        len += sizeof("{\"key\":,\"secret\":\"\",\"revision\":}") - 1
               + PROJKEY_LEN + NGX_INT64_LEN;

    } else if (t->op == PROJKEY_API_UPDATE) {
        len += sizeof("{\"key\":,\"message\":\"\",\"revision\":}") - 1
               + ngx_http_projkey_updated.len + NGX_INT64_LEN;

    } else if (t->op == PROJKEY_API_GET) {
        len += sizeof("{\"key\":}") - 1;
    }

    out = ngx_pnalloc(r->pool, len);
    if (out == NULL) {
        projkey_wipe(t->secret, PROJKEY_LEN);
        projkey_store_free(t->json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = out;

    if (t->has_secret) {
        p = ngx_cpymem(p, "{\"key\":", 7);
        p = ngx_cpymem(p, t->json, t->json_len);
        p = ngx_cpymem(p, ",\"secret\":\"", 11);
        p = ngx_cpymem(p, t->secret, PROJKEY_LEN);
        p = ngx_sprintf(p, "\",\"revision\":%L}", t->revision);
        projkey_wipe(t->secret, PROJKEY_LEN);

    } else if (t->op == PROJKEY_API_UPDATE) {
        p = ngx_cpymem(p, "{\"key\":", 7);
        p = ngx_cpymem(p, t->json, t->json_len);
        p = ngx_cpymem(p, ",\"message\":\"", 12);
        p = ngx_cpymem(p, ngx_http_projkey_updated.data,
                       ngx_http_projkey_updated.len);
        p = ngx_sprintf(p, "\",\"revision\":%L}", t->revision);

    } else if (t->op == PROJKEY_API_GET) {
        p = ngx_cpymem(p, "{\"key\":", 7);
        p = ngx_cpymem(p, t->json, t->json_len);
        *p++ = '}';

    } else {
        p = ngx_cpymem(p, t->json, t->json_len);
    }

    *p++ = '\n';

    projkey_store_free(t->json);
    t->json = NULL;

    rc = ngx_http_projkey_admin_send(r, t->status, out, p - out,
                                     t->has_secret);

    return rc;
}


static ngx_int_t
ngx_http_projkey_admin_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    u_char  *out;
    size_t   len;

    /* an unread body must not be taken for the next request */

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    len = projkey_api_error(NULL, 0, code, message);

    out = ngx_pnalloc(r->pool, len);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) projkey_api_error((char *) out, len, code, message);

    return ngx_http_projkey_admin_send(r, status, out, len, 0);
}


static ngx_int_t
ngx_http_projkey_admin_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len, ngx_flag_t wipe)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t          out;
    ngx_pool_cleanup_t  *cln;

    if (wipe) {
        /* the only copy of a secret: gone with the request */
        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_str_t));
        if (cln == NULL) {
            ngx_explicit_memzero(data, len);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ((ngx_str_t *) cln->data)->data = data;
        ((ngx_str_t *) cln->data)->len = len;
        cln->handler = ngx_http_projkey_admin_wipe;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    ngx_http_projkey_metrics_admin(r, status);

    if (len) {
        r->headers_out.content_type = ngx_http_projkey_json_type;
        r->headers_out.content_type_len = ngx_http_projkey_json_type.len;
        r->headers_out.content_type_lowcase = NULL;
    }

    if (ngx_http_projkey_add_header(r, &ngx_http_projkey_cache_control,
                                    &ngx_http_projkey_no_store)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_projkey_admin_wipe(void *data)
{
    ngx_str_t  *s = data;

    ngx_explicit_memzero(s->data, s->len);
}


/*
 * The thread: the store on this process's connection, without the zone's
 * mutex, which is taken only to make a change's nodes and to publish them.
 */

static void
ngx_http_projkey_admin_run(void *data, ngx_log_t *log)
{
    ngx_http_projkey_admin_task_t *t = data;

    ngx_http_projkey_zone_t  *zone;

    zone = t->zone;

    ngx_http_projkey_store_lock(zone, log);

    if (ngx_http_projkey_zone_store(zone, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "projkey_zone \"%V\": %s",
                      &zone->name, zone->error);
        ngx_http_projkey_admin_set_error(t, NGX_HTTP_SERVICE_UNAVAILABLE,
            "database_unavailable",
            "The key database is unavailable: nothing was changed.");
        goto done;
    }

    switch (t->op) {

    case PROJKEY_API_LIST:
        ngx_http_projkey_admin_list(t);
        break;

    case PROJKEY_API_GET:
        ngx_http_projkey_admin_get(t);
        break;

    case PROJKEY_API_CREATE:
        ngx_http_projkey_admin_create(t);
        break;

    case PROJKEY_API_UPDATE:
        ngx_http_projkey_admin_update(t);
        break;

    case PROJKEY_API_DELETE:
        ngx_http_projkey_admin_delete(t);
        break;

    case PROJKEY_API_AUDIT:
        ngx_http_projkey_admin_audit(t);
        break;

    case PROJKEY_API_NODES:
        ngx_http_projkey_admin_nodes(t);
        break;

    case PROJKEY_API_ROLL:
        ngx_http_projkey_admin_roll(t);
        break;
    }

    /* this node has the write's revision before the answer says it */

    if (t->revision > 0 && t->code == NULL) {
        ngx_http_projkey_admin_apply(t, log);
    }

    ngx_http_projkey_admin_discard(t);

done:

    ngx_http_projkey_store_unlock(zone, log);
}


/*
 * The zone at the write's revision, its own nodes published on top of the
 * revision before it.  If that cannot be done, the key is taken out of the
 * zone: rejected until a sync reads the change again (fail closed).
 */

static void
ngx_http_projkey_admin_apply(ngx_http_projkey_admin_task_t *t,
    ngx_log_t *log)
{
    ngx_flag_t                out;
    ngx_http_projkey_prep_t  *prep;
    ngx_http_projkey_zone_t  *zone;

    zone = t->zone;

    /* an update that changed nothing waits for the revision it saw only */
    prep = (t->prepared && t->row.seq == t->revision) ? &t->prep : NULL;

    if (prep != NULL) {
        t->prepared = 0;
    }

    if (ngx_http_projkey_zone_catch_up(zone, t->revision, prep, log)
        == NGX_OK)
    {
        return;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    /* by the key's own revision: a sync reads the key again past it */

    out = ngx_http_projkey_zone_withdraw_locked(zone, t->row.seq,
                                                t->row_hash);

    if (t->has_prev) {
        out |= ngx_http_projkey_zone_withdraw_locked(zone, t->row.seq,
                                                     t->row_prev_hash);
    }

    if (t->has_retired) {
        out |= ngx_http_projkey_zone_withdraw_locked(zone, t->row.seq,
                                                     t->row_retired);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (out) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "projkey_zone \"%V\": key \"%s\" is rejected until "
                      "its change is read again", &zone->name, t->row_id);
    }
}


/* nodes made for a write that failed, or not needed */

static void
ngx_http_projkey_admin_discard(ngx_http_projkey_admin_task_t *t)
{
    if (!t->prepared) {
        return;
    }

    ngx_shmtx_lock(&t->zone->shpool->mutex);
    ngx_http_projkey_zone_discard_locked(t->zone, &t->prep);
    ngx_shmtx_unlock(&t->zone->shpool->mutex);

    t->prepared = 0;
}


static void
ngx_http_projkey_admin_list(ngx_http_projkey_admin_task_t *t)
{
    projkey_store_rc_e  rc;

    /* a page, never the whole list: the connection is held meanwhile */

    rc = projkey_store_page_json(t->zone->store, (char *) t->project,
                                 t->project_len, &t->page, &t->json,
                                 &t->json_len);
    if (rc != PROJKEY_STORE_OK) {
        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    t->status = NGX_HTTP_OK;
}


static void
ngx_http_projkey_admin_get(ngx_http_projkey_admin_task_t *t)
{
    projkey_store_rc_e  rc;

    rc = projkey_store_get(t->zone->store, (char *) t->project,
                           t->project_len, (char *) t->id, t->id_len,
                           ngx_http_projkey_admin_keep_row, t);
    if (rc != PROJKEY_STORE_OK) {
        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    t->status = NGX_HTTP_OK;
}


/*
 * The row is turned into JSON inside the callback, while its strings are
 * valid; the zone node, if one is waiting, is filled from it too.
 */

static int
ngx_http_projkey_admin_keep_row(void *data, const projkey_row_t *row)
{
    ngx_http_projkey_admin_task_t *t = data;

    projkey_store_rc_e  rc;

    /* only the numbers outlive the callback, and the hash, copied */

    t->found = 1;
    t->row.seq = row->seq;
    t->row.status = row->status;
    ngx_cpystrn(t->row_id, (u_char *) row->id, sizeof(t->row_id));
    ngx_memcpy(t->row_hash, row->hash, PROJKEY_HASH_LEN);

    if (row->prev_hash != NULL) {
        ngx_memcpy(t->row_prev_hash, row->prev_hash, PROJKEY_HASH_LEN);
        t->has_prev = 1;
    }

    if (row->retired_hash != NULL) {
        ngx_memcpy(t->row_retired, row->retired_hash, PROJKEY_HASH_LEN);
        t->has_retired = 1;
    }

    /* a new key's node: no reader sees it before it is published */

    if (t->node) {
        ngx_http_projkey_node_fill(t->node, row);
    }

    if (t->op == PROJKEY_API_DELETE) {
        return 0;
    }

    /*
     * The change is committed whatever happens here: never undo it.  The
     * zone's JSON is used under the store's mutex, as the store is.
     */

    t->json = NULL;

    if (t->zone->json == NULL) {
        rc = projkey_json_open(&t->zone->json);

        if (rc != PROJKEY_STORE_OK) {
            ngx_log_error(NGX_LOG_ALERT, t->zone->log, 0,
                          "projkey: no JSON for a key: %s",
                          projkey_json_errmsg(t->zone->json));
            projkey_json_close(t->zone->json);
            t->zone->json = NULL;
            return 0;
        }
    }

    rc = projkey_json_row(t->zone->json, row, time(NULL), &t->json,
                          &t->json_len);

    if (rc != PROJKEY_STORE_OK) {
        ngx_log_error(NGX_LOG_ALERT, t->zone->log, 0,
                      "projkey: no JSON for a key: %s",
                      projkey_json_errmsg(t->zone->json));
        t->json = NULL;
    }

    return 0;
}


static void
ngx_http_projkey_admin_create(ngx_http_projkey_admin_task_t *t)
{
    u_char                    hash[PROJKEY_HASH_LEN];
    u_char                    preview[PROJKEY_PREVIEW_LEN];
    u_char                    id[PROJKEY_ID_LEN + 1];
    projkey_new_t             key;
    projkey_actor_t           actor;
    projkey_store_rc_e        rc;
    ngx_http_projkey_zone_t  *zone;

    zone = t->zone;

    /* the room in the zone first: a full zone changes nothing */

    ngx_shmtx_lock(&zone->shpool->mutex);
    t->node = ngx_http_projkey_node_alloc_ex_locked(zone, t->project_len,
                                                    t->name_len,
                                                    t->expires_at > 0);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (t->node == NULL) {
        ngx_http_projkey_admin_set_error(t, NGX_HTTP_INSUFFICIENT_STORAGE,
            "zone_full",
            "The key zone is full: no key was created. "
            "Make the projkey_zone larger.");
        ngx_log_error(NGX_LOG_CRIT, zone->log, 0,
                      "projkey_zone \"%V\" is full: an API key could not "
                      "be created", &zone->name);
        return;
    }

    projkey_generate(t->secret);
    projkey_hash(t->secret, PROJKEY_LEN, hash);
    projkey_preview(t->secret, PROJKEY_LEN, preview);
    projkey_generate_id(id);
    id[PROJKEY_ID_LEN] = '\0';

    ngx_memzero(&key, sizeof(projkey_new_t));
    key.id = (char *) id;
    key.project = (char *) t->project;
    key.project_len = t->project_len;
    key.name = (char *) t->name;
    key.name_len = t->name_len;
    key.hash = hash;
    key.preview = preview;
    key.status = t->to_status ? t->to_status : PROJKEY_STATUS_ACTIVE;
    key.expires_at = t->expires_at;

    actor.user = (char *) t->user;
    actor.user_len = t->user_len;
    actor.addr = (char *) t->addr;
    actor.addr_len = t->addr_len;

    rc = projkey_store_create(zone->store, &key, &actor,
                              ngx_http_projkey_admin_keep_row, t);

    ngx_explicit_memzero(hash, PROJKEY_HASH_LEN);

    /* the node is published at the revision, as a change's nodes are */

    ngx_memzero(&t->prep, sizeof(ngx_http_projkey_prep_t));
    t->prep.node[0] = t->node;
    t->prep.n = 1;
    t->prepared = 1;
    t->node = NULL;

    if (rc != PROJKEY_STORE_OK || !t->found) {
        projkey_wipe(t->secret, PROJKEY_LEN);
        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    ngx_memcpy(t->prep.hash[0], t->row_hash, NGX_HTTP_PROJKEY_HASH_LEN);

    t->revision = t->row.seq;
    t->has_secret = 1;
    t->status = NGX_HTTP_CREATED;
}


static void
ngx_http_projkey_admin_update(ngx_http_projkey_admin_task_t *t)
{
    int64_t                   before;
    projkey_actor_t           actor;
    projkey_change_t          change;
    projkey_store_rc_e        rc;
    ngx_http_projkey_zone_t  *zone;

    zone = t->zone;

    actor.user = (char *) t->user;
    actor.user_len = t->user_len;
    actor.addr = (char *) t->addr;
    actor.addr_len = t->addr_len;

    /* a change to what the key already is takes no sequence number */

    rc = projkey_store_revision(zone->store, &before);
    if (rc != PROJKEY_STORE_OK) {
        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    ngx_memzero(&change, sizeof(projkey_change_t));
    change.name = (char *) t->name;
    change.name_len = t->name_len;
    change.status = t->to_status;
    change.set_expires = t->has_expires;
    change.expires_at = t->expires_at;

    /* a new name or expiry is a new node: its room is taken before commit */

    rc = projkey_store_change(zone->store, (char *) t->project,
                              t->project_len, (char *) t->id, t->id_len,
                              &change, &actor, ngx_http_projkey_admin_prepare,
                              ngx_http_projkey_admin_keep_row, t);

    ngx_http_projkey_admin_changed(t, rc, "the key was not changed");

    if (t->code == NULL) {
        t->revision = ngx_max(t->row.seq, before);
        t->status = NGX_HTTP_OK;
    }
}


/*
 * A new secret, the current one kept as the previous one until its end:
 * answered as a created key is.
 */

static void
ngx_http_projkey_admin_roll(ngx_http_projkey_admin_task_t *t)
{
    u_char                    hash[PROJKEY_HASH_LEN];
    u_char                    preview[PROJKEY_PREVIEW_LEN];
    projkey_actor_t           actor;
    projkey_store_rc_e        rc;
    ngx_http_projkey_zone_t  *zone;

    zone = t->zone;

    actor.user = (char *) t->user;
    actor.user_len = t->user_len;
    actor.addr = (char *) t->addr;
    actor.addr_len = t->addr_len;

    projkey_generate(t->secret);
    projkey_hash(t->secret, PROJKEY_LEN, hash);
    projkey_preview(t->secret, PROJKEY_LEN, preview);

    rc = projkey_store_roll(zone->store, (char *) t->project, t->project_len,
                            (char *) t->id, t->id_len, hash, preview,
                            t->prev_expires_at, &actor,
                            ngx_http_projkey_admin_prepare,
                            ngx_http_projkey_admin_keep_row, t);

    ngx_explicit_memzero(hash, PROJKEY_HASH_LEN);

    ngx_http_projkey_admin_changed(t, rc, "the key was not rolled");

    if (t->code != NULL) {
        projkey_wipe(t->secret, PROJKEY_LEN);
        return;
    }

    t->has_secret = 1;
    t->revision = t->row.seq;
    t->status = NGX_HTTP_CREATED;
}


/* inside the transaction: the zone's room for the change, or a rollback */

static int
ngx_http_projkey_admin_prepare(void *data, const projkey_row_t *row)
{
    ngx_http_projkey_admin_task_t *t = data;

    ngx_int_t  rc;

    ngx_shmtx_lock(&t->zone->shpool->mutex);
    rc = ngx_http_projkey_zone_prepare_locked(t->zone, row, &t->prep);
    ngx_shmtx_unlock(&t->zone->shpool->mutex);

    switch (rc) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        t->full = 1;
        return 1;

    default:
        /* too long for a node, or text no header may hold: logged */
        t->unfit = 1;
        return 1;
    }

    t->prepared = 1;

    return 0;
}


/* after a change of a key: its nodes published, or the error */

static void
ngx_http_projkey_admin_changed(ngx_http_projkey_admin_task_t *t,
    projkey_store_rc_e rc, const char *what)
{
    u_char                    msg[128];
    ngx_http_projkey_zone_t  *zone;

    zone = t->zone;

    if (rc != PROJKEY_STORE_OK || !t->found) {
        ngx_http_projkey_admin_discard(t);

        if (t->unfit) {
            projkey_store_free(t->json);
            t->json = NULL;

            ngx_http_projkey_admin_set_error(t,
                NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                "The key cannot be changed: its stored name or project is "
                "damaged. Nothing was changed.");
            return;
        }

        if (t->full) {
            projkey_store_free(t->json);
            t->json = NULL;

            ngx_snprintf(msg, sizeof(msg), "The key zone is full: %s. "
                         "Make the projkey_zone larger.%Z", what);
            ngx_http_projkey_admin_set_error(t,
                NGX_HTTP_INSUFFICIENT_STORAGE, "zone_full", (char *) msg);
            ngx_log_error(NGX_LOG_CRIT, zone->log, 0,
                          "projkey_zone \"%V\" is full: key \"%s\" could "
                          "not be changed", &zone->name, t->id);
            return;
        }

        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    /* the nodes are published at the revision: admin_apply() */
}


static void
ngx_http_projkey_admin_delete(ngx_http_projkey_admin_task_t *t)
{
    projkey_actor_t           actor;
    projkey_store_rc_e        rc;
    ngx_http_projkey_zone_t  *zone;

    zone = t->zone;

    actor.user = (char *) t->user;
    actor.user_len = t->user_len;
    actor.addr = (char *) t->addr;
    actor.addr_len = t->addr_len;

    rc = projkey_store_delete(zone->store, (char *) t->project,
                              t->project_len, (char *) t->id, t->id_len,
                              &actor, ngx_http_projkey_admin_keep_row, t);

    if (rc != PROJKEY_STORE_OK || !t->found) {
        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    /* its secrets leave the zone at the revision, as any change */

    ngx_memzero(&t->prep, sizeof(ngx_http_projkey_prep_t));
    ngx_memcpy(t->prep.remove[0], t->row_hash, NGX_HTTP_PROJKEY_HASH_LEN);
    t->prep.nremove = 1;

    if (t->has_prev) {
        ngx_memcpy(t->prep.remove[1], t->row_prev_hash,
                   NGX_HTTP_PROJKEY_HASH_LEN);
        t->prep.nremove = 2;
    }

    t->prepared = 1;

    t->revision = t->row.seq;
    t->status = NGX_HTTP_NO_CONTENT;
}


static void
ngx_http_projkey_admin_audit(ngx_http_projkey_admin_task_t *t)
{
    projkey_store_rc_e  rc;

    rc = projkey_store_audit_json(t->zone->store, (char *) t->project,
                                  t->project_len, t->before, t->limit,
                                  &t->json, &t->json_len);
    if (rc != PROJKEY_STORE_OK) {
        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    t->status = NGX_HTTP_OK;
}


static void
ngx_http_projkey_admin_nodes(ngx_http_projkey_admin_task_t *t)
{
    projkey_store_rc_e  rc;

    rc = projkey_store_nodes_json(t->zone->store, (int64_t) time(NULL),
                                  &t->json, &t->json_len);
    if (rc != PROJKEY_STORE_OK) {
        ngx_http_projkey_admin_store_error(t, rc);
        return;
    }

    t->status = NGX_HTTP_OK;
}


static void
ngx_http_projkey_admin_store_error(ngx_http_projkey_admin_task_t *t,
    projkey_store_rc_e rc)
{
    const char  *msg, *text;

    /* a row handed over before the failure is not the answer */

    projkey_store_free(t->json);
    t->json = NULL;

    msg = projkey_store_errmsg(t->zone->store);

    switch (rc) {

    case PROJKEY_STORE_OK:
    case PROJKEY_STORE_NOTFOUND:
        ngx_http_projkey_admin_set_error(t, NGX_HTTP_NOT_FOUND, "not_found",
                                         "No such API key in this project.");
        return;

    case PROJKEY_STORE_INVALID:
        ngx_http_projkey_admin_set_error(t, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request", msg);
        return;

    /* the client is told what happened; error.log says why */

    case PROJKEY_STORE_BUSY:
        text = "The key database is busy: nothing was changed, try again.";
        break;

    case PROJKEY_STORE_READONLY:
        text = "The key database cannot be written: nothing was changed.";
        break;

    case PROJKEY_STORE_FULL:
        text = "The disk of the key database is full: nothing was changed.";
        break;

    default:
        text = "The key database failed: nothing was changed.";
        break;
    }

    ngx_http_projkey_admin_set_error(t, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "database_unavailable", text);

    ngx_log_error(NGX_LOG_ERR, t->zone->log, 0,
                  "projkey_zone \"%V\": database \"%V\": %s",
                  &t->zone->name, &t->zone->db, msg);
}


static void
ngx_http_projkey_admin_set_error(ngx_http_projkey_admin_task_t *t,
    ngx_uint_t status, const char *code, const char *message)
{
    t->status = status;
    t->code = code;
    ngx_cpystrn((u_char *) t->message, (u_char *) message,
                sizeof(t->message));
}
