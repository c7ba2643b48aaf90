
/*
 * Unit tests of what needs no store: the contract's text and times
 * (projkey_text.c), the admin API's JSON (projkey_json.c) and its routes
 * and error answer (projkey_api.c), as the module, the CLI and the
 * fuzzers use them.  An SQLite connection of the test's own reads the
 * JSON back.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "projkey_text.h"
#include "projkey_json.h"
#include "projkey_api.h"
#include "tap.h"
#include "jx.h"


static projkey_json_t  *t_json;
static const char      *t_msg;           /* what the last check said */


/* the checks of projkey_text, as a store's result and t_msg */

static int
t_name(const char *name, size_t len, const char **out, size_t *out_len)
{
    t_msg = projkey_text_check_name(name, len, out, out_len);
    return t_msg == NULL ? PROJKEY_STORE_OK : PROJKEY_STORE_INVALID;
}


static int
t_time(const char *text, size_t len, int64_t *t)
{
    t_msg = projkey_text_parse_time(text, len, t);
    return t_msg == NULL ? PROJKEY_STORE_OK : PROJKEY_STORE_INVALID;
}


static int
t_expires(int64_t t, int64_t now)
{
    t_msg = projkey_text_check_expires(t, now);
    return t_msg == NULL ? PROJKEY_STORE_OK : PROJKEY_STORE_INVALID;
}


static int
t_previous(int64_t *t, int64_t now)
{
    t_msg = projkey_text_check_previous(t, now);
    return t_msg == NULL ? PROJKEY_STORE_OK : PROJKEY_STORE_INVALID;
}


static void
t_names(void)
{
    int          i;
    char         name[512];
    size_t       len;
    const char  *out;

    /* the text rules the admin location also applies to users, projects */
    is_int(projkey_text_check("caf\xc3\xa9 \xe2\x80\xa8", 9, &len),
           PROJKEY_TEXT_OK, "text: UTF-8 with U+2028 is text");
    is_int(len, 6, "text: 6 characters");
    is_int(projkey_text_check("a\xed\xa0\x80", 4, &len),
           PROJKEY_TEXT_NOT_UTF8, "text: an encoded surrogate is not UTF-8");
    is_int(projkey_text_check("a\xc2\x85", 3, &len),
           PROJKEY_TEXT_CONTROL, "text: C1 NEL is a control character");
    is_int(projkey_text_check("a\tb", 3, &len),
           PROJKEY_TEXT_CONTROL, "text: a tab is a control character");

    is_int(t_name("  ok name \t\n", 12, &out, &len),
           PROJKEY_STORE_OK, "a name with white space around");
    is_mem(out, len, "ok name", 7, "is trimmed");

    is_int(t_name("   ", 3, &out, &len),
           PROJKEY_STORE_INVALID, "blank name");
    is_str(t_msg, "The name must not be empty.",
           "is empty");
    is_int(t_name("", 0, &out, &len),
           PROJKEY_STORE_INVALID, "empty name");

    name[0] = '\0';
    for (i = 0; i < 100; i++) {
        strcat(name, "\xe2\x82\xac");
    }

    is_int(t_name(name, strlen(name), &out, &len),
           PROJKEY_STORE_OK, "100 three-byte characters");
    strcat(name, "a");
    is_int(t_name(name, strlen(name), &out, &len),
           PROJKEY_STORE_INVALID, "101 characters");
    is_str(t_msg, "The name must be at most 100 "
           "characters.", "is too long");

    memset(name, 'a', 100);
    is_int(t_name(name, 100, &out, &len),
           PROJKEY_STORE_OK, "100 ASCII characters");
    strcpy(name, "\xf0\x9f\x94\x91 key");
    is_int(t_name(name, strlen(name), &out, &len),
           PROJKEY_STORE_OK, "a four-byte character");

    is_int(t_name("a\tb", 3, &out, &len),
           PROJKEY_STORE_INVALID, "a tab inside");
    is_str(t_msg, "The name must not contain control "
           "characters.", "is a control character");
    is_int(t_name("a\0b", 3, &out, &len),
           PROJKEY_STORE_INVALID, "a NUL inside");
    is_int(t_name("a\x7f", 2, &out, &len),
           PROJKEY_STORE_INVALID, "DEL");
    is_int(t_name("a\xc2\x85", 3, &out, &len),
           PROJKEY_STORE_INVALID, "U+0085 (C1)");
    is_int(t_name("a\xc2\xa0" "b", 4, &out, &len),
           PROJKEY_STORE_OK, "U+00A0 is allowed");
    is_int(t_name("a\xe2\x80\xa8", 4, &out, &len),
           PROJKEY_STORE_OK, "U+2028 is allowed");

    is_int(t_name("a\xff", 2, &out, &len),
           PROJKEY_STORE_INVALID, "a byte 0xff");
    is_str(t_msg, "The name must be valid UTF-8.",
           "is invalid UTF-8");
    is_int(t_name("\xc0\xaf", 2, &out, &len),
           PROJKEY_STORE_INVALID, "an overlong form");
    is_int(t_name("\xed\xa0\x80", 3, &out, &len),
           PROJKEY_STORE_INVALID, "a surrogate");
    is_int(t_name("\xe2\x82", 2, &out, &len),
           PROJKEY_STORE_INVALID, "a truncated character");
}


