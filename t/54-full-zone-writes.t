#!/usr/bin/perl

# projkey: admin writes while a change the zone cannot take is pending.  A
# full zone holds back its sync at a key it has no room for (made by the
# CLI); the admin calls made meanwhile apply their own change in full, as
# they read the change log past that key: a disable needs no room and
# rejects at once, a rename works at once, a create is answered and no
# worker dies, and the key that did not fit stays rejected.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(12);

$t->expect_errors(qr/is full/, qr/\[crit\].*could not be created/);

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:32k db=%%TESTDIR%%/keys.db sync=1s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    alice;
            projkey_admin_project default;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "ok\n";
        }
    }
}

EOF

my $api = Projkey::Admin->new($t, user => 'alice', project => 'default');

my (@id, @secret, $full);
for my $i (1 .. 2000) {
    my $r = $api->call('POST', 'keys', { name => "k$i" });
    if ($r->{status} != 201) {
        $full = $r;
        last;
    }
    push @id, $r->{json}{key}{id};
    push @secret, $r->{json}{secret};
}

cmp_ok(scalar @id, '>', 20, scalar(@id) . ' keys fill the zone');
is($full && $full->{status}, 507, 'then a create answers 507');

# room for small nodes only (once the grace has freed them, and a sync
# swept them); a key with a long name does not fit
$api->call('DELETE', "keys/$_") for @id[0 .. 3];
sleep 3.5;
my ($rc) = $t->cli('create', 'x' x 90);
is($rc, 0, 'the CLI makes a key with a long name');

ok($t->wait_for(10, sub { $t->error_log =~ /is full: key .* is not loaded/ }),
    'the sync cannot load it: it stays pending');

is(status($secret[10]), 200, 'a key of the zone works');

my $r = $api->call('PATCH', "keys/$id[10]", { status => 'disabled' });
is($r->{status}, 200, 'a disable on the full zone: 200');
is(status($secret[10]), 401, 'the disabled key is rejected at once');

$r = $api->call('PATCH', "keys/$id[11]", { name => 'renamed' });
is($r->{status}, 200, 'a rename on the full zone: 200')
    or diag($r->{body});
my @st = map { sleep 0.05; status($secret[11]) } 1 .. 10;
is_deeply(\@st, [(200) x 10], 'the renamed key works at once, and after');

$r = $api->call('POST', 'keys', { name => 'one more' });
like($r->{status}, qr/^(?:201|507)$/, "a create is answered ($r->{status})");
if ($r->{status} == 201) {
    is(status($r->{json}{secret}), 200, 'the created key works at once');
} else {
    ok(!grep({ $_->{name} eq 'one more' } @{$api->list}),
        'the refused create made no key');
}

unlike($t->error_log, qr/exited on signal/, 'no worker died');

$t->done();

###############################################################################

sub status {
    my ($secret) = @_;
    my $res = $t->get('/api/x', Authorization => "Bearer $secret");
    my ($code) = $res =~ m{^HTTP/1\.\d (\d+)};
    return $code // 0;
}
