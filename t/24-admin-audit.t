#!/usr/bin/perl

# projkey: the audit trail of the admin API.  Every change (create, rename,
# disable, enable, delete) is an event, newest first, with its actor, key,
# action, address and detail; pages with limit and before; never a secret;
# only the events of the caller's project.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(32);

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

my $alice = Projkey::Admin->new($t, user => 'alice', project => 'a');
my $bob = $alice->as(user => 'bob');
my $eve = $alice->as(user => 'eve', project => 'b');
my @secrets;

my $r = $alice->call('GET', 'audit');
is($r->{status}, 200, 'audit: 200');
is($r->{headers}{'cache-control'}, 'no-store', 'audit: no-store');
is_deeply($r->{json}, { events => [], next => undef }, 'no events yet');

# the changes, by two administrators

my ($k, $s) = $alice->create('first');
push @secrets, $s;
$bob->call('PATCH', "keys/$k->{id}", { name => 'second' });
$alice->call('PATCH', "keys/$k->{id}", { status => 'disabled' });
$bob->call('PATCH', "keys/$k->{id}", { status => 'active' });
$alice->call('DELETE', "keys/$k->{id}");

# changes that fail are no events
$alice->call('PATCH', "keys/$k->{id}", { name => 'gone' });
$alice->call('POST', 'keys', { name => '' });
$eve->call('GET', 'keys');

# another project's change
my ($bk, $bs) = $eve->create('of b');
push @secrets, $bs;

$r = $alice->call('GET', 'audit');
is($r->{status}, 200, 'audit: 200 after changes');
my $ev = $r->{json}{events};
is(scalar @$ev, 5, 'five events in project a');
is(join(' ', map { $_->{action} } @$ev), 'delete enable disable rename create',
    'newest first');
is(join(' ', map { $_->{actor} } @$ev), 'alice bob alice bob alice',
    'the actors');
ok(!grep({ $_->{key_id} ne $k->{id} } @$ev), 'the key id of each event');
ok(!grep({ ($_->{addr} // '') ne '127.0.0.1' } @$ev), 'the address');
ok(!grep({ ($_->{at} // '') !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ } @$ev),
    'RFC 3339 times');
is_deeply([ map { $_->{id} } @$ev ], [ sort { $b <=> $a } map { $_->{id} } @$ev ],
    'ids descending');
is_deeply([ sort keys %{$ev->[0]} ],
    [ sort qw(id at action key_id actor addr detail) ], 'event fields');
ok(!defined $r->{json}{next}, 'no next page');

is_deeply($ev->[4]{detail}, { name => 'first' }, 'create: detail has the name');
is_deeply($ev->[3]{detail}, { name => { from => 'first', to => 'second' } },
    'rename: from and to');
is_deeply($ev->[2]{detail}, { status => { from => 'active', to => 'disabled' } },
    'disable: from and to');
is_deeply($ev->[1]{detail}, { status => { from => 'disabled', to => 'active' } },
    'enable: from and to');
is_deeply($ev->[0]{detail}, { name => 'second' }, 'delete: detail has the name');

# a rename and a status in one call are two events

my ($k2, $s2) = $alice->create('two at once');
push @secrets, $s2;
$alice->call('PATCH', "keys/$k2->{id}", { name => 'renamed', status => 'disabled' });
$ev = $alice->call('GET', 'audit?limit=3')->{json}{events};
is(join(' ', map { $_->{action} } @$ev), 'disable rename create',
    'name and status in one call: rename and disable');

# paging

my $all = $alice->call('GET', 'audit?limit=100')->{json}{events};
is(scalar @$all, 8, 'eight events in all');

my (@paged, $before, $pages);
while (1) {
    my $q = 'audit?limit=3' . (defined $before ? "&before=$before" : '');
    my $p = $alice->call('GET', $q)->{json};
    last unless ref $p eq 'HASH' && ref $p->{events} eq 'ARRAY';
    $pages++;
    push @paged, @{$p->{events}};
    last unless defined $p->{next};
    $before = $p->{next};
    last if $pages > 10;
}
is($pages, 3, 'three pages of 3');
is_deeply([ map { $_->{id} } @paged ], [ map { $_->{id} } @$all ],
    'the pages are the whole trail, in order');

$r = $alice->call('GET', "audit?limit=2&before=$all->[2]{id}");
is_deeply([ map { $_->{id} } @{$r->{json}{events}} ],
    [ $all->[3]{id}, $all->[4]{id} ], 'before is exclusive');
is($r->{json}{next}, $all->[4]{id}, 'next is the last id of the page');

for my $q ('limit=0', 'limit=-1', 'limit=x', 'limit=1001', 'before=0',
    'before=x')
{
    $r = $alice->call('GET', "audit?$q");
    is($r->{status} . ' ' . Projkey::Admin::code($r), '400 invalid_request',
        "audit?$q: 400");
}

# other projects

$ev = $eve->call('GET', 'audit')->{json}{events};
is(join(' ', map { "$_->{action}:$_->{key_id}" } @$ev), "create:$bk->{id}",
    'project b sees only its event');

# never a secret

my $trail = $alice->call('GET', 'audit?limit=1000')->{raw}
    . $eve->call('GET', 'audit?limit=1000')->{raw};
ok(!grep({ index($trail, substr($_, 11)) >= 0 } @secrets)
    && $trail !~ /sk-project-[0-9A-Za-z]{48}/, 'no secret in the trail');

###############################################################################

$t->done();

###############################################################################