static void
t_body(const char *body, int require_one,
    const char *expected, const char *name, int status)
{
    projkey_body_t      b;
    projkey_store_rc_e  rc;

    rc = projkey_json_parse_body(t_json, body, strlen(body), require_one, &b);

    if (expected != NULL) {
        ok(rc == PROJKEY_STORE_INVALID
           && strcmp(projkey_json_errmsg(t_json), expected) == 0,
           "%s: %s", body, expected);
        ok(b.name == NULL, "%s: no name left", body);
        return;
    }

    ok(rc == PROJKEY_STORE_OK, "%s: valid", body);
    is_str(b.name, name, "%s: name", body);
    is_int(b.status, status, "%s: status", body);

    projkey_json_free_body(&b);
}


static void
t_bodies(void)
{
    char            *big;
    projkey_body_t   b;

    t_body("", 0, "The request body is not valid JSON.", NULL, 0);
    t_body("{", 0, "The request body is not valid JSON.", NULL, 0);
    t_body("{name:1}", 0, "The request body is not valid JSON.", NULL, 0);
    t_body("{\"name\":\"a\",}", 0,
           "The request body is not valid JSON.", NULL, 0);
    t_body("[]", 0, "The request body must be a JSON object.", NULL, 0);
    t_body("[{\"name\":\"a\"}]", 0,
           "The request body must be a JSON object.", NULL, 0);
    t_body("42", 0, "The request body must be a JSON object.", NULL, 0);
    t_body("\"name\"", 0, "The request body must be a JSON object.",
           NULL, 0);
    t_body("null", 0, "The request body must be a JSON object.", NULL, 0);
    t_body("{\"nme\":\"a\"}", 0, "Unknown field \"nme\".", NULL, 0);
    t_body("{\"name\":\"a\",\"id\":\"x\"}", 0,
           "Unknown field \"id\".", NULL, 0);
    t_body("{\"a\\u0000b\":1}", 0, "Unknown field \"a?b\".", NULL, 0);
    t_body("{\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":1}",
           0, "Unknown field \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\".",
           NULL, 0);
    t_body("{\"name\":\"a\",\"name\":\"b\"}", 0,
           "Duplicate field \"name\".", NULL, 0);
    t_body("{\"status\":\"active\",\"status\":\"active\"}", 0,
           "Duplicate field \"status\".", NULL, 0);
    t_body("{\"name\":1}", 0, "The name must be a string.", NULL, 0);
    t_body("{\"name\":null}", 0, "The name must be a string.", NULL, 0);
    t_body("{\"name\":{\"a\":\"b\"}}", 0, "The name must be a string.",
           NULL, 0);
    t_body("{\"name\":[\"a\"]}", 0, "The name must be a string.", NULL,
           0);
    t_body("{\"name\":true}", 0, "The name must be a string.", NULL, 0);
    t_body("{\"status\":\"Active\"}", 0,
           "The status must be \"active\" or \"disabled\".", NULL, 0);
    t_body("{\"status\":1}", 0,
           "The status must be \"active\" or \"disabled\".", NULL, 0);
    t_body("{\"status\":\"deleted\"}", 0,
           "The status must be \"active\" or \"disabled\".", NULL, 0);
    t_body("{\"name\":\"  \"}", 0, "The name must not be empty.",
           NULL, 0);
    t_body("{\"name\":\"a\\tb\"}", 0,
           "The name must not contain control characters.", NULL, 0);
    t_body("{\"name\":\"a\\u0000\"}", 0,
           "The name must not contain control characters.", NULL, 0);
    t_body("{\"name\":\"a\\u0085\"}", 0,
           "The name must not contain control characters.", NULL, 0);
    t_body("{\"name\":\"\xff\"}", 0, "The name must be valid UTF-8.",
           NULL, 0);
    t_body("{\"name\":\"0123456789012345678901234567890123456789"
           "01234567890123456789012345678901234567890123456789"
           "01234567890\"}", 0, "The name must be at most 100 characters.",
           NULL, 0);
    t_body("{}", 1, "Nothing to change: give a name, a status or an "
           "expiry.", NULL, 0);

    t_body("{}", 0, NULL, NULL, 0);
    t_body("{\"name\":\" Prod key \"}", 0, NULL, "Prod key", 0);
    t_body(" {\"name\" : \"caf\\u00e9\"} ", 1, NULL, "caf\xc3\xa9", 0);
    t_body("{\"name\":\"\xe2\x82\xac\"}", 1, NULL, "\xe2\x82\xac", 0);
    t_body("{\"status\":\"disabled\"}", 1, NULL, NULL,
           PROJKEY_STATUS_DISABLED);
    t_body("{\"status\":\"active\",\"name\":\"x\"}", 1, NULL, "x",
           PROJKEY_STATUS_ACTIVE);

    is_int(projkey_json_parse_body(t_json, "{}\0{", 3, 0, &b),
           PROJKEY_STORE_INVALID, "a NUL byte in the body");

    big = malloc(PROJKEY_BODY_MAX + 2);
    memset(big, ' ', PROJKEY_BODY_MAX + 1);
    big[0] = '{';
    big[PROJKEY_BODY_MAX] = '}';
    is_int(projkey_json_parse_body(t_json, big, PROJKEY_BODY_MAX + 1, 0, &b),
           PROJKEY_STORE_INVALID, "a body over PROJKEY_BODY_MAX");
    is_int(projkey_json_parse_body(t_json, big, PROJKEY_BODY_MAX, 0, &b),
           PROJKEY_STORE_INVALID, "a body of PROJKEY_BODY_MAX, invalid");
    big[PROJKEY_BODY_MAX - 1] = '}';
    is_int(projkey_json_parse_body(t_json, big, PROJKEY_BODY_MAX, 0, &b),
           PROJKEY_STORE_OK, "a body of PROJKEY_BODY_MAX, valid");
    free(big);

    projkey_json_free_body(NULL);
}


