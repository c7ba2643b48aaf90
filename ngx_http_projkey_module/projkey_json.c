
/*
 * projkey: the admin API's JSON (projkey_json.h), with SQLite's JSON
 * functions on an in-memory database of its own.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "projkey_json.h"
#include "projkey_text.h"


#define PROJKEY_JSON_ERRMSG_LEN  512

/* an unknown field is quoted in the error at most this long */
#define PROJKEY_FIELD_MAX        40

#define PROJKEY_RFC3339          "'%Y-%m-%dT%H:%M:%SZ'"


/* the members of a body, as projkey_json_member() sees them */
#define PROJKEY_JSON_NAME        0x01
#define PROJKEY_JSON_STATUS      0x02
#define PROJKEY_JSON_TIME        0x04


enum {
    PROJKEY_JSON_CHECK = 0,
    PROJKEY_JSON_EACH,
    PROJKEY_JSON_ROW,
    PROJKEY_JSON_NSTMT
};


struct projkey_json_s {
    sqlite3       *db;
    sqlite3_stmt  *stmt[PROJKEY_JSON_NSTMT];
    char           errmsg[PROJKEY_JSON_ERRMSG_LEN];
};


static const char  *projkey_json_sql[PROJKEY_JSON_NSTMT] = {

    /* json_type() of malformed JSON is an error, not NULL */
    "SELECT json_valid(?1), CASE WHEN json_valid(?1) THEN json_type(?1) END",

    "SELECT key, type, value FROM json_each(?1)",

    "SELECT json_object('id', ?1, 'name', ?2, 'preview', ?3, 'status', ?4,"
    " 'project', ?5, 'created_by', ?6,"
    " 'created_at', strftime(" PROJKEY_RFC3339 ", ?7, 'unixepoch'),"
    " 'updated_at', strftime(" PROJKEY_RFC3339 ", ?8, 'unixepoch'),"
    " 'last_used_at', CASE WHEN ?9 > 0 THEN"
    " strftime(" PROJKEY_RFC3339 ", ?9, 'unixepoch') END,"
    " 'expires_at', CASE WHEN ?10 > 0 THEN"
    " strftime(" PROJKEY_RFC3339 ", ?10, 'unixepoch') END,"
    " 'previous_preview', ?11,"
    " 'previous_expires_at', CASE WHEN ?11 IS NOT NULL THEN"
    " strftime(" PROJKEY_RFC3339 ", ?12, 'unixepoch') END)"
};


static projkey_store_rc_e projkey_json_parse_any(projkey_json_t *json,
    const char *body, size_t len, int require_one, int roll,
    projkey_body_t *out);
static projkey_store_rc_e projkey_json_parse_members(projkey_json_t *json,
    const char *body, size_t len, int require_one, int roll,
    projkey_body_t *out);
static projkey_store_rc_e projkey_json_member(projkey_json_t *json,
    sqlite3_stmt *s, int roll, unsigned *seen, projkey_body_t *out);
static projkey_store_rc_e projkey_json_parse_name(projkey_json_t *json,
    const char *type, const char *value, size_t len, projkey_body_t *out);
static projkey_store_rc_e projkey_json_parse_status(projkey_json_t *json,
    const char *type, const char *value, projkey_body_t *out);
static projkey_store_rc_e projkey_json_unknown(projkey_json_t *json,
    const char *key, size_t n);
static projkey_store_rc_e projkey_json_parse_time(projkey_json_t *json,
    const char *type, const char *value, size_t len, int roll,
    projkey_body_t *out);
static const char *projkey_json_status(const projkey_row_t *row, int64_t now);
static void projkey_json_set_errmsg(projkey_json_t *json, const char *fmt,
    ...);
static projkey_store_rc_e projkey_json_invalid(projkey_json_t *json,
    const char *msg);
static projkey_store_rc_e projkey_json_fail(projkey_json_t *json);


projkey_store_rc_e
projkey_json_open(projkey_json_t **json)
{
    int              rc, i;
    projkey_json_t  *j;

    j = calloc(1, sizeof(projkey_json_t));
    *json = j;

    if (j == NULL) {
        return PROJKEY_STORE_ERROR;
    }

    rc = sqlite3_open_v2(":memory:", &j->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         | SQLITE_OPEN_NOMUTEX, NULL);

    for (i = 0; rc == SQLITE_OK && i < PROJKEY_JSON_NSTMT; i++) {
        rc = sqlite3_prepare_v3(j->db, projkey_json_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &j->stmt[i], NULL);
    }

    if (rc != SQLITE_OK) {
        projkey_json_set_errmsg(j, "sqlite3 in memory: %s",
                                j->db ? sqlite3_errmsg(j->db)
                                      : sqlite3_errstr(rc));
        return PROJKEY_STORE_ERROR;
    }

    return PROJKEY_STORE_OK;
}


