#!/usr/bin/perl
# pi_mbox_dump.pl FORMAT FILE
#
# Splits FILE (gzip-compressed when its name ends in .gz) with public-inbox's
# own reader, PublicInbox::MboxReader->FORMAT (mboxrd, mboxo, mboxcl, ...),
# the code import_mbox uses, and prints one line per message it hands to its
# callback:
#
#	LENGTH SHA256 ASLENGTH ASSHA256
#
# LENGTH/SHA256 describe the raw bytes MboxReader passed to
# PublicInbox::Eml->new (the message after mbox splitting, trailing blank
# line removal and >From unquoting; for mboxcl, as_string); ASLENGTH/ASSHA256 describe
# $eml->as_string, which differs from the raw bytes only where Eml's parser
# rewrites (a header over 100 KB is truncated, a header-less text gets a
# newline in front). Used by mbox_pi_test.go to check archive.ReadMbox.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use PublicInbox::Eml;
use PublicInbox::MboxReader;

my ($fmt, $file) = @ARGV;
defined($file) or die "usage: $0 FORMAT FILE\n";
my $cb = PublicInbox::MboxReader->reads($fmt) or die "unknown format $fmt\n";

my $fh;
if ($file =~ /\.gz\z/) {
	open($fh, '-|', 'gzip', '-dc', '--', $file) or die "gzip $file: $!\n";
} else {
	open($fh, '<', $file) or die "open $file: $!\n";
}
binmode($fh);
binmode(STDOUT);

# Capture the bytes MboxReader hands to Eml->new before Eml parses them.
my $orig_new = \&PublicInbox::Eml::new;
my $last;
{
	no warnings 'redefine';
	*PublicInbox::Eml::new = sub {
		$last = ref($_[1]) ? ${$_[1]} : $_[1];
		$orig_new->(@_);
	};
}

$cb->(undef, $fh, sub {
	my ($eml) = @_;
	my $s = $eml->as_string;
	# mboxcl readers hand Eml only the header and set the body after:
	# as_string is the whole message there.
	$last = $s if $fmt =~ /\Amboxcl/;
	printf("%d %s %d %s\n", length($last), sha256_hex($last),
		length($s), sha256_hex($s));
});
