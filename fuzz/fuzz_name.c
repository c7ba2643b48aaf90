
/*
 * projkey_text_check_name() on any bytes, against the name rules of the
 * contract as fuzz.h writes them: the same verdict, the same trimmed span,
 * inside the input.
 */


#include "fuzz.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_rng_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  ok;
    char                *copy;
    size_t               b, n, out_len, again_len;
    const char          *out, *again, *msg;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    ok = fuzz_name_ok(data, size, &b, &n);

    out = NULL;
    out_len = 0;
    msg = projkey_text_check_name(copy, size, &out, &out_len);
    fuzz_assert((msg == NULL) == ok);

    if (ok) {
        fuzz_assert(out == copy + b && out_len == n);
        fuzz_check_name(out, out_len);

        /* a checked name passes again, unchanged */
        msg = projkey_text_check_name(out, out_len, &again, &again_len);
        fuzz_assert(msg == NULL);
        fuzz_assert(again == out && again_len == out_len);

    } else {
        fuzz_assert(strncmp(msg, "The name must ", 14) == 0);
    }

    free(copy);

    return 0;
}
