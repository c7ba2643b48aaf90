/*
 * projkey: the key format, apart from nginx (see projkey_key.h).
 */


#include <string.h>

#include <sodium.h>

#if (defined(__SSE2__) && !defined(PROJKEY_PORTABLE))
#define PROJKEY_SSE2  1
#include <emmintrin.h>
#endif

#include "projkey_key.h"
#include "projkey_crc32.h"


#define PROJKEY_BODY_LEN      (PROJKEY_PREFIX_LEN + PROJKEY_RANDOM_LEN)
#define PROJKEY_SCHEME        "bearer"
#define PROJKEY_SCHEME_LEN    (sizeof(PROJKEY_SCHEME) - 1)

/*
 * The CRC-32 register after "sk-project-" (before the final inversion);
 * a wrong value would make every key that projkey_checksum() signs
 * invalid, which t/unit/test_key.c and fuzz_auth check.
 */
#define PROJKEY_PREFIX_CRC_STATE  0x1c63f0acU

/* the value of a base62 digit, or PROJKEY_NOT_B62 */
#define PROJKEY_NOT_B62       0xff

#define projkey_lc(c)         (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))

/* the CRC-32 register after one more byte c */
#define projkey_crc32_byte(crc, c)                                            \
    (projkey_crc32_table[0][((crc) ^ (c)) & 0xff] ^ ((crc) >> 8))


static uint64_t projkey_load_le64(const unsigned char *p);
#if (PROJKEY_SSE2)
static __m128i projkey_base62_16(const unsigned char *p);
#else
static uint64_t projkey_not_base62_8(uint64_t w);
#endif
static uint32_t projkey_crc32_8(uint32_t crc, uint64_t w);
static int projkey_is_bearer(const unsigned char *p, size_t len);
static int projkey_mentions_key(const unsigned char *p, size_t len);
static void projkey_random_base62(unsigned char *out, size_t n);


static const unsigned char  projkey_base62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";


/*
 * Byte to base62 value; a constant table rather than one built at run time,
 * so that there is nothing to initialize and nothing to race on.
 */
static const unsigned char  projkey_base62_value[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
    0x21, 0x22, 0x23, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a,
    0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32,
    0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
};




int
projkey_init(void)
{
    /* 1 means already initialized, which is just as good */
    if (sodium_init() < 0) {
        return -1;
    }

    return 0;
}


uint32_t
projkey_crc32(const unsigned char *p, size_t len)
{
    uint32_t  crc;

    crc = 0xffffffff;

    while (len--) {
        crc = projkey_crc32_byte(crc, *p++);
    }

    return crc ^ 0xffffffff;
}


void
projkey_checksum(const unsigned char *p, size_t len, unsigned char *out)
{
    size_t    i;
    uint32_t  crc;

    crc = projkey_crc32(p, len);

    /* 62^6 > 2^32, so six digits always hold a CRC-32 */
    for (i = PROJKEY_CHECKSUM_LEN; i > 0; i--) {
        out[i - 1] = projkey_base62[crc % 62];
        crc /= 62;
    }
}


void
projkey_generate(unsigned char *key)
{
    memcpy(key, PROJKEY_PREFIX, PROJKEY_PREFIX_LEN);

    projkey_random_base62(key + PROJKEY_PREFIX_LEN, PROJKEY_RANDOM_LEN);

    projkey_checksum(key, PROJKEY_BODY_LEN, key + PROJKEY_BODY_LEN);
}


/*
 * Uniform base62 characters from blocks of CSPRNG bytes: a byte below 248
 * (4 * 62) gives a character, a byte above is dropped, so there is no
 * modulo bias.  One randombytes_buf() a block, not one system call a
 * character as randombytes_uniform() costs with libsodium 1.0.18.
 */

static void
projkey_random_base62(unsigned char *out, size_t n)
{
    size_t         i, j;
    unsigned char  block[64];

    j = sizeof(block);

    for (i = 0; i < n; /* void */) {

        if (j == sizeof(block)) {
            randombytes_buf(block, sizeof(block));
            j = 0;
        }

        if (block[j] < 248) {
            out[i++] = projkey_base62[block[j] % 62];
        }

        j++;
    }

    sodium_memzero(block, sizeof(block));
}


/*
 * This runs on every request: the 48 characters after the prefix are
 * three vectors of 16 (SSE2, x86-64's baseline), else six words.
 */

