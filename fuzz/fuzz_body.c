
/*
 * projkey_json_parse_body() on any bytes, both ways of require_one; and,
 * as a differential check, any bytes as the name of a well-formed body must
 * be accepted exactly when projkey_text_check_name() accepts them.
 */


#include "fuzz.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_body(const char *body, size_t len, int require_one,
    projkey_body_t *out, projkey_store_rc_e *rc);
static void fuzz_name_body(const uint8_t *data, size_t size);


static projkey_json_t  *fuzz_json;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_rng_init();
    fuzz_json = fuzz_json_open();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                *copy;
    projkey_body_t       any, one;
    projkey_store_rc_e   rc_any, rc_one;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    fuzz_body(copy, size, 0, &any, &rc_any);
    fuzz_body(copy, size, 1, &one, &rc_one);

    /* require_one only adds "at least one member" */

    if (rc_any == PROJKEY_STORE_OK && (any.name != NULL || any.status != 0)) {
        fuzz_assert(rc_one == PROJKEY_STORE_OK);
        fuzz_assert(one.status == any.status);
        fuzz_assert((one.name == NULL) == (any.name == NULL));

        if (any.name != NULL) {
            fuzz_assert(one.name_len == any.name_len);
            fuzz_assert(memcmp(one.name, any.name, any.name_len) == 0);
        }

    } else {
        fuzz_assert(rc_one == PROJKEY_STORE_INVALID);
    }

    projkey_json_free_body(&any);
    projkey_json_free_body(&one);

    /* freeing twice is harmless: the handler may do so on error paths */
    projkey_json_free_body(&one);

    free(copy);

    fuzz_name_body(data, size);

    return 0;
}


static void
fuzz_body(const char *body, size_t len, int require_one, projkey_body_t *out,
    projkey_store_rc_e *rc)
{
    const char  *msg;

    memset(out, 0x5a, sizeof(projkey_body_t));

    *rc = projkey_json_parse_body(fuzz_json, body, len, require_one, out);

    /* bad input is INVALID, never a database error */
    fuzz_assert(*rc == PROJKEY_STORE_OK || *rc == PROJKEY_STORE_INVALID);

    fuzz_assert(out->status == 0 || out->status == PROJKEY_STATUS_ACTIVE
                || out->status == PROJKEY_STATUS_DISABLED);

    if (*rc != PROJKEY_STORE_OK) {
        /* nothing is left to free, and the error says something */
        fuzz_assert(out->name == NULL && out->name_len == 0);
        fuzz_assert(out->status == 0);

        msg = projkey_json_errmsg(fuzz_json);
        fuzz_assert(msg != NULL && msg[0] != '\0');
        fuzz_assert(fuzz_utf8_valid((const unsigned char *) msg,
                                    strlen(msg)));
        return;
    }

    if (require_one) {
        fuzz_assert(out->name != NULL || out->status != 0);
    }

    if (out->name != NULL) {
        fuzz_assert(out->name[out->name_len] == '\0');
        fuzz_assert(strlen(out->name) == out->name_len);
        fuzz_check_name(out->name, out->name_len);

    } else {
        fuzz_assert(out->name_len == 0);
    }
}


/*
 * {"name":"<the input, JSON-escaped>"}: every byte below 0x20, '"' and
 * '\' escaped, the rest as it is, so that the name the JSON holds is the
 * input itself.
 */

static void
fuzz_name_body(const uint8_t *data, size_t size)
{
    char                *body, *p;
    size_t               i, b, n;
    projkey_body_t       out;
    projkey_store_rc_e   rc;
    static const char    hex[] = "0123456789abcdef";

    body = malloc(size * 6 + 16);
    if (body == NULL) {
        return;
    }

    p = body;
    p += sprintf(p, "{\"name\":\"");

    for (i = 0; i < size; i++) {
        if (data[i] < 0x20) {
            p += sprintf(p, "\\u00%c%c", hex[data[i] >> 4],
                         hex[data[i] & 0xf]);

        } else if (data[i] == '"' || data[i] == '\\') {
            *p++ = '\\';
            *p++ = data[i];

        } else {
            *p++ = data[i];
        }
    }

    p += sprintf(p, "\"}");

    if ((size_t) (p - body) <= PROJKEY_BODY_MAX) {
        rc = projkey_json_parse_body(fuzz_json, body, p - body, 1, &out);

        if (fuzz_name_ok(data, size, &b, &n)) {
            if (rc != PROJKEY_STORE_OK) {
                fprintf(stderr, "refused: %s\n",
                        projkey_json_errmsg(fuzz_json));
            }

            fuzz_assert(rc == PROJKEY_STORE_OK);
            fuzz_assert(out.name_len == n);
            fuzz_assert(memcmp(out.name, data + b, n) == 0);
            fuzz_assert(out.status == 0);

        } else {
            fuzz_assert(rc == PROJKEY_STORE_INVALID);
        }

        projkey_json_free_body(&out);
    }

    free(body);
}
