
/*
 * Unit tests of the key format (projkey_key.c), with fixed vectors computed
 * independently by Python's zlib.crc32 and hashlib.blake2b(digest_size=32).
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "projkey_key.h"
#include "tap.h"


#define B62  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#define N_GENERATED  1000


typedef struct {
    const char  *body;      /* "sk-project-" + 42 characters */
    const char  *checksum;
    uint32_t     crc;
    const char  *hash;      /* BLAKE2b-256 of body + checksum, in hex */
} vector_t;


static const vector_t  vectors[] = {
    { "sk-project-000000000000000000000000000000000000000000",
      "1aPdw7", 0x56ad3807,
      "760f4a03c6f2e607c5e833863b251feb1ed1227e3bc7eb39b3c30d1e832e694a" },
    { "sk-project-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP",
      "1VD9Ae", 0x52186e20,
      "9bb0b537e22f848e76c584cb946a4c8c597c863bd49cc14cf1c22aebe4288dcf" },
    /* a CRC below 62^5: the checksum is left-padded with '0' */
    { "sk-project-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
      "0ms6C0", 0x2b0b4050,
      "1dceb6fb781590f0e57b9e54fc34fde32df4521ad1574bfd4ec65cd7a351c149" },
    { "sk-project-Q7x2Lm9PzR4tV8wK1nB6cY3hJ5dF0gS2aE7uI9oXq4",
      "11Ym63", 0x37fb0317,
      "036364af1f386a8142ad190eb9e29fa1f89e6367f65110cc1245d24a76b6108c" },
};

#define N_VECTORS  (sizeof(vectors) / sizeof(vectors[0]))

/* the key of vectors[3], used to build Authorization values */
#define K  "sk-project-Q7x2Lm9PzR4tV8wK1nB6cY3hJ5dF0gS2aE7uI9oXq411Ym63"


static void test_crc32(void);
static void test_checksum(void);
static void test_valid(void);
static void test_split(void);
static void test_hash(void);
static void test_mutations(void);
static void test_alphabet(void);
static void test_scheme_bytes(void);
static void test_generate(void);
static void test_generate_id(void);
static void test_parse_auth(void);
static void test_preview(void);
static void test_wipe(void);

static int is_b62(const unsigned char *p, size_t len);
static int cmp_key(const void *a, const void *b);
static int cmp_id(const void *a, const void *b);
static size_t mutations_accepted(const unsigned char *key);
static void hex(const unsigned char *p, size_t len, char *out);
static void auth_case(const char *name, const void *value, size_t len,
    projkey_auth_e expected, size_t key_offset);
static void auth_str(const char *name, const char *value,
    projkey_auth_e expected, size_t key_offset);
static const char *auth_name(projkey_auth_e rc);


int
main(void)
{
    if (projkey_init() != 0) {
        bail_out("projkey_init() failed: no CSPRNG");
    }

    is_int(projkey_init(), 0, "projkey_init() again is still 0");

    test_crc32();
    test_checksum();
    test_valid();
    test_split();
    test_hash();
    test_mutations();
    test_alphabet();
    test_scheme_bytes();
    test_generate();
    test_generate_id();
    test_parse_auth();
    test_preview();
    test_wipe();

    return done_testing();
}


static void
test_crc32(void)
{
    static const unsigned char  ff[4] = { 0xff, 0xff, 0xff, 0xff };

    is_int(projkey_crc32((const unsigned char *) "123456789", 9),
           0xcbf43926, "crc32(\"123456789\") is the check value 0xcbf43926");
    is_int(projkey_crc32((const unsigned char *) "", 0), 0, "crc32(\"\") is 0");
    is_int(projkey_crc32(ff, 4), 0xffffffff, "crc32(ff ff ff ff) is ffffffff");
    is_int(projkey_crc32((const unsigned char *) "a\0b", 3),
           0x15e87871, "crc32 reads through NUL bytes");
}


