
/*
 * projkey: the key store, apart from nginx (see projkey_store.h): the
 * engine a database names, and what needs no database (pages, cursors);
 * the rest is the engine's (projkey_store_sqlite.c, projkey_store_pg.c).
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


projkey_store_rc_e
projkey_store_invalid(projkey_store_t *st, const char *msg)
{
    projkey_store_set_errmsg(st, "%s", msg);
    return PROJKEY_STORE_INVALID;
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

    switch (projkey_text_check(page->q, page->q_len, &chars)) {

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
