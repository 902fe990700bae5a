// Package peertest holds helpers that run mailswarm against real peer
// programs: public-inbox, Dovecot, Postfix and swaks, BitTorrent clients
// (libtorrent, aria2, transmission), plus a raw IMAP client (IMAPConn),
// the shared corpora and the [Need] rule for missing programs.
//
// It is imported by _test.go files and by the bench command (bench/), which
// starts the same peers to measure beside them; nothing in the product
// (cmd/mailswarm and the packages it wires) may import it. It imports
// nothing of ours.
//
// A missing peer program makes a test skip on a developer's machine but
// fail under CI (the environment variable CI set to anything non-empty),
// where .ci/run installs every peer: see [Need].
//
// The shared material (corpora, peer harnesses) lives beside the
// repository in ../shared; [SharedDir] finds it, or the directory named by
// MAILSWARM_SHARED.
//
// Scripts the helpers run are kept in testdata/ and embedded, so the
// helpers work from any package's test:
//
//	testdata/public-inbox/import_mbox.pl  bulk import through public-inbox's
//	                                      InboxWritable::import_mbox API
//	                                      (copied from shared/peers/public-inbox)
//	testdata/imap_fetch_all.py            python3 imaplib: UID FETCH every
//	                                      message of one mailbox to files
package peertest
