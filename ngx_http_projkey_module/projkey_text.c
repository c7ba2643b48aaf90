
/*
 * projkey: the rules of the contract's text and times (projkey_text.h).
 */


#include <stdio.h>
#include <string.h>
#include <time.h>

#include "projkey_text.h"


static int64_t projkey_text_years_ahead(int64_t now, int years);


/*
 * Decodes one UTF-8 character strictly (no overlong forms, no surrogates,
 * nothing above U+10FFFF); returns its length, or 0 when invalid.
 */

size_t
projkey_utf8_char(const unsigned char *p, size_t len, uint32_t *cp)
{
    size_t    n, i;
    uint32_t  c, min;

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 2;
        c &= 0x1f;
        min = 0x80;

    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        c &= 0x0f;
        min = 0x800;

    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        c &= 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    *cp = c;
    return n;
}


int
projkey_text_check(const char *text, size_t len, size_t *chars)
{
    size_t                n, i;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) text;

    /* most text is printable ASCII: a byte a character, nothing to decode */

    for (i = 0; i < len && p[i] >= 0x20 && p[i] < 0x7f; i++) {
        /* void */
    }

    *chars = i;

    for ( /* void */ ; i < len; i += n) {
        n = projkey_utf8_char(p + i, len - i, &cp);

        if (n == 0) {
            return PROJKEY_TEXT_NOT_UTF8;
        }

        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            return PROJKEY_TEXT_CONTROL;
        }

        (*chars)++;
    }

    return PROJKEY_TEXT_OK;
}


const char *
projkey_text_check_name(const char *name, size_t len, const char **out,
    size_t *out_len)
{
    size_t                chars;
    const char           *msg;
    const unsigned char  *p;

    p = (const unsigned char *) name;

    while (len > 0 && (*p == ' ' || (*p >= '\t' && *p <= '\r'))) {
        p++;
        len--;
    }

    while (len > 0 && (p[len - 1] == ' '
                       || (p[len - 1] >= '\t' && p[len - 1] <= '\r')))
    {
        len--;
    }

    switch (projkey_text_check((const char *) p, len, &chars)) {

    case PROJKEY_TEXT_NOT_UTF8:
        msg = "The name must be valid UTF-8.";
        break;

    case PROJKEY_TEXT_CONTROL:
        msg = "The name must not contain control characters.";
        break;

    default:
        msg = NULL;
    }

    if (msg == NULL) {
        if (len == 0) {
            msg = "The name must not be empty.";

        } else if (chars > PROJKEY_NAME_MAX) {
            msg = "The name must be at most 100 characters.";
        }
    }

    if (msg != NULL) {
        return msg;
    }

    *out = (const char *) p;
    *out_len = len;

    return NULL;
}


const char *
projkey_text_parse_time(const char *text, size_t len, int64_t *t)
{
    int                  i, v[6];
    size_t               k;
    int64_t              days, y, m;
    const unsigned char *p;
    static const int     mdays[12] = { 31, 28, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31 };
    static const char    form[] = "dddd-dd-ddTdd:dd:dd";

    p = (const unsigned char *) text;

    if (len < sizeof(form)) {
        goto invalid;
    }

    for (k = 0; k < sizeof(form) - 1; k++) {
        if (form[k] == 'd') {
            if (p[k] < '0' || p[k] > '9') {
                goto invalid;
            }

        } else if (form[k] == 'T') {
            if (p[k] != 'T' && p[k] != 't') {
                goto invalid;
            }

        } else if (p[k] != (unsigned char) form[k]) {
            goto invalid;
        }
    }

    for (i = 0; i < 6; i++) {
        k = (i == 0) ? 0 : 2 + 3 * i;
        v[i] = (p[k] - '0') * 10 + (p[k + 1] - '0');

        if (i == 0) {
            v[0] = v[0] * 100 + (p[2] - '0') * 10 + (p[3] - '0');
        }
    }

    k = sizeof(form) - 1;

    /* a fraction of a second is cut off: the contract's times are seconds */

    if (k < len && p[k] == '.') {
        k++;

        if (k == len || p[k] < '0' || p[k] > '9') {
            goto invalid;
        }

        while (k < len && p[k] >= '0' && p[k] <= '9') {
            k++;
        }
    }

    if (!((len - k == 1 && (p[k] == 'Z' || p[k] == 'z'))
          || (len - k == 6 && memcmp(p + k, "+00:00", 6) == 0)))
    {
        goto invalid;
    }

    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23
        || v[4] > 59 || v[5] > 59)
    {
        goto invalid;
    }

    y = v[0];
    m = v[1];

    if (v[2] > mdays[m - 1]
        + (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
    {
        goto invalid;
    }

    /* days since 1970-01-01 of a proleptic Gregorian date */

    if (m <= 2) {
        y--;
        m += 12;
    }

    days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5
           + v[2] - 719469;

    *t = days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];

    return NULL;

invalid:

    return "The time must be RFC 3339 in UTC, e.g. 2026-11-27T05:35:01Z.";
}


char *
projkey_text_format_time(int64_t t, char *buf)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, PROJKEY_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm)
           != PROJKEY_TIME_LEN - 1)
    {
        snprintf(buf, PROJKEY_TIME_LEN, "%lld", (long long) t);
    }

    return buf;
}


/* now plus years on the calendar: 2026-02-28 + 10 years is 2036-02-28 */

static int64_t
projkey_text_years_ahead(int64_t now, int years)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) now;

    if (gmtime_r(&tt, &tm) == NULL) {
        return now + (int64_t) years * 365 * 86400;
    }

    tm.tm_year += years;

    return (int64_t) timegm(&tm);
}


const char *
projkey_text_check_expires(int64_t t, int64_t now)
{
    if (t <= now) {
        return "The expiry must be in the future.";
    }

    if (t > projkey_text_years_ahead(now, PROJKEY_EXPIRES_YEARS)) {
        return "The expiry must be at most 10 years ahead.";
    }

    return NULL;
}


const char *
projkey_text_check_previous(int64_t *t, int64_t now)
{
    if (*t > now + PROJKEY_ROLL_MAX) {
        return "The previous secret must stop working at most 30 days "
               "ahead.";
    }

    if (*t < now) {
        *t = now;
    }

    return NULL;
}
