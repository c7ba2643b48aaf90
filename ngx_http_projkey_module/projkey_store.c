
/*
 * projkey: the key store, apart from nginx (see projkey_store.h): the
 * engine a database names, and what needs no database (text, times,
 * request bodies' rules); the rest is the engine's (projkey_store_sqlite.c,
 * projkey_store_pg.c).
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "projkey_store_engine.h"


/* steps of projkey_store_search_merge(), at most: some 100 ms each */
#define PROJKEY_SEARCH_MERGE_MAX 10000


static const projkey_store_ops_t *projkey_store_engine(const char *path);
static int64_t projkey_store_years_ahead(int64_t now, int years);


/* a libpq URI names PostgreSQL; anything else is an SQLite file */

static const projkey_store_ops_t *
projkey_store_engine(const char *path)
{
    return projkey_store_is_uri(path) ? &projkey_store_pg_ops
                                      : &projkey_store_sqlite_ops;
}


int
projkey_store_is_uri(const char *db)
{
    return strncmp(db, "postgresql://", 13) == 0
           || strncmp(db, "postgres://", 11) == 0;
}


int
projkey_store_unreachable(projkey_store_t *st)
{
    return st != NULL && st->unreachable;
}


int
projkey_store_broken(projkey_store_t *st)
{
    if (st == NULL) {
        return 1;
    }

    if (st->ops == NULL) {
        return 1;
    }

    if (!st->broken && st->ops->alive != NULL && !st->ops->alive(st)) {
        st->broken = 1;
    }

    return st->broken;
}


projkey_store_rc_e
projkey_store_open(const char *path, int flags, int busy_timeout_ms,
    projkey_store_t **st)
{
    projkey_store_t  *s;

    s = calloc(1, sizeof(projkey_store_t));
    *st = s;

    if (s == NULL) {
        return PROJKEY_STORE_ERROR;
    }

    s->flags = flags;

    if (projkey_init() != 0) {
        projkey_store_set_errmsg(s, "no random number generator available");
        return PROJKEY_STORE_ERROR;
    }

    s->ops = projkey_store_engine(path);

    return s->ops->open(s, path, busy_timeout_ms);
}


projkey_store_rc_e
projkey_store_open_memory(projkey_store_t **st)
{
    projkey_store_t  *s;

    s = calloc(1, sizeof(projkey_store_t));
    *st = s;

    if (s == NULL) {
        return PROJKEY_STORE_ERROR;
    }

    s->ops = &projkey_store_sqlite_ops;

    return s->ops->open(s, NULL, 0);
}


void
projkey_store_close(projkey_store_t *st)
{
    if (st == NULL) {
        return;
    }

    if (st->ops != NULL) {
        st->ops->close(st);
    }

    sodium_memzero(st->cursor_key, PROJKEY_CURSOR_KEY_LEN);

    free(st);
}


int
projkey_store_outdated(projkey_store_t *st)
{
    return st->version < st->ops->schema_version;
}


int
projkey_store_schema(projkey_store_t *st)
{
    return st->version;
}


projkey_store_rc_e
projkey_store_state(projkey_store_t *st, int64_t *seq, char instance[33])
{
    return st->ops->state(st, seq, instance);
}


projkey_store_rc_e
projkey_store_revision(projkey_store_t *st, int64_t *seq)
{
    return st->ops->revision(st, seq);
}


projkey_store_rc_e
projkey_store_load(projkey_store_t *st, projkey_row_pt cb, void *data,
    int64_t *seq)
{
    return st->ops->load(st, cb, data, seq);
}


projkey_store_rc_e
projkey_store_changes(projkey_store_t *st, int64_t since, projkey_row_pt cb,
    void *data, int64_t *seq)
{
    return st->ops->changes(st, since, cb, data, seq);
}