void
projkey_json_close(projkey_json_t *json)
{
    int  i;

    if (json == NULL) {
        return;
    }

    for (i = 0; i < PROJKEY_JSON_NSTMT; i++) {
        sqlite3_finalize(json->stmt[i]);
    }

    sqlite3_close(json->db);
    free(json);
}


const char *
projkey_json_errmsg(projkey_json_t *json)
{
    return json != NULL ? json->errmsg : "out of memory";
}


projkey_store_rc_e
projkey_json_parse_body(projkey_json_t *json, const char *body, size_t len,
    int require_one, projkey_body_t *out)
{
    return projkey_json_parse_any(json, body, len, require_one, 0, out);
}


projkey_store_rc_e
projkey_json_parse_roll(projkey_json_t *json, const char *body, size_t len,
    projkey_body_t *out)
{
    return projkey_json_parse_any(json, body, len, 0, 1, out);
}


void
projkey_json_free_body(projkey_body_t *body)
{
    if (body == NULL) {
        return;
    }

    free(body->name);

    memset(body, 0, sizeof(projkey_body_t));
}


static projkey_store_rc_e
projkey_json_parse_any(projkey_json_t *json, const char *body, size_t len,
    int require_one, int roll, projkey_body_t *out)
{
    char                *copy;
    size_t               i;
    projkey_store_rc_e   src;

    memset(out, 0, sizeof(projkey_body_t));

    if (len > PROJKEY_BODY_MAX) {
        projkey_json_set_errmsg(json, "The request body is too large.");
        return PROJKEY_STORE_INVALID;
    }

    /* SQLite would read text up to a NUL only */
    if (len == 0 || memchr(body, '\0', len) != NULL) {
        projkey_json_set_errmsg(json, "The request body is not valid JSON.");
        return PROJKEY_STORE_INVALID;
    }

    /*
     * SQLite's JSON functions cut a string at an escaped NUL, so that
     * "a\u0000" would pass as "a": parse a copy where it is \u0001, a
     * control character still, refused like any other.
     */

    copy = NULL;

    for (i = 0; i + 6 <= len; i++) {
        if (body[i] != '\\') {
            continue;
        }

        if (memcmp(body + i + 1, "u0000", 5) == 0) {
            if (copy == NULL) {
                copy = malloc(len);

                if (copy == NULL) {
                    projkey_json_set_errmsg(json, "out of memory");
                    return PROJKEY_STORE_ERROR;
                }

                memcpy(copy, body, len);
            }

            copy[i + 5] = '1';
        }

        /* the escaped character is not an escape itself */
        i++;
    }

    if (copy != NULL) {
        body = copy;
    }

    src = projkey_json_parse_members(json, body, len, require_one, roll, out);

    free(copy);

    return src;
}


static projkey_store_rc_e
projkey_json_parse_members(projkey_json_t *json, const char *body, size_t len,
    int require_one, int roll, projkey_body_t *out)
{
    int                  rc;
    unsigned             seen;
    const char          *type;
    sqlite3_stmt        *s;
    projkey_store_rc_e   src;

    s = json->stmt[PROJKEY_JSON_CHECK];

    sqlite3_bind_text(s, 1, body, len, SQLITE_STATIC);

    rc = sqlite3_step(s);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return projkey_json_fail(json);
    }

    if (sqlite3_column_int(s, 0) == 0) {
        sqlite3_reset(s);
        return projkey_json_invalid(json, "The request body is not valid "
                                    "JSON.");
    }

    type = (const char *) sqlite3_column_text(s, 1);

    if (type == NULL || strcmp(type, "object") != 0) {
        sqlite3_reset(s);
        return projkey_json_invalid(json, "The request body must be a JSON "
                                    "object.");
    }

    sqlite3_reset(s);

    s = json->stmt[PROJKEY_JSON_EACH];

    sqlite3_bind_text(s, 1, body, len, SQLITE_STATIC);

    seen = 0;
    src = PROJKEY_STORE_OK;

    /* json_each() lists every member, duplicates included, in order */

    for ( ;; ) {
        rc = sqlite3_step(s);

        if (rc != SQLITE_ROW) {
            break;
        }

        src = projkey_json_member(json, s, roll, &seen, out);
        if (src != PROJKEY_STORE_OK) {
            break;
        }
    }

    sqlite3_reset(s);

    if (src == PROJKEY_STORE_OK && rc != SQLITE_DONE) {
        src = projkey_json_fail(json);
    }

    if (src == PROJKEY_STORE_OK && require_one && seen == 0) {
        src = projkey_json_invalid(json, "Nothing to change: give a name, a "
                                   "status or an expiry.");
    }

    if (src != PROJKEY_STORE_OK) {
        projkey_json_free_body(out);
    }

    return src;
}