static void
test_checksum(void)
{
    size_t                i;
    unsigned char         out[PROJKEY_CHECKSUM_LEN + 1];
    static unsigned char  ff[4] = { 0xff, 0xff, 0xff, 0xff };

    for (i = 0; i < N_VECTORS; i++) {
        is_int(projkey_crc32((const unsigned char *) vectors[i].body, 53),
               vectors[i].crc, "crc32 of vector %zu", i);

        out[PROJKEY_CHECKSUM_LEN] = '#';
        projkey_checksum((const unsigned char *) vectors[i].body, 53, out);
        is_mem(out, PROJKEY_CHECKSUM_LEN, vectors[i].checksum, 6,
               "checksum of vector %zu is %s", i, vectors[i].checksum);

        is_int(out[PROJKEY_CHECKSUM_LEN], '#',
               "checksum of vector %zu writes six bytes only", i);
    }

    projkey_checksum((const unsigned char *) "", 0, out);
    is_mem(out, 6, "000000", 6, "checksum of crc 0 is 000000");

    /* the largest CRC still fits in six digits */
    projkey_checksum(ff, 4, out);
    is_mem(out, 6, "4gfFC3", 6, "checksum of crc ffffffff is 4gfFC3");
}


static void
test_valid(void)
{
    size_t         i;
    unsigned char  key[PROJKEY_LEN + 2];

    is_int(PROJKEY_LEN, 59, "PROJKEY_LEN is 59");

    for (i = 0; i < N_VECTORS; i++) {
        memcpy(key, vectors[i].body, 53);
        memcpy(key + 53, vectors[i].checksum, 6);
        ok(projkey_valid(key, PROJKEY_LEN), "vector %zu is valid", i);
        ok(!projkey_valid(key, PROJKEY_LEN - 1),
           "vector %zu cut by one is invalid", i);
        key[PROJKEY_LEN] = 'a';
        ok(!projkey_valid(key, PROJKEY_LEN + 1),
           "vector %zu plus a character is invalid", i);
    }

    memcpy(key, K, PROJKEY_LEN);
    ok(projkey_valid(key, PROJKEY_LEN), "K is valid");

    ok(!projkey_valid(key, 0), "empty is invalid");
    ok(!projkey_valid((const unsigned char *) "sk-project-", 11),
       "the bare prefix is invalid");

    memcpy(key, "SK-PROJECT-", 11);
    ok(!projkey_valid(key, PROJKEY_LEN), "upper-case prefix is invalid");

    memcpy(key, "sk-Project-", 11);
    ok(!projkey_valid(key, PROJKEY_LEN), "mixed-case prefix is invalid");

    memcpy(key, "sk_project_", 11);
    ok(!projkey_valid(key, PROJKEY_LEN), "sk_project_ prefix is invalid");

    memcpy(key, K, PROJKEY_LEN);
    key[30] = '-';
    ok(!projkey_valid(key, PROJKEY_LEN), "'-' in the body is invalid");

    memcpy(key, K, PROJKEY_LEN);
    key[30] = '\0';
    ok(!projkey_valid(key, PROJKEY_LEN), "NUL in the body is invalid");

    memcpy(key, K, PROJKEY_LEN);
    key[30] = 0xc3;
    ok(!projkey_valid(key, PROJKEY_LEN), "0xc3 in the body is invalid");

    memcpy(key, K, PROJKEY_LEN);
    key[PROJKEY_LEN - 1] = '+';
    ok(!projkey_valid(key, PROJKEY_LEN), "'+' in the checksum is invalid");

    memcpy(key, K, PROJKEY_LEN);
    memcpy(key + 53, "11Ym64", 6);
    ok(!projkey_valid(key, PROJKEY_LEN), "checksum off by one is invalid");

    /* a checksum whose value exceeds 2^32 must not wrap onto the CRC */
    memcpy(key, K, PROJKEY_LEN);
    memcpy(key + 53, "zzzzzz", 6);
    ok(!projkey_valid(key, PROJKEY_LEN), "checksum zzzzzz is invalid");
}


/*
 * projkey_well_formed() is length, prefix and alphabet; the checksum is
 * projkey_checksum_valid()'s alone, and projkey_valid() is both.
 */

