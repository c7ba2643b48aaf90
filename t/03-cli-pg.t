#!/usr/bin/perl

# The operator CLI (build/projkey) on a private PostgreSQL
# (t/lib/Projkey/Pg.pm): only init and migrate make the schema, every
# command works with --db postgresql://..., each change takes one
# revision with its change-log row and audit row, the secret is not in the
# database, and the password of the URI is never printed.

use strict;
use warnings;

use File::Temp qw(tempdir);
use FindBin;
use JSON::PP;
use POSIX qw(strftime);
use Test::More;

use lib "$FindBin::Bin/lib";
use Projkey::Pg;

my $bin = $ENV{PROJKEY_TEST_CLI} // "$FindBin::Bin/../build/projkey";

die "$bin is missing: run make cli first\n" unless -x $bin;

plan(tests => 45);

delete $ENV{PROJKEY_DB};

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;
my $pw = $pg->password;
my $dir = tempdir(CLEANUP => 1);

# runs projkey on the database, returns (exit code, stdout, stderr)
sub projkey {
    my @args = @_;

    my $pid = open(my $out, '-|') // die "fork: $!\n";

    if ($pid == 0) {
        open(STDERR, '>', "$dir/stderr") or die "stderr: $!\n";
        exec($bin, @args) or die "exec $bin: $!\n";
    }

    local $/;
    my $stdout = <$out> // '';
    close $out;
    my $rc = $? >> 8;

    open(my $fh, '<', "$dir/stderr") or die "stderr: $!\n";
    my $stderr = <$fh> // '';

    return ($rc, $stdout, $stderr);
}

sub pk { projkey('--db', $uri, @_) }

sub pk_json {
    my ($rc, $out, $err) = pk('--json', @_);
    my $data = eval { decode_json($out) };
    return ($data, $rc, $err);
}

sub sql { $pg->psql($_[0], db => 'projkey') }

my ($rc, $out, $err) = pk('list');
is($rc, 1, 'no schema: an error');
like($err, qr/no projkey schema: run "projkey --db URI init"/,
    'saying to run init');
is(sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'projkey'"), "0\n",
    'and no command but init made it');

($rc, $out, $err) = pk('migrate');
is($rc, 1, 'migrate: no schema to migrate');
like($err, qr/"init" creates it/, 'init makes it');
is(sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'projkey'"), "0\n",
    'and migrate did not');

($rc, $out, $err) = pk('init');
is($rc, 0, 'init');
like($out, qr/schema version 1/, 'says the schema version');
unlike($out . $err, qr/\Q$pw\E/, 'and not the password');
is(sql("SELECT value FROM projkey.revision"), "0\n", 'revision 0');

is((pk('init'))[0], 0, 'init again changes nothing');
is((pk('migrate'))[0], 0, 'migrate an up-to-date schema');

my ($data) = pk_json('create', 'ci-runner', '--by', 'alice');
my $id = $data->{key}{id};
my $secret = $data->{secret};
like($secret, qr/^sk-project-[0-9A-Za-z]{48}$/, 'create gives the secret');
is($data->{key}{created_by}, 'alice', 'created by');
is(sql("SELECT count(*) FROM projkey.keys WHERE id = '$id'"
    . " AND length(hash) = 32 AND preview = 'sk-project-...'"
    . " || right('$secret', 4)"), "1\n", 'stored: hash and preview');
is(sql("SELECT count(*) FROM projkey.keys k, projkey.audit a"
    . " WHERE position('$secret' in k::text || a::text) > 0"), "0\n",
    'the secret is nowhere in the database');

($data) = pk_json('show', $id);
is($data->{key}{name}, 'ci-runner', 'show');

is((pk('rename', $id, 'deploy'))[0], 0, 'rename');
is((pk('disable', $id))[0], 0, 'disable');
($data) = pk_json('show', $id);
is($data->{key}{status}, 'disabled', 'shown disabled');
is((pk('enable', $id))[0], 0, 'enable');
my $t = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 86400));
is((pk('expire', $id, $t))[0], 0, 'expire');
($data) = pk_json('show', $id);
is($data->{key}{expires_at}, $t, 'the expiry');

($data) = pk_json('roll', $id);
isnt($data->{secret}, $secret, 'roll: a new secret');
is($data->{key}{previous_preview}, 'sk-project-...' . substr($secret, -4),
    'the previous one');

pk('create', "second $_") for 1 .. 2;
($data) = pk_json('list', '--limit', '2');
is(scalar @{$data->{keys}}, 2, 'a page of 2');
ok(defined $data->{next}, 'and a next cursor');
my ($next) = pk_json('list', '--limit', '2', '--after', $data->{next});
is(scalar @{$next->{keys}}, 1, 'the next page: the last key');
ok(!defined $next->{next}, 'and no cursor');
($rc) = pk('list', '--after', 'AQAAAABrD6hoDFdmNnY3SmkxTTFQM6kn4H4-MfOW0dzlK1MsJCQ');
is($rc, 4, 'a cursor of another database: invalid');

($data) = pk_json('list', '--search', 'EPLO');
is(join(',', map { $_->{id} } @{$data->{keys}}), $id,
    'search: a part of the name, any case');

is((pk('delete', $id))[0], 0, 'delete');
is((pk('show', $id))[0], 3, 'then no such key');

my $rev = sql("SELECT value FROM projkey.revision");
is($rev, "9\n", "a revision a change: 3 creates, 5 changes, a delete");
is(sql("SELECT count(*) FROM projkey.changes WHERE revision BETWEEN 1 AND"
    . " 9"), "9\n", "a change-log row each");
is(sql("SELECT string_agg(action, ',' ORDER BY seq) FROM projkey.audit"
    . " WHERE key_id = '$id'"),
    "create,rename,disable,enable,set_expiry,roll,delete\n",
    'the audit trail');

($rc, $out) = pk('nodes');
like($out, qr/Database revision 9\./, 'nodes: the revision');

# the application's own SQL takes a revision too
my ($other) = pk_json('list', '--limit', '1');
my $oid = $other->{keys}[0]{id};
sql("UPDATE projkey.keys SET status = 2 WHERE id = '$oid'");
is(sql("SELECT value FROM projkey.revision"), "10\n",
    'a key disabled by hand takes a revision');

{
    local $ENV{PROJKEY_DB} = $uri;
    ($rc, $out) = projkey('--json', 'show', $oid);
    is(decode_json($out)->{key}{status}, 'disabled',
        'PROJKEY_DB takes the URI, and sees it');
}

(my $bad = $uri) =~ s/:\Q$pw\E\@/:wrong-$pw\@/;
($rc, $out, $err) = projkey('--db', $bad, 'list');
is($rc, 1, 'a wrong password: an error');
like($err, qr/unreachable.*password authentication failed/s,
    'saying why');
unlike($out . $err, qr/\Q$pw\E/, 'never showing the password');

# libpq quotes a token it cannot decode: the password is cut out of it
($rc, $out, $err) = projkey('--db', 'postgresql://projkey:pa%zzword@127.0.0.1:'
    . $pg->port . '/projkey', 'list');
like($err, qr/percent-encoded token: "\.\.\."/, 'a bad URI: libpq says why');
unlike($err, qr/pa%zzword/, 'without the password it quotes');
($rc, $out, $err) = projkey('--db', "$uri?password=se%zzcret", 'list');
unlike($err, qr/se%zzcret/, 'nor one of the query');