projkey_store_rc_e
projkey_store_get(projkey_store_t *st, const char *project, size_t project_len,
    const char *id, size_t id_len, projkey_row_pt cb, void *data)
{
    return st->ops->get(st, project, project_len, id, id_len, cb, data);
}


projkey_store_rc_e
projkey_store_list(projkey_store_t *st, const char *project,
    size_t project_len, projkey_row_pt cb, void *data)
{
    return st->ops->list(st, project, project_len, cb, data);
}


projkey_store_rc_e
projkey_store_create(projkey_store_t *st, const projkey_new_t *key,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data)
{
    return st->ops->create(st, key, actor, cb, data);
}


projkey_store_rc_e
projkey_store_create_batch(projkey_store_t *st, const projkey_new_t *keys,
    size_t n, const projkey_actor_t *actor)
{
    return st->ops->create_batch(st, keys, n, actor);
}


projkey_store_rc_e
projkey_store_change(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const projkey_change_t *change, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data)
{
    return st->ops->change(st, project, project_len, id, id_len, change, actor,
                           check, cb, data);
}


projkey_store_rc_e
projkey_store_roll(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const unsigned char *hash, const unsigned char *preview,
    int64_t prev_expires_at, const projkey_actor_t *actor,
    projkey_row_pt check, projkey_row_pt cb, void *data)
{
    return st->ops->roll(st, project, project_len, id, id_len, hash, preview,
                         prev_expires_at, actor, check, cb, data);
}


projkey_store_rc_e
projkey_store_purge(projkey_store_t *st, int64_t now, projkey_row_pt cb,
    void *data, size_t *n)
{
    return st->ops->purge(st, now, cb, data, n);
}


projkey_store_rc_e
projkey_store_delete(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len,
    const projkey_actor_t *actor, projkey_row_pt cb, void *data)
{
    return st->ops->delete(st, project, project_len, id, id_len, actor, cb,
                           data);
}


projkey_store_rc_e
projkey_store_checkpoint(projkey_store_t *st, int full, int *complete)
{
    return st->ops->checkpoint(st, full, complete);
}


projkey_store_rc_e
projkey_store_listen(projkey_store_t *st)
{
    if (st->ops->listen == NULL) {
        projkey_store_set_errmsg(st, "%s has no notifications",
                                 st->ops->name);
        return PROJKEY_STORE_ERROR;
    }

    return st->ops->listen(st);
}


int
projkey_store_socket(projkey_store_t *st)
{
    return st->ops->socket ? st->ops->socket(st) : -1;
}


projkey_store_rc_e
projkey_store_notified(projkey_store_t *st, int64_t *seq)
{
    *seq = 0;

    if (st->ops->notified == NULL) {
        projkey_store_set_errmsg(st, "%s has no notifications",
                                 st->ops->name);
        return PROJKEY_STORE_ERROR;
    }

    return st->ops->notified(st, seq);
}


projkey_store_rc_e
projkey_store_touch(projkey_store_t *st, const projkey_touch_t *touch,
    size_t n)
{
    return st->ops->touch(st, touch, n);
}


projkey_store_rc_e
projkey_store_heartbeat(projkey_store_t *st, const projkey_node_t *node)
{
    if (node->name_len == 0 || node->name_len > PROJKEY_NODE_NAME_MAX) {
        projkey_store_set_errmsg(st, "a node name is 1 to %d bytes",
                                 PROJKEY_NODE_NAME_MAX);
        return PROJKEY_STORE_INVALID;
    }

    return st->ops->heartbeat(st, node);
}


projkey_store_rc_e
projkey_store_nodes(projkey_store_t *st, int64_t now, projkey_node_pt cb,
    void *data)
{
    return st->ops->nodes(st, now, cb, data);
}


projkey_store_rc_e
projkey_store_page(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, projkey_row_pt cb,
    void *data, char **next)
{
    return st->ops->page(st, project, project_len, page, cb, data, next);
}