static void
test_split(void)
{
    size_t         i;
    unsigned char  key[PROJKEY_LEN + 1];

    for (i = 0; i < N_VECTORS; i++) {
        memcpy(key, vectors[i].body, 53);
        memcpy(key + 53, vectors[i].checksum, 6);
        ok(projkey_well_formed(key, PROJKEY_LEN)
           && projkey_checksum_valid(key, PROJKEY_LEN),
           "vector %zu is well-formed, its checksum valid", i);
        ok(!projkey_well_formed(key, PROJKEY_LEN - 1)
           && !projkey_checksum_valid(key, PROJKEY_LEN - 1),
           "vector %zu cut by one is neither", i);
        key[PROJKEY_LEN] = 'a';
        ok(!projkey_well_formed(key, PROJKEY_LEN + 1)
           && !projkey_checksum_valid(key, PROJKEY_LEN + 1),
           "vector %zu plus a character is neither", i);
    }

    memcpy(key, K, PROJKEY_LEN);
    memcpy(key + 53, "11Ym64", 6);
    ok(projkey_well_formed(key, PROJKEY_LEN),
       "checksum off by one is well-formed");
    ok(!projkey_checksum_valid(key, PROJKEY_LEN),
       "checksum off by one is not a valid checksum");

    memcpy(key + 53, "zzzzzz", 6);
    ok(projkey_well_formed(key, PROJKEY_LEN), "checksum zzzzzz is well-formed");
    ok(!projkey_checksum_valid(key, PROJKEY_LEN),
       "checksum zzzzzz is not a valid checksum");

    memcpy(key, K, PROJKEY_LEN);
    key[30] = key[30] == 'a' ? 'b' : 'a';
    ok(projkey_well_formed(key, PROJKEY_LEN),
       "a base62 character changed in the body is well-formed");
    ok(!projkey_checksum_valid(key, PROJKEY_LEN),
       "a base62 character changed in the body fails the checksum");

    memcpy(key, K, PROJKEY_LEN);
    key[PROJKEY_LEN - 1] = '+';
    ok(!projkey_well_formed(key, PROJKEY_LEN),
       "'+' in the checksum is not well-formed");
    ok(!projkey_checksum_valid(key, PROJKEY_LEN),
       "'+' in the checksum is not a valid checksum");

    memcpy(key, K, PROJKEY_LEN);
    key[30] = '-';
    ok(!projkey_well_formed(key, PROJKEY_LEN),
       "'-' in the body is not well-formed");

    memcpy(key, K, PROJKEY_LEN);
    key[PROJKEY_LEN - 1] = 0xc3;
    ok(!projkey_well_formed(key, PROJKEY_LEN),
       "0xc3 in the checksum is not well-formed");

    memcpy(key, K, PROJKEY_LEN);
    memcpy(key, "sk_project_", 11);
    ok(!projkey_well_formed(key, PROJKEY_LEN),
       "sk_project_ prefix is not well-formed");

    ok(!projkey_well_formed(key, 0), "empty is not well-formed");
}


static void
test_hash(void)
{
    size_t         i;
    char           got[2 * PROJKEY_HASH_LEN + 1];
    unsigned char  key[PROJKEY_LEN], out[PROJKEY_HASH_LEN];

    for (i = 0; i < N_VECTORS; i++) {
        memcpy(key, vectors[i].body, 53);
        memcpy(key + 53, vectors[i].checksum, 6);
        projkey_hash(key, PROJKEY_LEN, out);
        hex(out, PROJKEY_HASH_LEN, got);
        is_str(got, vectors[i].hash, "BLAKE2b-256 of vector %zu", i);
    }

    projkey_hash((const unsigned char *) "", 0, out);
    hex(out, PROJKEY_HASH_LEN, got);
    is_str(got,
           "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
           "BLAKE2b-256 of \"\"");

    projkey_hash((const unsigned char *) "abc", 3, out);
    hex(out, PROJKEY_HASH_LEN, got);
    is_str(got,
           "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
           "BLAKE2b-256 of \"abc\"");
}


/*
 * CRC-32 detects every error burst of up to 32 bits, so changing any single
 * byte of the body must change the checksum; a changed checksum character
 * decodes to another number; a changed prefix byte fails the prefix test.
 */
