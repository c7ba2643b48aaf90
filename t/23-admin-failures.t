#!/usr/bin/perl

# projkey: the admin API when things go wrong.  A database locked by another
# process longer than the busy timeout, a database that cannot be written,
# a zone with room for no more keys: the call says why, nothing changes, no
# secret is shown, and key requests are still answered correctly.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use IPC::Open2;
use POSIX ();
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(42);

my $config = <<'EOF';
http {
    projkey_zone keys:%%SIZE%% db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "name=$http_x_projkey_key_name\n";
        }
    }
}

EOF

(my $c = $config) =~ s/%%SIZE%%/4m/;
$t->write_config($c)->run();

my $api = Projkey::Admin->new($t, user => 'alice', project => 'a');
my @secrets;

my ($active, $active_secret) = $api->create('active one');
my ($disabled, $disabled_secret) = $api->create('disabled one');
$api->call('PATCH', "keys/$disabled->{id}", { status => 'disabled' });
push @secrets, $active_secret, $disabled_secret;

###############################################################################

# 1. the database locked by another process for 8 s (busy timeout: 5 s)

my $locker = lock_db(8);
ok($locker, 'another process holds the database');

my $start = time;
pipe(my $rd, my $wr) or die "pipe: $!\n";
my $pid = fork() // die "fork: $!\n";
if ($pid == 0) {
    close $rd;
    my $r = $api->call('POST', 'keys', { name => 'during the lock' });
    printf $wr "%.2f %s", time - $start, $r->{raw};
    close $wr;
    POSIX::_exit(0);
}
close $wr;

# key requests while the admin call waits for the database
sleep 1;
my $t0 = time;
like(call($active_secret), qr/^HTTP\/1\.1 200 .*name=active one/s,
    'during the lock: an active key is accepted');
like(call($disabled_secret), qr/^HTTP\/1\.1 401 .*"api_key_disabled"/s,
    'during the lock: a disabled key is rejected');
like(call('sk-project-' . 'A' x 48), qr/^HTTP\/1\.1 401 .*"invalid_api_key"/s,
    'during the lock: a bad key is rejected');
cmp_ok(time - $t0, '<', 1, 'during the lock: key requests do not wait');