/* times of the contract: RFC 3339 UTC, to the second */

static void
t_times(void)
{
    int64_t           t, now;
    char              buf[PROJKEY_TIME_LEN];
    size_t            i;
    static const char  *bad[] = {
        "", "2026-11-27", "2026-11-27T05:35:01", "2026-11-27 05:35:01Z",
        "2026-11-27T05:35:01+01:00", "2026-11-27T05:35:01-00:00",
        "2026-11-27T05:35:01ZZ", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z",
        "2026-11-27T24:00:00Z", "2026-11-27T05:60:00Z",
        "2026-11-27T05:35:60Z", "1969-12-31T23:59:59Z",
        "2026-11-27T05:35:01.Z",
        "26-11-27T05:35:01Z", "2026-1-27T05:35:01Z", "+2026-11-27T05:35:01Z",
        "2026-11-27T05:35:0xZ", "1764221701", "tomorrow"
    };

    is_int(t_time("2026-11-27T05:35:01Z", 20, &t),
           PROJKEY_STORE_OK, "time: the contract's form");
    is_int(t, 1795757701, "time: as Unix seconds");
    is_str(projkey_text_format_time(t, buf), "2026-11-27T05:35:01Z",
           "time: formatted back");
    is_int(t_time("1970-01-01T00:00:00Z", 20, &t)
           == PROJKEY_STORE_OK && t == 0, 1, "time: the epoch");
    is_int(t_time("2028-02-29t23:59:59z", 20, &t)
           == PROJKEY_STORE_OK && t == 1835481599, 1,
           "time: a leap day, lower case t and z");
    is_int(t_time("2026-11-27T05:35:01.999Z", 24, &t)
           == PROJKEY_STORE_OK && t == 1795757701, 1,
           "time: a fraction is cut off");
    is_int(t_time("2026-11-27T05:35:01+00:00", 25, &t)
           == PROJKEY_STORE_OK && t == 1795757701, 1, "time: +00:00");
    is_int(t_time("2000-03-01T00:00:00Z", 20, &t)
           == PROJKEY_STORE_OK && t == 951868800, 1, "time: 2000-03-01");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (t_time(bad[i], strlen(bad[i]), &t)
            != PROJKEY_STORE_INVALID)
        {
            break;
        }
    }

    is_int(i, sizeof(bad) / sizeof(bad[0]), "time: every bad form refused%s%s",
           i < sizeof(bad) / sizeof(bad[0]) ? ", not " : "",
           i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : "");
    is_str(t_msg, "The time must be RFC 3339 in UTC, e.g. "
           "2026-11-27T05:35:01Z.", "time: and says so");

    now = 1795757701;

    is_int(t_expires(now, now), PROJKEY_STORE_INVALID,
           "expiry: now is not the future");
    is_str(t_msg, "The expiry must be in the future.",
           "expiry: and says so");
    is_int(t_expires(now + 1, now), PROJKEY_STORE_OK,
           "expiry: a second ahead");
    t_time("2036-11-27T05:35:01Z", 20, &t);
    is_int(t_expires(t, now), PROJKEY_STORE_OK,
           "expiry: 10 years ahead to the second");
    is_int(t_expires(t + 1, now), PROJKEY_STORE_INVALID,
           "expiry: a second more is refused");
    is_str(t_msg, "The expiry must be at most 10 years "
           "ahead.", "expiry: and says so");

    t = now - 100;
    is_int(t_previous(&t, now), PROJKEY_STORE_OK,
           "previous: the past is fine");
    is_int(t, now, "previous: and means now");
    t = now + 30 * 86400;
    is_int(t_previous(&t, now) == PROJKEY_STORE_OK
           && t == now + 30 * 86400, 1, "previous: 30 days ahead");
    t = now + 30 * 86400 + 1;
    is_int(t_previous(&t, now), PROJKEY_STORE_INVALID,
           "previous: a second more is refused");
}


