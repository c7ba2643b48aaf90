
/*
 * projkey_store_check_name() on any bytes, against the name rules of the
 * contract as fuzz.h writes them: the same verdict, the same trimmed span,
 * inside the input.
 */


#include "fuzz.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static projkey_store_t  *fuzz_st;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_rng_init();
    fuzz_st = fuzz_store_open();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  ok;
    char                *copy;
    size_t               b, n, out_len, again_len;
    const char          *out, *again, *msg;
    projkey_store_rc_e   rc;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    ok = fuzz_name_ok(data, size, &b, &n);

    /* without a store (errmsg has nowhere to go) and with one */

    out = NULL;
    out_len = 0;
    rc = projkey_store_check_name(NULL, copy, size, &out, &out_len);
    fuzz_assert(rc == (ok ? PROJKEY_STORE_OK : PROJKEY_STORE_INVALID));

    rc = projkey_store_check_name(fuzz_st, copy, size, &out, &out_len);
    fuzz_assert(rc == (ok ? PROJKEY_STORE_OK : PROJKEY_STORE_INVALID));

    if (ok) {
        fuzz_assert(out == copy + b && out_len == n);
        fuzz_check_name(out, out_len);

        /* a checked name passes again, unchanged */
        rc = projkey_store_check_name(fuzz_st, out, out_len, &again,
                                      &again_len);
        fuzz_assert(rc == PROJKEY_STORE_OK);
        fuzz_assert(again == out && again_len == out_len);

    } else {
        msg = projkey_store_errmsg(fuzz_st);
        fuzz_assert(msg != NULL && strncmp(msg, "The name must ", 14) == 0);
    }

    free(copy);

    return 0;
}