int
projkey_well_formed(const unsigned char *key, size_t len)
{
#if (PROJKEY_SSE2)
    __m128i   ok;
#else
    size_t    i;
    uint64_t  bad;
#endif

    if (len != PROJKEY_LEN
        || memcmp(key, PROJKEY_PREFIX, PROJKEY_PREFIX_LEN) != 0)
    {
        return 0;
    }

#if (PROJKEY_SSE2)

    ok = _mm_and_si128(projkey_base62_16(key + PROJKEY_PREFIX_LEN),
                       projkey_base62_16(key + PROJKEY_PREFIX_LEN + 16));
    ok = _mm_and_si128(ok, projkey_base62_16(key + PROJKEY_PREFIX_LEN + 32));

    return _mm_movemask_epi8(ok) == 0xffff;

#else

    bad = 0;

    for (i = PROJKEY_PREFIX_LEN; i < PROJKEY_LEN; i += 8) {
        bad |= projkey_not_base62_8(projkey_load_le64(key + i));
    }

    /* both kinds of flags are high bits: one test covers the 48 bytes */
    return (bad & 0x8080808080808080ULL) == 0;

#endif
}


/*
 * Only when the lookup missed: a key in the zone has a valid checksum by
 * construction.  The CRC-32 resumes from its state after the prefix.
 */

int
projkey_checksum_valid(const unsigned char *key, size_t len)
{
    size_t    i;
    uint32_t  crc;
    uint64_t  sum;
    unsigned  v;

    if (len != PROJKEY_LEN) {
        return 0;
    }

    crc = PROJKEY_PREFIX_CRC_STATE;

    for (i = PROJKEY_PREFIX_LEN; i + 8 <= PROJKEY_BODY_LEN; i += 8) {
        crc = projkey_crc32_8(crc, projkey_load_le64(key + i));
    }

    for ( /* void */ ; i < PROJKEY_BODY_LEN; i++) {
        crc = projkey_crc32_byte(crc, key[i]);
    }

    /* decode rather than re-encode: 62^6 does not fit in 32 bits */
    sum = 0;

    for (i = PROJKEY_BODY_LEN; i < PROJKEY_LEN; i++) {
        v = projkey_base62_value[key[i]];

        if (v == PROJKEY_NOT_B62) {
            return 0;
        }

        sum = sum * 62 + v;
    }

    return sum == (uint64_t) (crc ^ 0xffffffff);
}


int
projkey_valid(const unsigned char *key, size_t len)
{
    /* the checksum relies on the prefix: the cheap test goes first */
    return projkey_well_formed(key, len) && projkey_checksum_valid(key, len);
}


/* 8 bytes, the first one in the low bits, whatever the byte order */
static uint64_t
projkey_load_le64(const unsigned char *p)
{
    uint64_t  w;

    memcpy(&w, p, 8);

#if defined(__BYTE_ORDER__) && (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
    w = __builtin_bswap64(w);
#endif

    return w;
}


#if (PROJKEY_SSE2)

/*
 * 0xff in each byte of the result that is in "0-9A-Za-z".  The compares
 * are signed, so bytes from 0x80 up fail both ranges; bit 0x20 maps "A-Z"
 * on "a-z", and only letters are tested with it set.
 */

static __m128i
projkey_base62_16(const unsigned char *p)
{
    __m128i  v, l, digit, letter;

    v = _mm_loadu_si128((const __m128i *) p);
    l = _mm_or_si128(v, _mm_set1_epi8(0x20));

    digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                          _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    letter = _mm_and_si128(_mm_cmpgt_epi8(l, _mm_set1_epi8('a' - 1)),
                           _mm_cmplt_epi8(l, _mm_set1_epi8('z' + 1)));

    return _mm_or_si128(digit, letter);
}

#else

/*
 * The high bit of each byte of the result is set if that byte of w is not
 * in "0-9A-Za-z".  Bytes are range-checked on their low 7 bits, where the
 * additions cannot carry into the next byte: x + (0x80 - lo) has its high
 * bit set when x >= lo, and x + (0x7f - hi) when x > hi.  Setting bit 0x20
 * maps "A-Z" on "a-z" and nothing else on it.
 */

static uint64_t
projkey_not_base62_8(uint64_t w)
{
    uint64_t  x, y, digit, letter;

#define PROJKEY_BYTES(b)  (0x0101010101010101ULL * (b))

    x = w & PROJKEY_BYTES(0x7f);
    y = x | PROJKEY_BYTES(0x20);

    digit = (x + PROJKEY_BYTES(0x80 - '0'))
            & ~(x + PROJKEY_BYTES(0x7f - '9'));
    letter = (y + PROJKEY_BYTES(0x80 - 'a'))
             & ~(y + PROJKEY_BYTES(0x7f - 'z'));

    return ((digit | letter) ^ PROJKEY_BYTES(0x80)) | w;

#undef PROJKEY_BYTES
}

