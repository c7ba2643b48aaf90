
/*
 * projkey: the admin API's JSON apart from nginx and from the key store:
 * request bodies checked and a key rendered with SQLite's JSON functions,
 * on an in-memory database of its own, so that validating a request needs
 * no connection to the keys and no lock.  The module, the CLI and the
 * fuzzers share it.  Not shared between threads at the same time.
 */


#ifndef _PROJKEY_JSON_H_INCLUDED_
#define _PROJKEY_JSON_H_INCLUDED_


#include "projkey_store.h"


#define PROJKEY_BODY_MAX         16384  /* bytes of an admin request body */


typedef struct projkey_json_s  projkey_json_t;


/* a validated admin request body */
typedef struct {
    char                 *name;          /* trimmed, NUL-terminated, or NULL */
    size_t                name_len;
    int                   status;        /* 0 when absent */
    int                   has_expires;   /* "expires_at" given */
    int64_t               expires_at;    /* 0: null, never expires */
    int                   has_previous;  /* "previous_expires_at" given */
    int64_t               prev_expires_at;
} projkey_body_t;


/*
 * PROJKEY_STORE_OK or PROJKEY_STORE_ERROR; *json is set unless out of
 * memory, and its errmsg says why it failed.
 */
projkey_store_rc_e projkey_json_open(projkey_json_t **json);
void projkey_json_close(projkey_json_t *json);

/* why the last call failed: for the client after INVALID, the log else */
const char *projkey_json_errmsg(projkey_json_t *json);

/*
 * An admin request body: an object with only "name" (a string, see
 * projkey_text_check_name()), "status" ("active" or "disabled") and
 * "expires_at" (a time, see projkey_text_parse_time() and
 * projkey_text_check_expires(), or null), no member twice, at least one
 * of them when require_one.  PROJKEY_STORE_INVALID for anything else.
 * Frees with projkey_json_free_body().
 */
projkey_store_rc_e projkey_json_parse_body(projkey_json_t *json,
    const char *body, size_t len, int require_one, projkey_body_t *out);

/*
 * The body of POST keys/ID/roll: {} or {"previous_expires_at":TIME}, the
 * time checked with projkey_text_check_previous().
 */
projkey_store_rc_e projkey_json_parse_roll(projkey_json_t *json,
    const char *body, size_t len, projkey_body_t *out);

void projkey_json_free_body(projkey_body_t *body);

/*
 * The KEY object of the contract for one row, "expired" as of now;
 * malloc()ed, NUL-terminated, freed with free().
 */
projkey_store_rc_e projkey_json_row(projkey_json_t *json,
    const projkey_row_t *row, int64_t now, char **out, size_t *len);


#endif /* _PROJKEY_JSON_H_INCLUDED_ */
