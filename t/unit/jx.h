
/*
 * JSON read back by an SQLite connection of the test's own (t_json_db,
 * opened by the test's main()), to judge the JSON the code under test
 * builds without trusting its own parser.
 */


#ifndef _PROJKEY_JX_H_INCLUDED_
#define _PROJKEY_JX_H_INCLUDED_


#include <stdio.h>

#include <sqlite3.h>


static sqlite3  *t_json_db;


/* json_extract(json, path) as text ("null" for JSON null), or NULL */

static char *
t_jx(const char *json, const char *path)
{
    static char    buf[4096];
    sqlite3_stmt  *s;
    const char    *p;

    if (sqlite3_prepare_v2(t_json_db, "SELECT CASE WHEN json_valid(?1) THEN "
                           "coalesce(json_extract(?1, ?2), json_type(?1, ?2))"
                           " END", -1, &s, NULL) != SQLITE_OK)
    {
        return NULL;
    }

    sqlite3_bind_text(s, 1, json, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);

    p = NULL;

    if (sqlite3_step(s) == SQLITE_ROW) {
        p = (const char *) sqlite3_column_text(s, 0);

        if (p != NULL) {
            snprintf(buf, sizeof(buf), "%s", p);
            p = buf;
        }
    }

    sqlite3_finalize(s);

    return (char *) p;
}


#endif /* _PROJKEY_JX_H_INCLUDED_ */
