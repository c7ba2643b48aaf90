
/*
 * projkey_parse_auth(), projkey_well_formed(), projkey_checksum_valid() and
 * projkey_valid() on any bytes, checked against the contract: the key
 * format of SPEC.md (length and alphabet before any hashing, the checksum
 * only on a miss) and the classification that projkey_key.h documents.
 */


#include <ctype.h>
#include <strings.h>

#include "fuzz.h"


#define FUZZ_SCHEME_LEN  6


static uint32_t fuzz_crc32(const unsigned char *p, size_t len);
static int fuzz_key_well_formed(const unsigned char *p, size_t len);
static int fuzz_checksum_valid(const unsigned char *p, size_t len);
static int fuzz_mentions_key(const unsigned char *p, size_t len);
static int fuzz_is_bearer(const unsigned char *p, size_t len);
static void fuzz_check_key(const unsigned char *key);


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char  fuzz_b62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_rng_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                i;
    unsigned char        *buf, *copy;
    projkey_auth_e        a, expect;
    const unsigned char  *key;

    /* a private copy of exactly size bytes: ASan sees any overread */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    key = NULL;
    a = projkey_parse_auth(copy, size, &key);

    fuzz_assert(a == PROJKEY_AUTH_ABSENT || a == PROJKEY_AUTH_FOREIGN
                || a == PROJKEY_AUTH_MALFORMED || a == PROJKEY_AUTH_KEY);

    /* the classification of projkey_key.h, from the contract alone */

    expect = PROJKEY_AUTH_ABSENT;

    if (fuzz_is_bearer(copy, size)) {
        for (i = FUZZ_SCHEME_LEN; i < size && copy[i] == ' '; i++) {
            /* void */
        }

        if (i > FUZZ_SCHEME_LEN
            && fuzz_key_well_formed(copy + i, size - i))
        {
            expect = PROJKEY_AUTH_KEY;

        } else if (fuzz_mentions_key(copy, size)) {
            expect = PROJKEY_AUTH_MALFORMED;

        } else {
            expect = PROJKEY_AUTH_FOREIGN;
        }

    } else if (fuzz_mentions_key(copy, size)) {
        expect = PROJKEY_AUTH_MALFORMED;
    }

    fuzz_assert(a == expect);

    /* a presented project key is never ignored */
    if (fuzz_mentions_key(copy, size)) {
        fuzz_assert(a != PROJKEY_AUTH_ABSENT && a != PROJKEY_AUTH_FOREIGN);
    }

    if (a == PROJKEY_AUTH_KEY) {
        fuzz_assert(key != NULL);
        fuzz_assert(key >= copy && key + PROJKEY_LEN == copy + size);
        fuzz_assert(projkey_well_formed(key, PROJKEY_LEN));

        /* what the handler asks on a miss: malformed or unknown */
        fuzz_assert(projkey_checksum_valid(key, PROJKEY_LEN)
                    == fuzz_checksum_valid(key, PROJKEY_LEN));
        fuzz_check_key(key);

    } else {
        fuzz_assert(key == NULL);
    }

    /* the three checks on the bytes themselves, against their definition */

    fuzz_assert(projkey_well_formed(copy, size)
                == fuzz_key_well_formed(copy, size));
    fuzz_assert(projkey_checksum_valid(copy, size)
                == fuzz_checksum_valid(copy, size));
    fuzz_assert(projkey_valid(copy, size)
                == (fuzz_key_well_formed(copy, size)
                    && fuzz_checksum_valid(copy, size)));

    if (projkey_well_formed(copy, size)) {
        fuzz_check_key(copy);

        /* presented the standard way, it is a key */
        buf = malloc(size + 8);
        if (buf != NULL) {
            memcpy(buf, "bEaReR  ", 8);
            memcpy(buf + 8, copy, size);
            key = NULL;
            fuzz_assert(projkey_parse_auth(buf, size + 8, &key)
                        == PROJKEY_AUTH_KEY);
            fuzz_assert(key == buf + 8);

            /* and with anything after it, a malformed one */
            buf[size + 7] = ' ';
            fuzz_assert(projkey_parse_auth(buf + 1, size + 7, &key)
                        == PROJKEY_AUTH_MALFORMED);
            free(buf);
        }
    }

    /* the preview never reads outside what it is given */
    if (size <= 64) {
        unsigned char  preview[PROJKEY_PREVIEW_LEN];

        projkey_preview(copy, size, preview);
        fuzz_assert(memcmp(preview, "sk-project-...", 14) == 0);
    }

    free(copy);

    return 0;
}