projkey_store_rc_e
projkey_store_page_json(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, char **out, size_t *len)
{
    return st->ops->page_json(st, project, project_len, page, out, len);
}


projkey_store_rc_e
projkey_store_search_merge_step(projkey_store_t *st, int *more)
{
    return st->ops->search_merge_step(st, more);
}


projkey_store_rc_e
projkey_store_row_json(projkey_store_t *st, const projkey_row_t *row,
    char **out, size_t *len)
{
    return st->ops->row_json(st, row, out, len);
}


projkey_store_rc_e
projkey_store_list_json(projkey_store_t *st, const char *project,
    size_t project_len, char **out, size_t *len)
{
    return st->ops->list_json(st, project, project_len, out, len);
}


projkey_store_rc_e
projkey_store_audit_json(projkey_store_t *st, const char *project,
    size_t project_len, int64_t before, int limit, char **out, size_t *len)
{
    return st->ops->audit_json(st, project, project_len, before, limit, out,
                               len);
}


projkey_store_rc_e
projkey_store_nodes_json(projkey_store_t *st, int64_t now, char **out,
    size_t *len)
{
    return st->ops->nodes_json(st, now, out, len);
}


projkey_store_rc_e
projkey_store_parse_body(projkey_store_t *st, const char *body, size_t len,
    int require_one, projkey_body_t *out)
{
    return st->ops->parse_body(st, body, len, require_one, out);
}


projkey_store_rc_e
projkey_store_parse_roll(projkey_store_t *st, const char *body, size_t len,
    projkey_body_t *out)
{
    return st->ops->parse_roll(st, body, len, out);
}


const char *
projkey_store_errmsg(projkey_store_t *st)
{
    if (st == NULL) {
        return "out of memory";
    }

    return st->errmsg;
}


void
projkey_store_set_errmsg(projkey_store_t *st, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(st->errmsg, PROJKEY_ERRMSG_LEN, fmt, args);
    va_end(args);
}


/*
 * Decodes one UTF-8 character strictly (no overlong forms, no surrogates,
 * nothing above U+10FFFF); returns its length, or 0 when invalid.
 */

size_t
projkey_utf8_char(const unsigned char *p, size_t len, uint32_t *cp)
{
    size_t    n, i;
    uint32_t  c, min;

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 2;
        c &= 0x1f;
        min = 0x80;

    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        c &= 0x0f;
        min = 0x800;

    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        c &= 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    *cp = c;
    return n;
}


int
projkey_store_check_text(const char *text, size_t len, size_t *chars)
{
    size_t                n, i;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) text;

    /* most text is printable ASCII: a byte a character, nothing to decode */

    for (i = 0; i < len && p[i] >= 0x20 && p[i] < 0x7f; i++) {
        /* void */
    }

    *chars = i;

    for ( /* void */ ; i < len; i += n) {
        n = projkey_utf8_char(p + i, len - i, &cp);

        if (n == 0) {
            return PROJKEY_TEXT_NOT_UTF8;
        }

        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            return PROJKEY_TEXT_CONTROL;
        }

        (*chars)++;
    }

    return PROJKEY_TEXT_OK;
}


projkey_store_rc_e
projkey_store_check_name(projkey_store_t *st, const char *name, size_t len,
    const char **out, size_t *out_len)
{
    size_t                chars;
    const char           *msg;
    const unsigned char  *p;

    p = (const unsigned char *) name;

    while (len > 0 && (*p == ' ' || (*p >= '\t' && *p <= '\r'))) {
        p++;
        len--;
    }

    while (len > 0 && (p[len - 1] == ' '
                       || (p[len - 1] >= '\t' && p[len - 1] <= '\r')))
    {
        len--;
    }

    switch (projkey_store_check_text((const char *) p, len, &chars)) {

    case PROJKEY_TEXT_NOT_UTF8:
        msg = "The name must be valid UTF-8.";
        break;

    case PROJKEY_TEXT_CONTROL:
        msg = "The name must not contain control characters.";
        break;

    default:
        msg = NULL;
    }

    if (msg == NULL) {
        if (len == 0) {
            msg = "The name must not be empty.";

        } else if (chars > PROJKEY_NAME_MAX) {
            msg = "The name must be at most 100 characters.";
        }
    }

    if (msg != NULL) {
        if (st != NULL) {
            projkey_store_set_errmsg(st, "%s", msg);
        }

        return PROJKEY_STORE_INVALID;
    }

    *out = (const char *) p;
    *out_len = len;

    return PROJKEY_STORE_OK;
}


