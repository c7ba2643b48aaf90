
/*
 * projkey: the key format, apart from nginx.
 *
 * A key is "sk-project-" followed by 48 base62 characters: 42 random ones
 * from libsodium's CSPRNG, then a 6-character checksum (CRC-32 of all that
 * comes before it, in base62, most significant digit first, left-padded
 * with '0').  Base62 is "0-9A-Za-z" in that order.
 *
 * Everything here takes (pointer, length) pairs and includes no nginx
 * header, so that it is unit-tested with plain cc.
 */


#ifndef _PROJKEY_KEY_H_INCLUDED_
#define _PROJKEY_KEY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define PROJKEY_PREFIX           "sk-project-"
#define PROJKEY_PREFIX_LEN       (sizeof(PROJKEY_PREFIX) - 1)
#define PROJKEY_RANDOM_LEN       42
#define PROJKEY_CHECKSUM_LEN     6
#define PROJKEY_LEN              (PROJKEY_PREFIX_LEN + PROJKEY_RANDOM_LEN     \
                                  + PROJKEY_CHECKSUM_LEN)

/* BLAKE2b-256 of the whole key string, as stored in SQLite */
#define PROJKEY_HASH_LEN         32

/* "sk-project-...x7Qa" */
#define PROJKEY_PREVIEW_LEN      (PROJKEY_PREFIX_LEN + 3 + 4)

/* ids: 12 random base62 characters (71 bits), unrelated to the key */
#define PROJKEY_ID_LEN           12


/* what an Authorization header value presents, see projkey_parse_auth() */
typedef enum {
    PROJKEY_AUTH_ABSENT = 0,    /* no Bearer credentials at all */
    PROJKEY_AUTH_FOREIGN,       /* a Bearer token that is not a project key */
    PROJKEY_AUTH_MALFORMED,     /* mentions a project key, but not validly */
    PROJKEY_AUTH_KEY            /* "Bearer <well-formed project key>" */
} projkey_auth_e;


/* sodium_init(); 0 on success, -1 when no CSPRNG is available */
int projkey_init(void);

uint32_t projkey_crc32(const unsigned char *p, size_t len);

/* out[PROJKEY_CHECKSUM_LEN] = base62 of crc, left-padded with '0' */
void projkey_checksum(const unsigned char *p, size_t len,
    unsigned char *out);

/* writes PROJKEY_LEN bytes (no terminating NUL) */
void projkey_generate(unsigned char *key);

/*
 * 1 when key has a key's length, prefix and alphabet, else 0; the checksum
 * is not looked at (SPEC allows checking it only when the lookup misses).
 */
int projkey_well_formed(const unsigned char *key, size_t len);

/*
 * 1 when len is PROJKEY_LEN and the last 6 bytes are the checksum of the
 * prefix followed by the 42 bytes after the first 11 (which are taken to
 * be the prefix, as projkey_well_formed() checks), else 0.
 */
int projkey_checksum_valid(const unsigned char *key, size_t len);

/* both: 1 when key is exactly a well-formed key with a valid checksum */
int projkey_valid(const unsigned char *key, size_t len);

/*
 * Classifies an Authorization header value.  The scheme is matched
 * case-insensitively and must be followed by one or more spaces and exactly
 * one credential, with nothing after it.  Any value that contains
 * "sk-project-" (in any case) but is not exactly "Bearer <key>" with a key
 * that projkey_well_formed() accepts is PROJKEY_AUTH_MALFORMED, so that a
 * presented project key is never ignored.  On PROJKEY_AUTH_KEY, *key points
 * into value at the PROJKEY_LEN bytes of the key, whose checksum is not
 * checked: the caller checks it with projkey_checksum_valid() on a miss.
 */
projkey_auth_e projkey_parse_auth(const unsigned char *value, size_t len,
    const unsigned char **key);

/* out[PROJKEY_HASH_LEN] = BLAKE2b-256(key) */
void projkey_hash(const unsigned char *key, size_t len, unsigned char *out);

/* out[PROJKEY_PREVIEW_LEN] = "sk-project-..." + last 4 characters of key */
void projkey_preview(const unsigned char *key, size_t len,
    unsigned char *out);

/* out[PROJKEY_ID_LEN] = random base62 characters */
void projkey_generate_id(unsigned char *out);

/* overwrites len bytes in a way the compiler does not elide */
void projkey_wipe(void *p, size_t len);


#endif /* _PROJKEY_KEY_H_INCLUDED_ */