static void
t_body_times(void)
{
    char            body[128], when[PROJKEY_TIME_LEN];
    int64_t         now;
    projkey_body_t  b;

    now = time(NULL);

    snprintf(body, sizeof(body), "{\"name\":\"x\",\"expires_at\":\"%s\"}",
             projkey_text_format_time(now + 3600, when));
    is_int(projkey_json_parse_body(t_json, body, strlen(body), 0, &b),
           PROJKEY_STORE_OK, "body: expires_at");
    ok(b.has_expires && b.expires_at == now + 3600, "body: its time");
    projkey_json_free_body(&b);

    is_int(projkey_json_parse_body(t_json, "{\"expires_at\":null}", 19, 1, &b),
           PROJKEY_STORE_OK, "body: expires_at null, alone");
    ok(b.has_expires && b.expires_at == 0 && b.name == NULL && b.status == 0,
       "body: means never");
    projkey_json_free_body(&b);

    is_int(projkey_json_parse_body(t_json, "{\"expires_at\":1795757701}", 25,
                                   1, &b),
           PROJKEY_STORE_INVALID, "body: a number is no time");
    is_int(projkey_json_parse_body(t_json, "{\"expires_at\":\"2020-01-01T00:"
                                   "00:00Z\"}", 37, 1, &b),
           PROJKEY_STORE_INVALID, "body: the past is refused");
    is_str(projkey_json_errmsg(t_json), "The expiry must be in the future.",
           "body: and says so");
    is_int(projkey_json_parse_body(t_json, "{\"expires_at\":\"soon\"}", 21,
                                   1, &b),
           PROJKEY_STORE_INVALID, "body: a bad time");
    snprintf(body, sizeof(body), "{\"expires_at\":\"%s\",\"expires_at\":null}",
             projkey_text_format_time(now + 3600, when));
    is_int(projkey_json_parse_body(t_json, body, strlen(body), 1, &b),
           PROJKEY_STORE_INVALID, "body: expires_at twice");
    is_int(projkey_json_parse_body(t_json, "{\"previous_expires_at\":null}",
                                   28, 1, &b),
           PROJKEY_STORE_INVALID, "body: previous_expires_at is the roll's");

    is_int(projkey_json_parse_roll(t_json, "{}", 2, &b), PROJKEY_STORE_OK,
           "roll body: {}");
    ok(!b.has_previous, "roll body: no previous end");
    snprintf(body, sizeof(body), "{\"previous_expires_at\":\"%s\"}",
             projkey_text_format_time(now + 86400, when));
    is_int(projkey_json_parse_roll(t_json, body, strlen(body), &b),
           PROJKEY_STORE_OK, "roll body: previous_expires_at");
    ok(b.has_previous && b.prev_expires_at == now + 86400,
       "roll body: its time");
    snprintf(body, sizeof(body), "{\"previous_expires_at\":\"%s\"}",
             projkey_text_format_time(now + 31 * 86400, when));
    is_int(projkey_json_parse_roll(t_json, body, strlen(body), &b),
           PROJKEY_STORE_INVALID, "roll body: 31 days refused");
    is_int(projkey_json_parse_roll(t_json, "{\"name\":\"x\"}", 12, &b),
           PROJKEY_STORE_INVALID, "roll body: no name");
    is_str(projkey_json_errmsg(t_json), "Unknown field \"name\".",
           "roll body: unknown field");
    is_int(projkey_json_parse_roll(t_json, "{\"previous_expires_at\":null}",
                                   28, &b),
           PROJKEY_STORE_INVALID, "roll body: null is no time");
}


