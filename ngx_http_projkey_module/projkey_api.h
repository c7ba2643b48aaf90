
/*
 * projkey: the admin API's routes and error answer, apart from nginx, so
 * that the admin handler and the fuzzers route and answer alike.
 */


#ifndef _PROJKEY_API_H_INCLUDED_
#define _PROJKEY_API_H_INCLUDED_


#include <stddef.h>


/* the methods a route knows; any other is 0 */
#define PROJKEY_HTTP_GET         0x01
#define PROJKEY_HTTP_HEAD        0x02
#define PROJKEY_HTTP_POST        0x04
#define PROJKEY_HTTP_PATCH       0x08
#define PROJKEY_HTTP_DELETE      0x10

/* the statuses of a route that fails */
#define PROJKEY_HTTP_NOT_FOUND   404
#define PROJKEY_HTTP_NOT_ALLOWED 405


typedef enum {
    PROJKEY_API_LIST = 0,        /* GET keys */
    PROJKEY_API_CREATE,          /* POST keys */
    PROJKEY_API_GET,             /* GET keys/ID */
    PROJKEY_API_UPDATE,          /* PATCH keys/ID */
    PROJKEY_API_DELETE,          /* DELETE keys/ID */
    PROJKEY_API_AUDIT,           /* GET audit */
    PROJKEY_API_NODES,           /* GET nodes */
    PROJKEY_API_ROLL             /* POST keys/ID/roll */
} projkey_api_op_e;


typedef struct {
    projkey_api_op_e      op;
    const char           *id;      /* keys/ID...: PROJKEY_ID_LEN bytes */
    int                   status;  /* 0: routed, or PROJKEY_HTTP_NOT_* */
    const char           *code;    /* with status: the error */
    const char           *message;
    const char           *allow;   /* with 405: the methods of the path */
} projkey_api_route_t;


/*
 * Routes a request: path is relative to the admin location ("keys",
 * "/keys/", "keys/ID", "keys/ID/roll", "audit", "nodes"), method one of
 * PROJKEY_HTTP_*.  HEAD is GET's route.
 */
void projkey_api_route(const char *path, size_t len, unsigned method,
    projkey_api_route_t *route);

/*
 * The error answer, {"error":{"code":CODE,"message":MESSAGE}} and a new
 * line, written to buf as far as size allows (no NUL); returns its whole
 * length, so that a call with size 0 says how much to allocate.
 */
size_t projkey_api_error(char *buf, size_t size, const char *code,
    const char *message);


#endif /* _PROJKEY_API_H_INCLUDED_ */