static void
test_mutations(void)
{
    size_t         i, bad;
    unsigned char  key[PROJKEY_LEN];

    bad = 0;

    for (i = 0; i < N_VECTORS; i++) {
        memcpy(key, vectors[i].body, 53);
        memcpy(key + 53, vectors[i].checksum, 6);
        bad += mutations_accepted(key);
    }

    is_int(bad, 0, "every 1-byte change of the fixed vectors is invalid");

    bad = 0;

    for (i = 0; i < 200; i++) {
        projkey_generate(key);
        bad += mutations_accepted(key);
    }

    is_int(bad, 0, "every 1-byte change of 200 generated keys is invalid");
}


/*
 * projkey_well_formed() checks the alphabet and projkey_checksum_valid()
 * the CRC 8 bytes at a time: every byte value at every place of the random
 * part, with the checksum made again by the byte-at-a-time
 * projkey_checksum(), is well-formed (and valid) exactly when it is a
 * base62 character, and always has a valid checksum.
 */

static void
test_alphabet(void)
{
    size_t         i, bad;
    unsigned       c;
    unsigned char  key[PROJKEY_LEN];

    bad = 0;
    projkey_generate(key);

    for (i = PROJKEY_PREFIX_LEN; i < PROJKEY_PREFIX_LEN + PROJKEY_RANDOM_LEN;
         i++)
    {
        for (c = 0; c < 256; c++) {
            key[i] = (unsigned char) c;
            projkey_checksum(key, PROJKEY_PREFIX_LEN + PROJKEY_RANDOM_LEN,
                             key + PROJKEY_PREFIX_LEN + PROJKEY_RANDOM_LEN);

            if ((projkey_valid(key, PROJKEY_LEN) != is_b62(key + i, 1)
                 || projkey_well_formed(key, PROJKEY_LEN)
                    != is_b62(key + i, 1)
                 || !projkey_checksum_valid(key, PROJKEY_LEN))
                && bad++ < 5)
            {
                diag("byte %zu = 0x%02x: valid is %d", i, c,
                     projkey_valid(key, PROJKEY_LEN));
            }
        }

        key[i] = 'a';
    }

    is_int(bad, 0, "each of 256 bytes at each of the 42 random places, "
           "checksum made again: valid iff base62");
}


/* "Bearer" in any case, and nothing else, whatever the byte */
static void
test_scheme_bytes(void)
{
    size_t                i, bad;
    unsigned              c;
    projkey_auth_e        want;
    unsigned char         value[7 + PROJKEY_LEN];
    const unsigned char  *key;

    bad = 0;
    memcpy(value, "Bearer ", 7);
    projkey_generate(value + 7);

    for (i = 0; i < 6; i++) {
        for (c = 0; c < 256; c++) {
            value[i] = (unsigned char) c;
            want = (c == (unsigned char) "bearer"[i]
                    || c == (unsigned char) "BEARER"[i])
                   ? PROJKEY_AUTH_KEY : PROJKEY_AUTH_MALFORMED;

            if (projkey_parse_auth(value, sizeof(value), &key) != want
                && bad++ < 5)
            {
                diag("scheme byte %zu = 0x%02x", i, c);
            }
        }

        value[i] = (unsigned char) "Bearer"[i];
    }

    is_int(bad, 0, "each of 256 bytes at each place of \"Bearer\": "
           "a key only for the letter in either case");
}


static size_t
mutations_accepted(const unsigned char *key)
{
    size_t         i, accepted;
    unsigned       c;
    unsigned char  m[PROJKEY_LEN];

    accepted = 0;
    memcpy(m, key, PROJKEY_LEN);

    /* every other byte value, which includes every other base62 character */
    for (i = 0; i < PROJKEY_LEN; i++) {
        for (c = 0; c < 256; c++) {
            if (c == key[i]) {
                continue;
            }

            m[i] = (unsigned char) c;

            if (projkey_valid(m, PROJKEY_LEN)) {
                diag("accepted: byte %zu changed to 0x%02x", i, c);
                accepted++;
            }

            /* past the prefix, base62 is well-formed: the CRC must catch it */
            if (projkey_well_formed(m, PROJKEY_LEN)
                != (i >= PROJKEY_PREFIX_LEN && is_b62(m + i, 1))
                || (i >= PROJKEY_PREFIX_LEN
                    && projkey_checksum_valid(m, PROJKEY_LEN)))
            {
                diag("split: byte %zu changed to 0x%02x", i, c);
                accepted++;
            }
        }

        m[i] = key[i];
    }

    return accepted;
}


