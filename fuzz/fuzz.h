
/*
 * projkey fuzz targets: what they share.  Each target is one .c file
 * linked with the nginx-free core (projkey_key.c, projkey_text.c,
 * projkey_json.c, projkey_store*.c, projkey_snapshot.c) and libFuzzer;
 * see fuzz/README.md.
 *
 * The oracles here are written from the contract (SPEC.md, the headers),
 * not from the code under test, so that a target checks behaviour rather
 * than repeating it.
 */


#ifndef _PROJKEY_FUZZ_H_INCLUDED_
#define _PROJKEY_FUZZ_H_INCLUDED_


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#include "projkey_key.h"
#include "projkey_store.h"
#include "projkey_json.h"


/* an invariant that does not hold: abort, so that libFuzzer keeps the input */
#define fuzz_assert(cond)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s\n",                  \
                    __FILE__, __LINE__, #cond);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)


static uint64_t  fuzz_rng_state;


/*
 * A deterministic libsodium random source, reset for every input, so that
 * ids and secrets, and so every run of an input, are the same.
 */

static uint64_t
fuzz_rng_next(void)
{
    uint64_t  z;

    /* splitmix64 */
    z = (fuzz_rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static const char *
fuzz_rng_name(void)
{
    return "projkey-fuzz";
}


static uint32_t
fuzz_rng_random(void)
{
    return (uint32_t) fuzz_rng_next();
}


static void
fuzz_rng_buf(void * const buf, const size_t size)
{
    size_t          i;
    unsigned char  *p;

    p = buf;

    for (i = 0; i < size; i++) {
        p[i] = (unsigned char) fuzz_rng_next();
    }
}


static struct randombytes_implementation  fuzz_rng = {
    fuzz_rng_name,
    fuzz_rng_random,
    NULL,
    NULL,
    fuzz_rng_buf,
    NULL
};


static void
fuzz_rng_init(void)
{
    /* before sodium_init(), which projkey_init() calls */
    randombytes_set_implementation(&fuzz_rng);
    fuzz_rng_state = 1;

    if (projkey_init() != 0) {
        abort();
    }
}


static void
fuzz_rng_reset(void)
{
    fuzz_rng_state = 1;
}


/*
 * A private directory for a target's databases, on tmpfs when there is
 * one: removed at exit.
 */

static char  fuzz_dir[64];


static void
fuzz_dir_remove(void)
{
    char         path[128];
    const char  *suffix[] = { "keys.db", "keys.db-wal", "keys.db-shm",
                              "keys.db-journal" };
    size_t       i;

    for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, suffix[i]);
        unlink(path);
    }

    rmdir(fuzz_dir);
}


static const char *
fuzz_db_path(void)
{
    static char  path[128];

    if (fuzz_dir[0] == '\0') {
        snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/projkey-fuzz-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");

        if (mkdtemp(fuzz_dir) == NULL) {
            perror("mkdtemp");
            abort();
        }

        atexit(fuzz_dir_remove);
        snprintf(path, sizeof(path), "%s/keys.db", fuzz_dir);
    }

    return path;
}


/* a store on a fresh database: aborts if it cannot be had */

static projkey_store_t *
fuzz_store_open(void)
{
    const char       *path;
    projkey_store_t  *st;

    path = fuzz_db_path();
    fuzz_dir_remove();

    if (mkdir(fuzz_dir, 0700) == -1) {
        perror("mkdir");
        abort();
    }

    if (projkey_store_open(path, PROJKEY_STORE_CREATE, 1000, &st)
        != PROJKEY_STORE_OK)
    {
        fprintf(stderr, "cannot open %s: %s\n", path,
                st ? projkey_store_errmsg(st) : "out of memory");
        abort();
    }

    return st;
}


/* the admin API's JSON, as the module's and the CLI's */
static projkey_json_t *
fuzz_json_open(void)
{
    projkey_json_t  *json;

    if (projkey_json_open(&json) != PROJKEY_STORE_OK) {
        fprintf(stderr, "no JSON: %s\n", projkey_json_errmsg(json));
        abort();
    }

    return json;
}


/*
 * Strict UTF-8 after the well-formed byte sequences of Unicode's table
 * 3-7, written apart from the store's decoder: the code point, or -1.
 * *n is the length of the sequence.
 */

static int32_t
fuzz_utf8(const unsigned char *p, size_t len, size_t *n)
{
    size_t    i, need;
    int32_t   cp;
    unsigned  lo, hi;

    lo = 0x80;
    hi = 0xbf;

    if (p[0] <= 0x7f) {
        *n = 1;
        return p[0];
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        need = 2;
        cp = p[0] & 0x1f;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        need = 3;
        cp = p[0] & 0x0f;

        if (p[0] == 0xe0) {
            lo = 0xa0;

        } else if (p[0] == 0xed) {
            hi = 0x9f;
        }

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        need = 4;
        cp = p[0] & 0x07;

        if (p[0] == 0xf0) {
            lo = 0x90;

        } else if (p[0] == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return -1;
    }

    if (len < need) {
        return -1;
    }

    for (i = 1; i < need; i++) {
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf)) {
            return -1;
        }

        cp = (cp << 6) | (p[i] & 0x3f);
    }

    *n = need;
    return cp;
}


/* 1 when the whole of p is strict UTF-8 */

static int
fuzz_utf8_valid(const unsigned char *p, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len; i += n) {
        if (fuzz_utf8(p + i, len - i, &n) < 0) {
            return 0;
        }
    }

    return 1;
}


/* the white space a name is trimmed of: space and \t \n \v \f \r */
#define fuzz_is_space(c)  ((c) == ' ' || ((c) >= '\t' && (c) <= '\r'))

/* C0, DEL and C1 */
#define fuzz_is_control(cp)  ((cp) < 0x20 || ((cp) >= 0x7f && (cp) <= 0x9f))


/*
 * The name rules of the contract: after trimming, 1 to 100 code points of
 * valid UTF-8 and no control character.  Returns 1 and the trimmed span,
 * or 0.
 */

static int
fuzz_name_ok(const unsigned char *p, size_t len, size_t *start,
    size_t *out_len)
{
    size_t   b, e, i, n, chars;
    int32_t  cp;

    b = 0;
    e = len;

    while (b < e && fuzz_is_space(p[b])) {
        b++;
    }

    while (e > b && fuzz_is_space(p[e - 1])) {
        e--;
    }

    if (b == e) {
        return 0;
    }

    chars = 0;

    for (i = b; i < e; i += n) {
        cp = fuzz_utf8(p + i, e - i, &n);

        if (cp < 0 || fuzz_is_control(cp)) {
            return 0;
        }

        chars++;
    }

    if (chars > PROJKEY_NAME_MAX) {
        return 0;
    }

    *start = b;
    *out_len = e - b;

    return 1;
}


/* what a name the store accepted must be, whatever the input */

static void
fuzz_check_name(const char *name, size_t len)
{
    size_t  b, n;

    fuzz_assert(name != NULL);
    fuzz_assert(fuzz_name_ok((const unsigned char *) name, len, &b, &n));
    fuzz_assert(b == 0 && n == len);
}


#endif /* _PROJKEY_FUZZ_H_INCLUDED_ */