void
projkey_store_free_body(projkey_body_t *body)
{
    if (body == NULL) {
        return;
    }

    free(body->name);

    body->name = NULL;
    body->name_len = 0;
    body->status = 0;
    body->has_expires = 0;
    body->expires_at = 0;
    body->has_previous = 0;
    body->prev_expires_at = 0;
}


projkey_store_rc_e
projkey_store_parse_time(projkey_store_t *st, const char *text, size_t len,
    int64_t *t)
{
    int                  i, v[6];
    size_t               k;
    int64_t              days, y, m;
    const unsigned char *p;
    static const int     mdays[12] = { 31, 28, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31 };
    static const char    form[] = "dddd-dd-ddTdd:dd:dd";

    p = (const unsigned char *) text;

    if (len < sizeof(form)) {
        goto invalid;
    }

    for (k = 0; k < sizeof(form) - 1; k++) {
        if (form[k] == 'd') {
            if (p[k] < '0' || p[k] > '9') {
                goto invalid;
            }

        } else if (form[k] == 'T') {
            if (p[k] != 'T' && p[k] != 't') {
                goto invalid;
            }

        } else if (p[k] != (unsigned char) form[k]) {
            goto invalid;
        }
    }

    for (i = 0; i < 6; i++) {
        k = (i == 0) ? 0 : 2 + 3 * i;
        v[i] = (p[k] - '0') * 10 + (p[k + 1] - '0');

        if (i == 0) {
            v[0] = v[0] * 100 + (p[2] - '0') * 10 + (p[3] - '0');
        }
    }

    k = sizeof(form) - 1;

    /* a fraction of a second is cut off: the contract's times are seconds */

    if (k < len && p[k] == '.') {
        k++;

        if (k == len || p[k] < '0' || p[k] > '9') {
            goto invalid;
        }

        while (k < len && p[k] >= '0' && p[k] <= '9') {
            k++;
        }
    }

    if (!((len - k == 1 && (p[k] == 'Z' || p[k] == 'z'))
          || (len - k == 6 && memcmp(p + k, "+00:00", 6) == 0)))
    {
        goto invalid;
    }

    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23
        || v[4] > 59 || v[5] > 59)
    {
        goto invalid;
    }

    y = v[0];
    m = v[1];

    if (v[2] > mdays[m - 1]
        + (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
    {
        goto invalid;
    }

    /* days since 1970-01-01 of a proleptic Gregorian date */

    if (m <= 2) {
        y--;
        m += 12;
    }

    days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5
           + v[2] - 719469;

    *t = days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];

    return PROJKEY_STORE_OK;

invalid:

    if (st != NULL) {
        projkey_store_set_errmsg(st, "The time must be RFC 3339 in UTC, "
                                 "e.g. 2026-11-27T05:35:01Z.");
    }

    return PROJKEY_STORE_INVALID;
}


char *
projkey_store_format_time(int64_t t, char *buf)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, PROJKEY_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm)
           != PROJKEY_TIME_LEN - 1)
    {
        snprintf(buf, PROJKEY_TIME_LEN, "%lld", (long long) t);
    }

    return buf;
}


/* now plus years on the calendar: 2026-02-28 + 10 years is 2036-02-28 */

