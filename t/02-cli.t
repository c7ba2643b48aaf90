#!/usr/bin/perl

# The operator CLI (admin/projkey.c, build/projkey) on a temporary database:
# every command in text and JSON, exit codes, bulk creation, and the secret
# absent from the database files.

use strict;
use warnings;

use File::Temp qw(tempdir);
use FindBin;
use JSON::PP;
use POSIX qw(strftime);
use Test::More;

# PROJKEY_TEST_CLI: another build, or the installed one (as in Projkey::Test)
my $bin = $ENV{PROJKEY_TEST_CLI} // "$FindBin::Bin/../build/projkey";

die "$bin is missing: run make cli first\n" unless -x $bin;

plan(tests => 93);

delete $ENV{PROJKEY_DB};

my $dir = tempdir(CLEANUP => 1);
my $db = "$dir/keys.db";
my $json = JSON::PP->new->canonical;

# runs projkey, returns (exit code, stdout, stderr)
sub projkey {
    my @args = @_;

    my $pid = open(my $out, '-|') // die "fork: $!\n";

    if ($pid == 0) {
        open(STDERR, '>', "$dir/stderr") or die "stderr: $!\n";
        exec($bin, @args) or die "exec $bin: $!\n";
    }

    local $/;
    my $stdout = <$out> // '';
    close($out);
    my $rc = $? >> 8;

    open(my $fh, '<', "$dir/stderr") or die "stderr: $!\n";
    my $stderr = <$fh> // '';
    close($fh);

    return ($rc, $stdout, $stderr);
}

sub slurp {
    my ($path) = @_;
    open(my $fh, '<:raw', $path) or return '';
    local $/;
    return scalar <$fh>;
}

my $key_re = qr/sk-project-[0-9A-Za-z]{48}/;
my @members = qw(created_at created_by expires_at id last_used_at name
    preview previous_expires_at previous_preview project status updated_at);

my ($rc, $out, $err);

# empty list

($rc, $out, $err) = projkey('--db', $db, 'list');
is($rc, 0, 'list on a new database');
like($out, qr/^No API key has been created on this project\.$/m,
    'says there is none');

($rc, $out) = projkey('--db', $db, '--json', 'list');
is($out, qq({"keys":[],"next":null}\n), 'list --json of none');

# create, text

($rc, $out, $err) = projkey('--db', $db, 'create', 'first key', '--by', 'ann');
is($rc, 0, 'create');
like($out, qr/^Created API key ([0-9A-Za-z]{12}) "first key" \(sk-project-\.\.\.[0-9A-Za-z]{4}\)\.$/m,
    'create says what it created');
like($out, qr/^Secret: $key_re$/m, 'and shows the secret');
like($out, qr/^Copy it now: it will not be shown again\.$/m, 'once');
my ($id1) = $out =~ /API key (\S+)/;
my ($secret1) = $out =~ /($key_re)/;
is(substr($out =~ /\((sk-project-\.\.\.\w{4})\)/ ? $1 : '', -4),
    substr($secret1, -4), 'the preview ends like the secret');

# create, JSON (a second later: one second's keys are listed in id order)

