
/*
 * The admin API as far as it is pure: request lines are routed by
 * projkey_api_route(), as the admin handler routes them, and run through
 * the store as the admin handler's task does, on a fresh database for
 * every input, with a deterministic random source.  A model of the keys checks every answer;
 * every JSON document the API would send must be valid, hold valid UTF-8
 * when its inputs do, and never hold a secret.
 *
 * Input: lines.  "@PROJECT" sets the project (default "default"), "~USER"
 * the administrator (empty: none, 403), anything else is
 * "METHOD PATH [BODY]"; in PATH, "$N" is the id of the N-th key created
 * (modulo their number).
 */


#include <sqlite3.h>

#include "fuzz.h"
#include "projkey_api.h"


#define FUZZ_KEYS_MAX     64
#define FUZZ_PROJECT_MAX  255      /* NGX_HTTP_PROJKEY_PROJECT_MAX */
#define FUZZ_LINES_MAX    64


typedef struct {
    char            id[PROJKEY_ID_LEN + 1];
    char            project[FUZZ_PROJECT_MAX + 1];
    size_t          project_len;
    char            name[PROJKEY_NAME_MAX * 4 + 1];
    size_t          name_len;
    int             status;        /* 0: deleted */
    unsigned char   secret[PROJKEY_LEN];
} fuzz_key_t;


typedef struct {
    fuzz_key_t      keys[FUZZ_KEYS_MAX];
    size_t          nkeys;
    const char     *project;
    size_t          project_len;
    const char     *user;
    size_t          user_len;
    int             utf8;          /* all projects, users were UTF-8 */
    const uint8_t  *input;         /* the whole input, for the secret check */
    size_t          input_len;
    int             found;
    projkey_store_t  *st;
    char           *json;          /* what the row callback built */
    size_t          json_len;
    char            row_id[PROJKEY_ID_LEN + 1];
    char            row_name[PROJKEY_NAME_MAX * 4 + 1];
    int             row_status;
} fuzz_state_t;


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_request(projkey_store_t *st, fuzz_state_t *fs,
    const char *line, size_t len);
static void fuzz_list(projkey_store_t *st, fuzz_state_t *fs);
static void fuzz_get(projkey_store_t *st, fuzz_state_t *fs, const char *id,
    size_t id_len);
static void fuzz_create(projkey_store_t *st, fuzz_state_t *fs,
    const char *body, size_t len);
static void fuzz_update(projkey_store_t *st, fuzz_state_t *fs,
    const char *id, size_t id_len, const char *body, size_t len);
static void fuzz_delete(projkey_store_t *st, fuzz_state_t *fs,
    const char *id, size_t id_len);
static void fuzz_audit(projkey_store_t *st, fuzz_state_t *fs,
    const char *args, size_t len);
static int fuzz_keep_row(void *data, const projkey_row_t *row);
static fuzz_key_t *fuzz_find(fuzz_state_t *fs, const char *id,
    size_t id_len);
static size_t fuzz_count(fuzz_state_t *fs);
static void fuzz_check_json(fuzz_state_t *fs, const char *json, size_t len,
    const char *type);
static void fuzz_check_error(fuzz_state_t *fs, const char *msg);
static long fuzz_arg(const char *args, size_t len, const char *name);
static int fuzz_count_load(void *data, const projkey_row_t *row);