/* the KEY object of the contract, in its order, times in RFC 3339 */

static void
t_rows(void)
{
    char           *json;
    size_t          len;
    projkey_row_t   r;
    unsigned char   prev[PROJKEY_HASH_LEN];

    memset(&r, 0, sizeof(r));
    r.id = "AbCdEfGhIjKlMnOpQrStUv";
    r.name = "caf\xc3\xa9 \"key\"";
    r.name_len = strlen(r.name);
    r.preview = "sk-project-...abcd";
    r.project = "json";
    r.project_len = 4;
    r.created_by = "bob";
    r.created_at = 0;
    r.updated_at = 1764221701;
    r.status = PROJKEY_STATUS_DISABLED;

    is_int(projkey_json_row(t_json, &r, 1764221701, &json, &len),
           PROJKEY_STORE_OK, "row");
    is_str(json, "{\"id\":\"AbCdEfGhIjKlMnOpQrStUv\","
           "\"name\":\"caf\xc3\xa9 \\\"key\\\"\","
           "\"preview\":\"sk-project-...abcd\",\"status\":\"disabled\","
           "\"project\":\"json\",\"created_by\":\"bob\","
           "\"created_at\":\"1970-01-01T00:00:00Z\","
           "\"updated_at\":\"2025-11-27T05:35:01Z\","
           "\"last_used_at\":null,\"expires_at\":null,"
           "\"previous_preview\":null,\"previous_expires_at\":null}",
           "row: every member, in the contract's order");
    is_int(len, strlen(json), "row: its length");
    free(json);

    /* used, expiring, rolled: an active key shows as expired once past */

    r.status = PROJKEY_STATUS_ACTIVE;
    r.last_used_at = 1700000000;
    r.expires_at = 1795757701;
    memset(prev, 0xab, sizeof(prev));
    r.prev_hash = prev;
    r.prev_preview = "sk-project-...wxyz";
    r.prev_expires_at = 1764308101;

    is_int(projkey_json_row(t_json, &r, 1795757700, &json, NULL),
           PROJKEY_STORE_OK, "row: used, expiring, rolled");
    is_str(t_jx(json, "$.status"), "active", "row: active before its expiry");
    is_str(t_jx(json, "$.last_used_at"), "2023-11-14T22:13:20Z",
           "row: last_used_at");
    is_str(t_jx(json, "$.expires_at"), "2026-11-27T05:35:01Z",
           "row: expires_at");
    is_str(t_jx(json, "$.previous_preview"), "sk-project-...wxyz",
           "row: previous_preview");
    is_str(t_jx(json, "$.previous_expires_at"), "2025-11-28T05:35:01Z",
           "row: previous_expires_at");
    free(json);

    is_int(projkey_json_row(t_json, &r, 1795757701, &json, NULL),
           PROJKEY_STORE_OK, "row: at its expiry");
    is_str(t_jx(json, "$.status"), "expired", "row: expired from then on");
    free(json);

    /* a previous secret's preview without its hash: taken out of use */

    r.prev_hash = NULL;
    is_int(projkey_json_row(t_json, &r, 0, &json, NULL), PROJKEY_STORE_OK,
           "row: no previous secret");
    is_str(t_jx(json, "$.previous_preview"), "null",
           "row: no previous_preview");
    is_str(t_jx(json, "$.previous_expires_at"), "null",
           "row: no previous_expires_at");
    free(json);
}


