
/*
 * projkey: the admin JSON API (placeholder until the admin issue lands).
 */


#include "ngx_http_projkey.h"


char *
ngx_http_projkey_admin_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    return "is not implemented yet";
}