static sqlite3         *fuzz_db;
static sqlite3_stmt    *fuzz_json_stmt;
static projkey_json_t  *fuzz_json;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_rng_init();
    fuzz_json = fuzz_json_open();

    /* a connection of our own to judge the JSON the store builds */
    if (sqlite3_open(":memory:", &fuzz_db) != SQLITE_OK
        || sqlite3_prepare_v2(fuzz_db,
               "SELECT json_valid(?1), CASE WHEN json_valid(?1)"
               " THEN json_type(?1) END", -1, &fuzz_json_stmt, NULL)
           != SQLITE_OK)
    {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              *copy;
    size_t             i, start, lines, n;
    int64_t            seq;
    fuzz_state_t      *fs;
    projkey_store_t   *st;
    static const char  project[] = "default";
    static const char  user[] = "admin";

    fs = calloc(1, sizeof(fuzz_state_t));
    copy = malloc(size + 1);

    if (fs == NULL || copy == NULL) {
        free(fs);
        free(copy);
        return 0;
    }

    memcpy(copy, data, size);
    copy[size] = '\n';

    fs->input = data;
    fs->input_len = size;
    fs->project = project;
    fs->project_len = sizeof(project) - 1;
    fs->user = user;
    fs->user_len = sizeof(user) - 1;
    fs->utf8 = 1;

    fuzz_rng_reset();
    st = fuzz_store_open();
    fs->st = st;

    for (i = 0, start = 0, lines = 0; i <= size && lines < FUZZ_LINES_MAX;
         i++)
    {
        if (copy[i] != '\n') {
            continue;
        }

        n = i - start;

        if (n > 0 && copy[start] == '@') {
            if (n - 1 <= FUZZ_PROJECT_MAX) {
                fs->project = copy + start + 1;
                fs->project_len = n - 1;
            }

        } else if (n > 0 && copy[start] == '~') {
            fs->user = copy + start + 1;
            fs->user_len = n - 1;

        } else if (n > 0) {
            /* a key made by an earlier user is in later lists too */
            fs->utf8 = fs->utf8
                       && fuzz_utf8_valid((unsigned char *) fs->project,
                                          fs->project_len)
                       && fuzz_utf8_valid((unsigned char *) fs->user,
                                          fs->user_len);
            fuzz_request(st, fs, copy + start, n);
            lines++;
        }

        start = i + 1;
    }

    /* the database holds what the model holds, no more, no less */

    n = 0;
    fuzz_assert(projkey_store_load(st, fuzz_count_load, &n, &seq)
                == PROJKEY_STORE_OK);

    for (i = 0, start = 0; i < fs->nkeys; i++) {
        start += fs->keys[i].status != 0;
    }

    fuzz_assert(n == start);

    projkey_store_close(st);

    sodium_memzero(fs, sizeof(fuzz_state_t));
    free(fs);
    free(copy);

    return 0;
}


static void
fuzz_request(projkey_store_t *st, fuzz_state_t *fs, const char *line,
    size_t len)
{
    char                 path[512], *q;
    size_t               i, plen, k;
    const char          *method, *p, *body, *args;
    size_t               method_len, body_len, args_len;
    projkey_api_route_t  route;

    method = line;

    for (i = 0; i < len && line[i] != ' '; i++) {
        /* void */
    }

    method_len = i;

    /* the path, with "$N" made the id of the N-th key */

    plen = 0;

    for (i++; i < len && line[i] != ' '; i++) {
        if (plen + PROJKEY_ID_LEN >= sizeof(path)) {
            break;
        }

        if (line[i] == '$' && i + 1 < len && line[i + 1] >= '0'
            && line[i + 1] <= '9' && fs->nkeys > 0)
        {
            k = (size_t) (line[++i] - '0') % fs->nkeys;
            memcpy(path + plen, fs->keys[k].id, PROJKEY_ID_LEN);
            plen += PROJKEY_ID_LEN;
            continue;
        }

        path[plen++] = line[i];
    }

    body = i < len ? line + i + 1 : line + len;
    body_len = line + len - body;

    /* the user: empty is no administrator, 403 before anything */
    if (fs->user_len == 0) {
        return;
    }

    /* the arguments are not part of the URI */
    q = memchr(path, '?', plen);
    args = q ? q + 1 : path + plen;
    args_len = q ? (size_t) (path + plen - args) : 0;
    plen = q ? (size_t) (q - path) : plen;

    /* the path within "location /admin/", as the admin handler takes it */

    p = path;

    if (plen >= 7 && memcmp(p, "/admin/", 7) == 0) {
        p += 7;
        plen -= 7;
    }

#define fuzz_method(m)                                                        \
    (method_len == sizeof(m) - 1 && memcmp(method, m, sizeof(m) - 1) == 0)

    projkey_api_route(p, plen,
                      fuzz_method("GET") ? PROJKEY_HTTP_GET
                      : fuzz_method("HEAD") ? PROJKEY_HTTP_HEAD
                      : fuzz_method("POST") ? PROJKEY_HTTP_POST
                      : fuzz_method("PATCH") ? PROJKEY_HTTP_PATCH
                      : fuzz_method("DELETE") ? PROJKEY_HTTP_DELETE : 0,
                      &route);

#undef fuzz_method

    if (route.status != 0) {
        fuzz_assert(route.status == PROJKEY_HTTP_NOT_FOUND
                    || (route.status == PROJKEY_HTTP_NOT_ALLOWED
                        && route.allow != NULL));
        fuzz_check_error(fs, route.message);
        return;
    }

    switch (route.op) {

    case PROJKEY_API_LIST:
        fuzz_list(st, fs);
        break;

    case PROJKEY_API_CREATE:
        fuzz_create(st, fs, body, body_len);
        break;

    case PROJKEY_API_GET:
        fuzz_get(st, fs, route.id, PROJKEY_ID_LEN);
        break;

    case PROJKEY_API_UPDATE:
        fuzz_update(st, fs, route.id, PROJKEY_ID_LEN, body, body_len);
        break;

    case PROJKEY_API_DELETE:
        fuzz_delete(st, fs, route.id, PROJKEY_ID_LEN);
        break;

    case PROJKEY_API_AUDIT:
        fuzz_audit(st, fs, args, args_len);
        break;

    default:
        /* roll and nodes: not in the model */
        break;
    }
}


