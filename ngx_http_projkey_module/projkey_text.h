
/*
 * projkey: the rules of the contract's text and times, apart from nginx
 * and from any store: names, administrators, projects and search texts
 * are strict UTF-8 without control characters; times are RFC 3339 in
 * UTC.  A check returns NULL, or what is wrong in words for the client.
 */


#ifndef _PROJKEY_TEXT_H_INCLUDED_
#define _PROJKEY_TEXT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define PROJKEY_NAME_MAX         100    /* characters, after trimming */

/* an expiry is in the future and at most this many years ahead */
#define PROJKEY_EXPIRES_YEARS    10

/* a rolled key's previous secret works at most this long (30 days) */
#define PROJKEY_ROLL_MAX         (30 * 86400)

/* "2026-11-27T05:35:01Z" and its NUL */
#define PROJKEY_TIME_LEN         21


/* what projkey_text_check() finds */
#define PROJKEY_TEXT_OK          0
#define PROJKEY_TEXT_NOT_UTF8    1      /* invalid or overlong, surrogates */
#define PROJKEY_TEXT_CONTROL     2      /* C0, DEL or C1 control character */


/* one strictly decoded UTF-8 character: its length, 0 when invalid */
size_t projkey_utf8_char(const unsigned char *p, size_t len, uint32_t *cp);

/* strict UTF-8 without control characters; *chars: the code points */
int projkey_text_check(const char *text, size_t len, size_t *chars);

/*
 * A key's name: trimmed of white space, 1 to PROJKEY_NAME_MAX characters
 * (code points), as projkey_text_check() wants it.  *out and *out_len are
 * the trimmed name inside name.
 */
const char *projkey_text_check_name(const char *name, size_t len,
    const char **out, size_t *out_len);

/*
 * A time of the contract: "2026-11-27T05:35:01Z" ("t" and "z" in lower
 * case, a fraction of a second, cut off, and "+00:00" also).  *t is Unix
 * seconds.
 */
const char *projkey_text_parse_time(const char *text, size_t len,
    int64_t *t);

/* Unix seconds as in the JSON; buf of PROJKEY_TIME_LEN bytes */
char *projkey_text_format_time(int64_t t, char *buf);

/* an expiry after now and at most PROJKEY_EXPIRES_YEARS ahead */
const char *projkey_text_check_expires(int64_t t, int64_t now);

/* a previous secret's end: at most PROJKEY_ROLL_MAX ahead, the past is now */
const char *projkey_text_check_previous(int64_t *t, int64_t now);


#endif /* _PROJKEY_TEXT_H_INCLUDED_ */
