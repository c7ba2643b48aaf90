#!/usr/bin/perl

# projkey: keys are data, not cache.  A zone too small for the database is
# refused at start; a sync that overflows the zone loses no key already
# there and does not hold back later changes; a change to a loaded key that
# no longer fits (a longer name) takes the key out, never leaves its old
# state in force; a larger zone takes them all.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(19);

# a full zone is reported, with these lines only
$t->expect_errors(
    qr/\[emerg\] .*projkey_zone "keys" is too small for the 3000 keys of database ".*big\.db": only \d+ fit; make it larger in /,
    qr/\[crit\] .*projkey_zone "keys" is full: key "\w+" of database ".*keys\.db" is not loaded and is rejected; make the zone larger$/);

my $d = $t->testdir;

my $conf = <<'EOF';
http {
    projkey_zone keys:%%SIZE%% db=%%TESTDIR%%/%%DB%% sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "name=$http_x_projkey_key_name status=ok\n";
        }
    }
}

EOF

###############################################################################

# a database bigger than the zone: refused, with the reason

my ($rc) = $t->cli({ db => "$d/big.db" }, 'create', 'bulk', '--count', '3000',
    '--secrets', "$d/big.secrets");
die "projkey create --count failed\n" if $rc;

$t->write_config(conf('32k', 'big.db'));
my $out;
($rc, $out) = $t->nginx_t();
ok($rc != 0 && $out =~ /is too small for the 3000 keys of database "\S*big\.db": only \d+ fit; make it larger in \S*nginx\.conf:\d+/,
    'nginx -t: zone too small') or diag("exit code $rc:\n$out");

ok(!eval { $t->run(); 1 }, 'nginx does not start with a zone too small');
$t->stop();

# a sync that overflows the zone

my ($id0, $key0) = $t->create_key('kept');
my ($id1, $key1) = $t->create_key('to disable');
my ($id2, $key2) = $t->create_key('to rename');

$t->write_config(conf('32k', 'keys.db'))->run();

like(call($key0), qr/ 200 .*name=kept /s, 'small zone: key accepted');

($rc) = $t->cli('create', 'overflow', '--count', '1000',
    '--secrets', "$d/overflow.secrets");
is($rc, 0, 'cli: 1000 more keys than fit');
my @overflow = split /\n/, $t->read_file('overflow.secrets');

select undef, undef, undef, 1;

like(call($key0), qr/ 200 .*name=kept /s, 'overflow: old key still accepted');
like($t->error_log, qr/\[crit\] .*projkey_zone "keys" is full: key "\w+" of database .* is not loaded and is rejected/,
    'overflow: reported');

# a later change still reaches the zone

($rc) = $t->cli('disable', $id1);
is($rc, 0, 'cli: disable after the overflow');
ok($t->wait_for(3, sub { call($key1) =~ /^HTTP\/1\.1 401 / }),
    'overflow: a later disable applies');

# a loaded key renamed to a name its node cannot hold, on a full zone: the
# key is out of the zone (rejected), not left with its old name and status

like(call($key2), qr/ 200 .*name=to rename /s, 'the key to rename works');
my $long = 'r' x 90;
($rc) = $t->cli('rename', $id2, $long);
is($rc, 0, 'cli: rename to 90 characters');
ok($t->wait_for(3, sub { call($key2) =~ /^HTTP\/1\.1 401 / }),
    'the renamed key that does not fit is rejected');
like($t->error_log, qr/\[crit\] .*is full: key "$id2" .* is not loaded and is rejected/,
    'the log says so');
($rc) = $t->cli('disable', $id2);
is($rc, 0, 'cli: disable it');
select undef, undef, undef, 1;
unlike(call($key2), qr/^HTTP\/1\.1 200 /, 'disabled: still rejected, never the old state');


# a larger zone on reload takes every key

$t->write_config(conf('4m', 'keys.db'))->reload();

my $ok = grep { call($_) =~ /^HTTP\/1\.1 200 / } @overflow[0, 499, 999];
is($ok, 3, 'larger zone: overflow keys accepted');
like(call($key0), qr/ 200 .*name=kept /s, 'larger zone: old key accepted');
like(call($key1), qr/^HTTP\/1\.1 401 .*api_key_disabled/s,
    'larger zone: still disabled');
like(call($key2), qr/^HTTP\/1\.1 401 .*api_key_disabled/s,
    'larger zone: the renamed key is in, disabled');

my (undef, $k) = $t->create_key('after');
ok($t->wait_for(3, sub { call($k) =~ /^HTTP\/1\.1 200 / }),
    'larger zone: new keys sync again');

###############################################################################

$t->done();

###############################################################################

sub conf {
    my ($size, $db) = @_;
    (my $c = $conf) =~ s/%%SIZE%%/$size/;
    $c =~ s/%%DB%%/$db/;
    return $c;
}

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

###############################################################################