#endif


/* the CRC-32 register after the 8 bytes of w (slicing by 8) */
static uint32_t
projkey_crc32_8(uint32_t crc, uint64_t w)
{
    uint32_t  lo, hi;

    lo = (uint32_t) w ^ crc;
    hi = (uint32_t) (w >> 32);

    return projkey_crc32_table[7][lo & 0xff]
           ^ projkey_crc32_table[6][(lo >> 8) & 0xff]
           ^ projkey_crc32_table[5][(lo >> 16) & 0xff]
           ^ projkey_crc32_table[4][lo >> 24]
           ^ projkey_crc32_table[3][hi & 0xff]
           ^ projkey_crc32_table[2][(hi >> 8) & 0xff]
           ^ projkey_crc32_table[1][(hi >> 16) & 0xff]
           ^ projkey_crc32_table[0][hi >> 24];
}


projkey_auth_e
projkey_parse_auth(const unsigned char *value, size_t len,
    const unsigned char **key)
{
    size_t  i;

    if (projkey_is_bearer(value, len)) {

        for (i = PROJKEY_SCHEME_LEN; i < len && value[i] == ' '; i++) {
            /* void */
        }

        /* the token is the whole rest, so "nothing after it" comes free */
        if (i > PROJKEY_SCHEME_LEN
            && projkey_well_formed(value + i, len - i))
        {
            *key = value + i;
            return PROJKEY_AUTH_KEY;
        }
    }

    /* a project key presented in any other shape must not be ignored */
    if (projkey_mentions_key(value, len)) {
        return PROJKEY_AUTH_MALFORMED;
    }

    if (projkey_is_bearer(value, len)) {
        return PROJKEY_AUTH_FOREIGN;
    }

    return PROJKEY_AUTH_ABSENT;
}


/*
 * "Bearer" in any case, then a space or the end of the value.  Every
 * character of "bearer" is a letter, so setting bit 0x20 of a byte gives
 * it only from the same letter in either case: two word compares.
 */

static int
projkey_is_bearer(const unsigned char *p, size_t len)
{
    uint32_t  a, sa;
    uint16_t  b, sb;

    if (len < PROJKEY_SCHEME_LEN) {
        return 0;
    }

    memcpy(&a, p, 4);
    memcpy(&b, p + 4, 2);
    memcpy(&sa, PROJKEY_SCHEME, 4);
    memcpy(&sb, &PROJKEY_SCHEME[4], 2);

    if ((a | 0x20202020) != sa || (uint16_t) (b | 0x2020) != sb) {
        return 0;
    }

    return len == PROJKEY_SCHEME_LEN || p[PROJKEY_SCHEME_LEN] == ' ';
}


/* "sk-project-" anywhere, ASCII case-insensitively, NUL bytes included */
static int
projkey_mentions_key(const unsigned char *p, size_t len)
{
    size_t  i, j;

    if (len < PROJKEY_PREFIX_LEN) {
        return 0;
    }

    for (i = 0; i <= len - PROJKEY_PREFIX_LEN; i++) {

        if (projkey_lc(p[i]) != 's') {
            continue;
        }

        for (j = 1; j < PROJKEY_PREFIX_LEN; j++) {
            if (projkey_lc(p[i + j]) != (unsigned char) PROJKEY_PREFIX[j]) {
                break;
            }
        }

        if (j == PROJKEY_PREFIX_LEN) {
            return 1;
        }
    }

    return 0;
}


void
projkey_hash(const unsigned char *key, size_t len, unsigned char *out)
{
    crypto_generichash(out, PROJKEY_HASH_LEN, key, len, NULL, 0);
}


void
projkey_preview(const unsigned char *key, size_t len, unsigned char *out)
{
    size_t  tail;

    memcpy(out, PROJKEY_PREFIX "...", PROJKEY_PREFIX_LEN + 3);
    out += PROJKEY_PREFIX_LEN + 3;

    /* never read before key: a string shorter than 4 is padded with '.' */
    tail = len < 4 ? len : 4;

    memset(out, '.', 4 - tail);
    memcpy(out + 4 - tail, key + len - tail, tail);
}


void
projkey_generate_id(unsigned char *out)
{
    projkey_random_base62(out, PROJKEY_ID_LEN);
}


void
projkey_wipe(void *p, size_t len)
{
    sodium_memzero(p, len);
}
