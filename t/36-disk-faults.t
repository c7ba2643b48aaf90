#!/usr/bin/perl

# projkey: start-up and disk faults.
# - a database owned by root with workers as nobody, and one in a directory
#   nobody cannot write: nginx -t fails and names the user;
# - a corrupt database: nginx -t fails with a clear message;
# - the disk of the database full during a create (a small tmpfs, filled
#   with dd): 503 with a message about disk space, no secret, nothing
#   created; once space is freed, creates work;
# - the zone full: 507 zone_full, nothing created.
# Needs root (mount); skipped otherwise.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;
use Projkey::Admin;

###############################################################################

# tmpfs and chown need root, as make test has it (sudo make test)
die "$0 needs root (tmpfs, chown): run sudo make test\n" if $> != 0;

my $t = Projkey::Test->new()->plan(23);

$t->expect_errors(qr/projkey_zone "keys": database .*full/i,
    qr/projkey.*(?:full|fit|small|no memory)/i, qr/ngx_slab_alloc/,
    qr/must be writable by the worker user "nobody"/);

my $d = $t->testdir;

my $conf = <<'EOF';
%%USER%%
http {
    projkey_zone keys:%%SIZE%% db=%%DB%% sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        location / { return 204; }
    }
}
EOF

sub config {
    my (%o) = @_;
    my $c = $conf;
    $c =~ s/%%USER%%/$o{user} ? "user $o{user};" : ''/e;
    $c =~ s/%%SIZE%%/$o{size} \/\/ '4m'/e;
    $c =~ s/%%DB%%/$o{db}/;
    $t->write_config($c);
}

###############################################################################
# ownership: workers as nobody

mkdir "$d/rootdir" or die;
chmod 0755, "$d/rootdir";
config(user => 'nobody nogroup', db => "$d/rootdir/keys.db");
my ($rc, $out) = $t->nginx_t;
isnt($rc, 0, 'directory not writable by nobody: nginx -t fails');
like($out, qr/rootdir.*writable by the worker user "nobody"/,
    'the message names the directory and the user') or diag($out);

mkdir "$d/nobodydir" or die;
chown scalar(getpwnam 'nobody'), scalar(getgrnam 'nogroup'), "$d/nobodydir";
$t->cli({ db => "$d/nobodydir/keys.db" }, 'create', 'x');
chown 0, 0, "$d/nobodydir/keys.db";
chmod 0600, "$d/nobodydir/keys.db";
config(user => 'nobody nogroup', db => "$d/nobodydir/keys.db");
($rc, $out) = $t->nginx_t;
isnt($rc, 0, 'database owned by root, mode 0600: nginx -t fails');
like($out, qr/keys\.db" must be writable by the worker user "nobody"/,
    'the message names the database and the user') or diag($out);

# corrupt

$t->write_file('corrupt.db', "SQLite format 3\0" . ("\xff" x 4096));
config(db => "$d/corrupt.db");
($rc, $out) = $t->nginx_t;
isnt($rc, 0, 'corrupt database: nginx -t fails');
like($out, qr/corrupt\.db.*(?:malformed|not a database|corrupt)/i,
    'the message names the file and says what is wrong') or diag($out);
unlike($out, qr/\[alert\]|segfault|core dumped/i, 'no crash');

$t->write_file('text.db', "this is not a database\n" x 100);
config(db => "$d/text.db");
($rc, $out) = $t->nginx_t;
isnt($rc, 0, 'a text file as database: nginx -t fails');
like($out, qr/text\.db.*(?:not a database|malformed|corrupt)/i,
    'clear message') or diag($out);

###############################################################################
# disk full

my $mnt = "$d/small";
mkdir $mnt or die;
($rc, $out) = $t->run_cmd('mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs',
    $mnt);
die "mount tmpfs failed: $out\n" if $rc;

my $umount = sub { $t->run_cmd('umount', '-l', $mnt) };
END { $umount->() if $umount }

my (undef, $key0) = $t->create_key('before', db => "$mnt/keys.db");
config(db => "$mnt/keys.db");
$t->run();

my $api = Projkey::Admin->new($t, user => 'alice', project => undef);
my ($k1, $s1) = $api->create('room left');
ok($k1, 'create with room left');

# fill the disk: dd until it fails
$t->run_cmd('dd', 'if=/dev/zero', "of=$mnt/fill", 'bs=4k');
$t->run_cmd('sync');

my $before = join ',', sort map { $_->{id} } @{$api->list};

my $r;
for my $i (1 .. 20) {   # the WAL may have pages to reuse: until it is full
    $r = $api->call('POST', 'keys', { name => "full $i" });
    last if $r->{status} != 201;
}
is($r->{status}, 503, 'create on a full disk: 503');
is(Projkey::Admin::code($r), 'database_unavailable', 'database_unavailable');
like($r->{json}{error}{message} // '', qr/disk.*full|full.*disk|space/i,
    'the message is about disk space') or diag($r->{body});
unlike($r->{body}, qr/sk-project-\w{48}/, 'no secret in the 503');

my @names = map { $_->{name} } @{$api->list};
ok(!grep({ $_ eq ($r->{json}{key}{name} // 'none') } @names)
    && !grep({ /^full \d+$/ && $_ eq "full " . scalar(@names) } ()),
    'the refused key is not listed');
my $after = scalar(@names);

like($t->get('/api/', Authorization => "Bearer $s1"), qr/ 204 /,
    'keys still work on a full disk');
like($t->get('/api/', Authorization => "Bearer $key0"), qr/ 204 /,
    'the first key too');

unlink "$mnt/fill";
my ($k2, $s2) = eval { $api->create('space freed') };
ok($k2, 'space freed: create works');
like($t->get('/api/', Authorization => "Bearer $s2"), qr/ 204 /,
    'and the new key works');
is(scalar(@{$api->list}), $after + 1, 'one more key, no half-made one');

$t->stop();
$umount->();
undef $umount;

###############################################################################
# zone full: a small zone, creates until 507

config(db => "$d/zone.db", size => '64k');
$t->run();

my $made = 0;
for (1 .. 3000) {
    $r = $api->call('POST', 'keys', { name => "k$_" });
    last if $r->{status} != 201;
    $made++;
}
is($r->{status}, 507, "zone full after $made keys: 507");
is(Projkey::Admin::code($r), 'zone_full', 'zone_full');
my ($data) = $t->cli_json({ db => "$d/zone.db" }, 'list', '--limit',
    '1000');
my $keys = ref $data eq 'HASH' ? $data->{keys} : $data;
is(scalar(@{$keys // []}), $made, 'nothing created: the file has the '
    . 'keys answered 201 only');

$t->done();

###############################################################################