static void
fuzz_list(projkey_store_t *st, fuzz_state_t *fs)
{
    int                  n;
    char                *json;
    size_t               len, want;
    sqlite3_stmt        *s;
    projkey_page_t       page;
    projkey_store_rc_e   rc;

    /* the first page, as the admin API's GET keys reads it */

    memset(&page, 0, sizeof(projkey_page_t));

    rc = projkey_store_page_json(st, fs->project, fs->project_len, &page,
                                 &json, &len);
    fuzz_assert(rc == PROJKEY_STORE_OK);
    fuzz_check_json(fs, json, len, "object");

    /* the model's keys of this project, up to a page, all with 12 fields */

    fuzz_assert(sqlite3_prepare_v2(fuzz_db,
                    "SELECT json_array_length(?1, '$.keys'),"
                    " (SELECT count(*) FROM json_each(?1, '$.keys') AS e"
                    "  WHERE (SELECT count(*) FROM json_each(e.value) AS f)"
                    "  = 12 AND json_type(e.value, '$.id') = 'text'"
                    "  AND json_type(e.value, '$.last_used_at') = 'null')",
                    -1, &s, NULL)
                == SQLITE_OK);

    sqlite3_bind_text(s, 1, json, len, SQLITE_STATIC);
    fuzz_assert(sqlite3_step(s) == SQLITE_ROW);

    n = sqlite3_column_int(s, 0);
    want = fuzz_count(fs);
    fuzz_assert((size_t) n == (want < PROJKEY_PAGE_LIMIT
                               ? want : PROJKEY_PAGE_LIMIT));
    fuzz_assert(sqlite3_column_int(s, 1) == n);

    sqlite3_finalize(s);
    projkey_store_free(json);
}


static void
fuzz_get(projkey_store_t *st, fuzz_state_t *fs, const char *id,
    size_t id_len)
{
    fuzz_key_t          *k;
    projkey_store_rc_e   rc;

    k = fuzz_find(fs, id, id_len);

    fs->found = 0;
    rc = projkey_store_get(st, fs->project, fs->project_len, id, id_len,
                           fuzz_keep_row, fs);

    if (k == NULL) {
        fuzz_assert(rc == PROJKEY_STORE_NOTFOUND && !fs->found);
        fuzz_check_error(fs, projkey_store_errmsg(st));
        return;
    }

    fuzz_assert(rc == PROJKEY_STORE_OK && fs->found);
    fuzz_assert(fs->row_status == k->status);
    fuzz_assert(strcmp(fs->row_name, k->name) == 0);

    free(fs->json);
    fs->json = NULL;
}


