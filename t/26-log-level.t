#!/usr/bin/perl

# projkey: a request without a key is logged at info; a bad key at the
# level of projkey_log_level (default info), and never with the key.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(9);

my ($id, $key) = $t->create_key('logged');
die "projkey disable failed\n" if ($t->cli('disable', $id))[0];

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /default/ {
            projkey keys;
            empty_gif;
        }

        location /warn/ {
            projkey keys;
            projkey_log_level warn;
            empty_gif;
        }
    }
}

EOF

my $bad = 'sk-project-' . ('A' x 48);

like($t->get('/default/x', Authorization => "Bearer $bad"), qr/ 401 /,
    'default location: malformed key rejected');
like($t->get('/warn/x', Authorization => "Bearer $bad"), qr/ 401 /,
    'warn location: malformed key rejected');
like($t->get('/warn/x', Authorization => "Bearer $key"), qr/ 401 /,
    'warn location: disabled key rejected');
like($t->get('/warn/x'), qr/ 401 /, 'warn location: no key rejected');

my $log = $t->error_log;

like($log, qr/\[info\] [^\n]*API key malformed[^\n]*GET \/default\/x/,
    'a bad key is logged at info by default');
like($log, qr/\[warn\] [^\n]*API key malformed[^\n]*GET \/warn\/x/,
    'projkey_log_level warn: a bad key at warn');
like($log, qr/\[warn\] [^\n]*API key disabled/,
    'a disabled key at the same level');
like($log, qr/\[info\] [^\n]*API key missing[^\n]*GET \/warn\/x/,
    'a missing key stays at info');
unlike($log, qr/\Q$key\E|\Q$bad\E/, 'no key in the log');

$t->done();

###############################################################################