/* a route: op and id, or status and Allow */

static void
t_route(const char *path, unsigned method, int op, int status,
    const char *allow)
{
    projkey_api_route_t  route;

    projkey_api_route(path, strlen(path), method, &route);

    if (status == 0) {
        ok(route.status == 0 && (int) route.op == op && route.allow == NULL,
           "route %s %u: op %d (%d, status %d)", path, method, op,
           (int) route.op, route.status);
        return;
    }

    ok(route.status == status && route.code != NULL && route.message != NULL
       && ((allow == NULL && route.allow == NULL)
           || (allow != NULL && route.allow != NULL
               && strcmp(route.allow, allow) == 0)),
       "route %s %u: %d, Allow %s", path, method, status,
       allow ? allow : "none");
}


static void
t_routes(void)
{
    char                 path[64];
    projkey_api_route_t  route;

    static const char    id[] = "AbCdEfGhIjKl";

    t_route("keys", PROJKEY_HTTP_GET, PROJKEY_API_LIST, 0, NULL);
    t_route("/keys/", PROJKEY_HTTP_HEAD, PROJKEY_API_LIST, 0, NULL);
    t_route("keys", PROJKEY_HTTP_POST, PROJKEY_API_CREATE, 0, NULL);
    t_route("keys", PROJKEY_HTTP_PATCH, 0, PROJKEY_HTTP_NOT_ALLOWED,
            "GET, POST");
    t_route("keys", 0, 0, PROJKEY_HTTP_NOT_ALLOWED, "GET, POST");

    snprintf(path, sizeof(path), "keys/%s", id);
    t_route(path, PROJKEY_HTTP_GET, PROJKEY_API_GET, 0, NULL);
    t_route(path, PROJKEY_HTTP_PATCH, PROJKEY_API_UPDATE, 0, NULL);
    t_route(path, PROJKEY_HTTP_DELETE, PROJKEY_API_DELETE, 0, NULL);
    t_route(path, PROJKEY_HTTP_POST, 0, PROJKEY_HTTP_NOT_ALLOWED,
            "GET, PATCH, DELETE");

    projkey_api_route(path, strlen(path), PROJKEY_HTTP_GET, &route);
    ok(route.id == path + 5, "route keys/ID: the id inside the path");

    snprintf(path, sizeof(path), "keys/%s/", id);
    t_route(path, PROJKEY_HTTP_GET, PROJKEY_API_GET, 0, NULL);

    snprintf(path, sizeof(path), "keys/%s/roll", id);
    t_route(path, PROJKEY_HTTP_POST, PROJKEY_API_ROLL, 0, NULL);
    t_route(path, PROJKEY_HTTP_GET, 0, PROJKEY_HTTP_NOT_ALLOWED, "POST");

    projkey_api_route(path, strlen(path), PROJKEY_HTTP_POST, &route);
    ok(route.id == path + 5, "route keys/ID/roll: the id inside the path");

    t_route("keys/short", PROJKEY_HTTP_GET, 0, PROJKEY_HTTP_NOT_FOUND, NULL);
    t_route("keys/AbCdE/GhIjKl", PROJKEY_HTTP_GET, 0, PROJKEY_HTTP_NOT_FOUND,
            NULL);
    t_route("keys/AbCdE/GhIjKl/roll", PROJKEY_HTTP_POST, 0,
            PROJKEY_HTTP_NOT_FOUND, NULL);
    t_route("keys/AbCdEfGhIjKl/roll/x", PROJKEY_HTTP_POST, 0,
            PROJKEY_HTTP_NOT_FOUND, NULL);

    projkey_api_route("keys/short", 10, PROJKEY_HTTP_DELETE, &route);
    is_str(route.message, "No such API key in this project.",
           "route: a bad id is no key");

    t_route("audit", PROJKEY_HTTP_GET, PROJKEY_API_AUDIT, 0, NULL);
    t_route("audit", PROJKEY_HTTP_POST, 0, PROJKEY_HTTP_NOT_ALLOWED, "GET");
    t_route("nodes", PROJKEY_HTTP_HEAD, PROJKEY_API_NODES, 0, NULL);
    t_route("nodes", PROJKEY_HTTP_DELETE, 0, PROJKEY_HTTP_NOT_ALLOWED,
            "GET");

    t_route("", PROJKEY_HTTP_GET, 0, PROJKEY_HTTP_NOT_FOUND, NULL);
    t_route("keysx", PROJKEY_HTTP_GET, 0, PROJKEY_HTTP_NOT_FOUND, NULL);
    t_route("audits", PROJKEY_HTTP_GET, 0, PROJKEY_HTTP_NOT_FOUND, NULL);
    t_route("keys//", PROJKEY_HTTP_GET, 0, PROJKEY_HTTP_NOT_FOUND, NULL);

    projkey_api_route("other", 5, PROJKEY_HTTP_GET, &route);
    is_str(route.code, "not_found", "route: another path, not_found");
    is_str(route.message, "No such admin API path: use keys, keys/ID, "
           "keys/ID/roll, audit or nodes.", "route: and says which are");
    projkey_api_route("keys", 4, PROJKEY_HTTP_DELETE, &route);
    is_str(route.code, "method_not_allowed", "route: method_not_allowed");
}