static void
fuzz_create(projkey_store_t *st, fuzz_state_t *fs, const char *body,
    size_t len)
{
    char                 id[PROJKEY_ID_LEN + 1], *out;
    size_t               n;
    fuzz_key_t          *k;
    projkey_new_t        key;
    projkey_body_t       b;
    projkey_actor_t      actor;
    projkey_store_rc_e   rc;
    unsigned char        secret[PROJKEY_LEN], hash[PROJKEY_HASH_LEN];
    unsigned char        preview[PROJKEY_PREVIEW_LEN];

    rc = projkey_json_parse_body(fuzz_json, body, len, 0, &b);

    if (rc != PROJKEY_STORE_OK) {
        fuzz_assert(rc == PROJKEY_STORE_INVALID);
        fuzz_check_error(fs, projkey_json_errmsg(fuzz_json));
        return;
    }

    if (b.name == NULL || fs->nkeys == FUZZ_KEYS_MAX) {
        projkey_json_free_body(&b);
        return;
    }

    projkey_generate(secret);
    projkey_hash(secret, PROJKEY_LEN, hash);
    projkey_preview(secret, PROJKEY_LEN, preview);
    projkey_generate_id((unsigned char *) id);
    id[PROJKEY_ID_LEN] = '\0';

    memset(&key, 0, sizeof(projkey_new_t));
    key.id = id;
    key.project = fs->project;
    key.project_len = fs->project_len;
    key.name = b.name;
    key.name_len = b.name_len;
    key.hash = hash;
    key.preview = preview;
    key.status = b.status ? b.status : PROJKEY_STATUS_ACTIVE;

    actor.user = fs->user;
    actor.user_len = fs->user_len;
    actor.addr = "127.0.0.1";
    actor.addr_len = 9;

    fs->found = 0;
    rc = projkey_store_create(st, &key, &actor, fuzz_keep_row, fs);

    fuzz_assert(rc == PROJKEY_STORE_OK && fs->found);
    fuzz_assert(strcmp(fs->row_id, id) == 0);
    fuzz_assert(fs->row_status == key.status);
    fuzz_assert(strlen(fs->row_name) == b.name_len
                && memcmp(fs->row_name, b.name, b.name_len) == 0);

    /*
     * the key's own JSON holds no part of the secret either, unless the
     * input sent it as the name (the generator is seeded per input)
     */
    fuzz_assert(memmem(fs->json, fs->json_len, secret + PROJKEY_PREFIX_LEN,
                       PROJKEY_RANDOM_LEN) == NULL
                || memmem(b.name, b.name_len, secret + PROJKEY_PREFIX_LEN,
                          PROJKEY_RANDOM_LEN) != NULL);

    /* the response of the one call that shows the secret */

    n = fs->json_len + 80 + PROJKEY_LEN;
    out = malloc(n);
    fuzz_assert(out != NULL);
    n = snprintf(out, n, "{\"key\":%s,\"secret\":\"%.*s\"}", fs->json,
                 (int) PROJKEY_LEN, secret);
    fuzz_check_json(fs, out, n, "object");
    free(out);

    free(fs->json);
    fs->json = NULL;

    k = &fs->keys[fs->nkeys++];
    memcpy(k->id, id, sizeof(id));
    memcpy(k->project, fs->project, fs->project_len);
    k->project_len = fs->project_len;
    memcpy(k->name, b.name, b.name_len + 1);
    k->name_len = b.name_len;
    k->status = key.status;
    memcpy(k->secret, secret, PROJKEY_LEN);

    projkey_json_free_body(&b);
}


static void
fuzz_update(projkey_store_t *st, fuzz_state_t *fs, const char *id,
    size_t id_len, const char *body, size_t len)
{
    fuzz_key_t          *k;
    projkey_body_t       b;
    projkey_actor_t      actor;
    projkey_store_rc_e   rc;

    rc = projkey_json_parse_body(fuzz_json, body, len, 1, &b);

    if (rc != PROJKEY_STORE_OK) {
        fuzz_assert(rc == PROJKEY_STORE_INVALID);
        fuzz_check_error(fs, projkey_json_errmsg(fuzz_json));
        return;
    }

    k = fuzz_find(fs, id, id_len);

    actor.user = fs->user;
    actor.user_len = fs->user_len;
    actor.addr = NULL;
    actor.addr_len = 0;

    fs->found = 0;
    rc = projkey_store_update(st, fs->project, fs->project_len, id, id_len,
                              b.name, b.name_len, b.status, &actor,
                              fuzz_keep_row, fs);

    if (k == NULL) {
        fuzz_assert(rc == PROJKEY_STORE_NOTFOUND && !fs->found);
        projkey_json_free_body(&b);
        return;
    }

    fuzz_assert(rc == PROJKEY_STORE_OK && fs->found);

    if (b.name != NULL) {
        memcpy(k->name, b.name, b.name_len + 1);
        k->name_len = b.name_len;
    }

    if (b.status != 0) {
        k->status = b.status;
    }

    fuzz_assert(fs->row_status == k->status);
    fuzz_assert(strcmp(fs->row_name, k->name) == 0);

    projkey_json_free_body(&b);
    free(fs->json);
    fs->json = NULL;
}