/* one member of the object (json_each()'s row in s), at most once */

static projkey_store_rc_e
projkey_json_member(projkey_json_t *json, sqlite3_stmt *s, int roll,
    unsigned *seen, projkey_body_t *out)
{
    size_t       n, len;
    unsigned     member;
    const char  *key, *type, *value;

    key = (const char *) sqlite3_column_text(s, 0);
    n = sqlite3_column_bytes(s, 0);
    type = (const char *) sqlite3_column_text(s, 1);
    value = (const char *) sqlite3_column_text(s, 2);
    len = sqlite3_column_bytes(s, 2);

    if (key == NULL || type == NULL) {
        projkey_json_set_errmsg(json, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    /* the lengths too: a key may hold a NUL that strcmp() stops at */

    if (roll ? n == 19 && strcmp(key, "previous_expires_at") == 0
             : n == 10 && strcmp(key, "expires_at") == 0)
    {
        member = PROJKEY_JSON_TIME;

    } else if (!roll && n == 4 && strcmp(key, "name") == 0) {
        member = PROJKEY_JSON_NAME;

    } else if (!roll && n == 6 && strcmp(key, "status") == 0) {
        member = PROJKEY_JSON_STATUS;

    } else {
        return projkey_json_unknown(json, key, n);
    }

    if (*seen & member) {
        projkey_json_set_errmsg(json, "Duplicate field \"%s\".", key);
        return PROJKEY_STORE_INVALID;
    }

    *seen |= member;

    switch (member) {

    case PROJKEY_JSON_TIME:
        return projkey_json_parse_time(json, type, value, len, roll, out);

    case PROJKEY_JSON_NAME:
        return projkey_json_parse_name(json, type, value, len, out);

    default:
        return projkey_json_parse_status(json, type, value, out);
    }
}


/* "name": a string, by the name rules; trimmed and copied */

static projkey_store_rc_e
projkey_json_parse_name(projkey_json_t *json, const char *type,
    const char *value, size_t len, projkey_body_t *out)
{
    size_t       name_len;
    const char  *name, *msg;

    if (strcmp(type, "text") != 0 || value == NULL) {
        return projkey_json_invalid(json, "The name must be a string.");
    }

    msg = projkey_text_check_name(value, len, &name, &name_len);
    if (msg != NULL) {
        return projkey_json_invalid(json, msg);
    }

    out->name = malloc(name_len + 1);

    if (out->name == NULL) {
        projkey_json_set_errmsg(json, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    memcpy(out->name, name, name_len);
    out->name[name_len] = '\0';
    out->name_len = name_len;

    return PROJKEY_STORE_OK;
}


/* "status": "active" or "disabled" */

static projkey_store_rc_e
projkey_json_parse_status(projkey_json_t *json, const char *type,
    const char *value, projkey_body_t *out)
{
    if (strcmp(type, "text") == 0 && value != NULL) {

        if (strcmp(value, "active") == 0) {
            out->status = PROJKEY_STATUS_ACTIVE;
            return PROJKEY_STORE_OK;
        }

        if (strcmp(value, "disabled") == 0) {
            out->status = PROJKEY_STATUS_DISABLED;
            return PROJKEY_STORE_OK;
        }
    }

    return projkey_json_invalid(json, "The status must be \"active\" or "
                                "\"disabled\".");
}


/* the field name quoted printable and short, whatever it holds */

static projkey_store_rc_e
projkey_json_unknown(projkey_json_t *json, const char *key, size_t n)
{
    char      field[PROJKEY_FIELD_MAX + 4];
    size_t    i, k, len;
    uint32_t  cp;

    for (i = 0, k = 0; i < n && k < PROJKEY_FIELD_MAX; i += len) {
        len = projkey_utf8_char((const unsigned char *) key + i, n - i, &cp);

        if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            field[k++] = '?';
            len = 1;
            continue;
        }

        if (k + len > PROJKEY_FIELD_MAX) {
            break;
        }

        memcpy(field + k, key + i, len);
        k += len;
    }

    if (i < n) {
        memcpy(field + k, "...", 3);
        k += 3;
    }

    field[k] = '\0';

    projkey_json_set_errmsg(json, "Unknown field \"%s\".", field);

    return PROJKEY_STORE_INVALID;
}


/* "expires_at": a time or null; "previous_expires_at": a time */

static projkey_store_rc_e
projkey_json_parse_time(projkey_json_t *json, const char *type,
    const char *value, size_t len, int roll, projkey_body_t *out)
{
    int64_t      t, now;
    const char  *msg;

    now = time(NULL);

    if (!roll && strcmp(type, "null") == 0) {
        out->has_expires = 1;
        out->expires_at = 0;
        return PROJKEY_STORE_OK;
    }

    if (strcmp(type, "text") != 0 || value == NULL) {
        return projkey_json_invalid(json, roll
                                    ? "previous_expires_at must be a time, "
                                      "e.g. 2026-11-27T05:35:01Z."
                                    : "expires_at must be a time, e.g. "
                                      "2026-11-27T05:35:01Z, or null.");
    }

    msg = projkey_text_parse_time(value, len, &t);

    if (msg == NULL) {
        msg = roll ? projkey_text_check_previous(&t, now)
                   : projkey_text_check_expires(t, now);
    }

    if (msg != NULL) {
        return projkey_json_invalid(json, msg);
    }

    if (roll) {
        out->has_previous = 1;
        out->prev_expires_at = t;

    } else {
        out->has_expires = 1;
        out->expires_at = t;
    }

    return PROJKEY_STORE_OK;
}


projkey_store_rc_e
projkey_json_row(projkey_json_t *json, const projkey_row_t *row, int64_t now,
    char **out, size_t *len)
{
    int            rc;
    size_t         n;
    const char    *p;
    sqlite3_stmt  *s;

    *out = NULL;

    s = json->stmt[PROJKEY_JSON_ROW];

    sqlite3_bind_text(s, 1, row->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, row->name, row->name_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, row->preview, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, projkey_json_status(row, now), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, row->project, row->project_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, row->created_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, row->created_at);
    sqlite3_bind_int64(s, 8, row->updated_at);
    sqlite3_bind_int64(s, 9, row->last_used_at);
    sqlite3_bind_int64(s, 10, row->expires_at);

    if (row->prev_hash != NULL && row->prev_preview != NULL) {
        sqlite3_bind_text(s, 11, row->prev_preview, -1, SQLITE_STATIC);

    } else {
        sqlite3_bind_null(s, 11);
    }

    sqlite3_bind_int64(s, 12, row->prev_expires_at);

    rc = sqlite3_step(s);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return projkey_json_fail(json);
    }

    p = (const char *) sqlite3_column_text(s, 0);
    n = sqlite3_column_bytes(s, 0);

    if (p != NULL) {
        *out = malloc(n + 1);
    }

    if (*out == NULL) {
        sqlite3_reset(s);
        projkey_json_set_errmsg(json, "out of memory");
        return PROJKEY_STORE_ERROR;
    }

    memcpy(*out, p, n + 1);
    sqlite3_reset(s);

    if (len != NULL) {
        *len = n;
    }

    return PROJKEY_STORE_OK;
}


/* a key past its expiry is "expired", whatever its stored status */

static const char *
projkey_json_status(const projkey_row_t *row, int64_t now)
{
    if (row->expires_at > 0 && row->expires_at <= now) {
        return "expired";
    }

    return row->status == PROJKEY_STATUS_ACTIVE ? "active" : "disabled";
}


static void
projkey_json_set_errmsg(projkey_json_t *json, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(json->errmsg, PROJKEY_JSON_ERRMSG_LEN, fmt, args);
    va_end(args);
}


static projkey_store_rc_e
projkey_json_invalid(projkey_json_t *json, const char *msg)
{
    projkey_json_set_errmsg(json, "%s", msg);
    return PROJKEY_STORE_INVALID;
}


/* SQLite's own failure: out of memory, or a bug; for the log */

static projkey_store_rc_e
projkey_json_fail(projkey_json_t *json)
{
    projkey_json_set_errmsg(json, "sqlite3 in memory: %s",
                            sqlite3_errmsg(json->db));
    return PROJKEY_STORE_ERROR;
}
