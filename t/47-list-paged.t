#!/usr/bin/perl

# projkey: GET keys in pages: limit's bounds, the next chain (every key
# once, newest first), search by name (case-insensitive, any script,
# percent-decoded) and by the end of the preview, the status filter, bad
# query strings and cursors (400), and another project's keys or cursors
# never taking part.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use Encode ();

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(58);

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $d = $t->testdir;

# 250 keys in project a and 30 in b, made by the CLI; some named ones below

for (['a', 250], ['b', 30]) {
    my ($p, $n) = @$_;
    my ($rc, undef, $err) = $t->cli('--project', $p, 'create', 'bulk',
        '--count', $n, '--secrets', "$d/$p.secrets");
    die "projkey create --count: $err\n" if $rc;
}

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }
    }
}

EOF

###############################################################################

my $api = Projkey::Admin->new($t, user => 'alice', project => 'a');
my $other = $api->as(project => 'b');

my %named;

for my $name ('Clé Über', 'Ключ API', 'mixed CASE name') {
    my ($k, $secret) = $api->create($name);
    $named{$name} = { key => $k, secret => $secret };
}

sub code { Projkey::Admin::code($_[0]) }

sub esc {
    my ($s) = @_;
    $s = Encode::encode_utf8($s);
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# a page: (status, keys, next, response)
sub page {
    my ($client, $query) = @_;
    my $r = $client->call('GET', 'keys' . (defined $query ? "?$query" : ''));
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    return ($r->{status}, $j->{keys} // [], $j->{next}, $r);
}

# every page from the first: (ids, pages, a failed response or undef)
sub walk {
    my ($client, $query) = @_;
    my ($after, @ids, $pages);

    for ($pages = 1; $pages < 1000; $pages++) {
        my $q = join '&', grep { length } $query // '',
            defined $after ? "after=$after" : '';
        my ($status, $keys, $next, $r) = page($client, $q);
        return (\@ids, $pages, $r) if $status != 200;
        push @ids, map { $_->{id} } @$keys;
        last unless defined $next;
        $after = $next;
    }

    return (\@ids, $pages, undef);
}

sub bad {
    my ($client, $query, $re, $name) = @_;
    my ($status, undef, undef, $r) = page($client, $query);
    my $msg = ref $r->{json} eq 'HASH' ? $r->{json}{error}{message} // '' : '';
    ok($status == 400 && code($r) eq 'invalid_request' && $msg =~ $re,
        "$name: 400") or diag("$status $r->{body}");
}

###############################################################################

# the first page, limit's bounds

my ($status, $keys, $next, $r) = page($api);
is($status, 200, 'first page: 200');
is(scalar @$keys, 100, 'first page: 100 keys by default');
like($next // '', qr/^[A-Za-z0-9_-]{20,}$/, 'first page: a next cursor');
is(join(',', sort keys %{$r->{json}}), 'keys,next', 'first page: keys, next');

($status, $keys, $next) = page($api, 'limit=1');
ok($status == 200 && @$keys == 1 && defined $next, 'limit=1: one key');

($status, $keys, $next) = page($api, 'limit=1000');
ok($status == 200 && @$keys == 253 && !defined $next,
    'limit=1000: all 253, next null');
my @all = map { $_->{id} } @$keys;
my @bulk = map { $_->{id} } grep { $_->{name} =~ /^bulk-/ } @$keys;
my @order = map { "$_->{created_at} $_->{id}" } @$keys;
is_deeply(\@order, [ sort { $b cmp $a } @order ],
    'newest first, then by id');

($status, $keys) = page($api, 'limit=');
ok($status == 200 && @$keys == 100, 'limit= empty: the default');

bad($api, 'limit=0', qr/limit must be a number from 1 to 1000/, 'limit=0');
bad($api, 'limit=1001', qr/limit/, 'limit=1001');
bad($api, 'limit=-1', qr/limit/, 'limit=-1');
bad($api, 'limit=ten', qr/limit/, 'limit=ten');
bad($api, 'limit=1%00', qr/limit/, 'limit=1%00');

# the next chain: every key once, in order, whatever the page size

for my $limit (1, 37, 100) {
    my ($ids, $pages, $fail) = walk($api, "limit=$limit");
    ok(!$fail && "@$ids" eq "@all",
        "limit=$limit: the chain has every key once, in order ($pages pages)");
}

# keys created while paging are not listed twice

{
    my ($s1, $k1, $n1) = page($api, 'limit=10');
    $api->create("during $_") for 1 .. 3;
    my ($s2, $k2) = page($api, "limit=10&after=$n1");
    my %first = map { $_->{id} => 1 } @$k1;

    # a new key of the cursor's second with a smaller id comes after it
    my @old = grep { $_->{name} !~ /^during / } @$k2;
    ok($s2 == 200 && !grep({ $first{$_->{id}} } @$k2)
        && @old && $old[0]{id} eq $all[10],
        'new keys meanwhile: the next page goes on where the first ended');
}

# search

sub found {
    my ($query) = @_;
    my ($ids, undef, $fail) = walk($api, $query);
    return $fail ? undef : $ids;
}

sub has {
    my ($ids, $name) = @_;
    return scalar grep { $_ eq $named{$name}{key}{id} } @{$ids // []};
}

ok(has(found('q=' . esc('ÜBER')), 'Clé Über'), 'q=ÜBER: case-insensitive');
ok(has(found('q=' . esc('clé')), 'Clé Über'), 'q=clé: an accented letter');
ok(has(found('q=' . esc('ü')), 'Clé Über'), 'q=ü: one character');
ok(has(found('q=' . esc('ключ')), 'Ключ API'), 'q=ключ: Cyrillic');
ok(has(found('q=%D0%AE'), 'Ключ API'), 'q=Ю: one Cyrillic capital');
my $ids = found('q=mixed+case');
ok(@{$ids // []} == 1 && has($ids, 'mixed CASE name'),
    'q=mixed+case: + is a space');
$ids = found('q=mixed%20case&limit=1');
ok(@{$ids // []} == 1, 'q=mixed%20case: %20 too');
$ids = found('q=BULK-10');
is(scalar @{$ids // []}, 11, 'q=BULK-10: bulk-10, bulk-100 .. bulk-109');
$ids = found('q=bulk-10&limit=2');
is(scalar @{$ids // []}, 11, 'the same over pages of 2');
is(scalar @{found('q=' . esc('no such name')) // [1]}, 0, 'q: no match');
($status, $keys, $next) = page($api, 'q=');
ok($status == 200 && @$keys == 100, 'q= empty: no search');

my $p = $named{'Clé Über'}{key}{preview};
my $tail = substr($p, -4);
ok(has(found("q=$tail"), 'Clé Über'), 'q=the last 4 of the preview');
ok(has(found('q=' . substr($tail, -2)), 'Clé Über'),
    'q=its last 2 characters');
ok(has(found('q=' . esc("...$tail")), 'Clé Über'), 'q=...' . $tail);
ok(has(found('q=' . esc($p)), 'Clé Über'), 'q=the whole preview');
ok(has(found('q=' . lc $tail), 'Clé Über'),
    'q=the last 4, lower-case: case-insensitive too');

# status

# two of the CLI's keys: the named ones may share their second, and so
# come anywhere among them in the list
my @off = @bulk[3, 5];
for (@off) {
    my $x = $api->call('PATCH', "keys/$_", { status => 'disabled' });
    die "PATCH: $x->{status}\n" unless $x->{status} == 200;
}

$ids = found('status=disabled&limit=1');
is_deeply([ sort @{$ids // []} ], [ sort @off ], 'status=disabled: the two');
$ids = found('status=active&limit=1000');
is(scalar @{$ids // []}, 253 + 3 - 2, 'status=active: the others');
is(scalar @{found('status=expired') // [1]}, 0, 'status=expired: none');
$ids = found('status=disabled&q=bulk');
is(scalar @{$ids // []}, 2, 'status and q together');
bad($api, 'status=paused', qr/status must be "active", "disabled" or "expired"/,
    'status=paused');
bad($api, 'status=Active', qr/status/, 'status=Active');

# bad query strings

bad($api, 'page=2', qr/^Unknown query parameter "page"\.$/, 'unknown page=');
bad($api, 'limit=1&limit=2', qr/Duplicate query parameter "limit"/,
    'limit twice');
bad($api, 'q=a&q=b', qr/Duplicate query parameter "q"/, 'q twice');
bad($api, 'q=%zz', qr/not valid percent-encoding/, 'q=%zz');
bad($api, 'q=ab%4', qr/percent-encoding/, 'q=ab%4');
bad($api, 'q=%C3', qr/UTF-8/, 'q=%C3');
bad($api, 'q=%01x', qr/control characters/, 'q=%01x');
bad($api, 'q=' . ('x' x 101), qr/at most 100 characters/, 'q of 101');
bad($api, 'after=garbage!', qr/^Bad cursor/, 'after=garbage!');
bad($api, 'after=12', qr/^Bad cursor/, 'after=12, a row number');

my (undef, undef, $cursor) = page($api, 'limit=5');
(my $forged = $cursor) =~ s/^(.{12})(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
bad($api, "after=$forged", qr/^Bad cursor/, 'after=a forged cursor');
bad($api, "after=$cursor&q=bulk", qr/^Bad cursor/,
    'a cursor of another search');
my (undef, $now) = page($api, 'limit=6');
($status, $keys) = page($api, "limit=5&after=$cursor");
ok($status == 200 && $keys->[0]{id} eq $now->[5]{id},
    'the cursor itself: the next page');

# another project: never a's keys, a's cursors refused

my %of_a = map { $_ => 1 } @all;
($ids) = walk($other, 'limit=7');
ok(@$ids == 30 && !grep({ $of_a{$_} } @$ids),
    'project b: its 30 keys, in pages');
is(scalar @{(walk($other, 'q=' . esc('Über')))[0]}, 0,
    'project b: a\'s named key is not found');
($ids) = walk($other, 'q=bulk&limit=1000');
ok(@$ids == 30 && !grep({ $of_a{$_} } @$ids),
    'project b: "bulk" finds b\'s only');
bad($other, "after=$cursor", qr/^Bad cursor/, 'project b: a cursor of a');

# HEAD; nothing of the internals in an error

$r = $api->call('HEAD', 'keys?limit=1');
ok($r->{status} == 200 && $r->{body} eq '', 'HEAD keys?limit=1');
$r = $api->call('GET', 'keys?after=' . $forged);
is(Projkey::Admin::internals($t, $r), '', 'a bad cursor error shows no '
    . 'internals');

###############################################################################