static int64_t
projkey_store_years_ahead(int64_t now, int years)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) now;

    if (gmtime_r(&tt, &tm) == NULL) {
        return now + (int64_t) years * 365 * 86400;
    }

    tm.tm_year += years;

    return (int64_t) timegm(&tm);
}


projkey_store_rc_e
projkey_store_check_expires(projkey_store_t *st, int64_t t, int64_t now)
{
    if (t <= now) {
        if (st != NULL) {
            projkey_store_set_errmsg(st, "The expiry must be in the "
                                     "future.");
        }

        return PROJKEY_STORE_INVALID;
    }

    if (t > projkey_store_years_ahead(now, PROJKEY_EXPIRES_YEARS)) {
        if (st != NULL) {
            projkey_store_set_errmsg(st, "The expiry must be at most 10 "
                                     "years ahead.");
        }

        return PROJKEY_STORE_INVALID;
    }

    return PROJKEY_STORE_OK;
}


projkey_store_rc_e
projkey_store_check_previous(projkey_store_t *st, int64_t *t, int64_t now)
{
    if (*t > now + PROJKEY_ROLL_MAX) {
        if (st != NULL) {
            projkey_store_set_errmsg(st, "The previous secret must stop "
                                     "working at most 30 days ahead.");
        }

        return PROJKEY_STORE_INVALID;
    }

    if (*t < now) {
        *t = now;
    }

    return PROJKEY_STORE_OK;
}


/* the pages of the key list */

const char *
projkey_store_check_page(const projkey_page_t *page)
{
    size_t         chars, n;
    unsigned char  bin[PROJKEY_CURSOR_MAX];

    if (page->limit < 0 || page->limit > PROJKEY_PAGE_LIMIT_MAX) {
        return "The limit must be a number from 1 to 1000.";
    }

    if (page->status < PROJKEY_PAGE_ANY
        || page->status > PROJKEY_PAGE_EXPIRED)
    {
        return "The status must be \"active\", \"disabled\" or \"expired\".";
    }

    switch (projkey_store_check_text(page->q, page->q_len, &chars)) {

    case PROJKEY_TEXT_NOT_UTF8:
        return "The search text must be valid UTF-8.";

    case PROJKEY_TEXT_CONTROL:
        return "The search text must not contain control characters.";

    default:
        break;
    }

    if (chars > PROJKEY_SEARCH_MAX) {
        return "The search text must be at most 100 characters.";
    }

    if (page->after_len != 0
        && projkey_store_cursor_decode(page->after, page->after_len, bin,
                                       &n)
           != 0)
    {
        return "Bad cursor: give the \"next\" of a previous page.";
    }

    return NULL;
}


projkey_store_rc_e
projkey_store_update(projkey_store_t *st, const char *project,
    size_t project_len, const char *id, size_t id_len, const char *name,
    size_t name_len, int status, const projkey_actor_t *actor,
    projkey_row_pt cb, void *data)
{
    projkey_change_t  change;

    memset(&change, 0, sizeof(projkey_change_t));
    change.name = name;
    change.name_len = name_len;
    change.status = status;

    return st->ops->change(st, project, project_len, id, id_len, &change,
                           actor, NULL, cb, data);
}


projkey_store_rc_e
projkey_store_search_merge(projkey_store_t *st)
{
    int                 i, more;
    projkey_store_rc_e  rc;

    for (i = 0; i < PROJKEY_SEARCH_MERGE_MAX; i++) {
        rc = st->ops->search_merge_step(st, &more);
        if (rc != PROJKEY_STORE_OK || !more) {
            return rc;
        }
    }

    return PROJKEY_STORE_OK;
}


void
projkey_store_free(void *p)
{
    free(p);
}


/* a cursor of the right form, decoded; -1 otherwise */