sleep 1;
($rc, $out) = projkey('--json', 'create', 'second', '--db', $db);
is($rc, 0, 'create --json, options after the command');
my $c = eval { $json->decode($out) } // {};
is_deeply([sort keys %$c], ['key', 'secret'], 'create --json: key and secret');
is_deeply([sort keys %{$c->{key} // {}}], \@members, 'KEY members');
like($c->{secret} // '', qr/^$key_re$/, 'the secret');
is($c->{key}{status}, 'active', 'active');
is($c->{key}{project}, 'default', 'project default');
is($c->{key}{last_used_at}, undef, 'never used');
like($c->{key}{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'created_at is RFC 3339 UTC');
is($c->{key}{preview}, 'sk-project-...' . substr($c->{secret} // '', -4),
    'preview');
my $id2 = $c->{key}{id};
my $secret2 = $c->{secret};

# list

($rc, $out) = projkey('--db', $db, 'list');
is($rc, 0, 'list');
like($out, qr/^ID\s+NAME\s+PREVIEW\s+STATUS\s+CREATED BY\s+CREATED AT\s+LAST USED$/m,
    'a table header');
like($out, qr/^\Q$id2\E\s+second\s+.*\n\Q$id1\E\s+first key\s+.*\s+ann\s+/m,
    'newest first, with created by');
unlike($out, qr/$key_re/, 'no secret in the list');

($rc, $out) = projkey('--db', $db, '--json', 'list');
my $l = eval { $json->decode($out) } // {};
is(scalar @{$l->{keys} // []}, 2, 'list --json: two keys');
is($l->{keys}[0]{id}, $id2, 'newest first');

($rc, $out) = projkey('--db', $db, '--project', 'other', '--json', 'list');
is($out, qq({"keys":[],"next":null}\n), 'another project has none');

# show

($rc, $out) = projkey('--db', $db, 'show', $id1);
is($rc, 0, 'show');
like($out, qr/^Name:\s+first key$/m, 'show: name');
like($out, qr/^Status:\s+active$/m, 'show: status');
like($out, qr/^Created by:\s+ann$/m, 'show: created by');

($rc, $out) = projkey('--db', $db, '--json', 'show', $id1);
my $s = eval { $json->decode($out) } // {};
is_deeply([keys %$s], ['key'], 'show --json: {"key":KEY}');
is($s->{key}{name}, 'first key', 'show --json: name');

($rc, $out, $err) = projkey('--db', $db, '--project', 'other', 'show', $id1);
is($rc, 3, 'show in another project: exit 3');
like($err, qr/^projkey: no API key/, 'says no such key');

# rename, disable, enable

($rc, $out) = projkey('--db', $db, 'rename', $id1, 'renamed');
is($rc, 0, 'rename');
is($out, "The API key has been updated.\n", 'says so');

($rc, $out) = projkey('--db', $db, '--json', 'disable', $id1);
my $u = eval { $json->decode($out) } // {};
is_deeply([sort keys %$u], ['key', 'message'], 'disable --json shape');
is($u->{message}, 'The API key has been updated.', 'message');
is($u->{key}{status}, 'disabled', 'disabled');
is($u->{key}{name}, 'renamed', 'renamed');

($rc, $out) = projkey('--db', $db, '--json', 'enable', $id1);
$u = eval { $json->decode($out) } // {};
is($u->{key}{status}, 'active', 'enabled again');

($rc, $out, $err) = projkey('--db', $db, 'rename', $id1, '   ');
is($rc, 4, 'an empty name: exit 4');
is($err, "projkey: The name must not be empty.\n", 'says why');

($rc, $out, $err) = projkey('--db', $db, 'rename', $id1, 'x' x 101);
is($rc, 4, 'a name of 101 characters: exit 4');

($rc, $out, $err) = projkey('--db', $db, 'create', "a\tb");
is($rc, 4, 'a control character: exit 4');

# delete

($rc, $out) = projkey('--db', $db, 'delete', $id2);
is($rc, 0, 'delete');
is($out, "Deleted API key $id2.\n", 'says so');

($rc, $out, $err) = projkey('--db', $db, 'delete', $id2);
is($rc, 3, 'delete again: exit 3');

($rc, $out) = projkey('--db', $db, '--json', 'delete', $id1);
is($out, qq({"deleted":"$id1"}\n), 'delete --json');

# usage errors

($rc, $out, $err) = projkey('--db', $db, 'frobnicate');
is($rc, 2, 'unknown command: exit 2');
like($err, qr/^projkey: unknown command/, 'says so');
($rc) = projkey('list');
is($rc, 2, "no --db: exit 2");
($rc) = projkey('--db', $db, 'show');
is($rc, 2, 'a missing argument: exit 2');
($rc) = projkey('--db', $db, '--frob', 'list');
is($rc, 2, 'an unknown option: exit 2');
($rc) = projkey('--db', $db, 'create', 'x', '--count', '0');
is($rc, 2, '--count 0: exit 2');
($rc) = projkey('--db', $db, '--help');
is($rc, 0, '--help: exit 0');

# bulk

($rc, $out, $err) = projkey('--db', $db, '--project', 'bulk', '--json',
    'create', 'load', '--count', '1000', '--secrets', "$dir/secrets");
is($rc, 0, 'create --count 1000 --secrets');
is($out, qq({"created":1000}\n), 'says how many');
my @lines = split /\n/, slurp("$dir/secrets");
is(scalar @lines, 1000, '1000 secrets in the file');
is(scalar(grep { /^$key_re$/ } @lines), 1000, 'each a key');
my %seen = map { $_ => 1 } @lines;
is(scalar keys %seen, 1000, 'all distinct');
is((stat "$dir/secrets")[2] & 07777, 0600, 'the file is mode 0600');

($rc, $out, $err) = projkey('--db', $db, '--project', 'bulk', 'create',
    'load', '--count', '10', '--secrets', "$dir/secrets");
is($rc, 1, 'an existing secrets file is not overwritten: exit 1');

($rc, $out) = projkey('--db', $db, '--project', 'bulk', '--json', 'list',
    '--limit', '1000');
$l = eval { $json->decode($out) } // {};
is(scalar @{$l->{keys} // []}, 1000, '1000 keys listed');

# list in pages, searched, filtered

($rc, $out) = projkey('--db', $db, '--project', 'bulk', '--json', 'list');
$l = eval { $json->decode($out) } // {};
ok(@{$l->{keys} // []} == 100 && defined $l->{next},
    'list: a page of 100 and a next cursor');

my (%seen_ids, $pages);
my @after;

for ($pages = 1; $pages < 50; $pages++) {
    ($rc, $out) = projkey('--db', $db, '--project', 'bulk', '--json', 'list',
        '--limit', '300', @after);
    $l = eval { $json->decode($out) } // {};
    $seen_ids{$_->{id}}++ for @{$l->{keys} // []};
    last unless defined $l->{next};
    @after = ('--after', $l->{next});
}

ok($pages == 4 && keys %seen_ids == 1000 && !grep({ $_ != 1 } values %seen_ids),
    'list --limit 300 --after: every key once in 4 pages');

($rc, $out) = projkey('--db', $db, '--project', 'bulk', 'list', '--limit',
    '2');
like($out, qr/\ANext page: --after [A-Za-z0-9_-]+\n\z|\nNext page: --after [A-Za-z0-9_-]+\n\z/,
    'list: the text ends with the next page\'s --after');
my ($cursor) = $out =~ /--after (\S+)/;

($rc, $out) = projkey('--db', $db, '--project', 'bulk', '--json', 'list',
    '--search', 'LOAD-99');
$l = eval { $json->decode($out) } // {};
is(scalar @{$l->{keys} // []}, 11, 'list --search LOAD-99: 11 keys');
($rc, $out) = projkey('--db', $db, '--project', 'bulk', 'list', '--search',
    'no such key');
ok($rc == 0 && $out eq "No API key matches.\n", 'list --search: none');
($rc, $out) = projkey('--db', $db, '--json', 'list', '--status', 'disabled');
$l = eval { $json->decode($out) } // {};
is(scalar @{$l->{keys} // [1]}, 0, 'list --status disabled: none yet');
($rc, undef, $err) = projkey('--db', $db, 'list', '--status', 'paused');
ok($rc == 2 && $err =~ /--status must be/, 'list --status paused: exit 2');
($rc, undef, $err) = projkey('--db', $db, 'list', '--limit', '1001');
ok($rc == 2 && $err =~ /--limit must be a number from 1 to 1000/,
    'list --limit 1001: exit 2');
($rc, undef, $err) = projkey('--db', $db, 'list', '--after', $cursor);
ok($rc == 4 && $err =~ /Bad cursor/,
    'list --after a cursor of another project: exit 4');
($rc, undef, $err) = projkey('--db', $db, 'list', '--search', "a\tb");
ok($rc == 4 && $err =~ /control characters/, 'list --search a TAB: exit 4');
($rc, undef, $err) = projkey('--db', $db, 'show', 'x', '--limit', '2');
ok($rc == 2 && $err =~ /for list only/, 'show --limit: exit 2');

# the secrets are nowhere in the database files

my $files = join('', map { slurp($_) } grep { -e } ("$db", "$db-wal"));
my $found = 0;

for my $k ($secret1, $secret2, @lines[0 .. 99]) {
    $found++ if index($files, $k) >= 0 || index($files, substr($k, 11)) >= 0;
}

is($found, 0, 'no secret in the database nor its WAL');

# init and migrate: the schema's owner (nginx only reads an existing file)

($rc, $out) = projkey('--db', "$dir/init.db", 'init');
is($rc, 0, 'init');
like($out, qr/is ready \(schema version 3\)/, 'init says the schema');
($rc, $out, $err) = projkey('--db', "$dir/missing.db", 'migrate');
ok($rc == 1 && !-e "$dir/missing.db" && $err =~ /cannot migrate.*init/,
    'migrate of a missing file: exit 1, nothing created');
# a database of schema 1: what later steps added taken out again
system('sqlite3', "$dir/init.db", 'DROP TRIGGER keys_changed_by_hand; '
    . 'DROP TRIGGER keys_deleted_by_hand; DROP INDEX keys_prev_expires; '
    . 'ALTER TABLE keys DROP COLUMN expires_at; '
    . 'ALTER TABLE keys DROP COLUMN prev_hash; '
    . 'ALTER TABLE keys DROP COLUMN prev_preview; '
    . 'ALTER TABLE keys DROP COLUMN prev_expires_at; DROP TABLE retired; '
    . 'DROP TABLE nodes; '
    . 'PRAGMA user_version=1;') == 0
    or die "sqlite3 failed\n";
($rc, $out, $err) = projkey('--db', "$dir/init.db", 'list');
ok($rc == 1 && $err =~ /schema version 1 is older .* run "projkey migrate"/,
    'another command leaves an older schema alone and says to migrate');
($rc, $out) = projkey('--db', "$dir/init.db", '--json', 'migrate');
is($out, qq({"schema":3}\n), 'migrate: schema 1 to 3');
my $v = `sqlite3 '$dir/init.db' 'PRAGMA user_version'`;
is($v, "3\n", 'the file is at version 3');

# expiry and roll

my $soon = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600));
($rc, $out) = projkey('--db', "$dir/x.db", '--json', 'create', 'exp',
    '--expires', $soon);
$c = eval { $json->decode($out) } // {};
ok($rc == 0 && ($c->{key}{expires_at} // '') eq $soon,
    'create --expires: expires_at');
my $xid = $c->{key}{id} // '';
($rc, $out, $err) = projkey('--db', "$dir/x.db", 'create', 'bad',
    '--expires', 'tomorrow');
ok($rc == 4 && $err =~ /RFC 3339/, 'create --expires with a bad time: exit 4');
($rc, $out, $err) = projkey('--db', "$dir/x.db", 'create', 'past',
    '--expires', '2020-01-01T00:00:00Z');
ok($rc == 4 && $err =~ /in the future/, 'create --expires in the past: 4');
($rc) = projkey('--db', "$dir/x.db", 'list', '--expires', $soon);
is($rc, 2, '--expires with another command: usage error');
($rc, $out) = projkey('--db', "$dir/x.db", '--json', 'expire', $xid, 'never');
$c = eval { $json->decode($out) } // {};
ok($rc == 0 && exists $c->{key} && !defined $c->{key}{expires_at},
    'expire ID never: cleared');
($rc, $out) = projkey('--db', "$dir/x.db", 'expire', $xid, $soon);
ok($rc == 0 && $out =~ /has been updated/, 'expire ID TIME');
($rc, $out) = projkey('--db', "$dir/x.db", 'show', $xid);
like($out, qr/^Expires:\s+\Q$soon\E$/m, 'show: Expires');
like($out, qr/^Previous:\s+none$/m, 'show: Previous none');
($rc, $out) = projkey('--db', "$dir/x.db", '--json', 'roll', $xid,
    '--previous-expires', $soon);
$c = eval { $json->decode($out) } // {};
ok($rc == 0 && ($c->{secret} // '') =~ /^$key_re$/
    && $c->{key}{id} eq $xid && $c->{key}{previous_expires_at} eq $soon
    && $c->{key}{previous_preview} =~ /^sk-project-\.\.\./,
    'roll --json: a new secret, the previous until TIME');
($rc, $out) = projkey('--db', "$dir/x.db", 'show', $xid);
like($out, qr/^Previous:\s+sk-project-\.\.\.\w{4} until \Q$soon\E$/m,
    'show: Previous');
($rc, $out, $err) = projkey('--db', "$dir/x.db", 'roll', $xid,
    '--previous-expires', strftime('%Y-%m-%dT%H:%M:%SZ',
        gmtime(time + 31 * 86400)));
ok($rc == 4 && $err =~ /30 days/, 'roll: more than 30 days, exit 4');
($rc) = projkey('--db', "$dir/x.db", 'roll', 'nosuchkey123');
is($rc, 3, 'roll of no such key: exit 3');
($rc, $out) = projkey('--db', "$dir/x.db", 'roll', $xid);
ok($rc == 0 && $out =~ /^Secret: $key_re$/m
    && $out =~ /^Previous secret: sk-project-\.\.\.\w{4} until /m,
    'roll: text');
