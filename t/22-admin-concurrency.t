#!/usr/bin/perl

# projkey: 8 clients change keys through the admin API at once, on two
# workers.  Afterwards the list is what the clients believe, every key is
# enforced as listed, the database and the zone agree, and no call got a
# 5xx.  Each client also uses its own keys between changes: a change whose
# response has arrived is already enforced.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use POSIX qw(_exit);
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(14);

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=60s;

    server {
        listen 127.0.0.1:%%PORT_0%% reuseport;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "id=$http_x_projkey_key_id name=$http_x_projkey_key_name\n";
        }
    }
}

EOF

###############################################################################

my $CLIENTS = 8;
my $SECONDS = 4;
my $json = JSON::PP->new->utf8->canonical;

my (%kids, %reports);

for my $n (1 .. $CLIENTS) {
    pipe(my $rd, my $wr) or die "pipe: $!\n";
    my $pid = fork() // die "fork: $!\n";

    if ($pid == 0) {
        close $rd;
        my $report = client($n);
        print $wr $json->encode($report);
        close $wr;
        _exit(0);      # no END blocks: the parent owns nginx
    }

    close $wr;
    $kids{$pid} = { n => $n, fh => $rd };
}

# bounded: each client stops after $SECONDS; give up on them after 60 s
eval {
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 60;
    for my $pid (sort keys %kids) {
        my $fh = $kids{$pid}{fh};
        local $/;
        my $data = <$fh>;
        $reports{$kids{$pid}{n}} = eval { $json->decode($data // '') };
        waitpid($pid, 0);
        delete $kids{$pid};
    }
    alarm 0;
};
alarm 0;
kill 'KILL', keys %kids;
waitpid($_, 0) for keys %kids;

is(scalar grep({ ref $reports{$_} eq 'HASH' } 1 .. $CLIENTS), $CLIENTS,
    "$CLIENTS clients reported");

my (%live, %deleted, @errors, @stale);
my ($ops, $uses, $x5) = (0, 0, 0);

for my $rep (values %reports) {
    next unless ref $rep eq 'HASH';
    %live = (%live, %{$rep->{live}});
    %deleted = (%deleted, %{$rep->{deleted}});
    push @errors, @{$rep->{errors}};
    push @stale, @{$rep->{stale}};
    $ops += $rep->{ops};
    $uses += $rep->{uses};
    $x5 += $rep->{x5};
}

note("$ops admin calls, $uses key requests, " . keys(%live) . ' live, '
    . keys(%deleted) . ' deleted');

cmp_ok($ops, '>=', 8 * 20, 'enough admin calls were made');
cmp_ok(scalar keys %deleted, '>', 0, 'some keys were deleted');
is($x5, 0, 'no 5xx');
is(scalar @errors, 0, 'every admin call got its expected status')
    or diag(join "\n", @errors[0 .. ($#errors < 4 ? $#errors : 4)]);
is(scalar @stale, 0, 'every key request saw the state its client had set')
    or diag(join "\n", @stale[0 .. ($#stale < 4 ? $#stale : 4)]);

# the list is what the clients believe

my $api = Projkey::Admin->new($t, user => 'checker', project => 'c');
my $list = $api->list;
my %listed = map { $_->{id} => $_ } @$list;

is_deeply([ sort keys %listed ], [ sort keys %live ],
    'the list holds exactly the live keys');
is(scalar(grep { $listed{$_} && $listed{$_}{name} eq $live{$_}{name}
    && $listed{$_}{status} eq $live{$_}{status} } keys %live),
    scalar keys %live, 'every listed name and status as believed');
ok(!grep({ $listed{$_} } keys %deleted), 'no deleted key listed');

# every key is enforced as listed

my %seen = enforce();
is(scalar(grep { $seen{$_} eq expected($_) } keys %seen), scalar keys %seen,
    'every key answered as its state says')
    or diag(join "\n", map { "$_: expected " . expected($_) . ", got $seen{$_}" }
        grep { $seen{$_} ne expected($_) } keys %seen);

# the database agrees: the CLI reads it directly, and a fresh zone loaded
# from it after a restart answers as the zone did

my %in_db = map { $_->{id} => "$_->{name}/$_->{status}" }
    @{$t->cli_keys('--project', 'c') // []};
is_deeply(\%in_db, { map { $_ => "$live{$_}{name}/$live{$_}{status}" }
    keys %live }, 'the database holds exactly the live keys');

$t->restart();
my %again = enforce();
is_deeply(\%again, \%seen, 'a zone loaded from the database answers the same');
is(scalar @{$api->list}, scalar keys %live, 'list after restart');

# no secret went into the logs

my $logs = $t->read_file('error.log') . $t->read_file('access.log');
my @secrets = ((map { $_->{secret} } values %live), values %deleted);
ok(!grep({ index($logs, substr($_, 11)) >= 0 } @secrets),
    'no secret in the logs');

###############################################################################

$t->done();

###############################################################################

sub expected {
    my ($id) = @_;
    return 'invalid' if $deleted{$id};
    return $live{$id}{status} eq 'active' ? "200 $live{$id}{name}" : 'disabled';
}

# what a request with each key gets: "200 NAME", "disabled", "invalid", ...
sub enforce {
    my %r;
    for my $id (keys %live, keys %deleted) {
        my $secret = $deleted{$id} // $live{$id}{secret};
        $r{$id} = use_key($secret, $id);
    }
    return %r;
}

sub use_key {
    my ($secret, $id) = @_;
    my $raw = $t->get('/api/', Authorization => "Bearer $secret");
    my ($st, undef, $body) = Projkey::Test::parse_response($raw);

    return "200 $1" if $st == 200 && $body =~ /^id=\Q$id\E name=(.*)$/m;
    return 'disabled' if $st == 401 && $body =~ /"api_key_disabled"/;
    return 'invalid' if $st == 401 && $body =~ /"invalid_api_key"/;
    return "other $st";
}

# one client: a random mix of changes on its own keys for $SECONDS
sub client {
    my ($n) = @_;
    srand($$ ^ time);

    my $c = Projkey::Admin->new($t, user => "client$n", project => 'c');
    my (%live, %deleted, @errors, @stale);
    my ($ops, $uses, $x5, $seq) = (0, 0, 0, 0);
    my $end = time + $SECONDS;

    my $check = sub {
        my ($r, $want, $what) = @_;
        $ops++;
        $x5++ if $r->{status} >= 500;
        push @errors, "client$n $what: expected $want, got $r->{status} "
            . $r->{body} if $r->{status} != $want;
        return $r->{status} == $want;
    };

    while (time < $end && $ops < 400) {
        my @ids = keys %live;
        my $op = @ids < 2 ? 'create'
            : (qw(create rename disable enable delete use use))[int rand 7];
        my $id = $ids[int rand @ids];

        if ($op eq 'create') {
            my $name = "c$n-" . $seq++;
            my $r = $c->call('POST', 'keys', { name => $name });
            next unless $check->($r, 201, "create $name");
            $live{$r->{json}{key}{id}} = { name => $name, status => 'active',
                secret => $r->{json}{secret} };

        } elsif ($op eq 'rename') {
            my $name = "c$n-" . $seq++;
            my $r = $c->call('PATCH', "keys/$id", { name => $name });
            $live{$id}{name} = $name if $check->($r, 200, "rename $id");

        } elsif ($op eq 'disable' || $op eq 'enable') {
            my $status = $op eq 'enable' ? 'active' : 'disabled';
            my $r = $c->call('PATCH', "keys/$id", { status => $status });
            $live{$id}{status} = $status if $check->($r, 200, "$op $id");

        } elsif ($op eq 'delete') {
            my $r = $c->call('DELETE', "keys/$id");
            if ($check->($r, 204, "delete $id")) {
                $deleted{$id} = delete($live{$id})->{secret};
            }

        } else {
            # a key just changed or deleted by this client
            my @all = (keys %live, keys %deleted);
            my $k = $all[int rand @all];
            $uses++;
            my $secret = $deleted{$k} // $live{$k}{secret};
            my $want = $deleted{$k} ? 'invalid'
                : $live{$k}{status} eq 'active' ? "200 $live{$k}{name}"
                : 'disabled';
            my $got = use_key($secret, $k);
            push @stale, "client$n key $k: expected $want, got $got"
                if $got ne $want;
            $x5++ if $got =~ /^other 5/;
        }
    }

    return { live => \%live, deleted => \%deleted, errors => \@errors,
        stale => \@stale, ops => $ops, uses => $uses, x5 => $x5 };
}

###############################################################################