static void
test_generate(void)
{
    size_t          i, seen_n, bad_valid, bad_b62, bad_guard, dups;
    unsigned char  *keys, *k, seen[256];

    keys = malloc(N_GENERATED * (PROJKEY_LEN + 1));
    if (keys == NULL) {
        bail_out("out of memory");
    }

    bad_valid = 0;
    bad_b62 = 0;
    bad_guard = 0;
    memset(seen, 0, sizeof(seen));

    for (i = 0; i < N_GENERATED; i++) {
        k = keys + i * (PROJKEY_LEN + 1);
        k[PROJKEY_LEN] = '#';

        projkey_generate(k);

        bad_guard += (k[PROJKEY_LEN] != '#');
        bad_valid += !projkey_valid(k, PROJKEY_LEN);
        bad_b62 += (memcmp(k, "sk-project-", 11) != 0
                    || !is_b62(k + 11, PROJKEY_LEN - 11));

        for (size_t j = 11; j < 53; j++) {
            seen[k[j]] = 1;
        }
    }

    is_int(bad_guard, 0, "projkey_generate() writes exactly %d bytes",
           (int) PROJKEY_LEN);
    is_int(bad_valid, 0, "%d generated keys are all valid", N_GENERATED);
    is_int(bad_b62, 0, "%d generated keys are prefix + base62 only",
           N_GENERATED);

    /* 42000 draws over 62 characters: a missing one means a broken draw */
    seen_n = 0;
    for (i = 0; i < sizeof(B62) - 1; i++) {
        seen_n += seen[(unsigned char) B62[i]];
    }

    is_int(seen_n, 62, "every base62 character appears in generated keys");

    qsort(keys, N_GENERATED, PROJKEY_LEN + 1, cmp_key);

    dups = 0;
    for (i = 1; i < N_GENERATED; i++) {
        dups += (memcmp(keys + (i - 1) * (PROJKEY_LEN + 1),
                        keys + i * (PROJKEY_LEN + 1), PROJKEY_LEN) == 0);
    }

    is_int(dups, 0, "%d generated keys are distinct", N_GENERATED);

    projkey_wipe(keys, N_GENERATED * (PROJKEY_LEN + 1));
    free(keys);
}


static void
test_generate_id(void)
{
    size_t          i, bad_b62, bad_guard, dups;
    unsigned char  *ids, *id;

    ids = malloc(N_GENERATED * (PROJKEY_ID_LEN + 1));
    if (ids == NULL) {
        bail_out("out of memory");
    }

    bad_b62 = 0;
    bad_guard = 0;

    for (i = 0; i < N_GENERATED; i++) {
        id = ids + i * (PROJKEY_ID_LEN + 1);
        id[PROJKEY_ID_LEN] = '#';

        projkey_generate_id(id);

        bad_guard += (id[PROJKEY_ID_LEN] != '#');
        bad_b62 += !is_b62(id, PROJKEY_ID_LEN);
    }

    is_int(PROJKEY_ID_LEN, 12, "ids are 12 characters");
    is_int(bad_guard, 0, "projkey_generate_id() writes exactly 12 bytes");
    is_int(bad_b62, 0, "%d generated ids are base62 only", N_GENERATED);

    qsort(ids, N_GENERATED, PROJKEY_ID_LEN + 1, cmp_id);

    dups = 0;
    for (i = 1; i < N_GENERATED; i++) {
        dups += (memcmp(ids + (i - 1) * (PROJKEY_ID_LEN + 1),
                        ids + i * (PROJKEY_ID_LEN + 1), PROJKEY_ID_LEN) == 0);
    }

    is_int(dups, 0, "%d generated ids are distinct", N_GENERATED);

    free(ids);
}


