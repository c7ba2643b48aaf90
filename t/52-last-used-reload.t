#!/usr/bin/perl

# projkey: the last uses since worker 0's last batch are never lost on the
# way out.  On a reload that keeps the zone, the new worker 0 writes them
# with its own batch (the old one does not walk every key then); on a
# reload to a zone of another name, and on a stop, the old worker 0 writes
# them as it exits.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(10);

my ($ida, $a) = $t->create_key('used before a reload');
my ($idb, $b) = $t->create_key('used before a rename');
my ($idc, $c) = $t->create_key('used before a stop');

$t->write_config(config('keys', '60s'))->run();

###############################################################################

# kept zone: the first batch of the new worker 0 has the use
is(status($a), 200, 'key a accepted');
is(status('sk-project-x'), 401, 'the key is checked');
ok(!defined last_used($ida), 'not written before the reload (flush=60s)');

$t->write_config(config('keys', '2s'));
$t->reload();

ok(wait_used($ida), 'a reload keeping the zone: written by the new worker 0');

# another zone: the old one is left, its worker 0 writes what it has
$t->write_config(config('keys', '60s'));
$t->reload();

is(status($b), 200, 'key b accepted');
ok(!defined last_used($idb), 'b not written yet');

$t->write_config(config('other', '60s'));
$t->reload();

ok(wait_used($idb), 'a reload to another zone: written by the old worker 0');

# a stop: nobody after it
is(status($c), 200, 'key c accepted');
$t->stop();

ok(defined last_used($idc), 'a stop: written by the exiting worker 0');

unlike($t->error_log(), qr/\Q$a\E|\Q$b\E|\Q$c\E/, 'no key in error.log');

###############################################################################

$t->done();

###############################################################################

sub config {
    my ($zone, $flush) = @_;

    return <<"EOF";
http {
    projkey_zone $zone:4m db=%%TESTDIR%%/keys.db sync=200ms flush=$flush;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location / {
            projkey $zone;
            empty_gif;
        }
    }
}
EOF
}

sub status {
    my ($key) = @_;
    my $r = $t->get('/', Authorization => "Bearer $key");
    return $r =~ /^HTTP\/1\.1 (\d+)/ ? $1 : 0;
}

sub last_used {
    my ($id) = @_;
    my $j = $t->cli_json('show', $id);
    my $k = ref $j eq 'HASH' ? $j->{key} // $j : {};
    return $k->{last_used_at};
}

sub wait_used {
    my ($id) = @_;

    for (1 .. 40) {
        return 1 if defined last_used($id);
        sleep 0.25;
    }

    return 0;
}

###############################################################################
