package Projkey::Netns;

# A network namespace joined to this one by two veth pairs, for a node that
# can be cut off from its database while the tests still reach it (the
# suite runs as root):
#
#   my $ns = Projkey::Netns->new();
#   $ns->name;     # for Projkey::Test->new(netns => ...)
#   $ns->inside;   # the namespace's address for clients, 10.213.X.Y
#   $ns->outside;  # this side's address on the other pair, for the server
#   $ns->net;      # the /30 of that pair, for pg_hba.conf
#   $ns->cut; $ns->heal;   # every IP packet on that pair dropped at both
#                          # ends (nftables; ARP still works, so nothing
#                          # answers: no RST, no ICMP, sessions only time
#                          # out), then let through again; the clients'
#                          # pair stays as it is
#
# The namespace, and with it both pairs, goes when the object does; one
# left by a test that was killed is removed by the next.

use strict;
use warnings;

sub ip {
    my (@args) = @_;
    my $out = qx{ip @args 2>&1};
    die "ip @args failed: $out" if $?;
    return $out;
}

sub new {
    my ($class) = @_;

    my $self = bless { owner => $$, name => "pk$$" }, $class;

    # a killed test's namespace: its pid is gone
    for my $old (ip('netns', 'list') =~ /^pk(\d+)\b/mg) {
        next if kill 0, $old;
        system("ip netns del pk$old 2>/dev/null");
        system("ip link del pk${_}o$old 2>/dev/null") for qw(c d);
        system("nft delete table inet pk$old 2>/dev/null");
    }

    ip('netns', 'add', $self->{name});
    $self->{made} = 1;
    ip('-n', $self->{name}, 'link', 'set', 'lo', 'up');

    my $used = ip('-o', '-4', 'addr', 'show');

    for my $pair (qw(c d)) {
        # a /30 of 10.213.0.0/16 that no interface here uses yet
        my ($a, $b);
        for (1 .. 100) {
            ($a, $b) = (int(rand(256)), 4 * int(rand(64)));
            my ($o, $i) = ($b + 1, $b + 2);
            last unless $used =~ /\b10\.213\.$a\.(?:$o|$i)\//;
        }
        $used .= " 10.213.$a." . ($b + 1) . '/';

        my ($out, $in) = ("pk${pair}o$$", "pk${pair}i$$");
        $self->{$pair} = {
            out     => $out,
            outside => "10.213.$a." . ($b + 1),
            inside  => "10.213.$a." . ($b + 2),
            net     => "10.213.$a.$b/30",
        };

        ip('link', 'add', $out, 'type', 'veth', 'peer', 'name', $in);
        ip('link', 'set', $in, 'netns', $self->{name});
        ip('addr', 'add', "$self->{$pair}{outside}/30", 'dev', $out);
        ip('link', 'set', $out, 'up');
        ip('-n', $self->{name}, 'addr', 'add', "$self->{$pair}{inside}/30",
            'dev', $in);
        ip('-n', $self->{name}, 'link', 'set', $in, 'up');
    }

    return $self;
}

sub name { $_[0]{name} }
sub inside { $_[0]{c}{inside} }
sub outside { $_[0]{d}{outside} }
sub net { $_[0]{d}{net} }

sub nft {
    my ($self, $inside, @rules) = @_;
    my @cmd = ($inside ? ('ip', 'netns', 'exec', $self->{name}) : (), 'nft',
        '-f', '-');
    open my $fh, '|-', @cmd or die "nft: $!\n";
    print $fh "$_\n" for @rules;
    close $fh or die "nft failed (@rules)\n";
}

sub cut {
    my ($self) = @_;
    my $t = "table inet pk$$";

    for ([0, $self->{d}{out}], [1, "pkdi$$"]) {
        my ($inside, $if) = @$_;
        $self->nft($inside, "add $t",
            "add chain inet pk$$ in { type filter hook input priority 0; }",
            "add rule inet pk$$ in iifname \"$if\" drop");
    }

    $self->{cut} = 1;
    return $self;
}

sub heal {
    my ($self) = @_;
    $self->nft($_, "delete table inet pk$$") for 0, 1;
    $self->{cut} = 0;
    return $self;
}

sub DESTROY {
    my ($self) = @_;
    return if $$ != $self->{owner} || !$self->{made};
    delete $self->{made};
    system("nft delete table inet pk$$ 2>/dev/null") if $self->{cut};
    system('ip', 'netns', 'del', $self->{name});
    system("ip link del $self->{$_}{out} 2>/dev/null") for qw(c d);
}

1;