my $out = do { local $/; <$rd> };
waitpid($pid, 0);
my ($took, $raw) = $out =~ /^(\S+) (.*)$/s;
my $r = Projkey::Admin::response($raw // '');

is($r->{status}, 503, 'POST while locked: 503');
is(Projkey::Admin::code($r), 'database_unavailable',
    'POST while locked: database_unavailable');
like($r->{json}{error}{message} // '', qr/busy/i,
    'POST while locked: the message says the database is busy');
is($r->{headers}{'cache-control'}, 'no-store', 'POST while locked: no-store');
unlike($r->{raw}, qr/sk-project-[0-9A-Za-z]{48}/, 'POST while locked: no secret');
is(Projkey::Admin::internals($t, $r), '', 'POST while locked: no internals');
cmp_ok($took // 0, '>=', 4.5, 'POST while locked: waited for the busy timeout');
cmp_ok($took // 99, '<', 8, 'POST while locked: answered before the lock ended');

unlock_db($locker);

my $list = $api->list;
ok(!grep({ $_->{name} eq 'during the lock' } @$list),
    'after the lock: the refused key was not created');
is(scalar @$list, 2, 'after the lock: two keys');
is($api->call('POST', 'keys', { name => 'after the lock' })->{status}, 201,
    'after the lock: POST works');
like(call($active_secret), qr/^HTTP\/1\.1 200 /, 'after the lock: key works');

###############################################################################

# 2. the database file cannot be written any more (chattr +i on the file
# and its WAL: even the worker's open descriptors cannot write).  Not the
# -shm: SQLite has it mapped, and the kernel answers a write fault on an
# immutable file's mapping with SIGBUS, which no process can fail closed
# from.

my $n = scalar @{$api->list};
my @frozen = grep { -e } map { $t->db . $_ } '', '-wal';
my ($rc) = $t->run_cmd('chattr', '+i', @frozen);
is($rc, 0, 'database made immutable');

$r = $api->call('POST', 'keys', { name => 'read-only create' });
is($r->{status} . ' ' . Projkey::Admin::code($r), '503 database_unavailable',
    'read-only: POST 503');
like($r->{json}{error}{message} // '', qr/cannot be written/i,
    'read-only: the message is about writing')
    or diag($r->{body});
is(Projkey::Admin::internals($t, $r), '',
    'read-only: no path or errno text in the answer');
like($t->error_log, qr/projkey_zone "keys": database ".*keys\.db": .*readonly/,
    'read-only: error.log has the detail');
unlike($r->{raw}, qr/sk-project-[0-9A-Za-z]{48}|"secret"/,
    'read-only: no secret');

$r = $api->call('PATCH', "keys/$active->{id}", { status => 'disabled' });
is($r->{status}, 503, 'read-only: PATCH 503');
$r = $api->call('DELETE', "keys/$active->{id}");
is($r->{status}, 503, 'read-only: DELETE 503');
like(call($active_secret), qr/^HTTP\/1\.1 200 /,
    'read-only: the key refused to be disabled or deleted still works');

$t->run_cmd('chattr', '-i', @frozen);
@frozen = ();

$list = $api->list;
is(scalar @$list, $n, 'read-only: nothing created');
is((grep { $_->{id} eq $active->{id} } @$list)[0]{status} // '', 'active',
    'read-only: nothing changed');
is($api->call('POST', 'keys', { name => 'writable again' })->{status}, 201,
    'writable again: POST works');

###############################################################################

# 3. the smallest zone, filled to the last key

$t->stop();
unlink map { $t->db . $_ } '', '-wal', '-shm';
($c = $config) =~ s/%%SIZE%%/32k/;
$t->write_config($c)->run();
$t->expect_errors(qr/is full: an API key could not be created/);

my (%keys, $full);
for my $i (1 .. 5000) {
    $r = $api->call('POST', 'keys', { name => "fill $i" });
    if ($r->{status} != 201) {
        $full = $r;
        last;
    }
    $keys{$r->{json}{key}{id}} = $r->{json}{secret};
}

note(scalar(keys %keys) . ' keys fit in 32k');
cmp_ok(scalar keys %keys, '>', 10, 'keys were created in 32k');
is(($full // {})->{status}, 507, 'the zone is full: 507');
is(Projkey::Admin::code($full // {}), 'zone_full', 'zone_full');
unlike(($full // {})->{raw} // '', qr/sk-project-[0-9A-Za-z]{48}|"secret"/,
    'zone_full: no secret');
is(scalar @{$api->list}, scalar keys %keys, 'zone_full: no row left behind');

my @bad = grep { call($keys{$_}) !~ /^HTTP\/1\.1 200 / } keys %keys;
is(scalar @bad, 0, 'every created key works');

$r = $api->call('POST', 'keys', { name => 'still full' });
is($r->{status}, 507, 'still full: 507');

my ($gone) = sort keys %keys;
is($api->call('DELETE', "keys/$gone")->{status}, 204, 'delete one key');
like(call(delete $keys{$gone}), qr/^HTTP\/1\.1 401 /, 'the deleted key is rejected');

# the deleted key's room is freed once no reader can hold it any more
# (NGX_HTTP_PROJKEY_GRACE, 2 s): until then a create may still get 507
my $first = $api->call('POST', 'keys', { name => 'fits again' });
note("create right after the delete: $first->{status}");
$r = $first;
$r = $t->wait_for(5, sub {
    my $x = $api->call('POST', 'keys', { name => 'fits again' });
    $x->{status} == 201 ? $x : undef;
}) if $first->{status} != 201;
is(($r // {})->{status}, 201, 'after a delete: create works again (within 5 s)');
is(scalar @{$api->list}, scalar(keys %keys) + 1,
    'after a delete: the refused creates left no row');
like(call(($r // {})->{json}{secret} // 'x'), qr/^HTTP\/1\.1 200 .*name=fits again/s,
    'the new key works');

# no secret of any key went into the logs

push @secrets, values %keys;
my $logs = $t->read_file('error.log') . $t->read_file('access.log');
ok(!grep({ index($logs, substr($_, 11)) >= 0 } @secrets),
    'no secret in the logs');

###############################################################################

$t->done();

###############################################################################

END {
    # never leave an immutable file behind: the test directory must go
    system('chattr', '-i', @frozen) if @frozen;
}

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

# sqlite3 holds an exclusive transaction on the database for $hold seconds
sub lock_db {
    my ($hold) = @_;

    my $pid = open2(my $out, my $in, 'sqlite3', $t->db)
        or return;

    print $in ".timeout 3000\nBEGIN EXCLUSIVE;\n"
        . "UPDATE meta SET v = v WHERE k = 'seq';\nSELECT 'locked';\n";
    $in->flush();

    my $line = <$out> // '';
    return unless $line =~ /locked/;

    return { pid => $pid, in => $in, out => $out, until => time + $hold };
}

sub unlock_db {
    my ($l) = @_;
    return unless $l;

    my $left = $l->{until} - time;
    sleep $left if $left > 0;

    print {$l->{in}} "ROLLBACK;\n.quit\n";
    close $l->{in};
    waitpid($l->{pid}, 0);
}

###############################################################################
