
/*
 * projkey: the admin API's routes and error answer (projkey_api.h).
 */


#include <string.h>

#include "projkey_key.h"
#include "projkey_api.h"


#define PROJKEY_API_READ         (PROJKEY_HTTP_GET|PROJKEY_HTTP_HEAD)


static void projkey_api_key_route(const char *id, size_t len,
    unsigned method, projkey_api_route_t *route);
static void projkey_api_read_route(projkey_api_op_e op, unsigned method,
    projkey_api_route_t *route);
static void projkey_api_fail(projkey_api_route_t *route, int status,
    const char *allow);
static size_t projkey_api_copy(char *buf, size_t size, size_t n,
    const char *s, size_t len);
static size_t projkey_api_escape(char *buf, size_t size, size_t n,
    const char *s);


void
projkey_api_route(const char *path, size_t len, unsigned method,
    projkey_api_route_t *route)
{
    memset(route, 0, sizeof(projkey_api_route_t));

    while (len && path[0] == '/') {
        path++;
        len--;
    }

    if (len && path[len - 1] == '/') {
        len--;
    }

    if (len == 4 && memcmp(path, "keys", 4) == 0) {

        if (method & PROJKEY_API_READ) {
            route->op = PROJKEY_API_LIST;

        } else if (method == PROJKEY_HTTP_POST) {
            route->op = PROJKEY_API_CREATE;

        } else {
            projkey_api_fail(route, PROJKEY_HTTP_NOT_ALLOWED, "GET, POST");
        }

        return;
    }

    if (len > 5 && memcmp(path, "keys/", 5) == 0) {
        projkey_api_key_route(path + 5, len - 5, method, route);
        return;
    }

    if (len == 5 && memcmp(path, "audit", 5) == 0) {
        projkey_api_read_route(PROJKEY_API_AUDIT, method, route);
        return;
    }

    if (len == 5 && memcmp(path, "nodes", 5) == 0) {
        projkey_api_read_route(PROJKEY_API_NODES, method, route);
        return;
    }

    projkey_api_fail(route, PROJKEY_HTTP_NOT_FOUND, NULL);
    route->message = "No such admin API path: use keys, keys/ID, "
                     "keys/ID/roll, audit or nodes.";
}


/* keys/ID and keys/ID/roll; any other ID is no key of the project */

static void
projkey_api_key_route(const char *id, size_t len, unsigned method,
    projkey_api_route_t *route)
{
    if (len == PROJKEY_ID_LEN + 5
        && memcmp(id + PROJKEY_ID_LEN, "/roll", 5) == 0
        && memchr(id, '/', PROJKEY_ID_LEN) == NULL)
    {
        route->id = id;

        if (method == PROJKEY_HTTP_POST) {
            route->op = PROJKEY_API_ROLL;

        } else {
            projkey_api_fail(route, PROJKEY_HTTP_NOT_ALLOWED, "POST");
        }

        return;
    }

    if (len != PROJKEY_ID_LEN || memchr(id, '/', len) != NULL) {
        projkey_api_fail(route, PROJKEY_HTTP_NOT_FOUND, NULL);
        route->message = "No such API key in this project.";
        return;
    }

    route->id = id;

    if (method & PROJKEY_API_READ) {
        route->op = PROJKEY_API_GET;

    } else if (method == PROJKEY_HTTP_PATCH) {
        route->op = PROJKEY_API_UPDATE;

    } else if (method == PROJKEY_HTTP_DELETE) {
        route->op = PROJKEY_API_DELETE;

    } else {
        projkey_api_fail(route, PROJKEY_HTTP_NOT_ALLOWED,
                         "GET, PATCH, DELETE");
    }
}


/* a path only read: GET and HEAD */

static void
projkey_api_read_route(projkey_api_op_e op, unsigned method,
    projkey_api_route_t *route)
{
    if (method & PROJKEY_API_READ) {
        route->op = op;

    } else {
        projkey_api_fail(route, PROJKEY_HTTP_NOT_ALLOWED, "GET");
    }
}


static void
projkey_api_fail(projkey_api_route_t *route, int status, const char *allow)
{
    route->status = status;

    if (status == PROJKEY_HTTP_NOT_ALLOWED) {
        route->code = "method_not_allowed";
        route->message = "This method is not allowed here.";
        route->allow = allow;

    } else {
        route->code = "not_found";
    }
}


size_t
projkey_api_error(char *buf, size_t size, const char *code,
    const char *message)
{
    size_t  n;

    n = projkey_api_copy(buf, size, 0, "{\"error\":{\"code\":\"", 18);
    n = projkey_api_escape(buf, size, n, code);
    n = projkey_api_copy(buf, size, n, "\",\"message\":\"", 13);
    n = projkey_api_escape(buf, size, n, message);

    return projkey_api_copy(buf, size, n, "\"}}\n", 4);
}


/* len bytes of s at buf + n, as far as size allows; returns n + len */

static size_t
projkey_api_copy(char *buf, size_t size, size_t n, const char *s, size_t len)
{
    if (n < size) {
        memcpy(buf + n, s, len < size - n ? len : size - n);
    }

    return n + len;
}


/*
 * s as a JSON string's content at buf + n, as ngx_escape_json() escapes:
 * '"', '\' and the C0 controls; the rest, UTF-8 included, as it is
 */

static size_t
projkey_api_escape(char *buf, size_t size, size_t n, const char *s)
{
    char                  esc[6];
    size_t                len;
    const unsigned char  *p;

    static const char  hex[] = "0123456789ABCDEF";

    for (p = (const unsigned char *) s; *p; p++) {
        len = 2;
        esc[0] = '\\';

        switch (*p) {

        case '"':
        case '\\':
            esc[1] = *p;
            break;

        case '\n':
            esc[1] = 'n';
            break;

        case '\r':
            esc[1] = 'r';
            break;

        case '\t':
            esc[1] = 't';
            break;

        case '\b':
            esc[1] = 'b';
            break;

        case '\f':
            esc[1] = 'f';
            break;

        default:
            if (*p > 0x1f) {
                esc[0] = *p;
                len = 1;
                break;
            }

            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 0xf];
            len = 6;
        }

        n = projkey_api_copy(buf, size, n, esc, len);
    }

    return n;
}
