#!/usr/bin/perl

# projkey: the order of a change made through the admin API.  When the admin
# response arrives, every worker already enforces the new state: the zone's
# sync is 60 s, so only the admin path can explain what the requests see.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(28);

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=60s;

    server {
        # reuseport: the kernel spreads new connections over both workers
        listen 127.0.0.1:%%PORT_0%% reuseport;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /api/ {
            projkey keys;
            add_header X-Worker $pid always;

            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Origin   $projkey_origin;
            proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
            proxy_set_header X-Projkey-Project  $projkey_project;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "origin=$http_x_projkey_origin id=$http_x_projkey_key_id name=$http_x_projkey_key_name project=$http_x_projkey_project\n";
        }
    }
}

EOF

###############################################################################

my $api = Projkey::Admin->new($t, user => 'alice', project => 'p1');
my %workers;

is(scalar $t->worker_pids, 2, 'two workers');

# the control: a change made by another process waits for the 60 s sync
select undef, undef, undef, 0.5;
my (undef, $cli_secret) = $t->create_key('made by the cli');
select undef, undef, undef, 1;
like(call($cli_secret), qr/^HTTP\/1\.1 401 .*"invalid_api_key"/s,
    'a key made by the CLI is not in the zone before the sync');

# a key that no change below touches
my ($keep, $keep_secret) = $api->create('bystander');

# create: the very next request is accepted, on any worker

my ($key, $secret) = $api->create('made by api');
my $id = $key->{id};

like(call($secret), qr/^HTTP\/1\.1 200 .*origin=API id=\Q$id\E name=made by api project=p1$/ms,
    'created key works at once');
all_20($secret, qr/^HTTP\/1\.1 200 .*name=made by api project=p1$/ms,
    'after create');

# disable

my $r = $api->call('PATCH', "keys/$id", { status => 'disabled' });
is($r->{status}, 200, 'disable: 200');
like(call($secret), qr/^HTTP\/1\.1 401 .*"api_key_disabled"/s,
    'disabled at once');
all_20($secret, qr/^HTTP\/1\.1 401 .*"api_key_disabled"/s, 'after disable');

# enable

$r = $api->call('PATCH', "keys/$id", { status => 'active' });
is($r->{status}, 200, 'enable: 200');
like(call($secret), qr/^HTTP\/1\.1 200 /, 'enabled at once');
all_20($secret, qr/^HTTP\/1\.1 200 .*origin=API/s, 'after enable');

# rename

$r = $api->call('PATCH', "keys/$id", { name => 'new name' });
is($r->{status}, 200, 'rename: 200');
like(call($secret), qr/name=new name project=p1$/m,
    'backend sees the new name at once');
all_20($secret, qr/^HTTP\/1\.1 200 .*id=\Q$id\E name=new name project=p1$/ms,
    'after rename');

# rename and disable in one call

$r = $api->call('PATCH', "keys/$id", { name => 'both', status => 'disabled' });
is($r->{status}, 200, 'rename + disable: 200');
all_20($secret, qr/^HTTP\/1\.1 401 .*"api_key_disabled"/s,
    'after rename + disable');

$r = $api->call('PATCH', "keys/$id", { status => 'active' });
all_20($secret, qr/^HTTP\/1\.1 200 .*name=both project=p1$/ms,
    'after enable of the renamed key');

# delete

$r = $api->call('DELETE', "keys/$id");
is($r->{status}, 204, 'delete: 204');
like(call($secret), qr/^HTTP\/1\.1 401 .*"invalid_api_key"/s,
    'deleted key rejected at once');
all_20($secret, qr/^HTTP\/1\.1 401 .*"invalid_api_key"/s, 'after delete');

# a key created disabled never works

($key, my $dsecret) = $api->create_with({ name => 'born disabled',
    status => 'disabled' });
all_20($dsecret, qr/^HTTP\/1\.1 401 .*"api_key_disabled"/s,
    'created disabled');

# another project's key carries its project

my ($bkey, $bsecret) = $api->as(project => 'p2')->create('of p2');
all_20($bsecret, qr/^HTTP\/1\.1 200 .*id=\Q$bkey->{id}\E name=of p2 project=p2$/ms,
    'key of project p2');

# the failed calls change nothing

$r = $api->as(project => 'p2')->call('PATCH', "keys/$keep->{id}",
    { status => 'disabled' });
is($r->{status}, 404, 'p2 cannot disable a key of p1');
$r = $api->as(project => 'p2')->call('DELETE', "keys/$keep->{id}");
is($r->{status}, 404, 'p2 cannot delete a key of p1');
$r = $api->call('PATCH', "keys/$keep->{id}", '{"status":"disabled"',
    'Content-Type' => 'application/json');
is($r->{status}, 400, 'a bad body: 400');
$r = $api->call('PATCH', "keys/$keep->{id}", '{"status":"disabled"}',
    'Content-Type' => 'text/plain');
is($r->{status}, 415, 'text/plain: 415');
all_20($keep_secret, qr/^HTTP\/1\.1 200 .*name=bystander project=p1$/ms,
    'the bystander key works throughout');

# the deleted key stays rejected, and what the CLI did not see

like(call($secret), qr/^HTTP\/1\.1 401 /, 'deleted key stays rejected');
is(scalar keys %workers, 2, 'requests were answered by both workers')
    or diag(join ' ', keys %workers);

###############################################################################

$t->done();

###############################################################################

sub call {
    my ($k) = @_;
    my $raw = $t->get('/api/x', Authorization => "Bearer $k");
    $workers{$1} = 1 if $raw =~ /^X-Worker: (\d+)/mi;
    return $raw;
}

# 20 requests, each on a new connection: all of them match
sub all_20 {
    my ($k, $re, $name) = @_;
    my @bad = grep { $_ !~ $re } map { call($k) } 1 .. 20;
    is(scalar @bad, 0, "$name: 20 requests on new connections")
        or diag($bad[0]);
}

sub Projkey::Admin::create_with {
    my ($self, $body) = @_;
    my $r = $self->call('POST', 'keys', $body);
    die "POST keys: $r->{status} $r->{body}\n" unless $r->{status} == 201;
    return ($r->{json}{key}, $r->{json}{secret});
}

###############################################################################
