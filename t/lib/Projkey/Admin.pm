package Projkey::Admin;

# A client of the admin JSON API for the t/2x-admin-*.t tests: JSON in and
# out over the harness's raw HTTP, with the identity and project of the
# caller sent as headers (the tests' admin location reads them with
# projkey_admin_user $http_x_user; projkey_admin_project $http_x_project).
#
#   my $api = Projkey::Admin->new($t, user => 'alice', project => 'a');
#   my $r = $api->call('POST', 'keys', { name => 'ci' });
#   is($r->{status}, 201); $r->{json}{secret}; $r->{headers}{'cache-control'}
#   my $b = $api->as(user => 'bob', project => 'b');

use strict;
use warnings;

use JSON::PP;

use Projkey::Test;

my $json = JSON::PP->new->utf8->canonical;

sub new {
    my ($class, $t, %opts) = @_;

    return bless {
        t       => $t,
        prefix  => $opts{prefix} // '/admin/',
        user    => $opts{user},
        project => $opts{project},
        headers => $opts{headers} // [],
    }, $class;
}

# the same client as another user and/or project
sub as {
    my ($self, %opts) = @_;
    return bless { %$self, %opts }, ref $self;
}

sub encode { $json->encode($_[1]) }

# call($method, $path, $body, Header => value, ...): a reference body is
# sent as JSON with Content-Type application/json, a string as it is
# (with the headers given); returns {status, headers, body, json, raw}
sub call {
    my ($self, $method, $path, $body, @headers) = @_;

    my @h;
    push @h, 'X-User' => $self->{user} if defined $self->{user};
    push @h, 'X-Project' => $self->{project} if defined $self->{project};
    push @h, @{$self->{headers}};

    if (ref $body) {
        $body = $json->encode($body);
        push @h, 'Content-Type' => 'application/json';
    }

    my $raw = $self->{t}->request($method, $self->{prefix} . $path, $body,
        @h, @headers);

    return response($raw);
}

# a raw request (chunked bodies, odd headers) to the admin location
sub raw {
    my ($self, $request) = @_;
    return response($self->{t}->http($request));
}

sub response {
    my ($raw) = @_;
    my ($status, $headers, $body) = Projkey::Test::parse_response($raw);
    my $data = length $body ? eval { $json->decode($body) } : undef;

    return {
        status  => $status,
        headers => $headers,
        body    => $body,
        json    => $data,
        raw     => $raw,
    };
}

# creates a key, dies on failure: (key object, secret)
sub create {
    my ($self, $name) = @_;
    my $r = $self->call('POST', 'keys', { name => $name });

    die "POST keys \"$name\": $r->{status} $r->{body}\n"
        unless $r->{status} == 201 && ref $r->{json} eq 'HASH'
            && $r->{json}{secret};

    return ($r->{json}{key}, $r->{json}{secret});
}

# the list of keys (array reference), every page of it, dies on failure
sub list {
    my ($self) = @_;
    my ($after, @keys);

    do {
        my $r = $self->call('GET', 'keys?limit=1000'
            . (defined $after ? "&after=$after" : ''));

        die "GET keys: $r->{status} $r->{body}\n"
            unless $r->{status} == 200 && ref $r->{json} eq 'HASH'
                && ref $r->{json}{keys} eq 'ARRAY';

        push @keys, @{$r->{json}{keys}};
        $after = $r->{json}{next};
    } while (defined $after);

    return \@keys;
}

# what an error answer must never show a client, '' when it shows none of
# it: a file path, the test directory, an errno text or an SQLite message
# (error.log has them): internals($t, $r)
sub internals {
    my ($t, $r) = @_;
    my $msg = $r->{body} // '';
    my @found;

    my $dir = $t->testdir;
    push @found, 'the test directory' if index($msg, $dir) >= 0;
    push @found, "a path ($1)" if $msg =~ m{((?:^|[\s"(])/\w[\w.-]*/\S*)};
    push @found, "a file name ($1)" if $msg =~ /(\S+\.db\b)/;
    my $lib = join '|', 'sqlite', 'errno', 'denied', 'not permitted',
        'readonly database', 'locked by another', 'disk I/O', 'constraint',
        'malformed', 'No such file', 'Read-only file system';
    push @found, "a library message ($1)" if $msg =~ /($lib)/i;

    return join ', ', @found;
}

# the code of an error response, '' if it is not one: code($r)
sub code {
    my ($r) = @_;
    my $j = $r->{json};
    return '' unless ref $j eq 'HASH' && ref $j->{error} eq 'HASH';
    return $j->{error}{code} // '';
}

1;