int
projkey_store_cursor_decode(const char *cursor, size_t len,
    unsigned char *bin, size_t *bin_len)
{
    const char  *end;

    if (len == 0 || len > PROJKEY_CURSOR_MAX) {
        return -1;
    }

    /* strict: no padding, no other character, no stray bits */

    if (sodium_base642bin(bin, PROJKEY_CURSOR_MAX, cursor, len, NULL,
                          bin_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        != 0
        || end != cursor + len)
    {
        return -1;
    }

    if (*bin_len < PROJKEY_CURSOR_FIXED
        || bin[0] != PROJKEY_CURSOR_VERSION
        || *bin_len != (size_t) PROJKEY_CURSOR_FIXED + bin[9])
    {
        return -1;
    }

    return 0;
}


/* the MAC binds the place to the project, the search and the status */

void
projkey_store_cursor_mac(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, const unsigned char *bin,
    size_t len, unsigned char *mac)
{
    int                        i, k;
    uint64_t                   n;
    unsigned char              num[8];
    crypto_generichash_state   h;
    const unsigned char       *part[2];
    size_t                     part_len[2];

    part[0] = (const unsigned char *) project;
    part_len[0] = project_len;
    part[1] = (const unsigned char *) page->q;
    part_len[1] = page->q_len;

    crypto_generichash_init(&h, st->cursor_key, PROJKEY_CURSOR_KEY_LEN,
                            PROJKEY_CURSOR_MAC_LEN);
    crypto_generichash_update(&h, (const unsigned char *) "projkey cursor",
                              sizeof("projkey cursor"));

    for (k = 0; k < 2; k++) {
        n = part_len[k];

        for (i = 0; i < 8; i++) {
            num[i] = (unsigned char) (n >> (8 * i));
        }

        crypto_generichash_update(&h, num, 8);

        if (part_len[k] != 0) {
            crypto_generichash_update(&h, part[k], part_len[k]);
        }
    }

    num[0] = (unsigned char) page->status;
    crypto_generichash_update(&h, num, 1);
    crypto_generichash_update(&h, bin, len);
    crypto_generichash_final(&h, mac, PROJKEY_CURSOR_MAC_LEN);
}


char *
projkey_store_cursor(projkey_store_t *st, const char *project,
    size_t project_len, const projkey_page_t *page, int64_t created,
    const char *id, size_t id_len)
{
    int            i;
    char          *out;
    size_t         n, size;
    uint64_t       at;
    unsigned char  bin[PROJKEY_CURSOR_FIXED + PROJKEY_CURSOR_ID_MAX];

    at = (uint64_t) created;

    bin[0] = PROJKEY_CURSOR_VERSION;

    for (i = 0; i < 8; i++) {
        bin[1 + i] = (unsigned char) (at >> (56 - 8 * i));
    }

    bin[9] = (unsigned char) id_len;
    memcpy(bin + 10, id, id_len);
    n = 10 + id_len;

    projkey_store_cursor_mac(st, project, project_len, page, bin, n,
                             bin + n);
    n += PROJKEY_CURSOR_MAC_LEN;

    size = sodium_base64_ENCODED_LEN(n,
                                     sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    out = malloc(size);
    if (out == NULL) {
        return NULL;
    }

    sodium_bin2base64(out, size, bin, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    return out;
}


void
projkey_buf_add(projkey_buf_t *b, const char *p, size_t len)
{
    char    *data;
    size_t   size;

    if (b->failed) {
        return;
    }

    if (b->len + len + 1 > b->size) {
        size = b->size ? b->size : 4096;

        while (size < b->len + len + 1) {
            size *= 2;
        }

        data = realloc(b->data, size);

        if (data == NULL) {
            b->failed = 1;
            return;
        }

        b->data = data;
        b->size = size;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
}


projkey_store_rc_e
projkey_buf_done(projkey_store_t *st, projkey_buf_t *b, char **out,
    size_t *len)
{
    if (b->failed) {
        free(b->data);
        projkey_store_set_errmsg(st, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    *out = b->data;

    if (len != NULL) {
        *len = b->len;
    }

    return PROJKEY_STORE_OK;
}