static void
t_error(void)
{
    char    buf[256];
    size_t  len;

    static const char  plain[] =
        "{\"error\":{\"code\":\"not_found\",\"message\":\"No such.\"}}\n";

    len = projkey_api_error(NULL, 0, "not_found", "No such.");
    is_int(len, sizeof(plain) - 1, "error: its length, without a buffer");
    memset(buf, 'x', sizeof(buf));
    is_int(projkey_api_error(buf, sizeof(buf), "not_found", "No such."), len,
           "error: the same length written");
    is_mem(buf, len, plain, len, "error: the envelope");
    ok(buf[len] == 'x', "error: nothing written past it");

    memset(buf, 'x', sizeof(buf));
    is_int(projkey_api_error(buf, 10, "not_found", "No such."), len,
           "error: the whole length from a short buffer");
    ok(memcmp(buf, plain, 10) == 0 && buf[10] == 'x',
       "error: as much as fits, and no more");

    len = projkey_api_error(buf, sizeof(buf), "x",
                            "a\"b\\c\n\t\x01\x1f caf\xc3\xa9");
    buf[len - 1] = '\0';
    is_str(buf, "{\"error\":{\"code\":\"x\",\"message\":"
           "\"a\\\"b\\\\c\\n\\t\\u0001\\u001F caf\xc3\xa9\"}}",
           "error: quotes, backslashes and controls escaped, UTF-8 kept");
    is_str(t_jx(buf, "$.error.message"), "a\"b\\c\n\t\x01\x1f caf\xc3\xa9",
           "error: and read back the same");
}


int
main(void)
{
    if (sqlite3_open(":memory:", &t_json_db) != SQLITE_OK
        || projkey_json_open(&t_json) != PROJKEY_STORE_OK)
    {
        bail_out("cannot initialize: %s", projkey_json_errmsg(t_json));
    }

    t_names();
    t_bodies();
    t_times();
    t_body_times();
    t_rows();
    t_routes();
    t_error();

    projkey_json_close(t_json);
    projkey_json_close(NULL);
    sqlite3_close(t_json_db);

    return done_testing();
}