static void
test_parse_auth(void)
{
    size_t                n, i, bad;
    unsigned char        *big, value[7 + PROJKEY_LEN];
    const unsigned char  *key;

    /* a well-formed key */
    auth_str("Bearer K", "Bearer " K, PROJKEY_AUTH_KEY, 7);
    auth_str("bearer K", "bearer " K, PROJKEY_AUTH_KEY, 7);
    auth_str("BEARER K", "BEARER " K, PROJKEY_AUTH_KEY, 7);
    auth_str("BeArEr K", "BeArEr " K, PROJKEY_AUTH_KEY, 7);
    auth_str("Bearer, 4 spaces, K", "Bearer    " K, PROJKEY_AUTH_KEY, 10);

    bad = 0;

    for (i = 0; i < 100; i++) {
        memcpy(value, "Bearer ", 7);
        projkey_generate(value + 7);

        if (projkey_parse_auth(value, sizeof(value), &key) != PROJKEY_AUTH_KEY
            || key != value + 7)
        {
            bad++;
        }
    }

    projkey_wipe(value, sizeof(value));
    is_int(bad, 0, "parse_auth: Bearer + 100 generated keys are KEY");

    /* a key in any other shape */
    auth_str("Bearer<tab>K", "Bearer\t" K, PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer<sp><tab>K", "Bearer \t" K, PROJKEY_AUTH_MALFORMED, 0);
    auth_str("BearerK", "Bearer" K, PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K<sp>", "Bearer " K " ", PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K<tab>", "Bearer " K "\t", PROJKEY_AUTH_MALFORMED, 0);
    auth_str("<sp>Bearer K", " Bearer " K, PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K x", "Bearer " K " x", PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer Kx", "Bearer " K "x", PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K, Bearer K", "Bearer " K ", Bearer " K,
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K,Basic", "Bearer " K ",Basic dXNlcjpwYXNz",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer abc, Bearer K", "Bearer abc, Bearer " K,
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K truncated", "Bearer sk-project-Q7x2Lm9PzR4tV8wK1nB6c",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K less its last character",
             "Bearer sk-project-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3hJ5dF0gS2aE7uI9oXq411Ym6",
             PROJKEY_AUTH_MALFORMED, 0);
    /* the checksum is the caller's, on a miss: these are well-formed */
    auth_str("Bearer K with a wrong checksum",
             "Bearer sk-project-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3hJ5dF0gS2aE7uI9oXq411Ym64",
             PROJKEY_AUTH_KEY, 7);
    auth_str("Bearer K with a character changed",
             "Bearer sk-project-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3hJ5dF0gS2aE7uI9oXq511Ym63",
             PROJKEY_AUTH_KEY, 7);
    auth_str("Bearer K with '_' in it",
             "Bearer sk-project-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3_J5dF0gS2aE7uI9oXq411Ym63",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer SK-PROJECT-...",
             "Bearer SK-PROJECT-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3hJ5dF0gS2aE7uI9oXq411Ym63",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer Sk-Project-...",
             "Bearer Sk-Project-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3hJ5dF0gS2aE7uI9oXq411Ym63",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer sk-project-", "Bearer sk-project-",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer sk-project- K split", "Bearer sk-project- Q7x2Lm9",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Basic K", "Basic " K, PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Token K", "Token " K, PROJKEY_AUTH_MALFORMED, 0);
    auth_str("K without a scheme", K, PROJKEY_AUTH_MALFORMED, 0);
    auth_str("bare sk-project-", "sk-project-", PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Basic with sK-pRoJeCt- inside", "Basic xsK-pRoJeCt-y",
             PROJKEY_AUTH_MALFORMED, 0);

    auth_case("Bearer K with NUL in it",
              "Bearer sk-project-Q7x2Lm9PzR4t"
              "V8wK1nB6cY3\0J5dF0gS2aE7uI9oXq411Ym63",
              7 + PROJKEY_LEN, PROJKEY_AUTH_MALFORMED, 0);
    auth_case("Bearer K NUL", "Bearer " K "\0", 7 + PROJKEY_LEN + 1,
              PROJKEY_AUTH_MALFORMED, 0);
    auth_case("NUL Bearer K", "\0Bearer " K, 1 + 7 + PROJKEY_LEN,
              PROJKEY_AUTH_MALFORMED, 0);
    auth_case("Bearer<NUL>K", "Bearer\0" K, 7 + PROJKEY_LEN,
              PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K with 0xff in it",
             "Bearer sk-project-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3\xff" "J5dF0gS2aE7uI9oXq411Ym63",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K 0xff", "Bearer " K "\xff", PROJKEY_AUTH_MALFORMED, 0);
    auth_str("Bearer K with UTF-8 in it",
             "Bearer sk-project-Q7x2Lm9PzR4t"
             "V8wK1nB6cY3\xc3\xa9" "5dF0gS2aE7uI9oXq411Ym63",
             PROJKEY_AUTH_MALFORMED, 0);
    auth_str("0xff before sk-project-", "Bearer \xffsk-project-",
             PROJKEY_AUTH_MALFORMED, 0);

    /* a Bearer token of somebody else's */
    auth_str("Bearer", "Bearer", PROJKEY_AUTH_FOREIGN, 0);
    auth_str("bearer", "bearer", PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer<sp>", "Bearer ", PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer<sp><sp>", "Bearer  ", PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer JWT", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
             PROJKEY_AUTH_FOREIGN, 0);
    auth_str("BEARER abc def", "BEARER abc def", PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer sk-proj-...", "Bearer sk-proj-abcdef",
             PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer sk-project (no dash)", "Bearer sk-projectQ7x2",
             PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer sk_project_...", "Bearer sk_project_Q7x2",
             PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer ending in sk-projec", "Bearer abc sk-projec",
             PROJKEY_AUTH_FOREIGN, 0);
    auth_str("Bearer 0xff", "Bearer \xff\xfe", PROJKEY_AUTH_FOREIGN, 0);
    auth_case("Bearer NUL", "Bearer \0", 8, PROJKEY_AUTH_FOREIGN, 0);

    /* no Bearer credentials at all */
    auth_case("empty", "", 0, PROJKEY_AUTH_ABSENT, 0);
    auth_case("NULL, 0", NULL, 0, PROJKEY_AUTH_ABSENT, 0);
    auth_str("Bear", "Bear", PROJKEY_AUTH_ABSENT, 0);
    auth_str("Bearerx", "Bearerx abc", PROJKEY_AUTH_ABSENT, 0);
    auth_str("Bearer<tab>abc", "Bearer\tabc", PROJKEY_AUTH_ABSENT, 0);
    auth_str("Basic", "Basic dXNlcjpwYXNz", PROJKEY_AUTH_ABSENT, 0);
    auth_str("Basic base64 of sk-project-", "Basic c2stcHJvamVjdC0=",
             PROJKEY_AUTH_ABSENT, 0);
    auth_str("Digest", "Digest username=\"a\"", PROJKEY_AUTH_ABSENT, 0);
    auth_case("NUL", "\0", 1, PROJKEY_AUTH_ABSENT, 0);

    /* a 64 KiB token, scanned without reading past its end */
    n = 7 + 65536;
    big = malloc(n + PROJKEY_LEN);
    if (big == NULL) {
        bail_out("out of memory");
    }

    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'a', 65536);
    auth_case("Bearer + 64 KiB of 'a'", big, n, PROJKEY_AUTH_FOREIGN, 0);

    memset(big + 7, 's', 65536);
    memcpy(big + n - 10, "sk-project", 10);
    auth_case("Bearer + 64 KiB ending in sk-project", big, n,
              PROJKEY_AUTH_FOREIGN, 0);

    memcpy(big + n - 11, "sk-project-", 11);
    auth_case("Bearer + 64 KiB ending in sk-project-", big, n,
              PROJKEY_AUTH_MALFORMED, 0);

    memcpy(big + n - 11, "xxxxxxxxxxx", 11);
    memcpy(big + n, K, PROJKEY_LEN);
    auth_case("Bearer + 64 KiB then K", big, n + PROJKEY_LEN,
              PROJKEY_AUTH_MALFORMED, 0);

    memset(big + 7, ' ', 65536);
    auth_case("Bearer + 64 KiB of spaces then K", big, n + PROJKEY_LEN,
              PROJKEY_AUTH_KEY, n);
    auth_case("Bearer + 64 KiB of spaces", big, n, PROJKEY_AUTH_FOREIGN, 0);

    free(big);
}


static void
auth_str(const char *name, const char *value, projkey_auth_e expected,
    size_t key_offset)
{
    auth_case(name, value, strlen(value), expected, key_offset);
}


/* on an exact-size heap copy, so that valgrind and ASan see any overread */
static void
auth_case(const char *name, const void *value, size_t len,
    projkey_auth_e expected, size_t key_offset)
{
    projkey_auth_e        rc;
    unsigned char        *copy;
    const unsigned char  *key;

    copy = NULL;

    if (value != NULL) {
        copy = malloc(len ? len : 1);
        if (copy == NULL) {
            bail_out("out of memory");
        }

        memcpy(copy, value, len);
    }

    key = NULL;
    rc = projkey_parse_auth(copy, len, &key);

    if (!ok(rc == expected, "parse_auth: %s is %s", name,
            auth_name(expected)))
    {
        diag("         got: %s", auth_name(rc));
    }

    if (expected == PROJKEY_AUTH_KEY) {
        ok(key == copy + key_offset, "parse_auth: %s points at the key",
           name);
    }

    free(copy);
}


static const char *
auth_name(projkey_auth_e rc)
{
    switch (rc) {
    case PROJKEY_AUTH_ABSENT:
        return "ABSENT";
    case PROJKEY_AUTH_FOREIGN:
        return "FOREIGN";
    case PROJKEY_AUTH_MALFORMED:
        return "MALFORMED";
    case PROJKEY_AUTH_KEY:
        return "KEY";
    }

    return "?";
}


static void
test_preview(void)
{
    unsigned char  key[PROJKEY_LEN], out[PROJKEY_PREVIEW_LEN + 1];

    is_int(PROJKEY_PREVIEW_LEN, 18, "PROJKEY_PREVIEW_LEN is 18");

    out[PROJKEY_PREVIEW_LEN] = '#';
    projkey_preview((const unsigned char *) K, PROJKEY_LEN, out);
    is_mem(out, PROJKEY_PREVIEW_LEN + 1, "sk-project-...Ym63#", 19,
           "preview of K is sk-project-...Ym63, 18 bytes written");

    projkey_generate(key);
    projkey_preview(key, PROJKEY_LEN, out);
    is_mem(out, 14, "sk-project-...", 14, "preview of a new key: prefix");
    is_mem(out + 14, 4, key + PROJKEY_LEN - 4, 4,
           "preview of a new key: its last 4 characters");

    projkey_preview((const unsigned char *) "ab", 2, out);
    is_mem(out, PROJKEY_PREVIEW_LEN, "sk-project-.....ab", 18,
           "preview of a 2-byte string stays inside it");

    projkey_wipe(key, sizeof(key));
}


static void
test_wipe(void)
{
    size_t         i, nonzero;
    unsigned char  buf[PROJKEY_LEN + 1];

    memcpy(buf, K, PROJKEY_LEN);
    buf[PROJKEY_LEN] = '#';
    projkey_wipe(buf, PROJKEY_LEN);

    nonzero = 0;
    for (i = 0; i < PROJKEY_LEN; i++) {
        nonzero += (buf[i] != 0);
    }

    is_int(nonzero, 0, "projkey_wipe() zeroes the buffer");
    is_int(buf[PROJKEY_LEN], '#', "projkey_wipe() stops at len");
}


static int
is_b62(const unsigned char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] == '\0' || strchr(B62, p[i]) == NULL) {
            return 0;
        }
    }

    return 1;
}


static int
cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, PROJKEY_LEN);
}


static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, PROJKEY_ID_LEN);
}


static void
hex(const unsigned char *p, size_t len, char *out)
{
    size_t                   i;
    static const char  digits[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }

    out[2 * len] = '\0';
}