/* CRC-32 (IEEE 802.3, reflected 0xedb88320) bit by bit, as zlib computes */

static uint32_t
fuzz_crc32(const unsigned char *p, size_t len)
{
    int       k;
    size_t    i;
    uint32_t  crc;

    crc = 0xffffffff;

    for (i = 0; i < len; i++) {
        crc ^= p[i];

        for (k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xedb88320 & (0 - (crc & 1)));
        }
    }

    return ~crc;
}


/* SPEC.md: "sk-project-", then 48 base62 characters */

static int
fuzz_key_well_formed(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len != 59 || memcmp(p, "sk-project-", 11) != 0) {
        return 0;
    }

    for (i = 11; i < 59; i++) {
        if (p[i] == '\0' || strchr(fuzz_b62, p[i]) == NULL) {
            return 0;
        }
    }

    return 1;
}


/*
 * The last 6 bytes are the CRC-32 of "sk-project-" and the 42 bytes after
 * the first 11, in 6 base62 digits, most significant first (projkey_key.h:
 * the first 11 bytes are taken to be the prefix).
 */

static int
fuzz_checksum_valid(const unsigned char *p, size_t len)
{
    size_t         i;
    uint32_t       crc;
    char           sum[7];
    unsigned char  body[53];

    if (len != 59) {
        return 0;
    }

    memcpy(body, "sk-project-", 11);
    memcpy(body + 11, p + 11, 42);

    crc = fuzz_crc32(body, 53);

    for (i = 6; i > 0; i--) {
        sum[i - 1] = fuzz_b62[crc % 62];
        crc /= 62;
    }

    return memcmp(p + 53, sum, 6) == 0;
}


/* "sk-project-" anywhere, ASCII letters in any case */

static int
fuzz_mentions_key(const unsigned char *p, size_t len)
{
    size_t  i, j;

    for (i = 0; i + 11 <= len; i++) {
        for (j = 0; j < 11; j++) {
            if (tolower(p[i + j]) != "sk-project-"[j]) {
                break;
            }
        }

        if (j == 11) {
            return 1;
        }
    }

    return 0;
}


/* the scheme "Bearer" in any case, then a space or the end */

static int
fuzz_is_bearer(const unsigned char *p, size_t len)
{
    return len >= FUZZ_SCHEME_LEN && strncasecmp((char *) p, "bearer", 6) == 0
           && (len == FUZZ_SCHEME_LEN || p[FUZZ_SCHEME_LEN] == ' ');
}


/* an accepted key hashes as BLAKE2b-256 and previews by its last four */

static void
fuzz_check_key(const unsigned char *key)
{
    unsigned char  hash[PROJKEY_HASH_LEN], ref[PROJKEY_HASH_LEN];
    unsigned char  preview[PROJKEY_PREVIEW_LEN];

    projkey_hash(key, PROJKEY_LEN, hash);
    crypto_generichash(ref, sizeof(ref), key, PROJKEY_LEN, NULL, 0);
    fuzz_assert(memcmp(hash, ref, PROJKEY_HASH_LEN) == 0);

    projkey_preview(key, PROJKEY_LEN, preview);
    fuzz_assert(PROJKEY_PREVIEW_LEN == 18);
    fuzz_assert(memcmp(preview, "sk-project-...", 14) == 0);
    fuzz_assert(memcmp(preview + 14, key + PROJKEY_LEN - 4, 4) == 0);
}