static void
fuzz_delete(projkey_store_t *st, fuzz_state_t *fs, const char *id,
    size_t id_len)
{
    fuzz_key_t          *k;
    projkey_actor_t      actor;
    projkey_store_rc_e   rc;

    k = fuzz_find(fs, id, id_len);

    actor.user = fs->user;
    actor.user_len = fs->user_len;
    actor.addr = "::1";
    actor.addr_len = 3;

    fs->found = 0;
    rc = projkey_store_delete(st, fs->project, fs->project_len, id, id_len,
                              &actor, fuzz_keep_row, fs);

    free(fs->json);
    fs->json = NULL;

    if (k == NULL) {
        fuzz_assert(rc == PROJKEY_STORE_NOTFOUND && !fs->found);
        return;
    }

    fuzz_assert(rc == PROJKEY_STORE_OK && fs->found);
    k->status = 0;

    /* it is gone for good */
    fuzz_assert(projkey_store_get(st, fs->project, fs->project_len, id,
                                  id_len, NULL, NULL)
                == PROJKEY_STORE_NOTFOUND);
}


static void
fuzz_audit(projkey_store_t *st, fuzz_state_t *fs, const char *args,
    size_t len)
{
    int                  n;
    char                *json;
    long                 limit, before;
    size_t               jlen;
    sqlite3_stmt        *s;
    projkey_store_rc_e   rc;

    limit = fuzz_arg(args, len, "limit");
    before = fuzz_arg(args, len, "before");

    /* the route refuses these with 400 */
    if (limit == -2 || limit == 0 || limit > 1000 || before == -2
        || before == 0)
    {
        return;
    }

    rc = projkey_store_audit_json(st, fs->project, fs->project_len,
                                  before > 0 ? before : 0,
                                  limit > 0 ? (int) limit : 50, &json,
                                  &jlen);
    fuzz_assert(rc == PROJKEY_STORE_OK);
    fuzz_check_json(fs, json, jlen, "object");

    fuzz_assert(sqlite3_prepare_v2(fuzz_db,
                    "SELECT json_array_length(?1, '$.events')", -1, &s,
                    NULL)
                == SQLITE_OK);
    sqlite3_bind_text(s, 1, json, jlen, SQLITE_STATIC);
    fuzz_assert(sqlite3_step(s) == SQLITE_ROW);
    n = sqlite3_column_int(s, 0);
    fuzz_assert(n >= 0 && n <= (limit > 0 ? limit : 50));
    sqlite3_finalize(s);

    projkey_store_free(json);
}


/* as the admin handler's keep_row: the row's JSON, built in the callback */

static int
fuzz_keep_row(void *data, const projkey_row_t *row)
{
    fuzz_state_t *fs = data;

    char                *out;
    size_t               n;
    projkey_store_rc_e   rc;

    fuzz_assert(!fs->found);
    fs->found = 1;

    fuzz_assert(row->id != NULL && strlen(row->id) == PROJKEY_ID_LEN);
    fuzz_assert(row->name != NULL && strlen(row->name) == row->name_len);
    fuzz_assert(row->name_len < sizeof(fs->row_name));
    fuzz_assert(row->project_len == fs->project_len
                && memcmp(row->project, fs->project, fs->project_len) == 0);
    fuzz_assert(row->preview != NULL
                && strlen(row->preview) == PROJKEY_PREVIEW_LEN);

    memcpy(fs->row_id, row->id, PROJKEY_ID_LEN + 1);
    memcpy(fs->row_name, row->name, row->name_len + 1);
    fs->row_status = row->status;

    rc = projkey_json_row(fuzz_json, row, time(NULL), &out, &n);
    fuzz_assert(rc == PROJKEY_STORE_OK);
    fuzz_check_json(fs, out, n, "object");

    free(fs->json);
    fs->json = out;
    fs->json_len = n;

    return 0;
}


static fuzz_key_t *
fuzz_find(fuzz_state_t *fs, const char *id, size_t id_len)
{
    size_t       i;
    fuzz_key_t  *k;

    for (i = 0; i < fs->nkeys; i++) {
        k = &fs->keys[i];

        if (k->status != 0 && id_len == PROJKEY_ID_LEN
            && memcmp(k->id, id, PROJKEY_ID_LEN) == 0
            && k->project_len == fs->project_len
            && memcmp(k->project, fs->project, fs->project_len) == 0)
        {
            return k;
        }
    }

    return NULL;
}


/* the keys of the current project */

