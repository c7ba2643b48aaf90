#!/usr/bin/perl

# projkey: several workers share one zone; a change reaches all of them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(11);

my ($id, $key) = $t->create_key('shared');

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    log_format w '$pid $projkey_status $request_uri';

    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        # reuseport: the kernel spreads connections over both workers
        listen 127.0.0.1:%%PORT_0%% reuseport;
        access_log %%TESTDIR%%/workers.log w;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "status=ok\n";
        }
    }
}

EOF

###############################################################################

my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');

is(count($key, 200, 'all'), 200, 'all 200 accepted');

my %pids = map { (split / /)[0] => 1 }
    grep { /accepted \/api\/all$/ } split /\n/, $t->read_file('workers.log');
is(scalar keys %pids, 2, 'both workers accepted keys')
    or diag('workers seen: ' . join ' ', keys %pids);

# concurrent keep-alive load on both workers

{
    # wrk is installed by scripts/deps: its absence is a failure

    my ($rc, $out) = $t->run_cmd('/usr/bin/wrk', '-t', '2', '-c', '20',
        '-d', '2s', '-H', "Authorization: Bearer $key",
        'http://127.0.0.1:' . $t->port(0) . '/api/load');

    my ($n) = $out =~ /(\d+) requests in/;
    cmp_ok($n // 0, '>', 100, 'wrk: requests sent') or diag($out);
    ok($rc == 0 && $out !~ /Non-2xx|Socket errors/, 'wrk: all accepted')
        or diag($out);
}

# disable: after the sync interval, no worker accepts it

$t->cli('disable', $id);
sleep 1;
is(count($key, 401, 'disabled'), 50, 'disabled: 50 of 50 rejected');
log_workers('disabled', 'disabled');

$t->cli('enable', $id);
sleep 1;
is(count($key, 200, 'enabled'), 50, 'enabled: 50 of 50 accepted');

$t->cli('delete', $id);
sleep 1;
is(count($key, 401, 'deleted'), 50, 'deleted: 50 of 50 rejected');
log_workers('unknown', 'deleted');

my ($id2, $key2) = $t->create_key('new');
sleep 1;
is(count($key2, 200, 'created'), 50, 'created: 50 of 50 accepted');

###############################################################################

$t->done();

###############################################################################

# sends n requests (50 unless 'all'), each on a new connection; returns how
# many got the expected status
sub count {
    my ($k, $status, $tag) = @_;
    my $n = $tag eq 'all' ? 200 : 50;
    my $got = 0;

    for (1 .. $n) {
        my $r = $t->get("/api/$tag", Authorization => "Bearer $k");
        $got++ if $r =~ /^HTTP\/1\.1 $status /;
    }

    return $got;
}

# both workers took part in the rejections
sub log_workers {
    my ($status, $tag) = @_;
    my %p = map { (split / /)[0] => 1 }
        grep { /\Q$status\E \/api\/$tag$/ } split /\n/,
        $t->read_file('workers.log');
    is(scalar keys %p, 2, "$tag: both workers rejected")
        or diag('workers seen: ' . join ' ', keys %p);
}

###############################################################################