static size_t
fuzz_count(fuzz_state_t *fs)
{
    size_t       i, n;
    fuzz_key_t  *k;

    for (i = 0, n = 0; i < fs->nkeys; i++) {
        k = &fs->keys[i];

        n += k->status != 0 && k->project_len == fs->project_len
             && memcmp(k->project, fs->project, fs->project_len) == 0;
    }

    return n;
}


/*
 * A document the API sends: valid JSON of the given type, valid UTF-8
 * when what went in was, and no secret, whole or its random part.
 */

static void
fuzz_check_json(fuzz_state_t *fs, const char *json, size_t len,
    const char *type)
{
    size_t        i;
    const char   *t;
    fuzz_key_t   *k;

    fuzz_assert(json != NULL && strlen(json) == len);

    sqlite3_bind_text(fuzz_json_stmt, 1, json, len, SQLITE_STATIC);
    fuzz_assert(sqlite3_step(fuzz_json_stmt) == SQLITE_ROW);

    if (sqlite3_column_int(fuzz_json_stmt, 0) != 1) {
        fprintf(stderr, "invalid JSON: %s\n", json);
        abort();
    }

    t = (const char *) sqlite3_column_text(fuzz_json_stmt, 1);
    fuzz_assert(t != NULL && strcmp(t, type) == 0);
    sqlite3_reset(fuzz_json_stmt);

    if (fs->utf8) {
        fuzz_assert(fuzz_utf8_valid((const unsigned char *) json, len));
    }

    for (i = 0; i < fs->nkeys; i++) {
        k = &fs->keys[i];

        /*
         * The random source is fixed, so the fuzzer can learn a secret
         * and send it back as a name: then it is the client's own text.
         */
        if (memmem(fs->input, fs->input_len, k->secret + PROJKEY_PREFIX_LEN,
                   PROJKEY_RANDOM_LEN) != NULL)
        {
            continue;
        }

        fuzz_assert(memmem(json, len, k->secret + PROJKEY_PREFIX_LEN,
                           PROJKEY_RANDOM_LEN) == NULL);
    }
}


/* the error answer the handler builds from a message */

static void
fuzz_check_error(fuzz_state_t *fs, const char *msg)
{
    char          *out;
    size_t         len;
    sqlite3_stmt  *s;

    fuzz_assert(msg != NULL && msg[0] != '\0');
    fuzz_assert(fuzz_utf8_valid((const unsigned char *) msg, strlen(msg)));

    len = projkey_api_error(NULL, 0, "invalid_request", msg);
    out = malloc(len);
    fuzz_assert(out != NULL);
    fuzz_assert(projkey_api_error(out, len, "invalid_request", msg) == len);
    fuzz_assert(out[len - 1] == '\n');
    out[len - 1] = '\0';

    fuzz_check_json(fs, out, len - 1, "object");

    /* the message itself comes back from the JSON */

    fuzz_assert(sqlite3_prepare_v2(fuzz_db,
                    "SELECT json_extract(?1, '$.error.message') = ?2,"
                    " json_extract(?1, '$.error.code') = 'invalid_request'",
                    -1, &s, NULL)
                == SQLITE_OK);
    sqlite3_bind_text(s, 1, out, len - 1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, msg, -1, SQLITE_STATIC);
    fuzz_assert(sqlite3_step(s) == SQLITE_ROW);
    fuzz_assert(sqlite3_column_int(s, 0) == 1 && sqlite3_column_int(s, 1) == 1);
    sqlite3_finalize(s);

    free(out);
}


/*
 * An argument of the query string as ngx_http_arg() and ngx_atoi() see
 * it: -1 when absent, -2 when not a number.
 */

static long
fuzz_arg(const char *args, size_t len, const char *name)
{
    long         v;
    size_t       n, i;
    const char  *p, *end, *last;

    n = strlen(name);
    p = args;
    last = args + len;

    while (p < last) {
        end = memchr(p, '&', last - p);
        end = end ? end : last;

        if ((size_t) (end - p) > n && memcmp(p, name, n) == 0 && p[n] == '=')
        {
            p += n + 1;

            if (p == end) {
                return -2;
            }

            for (v = 0, i = 0; p + i < end; i++) {
                if (p[i] < '0' || p[i] > '9' || v > 100000000) {
                    return -2;
                }

                v = v * 10 + (p[i] - '0');
            }

            return v;
        }

        p = end + 1;
    }

    return -1;
}


static int
fuzz_count_load(void *data, const projkey_row_t *row)
{
    size_t *n = data;

    (*n)++;

    return 0;
}
