// Drives imapflow against mailswarm's imapd for TestImapflow
// (imapd/clients_test.go): connects without TLS, lists the mailboxes,
// opens one, fetches every message (envelope, flags, size, source),
// searches the body and the subject, then IDLEs until the server reports
// one more message (the Go test archives it once this script prints
// {"event":"idling"}).
//
// Configuration is in the environment: IMAP_HOST, IMAP_PORT, IMAP_USER,
// IMAP_MAILBOX, SEARCH_BODY, SEARCH_SUBJECT. Every result is one JSON
// object per line on stdout; errors go to stderr and exit 1.
import { createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';

const env = process.env;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// imapflow says nothing on its API when the server accepts IDLE, only in
// its log ("Initiated IDLE" once the "+" continuation arrived): watch
// for that line to tell the Go test that new mail may come now.
const quiet = () => {};
const logger = {
    trace: quiet,
    info: quiet,
    warn: quiet,
    error: (o) => process.stderr.write('imapflow: ' + JSON.stringify(o) + '\n'),
    debug: (o) => {
        if (o && typeof o.msg === 'string' && o.msg.startsWith('Initiated IDLE')) {
            out({ event: 'idling' });
        }
    }
};

const client = new ImapFlow({
    host: env.IMAP_HOST,
    port: Number(env.IMAP_PORT),
    secure: false,
    doSTARTTLS: false,
    auth: { user: env.IMAP_USER, pass: 'any password' },
    logger,
    disableAutoIdle: true
});

async function main() {
    await client.connect();

    const boxes = await client.list();
    out({ event: 'list', mailboxes: boxes.map((b) => ({ path: b.path, delimiter: b.delimiter, flags: [...b.flags] })) });

    const lock = await client.getMailboxLock(env.IMAP_MAILBOX);
    try {
        const mb = client.mailbox;
        out({ event: 'mailbox', path: mb.path, exists: mb.exists, uidNext: mb.uidNext, uidValidity: String(mb.uidValidity) });

        const messages = [];
        for await (const m of client.fetch('1:*', { uid: true, flags: true, size: true, envelope: true, source: true, internalDate: true })) {
            messages.push({
                seq: m.seq,
                uid: m.uid,
                size: m.size,
                flags: [...(m.flags || [])],
                messageId: m.envelope.messageId || '',
                subject: m.envelope.subject || '',
                internalDate: m.internalDate ? m.internalDate.toISOString() : '',
                sourceLength: m.source.length,
                sourceSHA256: createHash('sha256').update(m.source).digest('hex')
            });
        }
        out({ event: 'messages', messages });

        const body = await client.search({ body: env.SEARCH_BODY }, { uid: true });
        const subject = await client.search({ subject: env.SEARCH_SUBJECT }, { uid: true });
        out({ event: 'search', bodyUIDs: body, subjectUIDs: subject });

        // IDLE until the server announces a new message; the Go test
        // archives it at once, so 30 seconds of silence is a failure.
        const seen = new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('no EXISTS within 30s of IDLE')), 30000);
            client.on('exists', (data) => {
                clearTimeout(timer);
                out({ event: 'exists', path: data.path, count: data.count, prevCount: data.prevCount });
                resolve();
            });
        });
        const idle = client.idle();
        await seen;
        // Fetch what arrived, by UID, through the same connection.
        const last = await client.fetchOne('*', { uid: true, envelope: true, source: true });
        out({
            event: 'new',
            uid: last.uid,
            messageId: last.envelope.messageId || '',
            subject: last.envelope.subject || '',
            sourceLength: last.source.length,
            sourceSHA256: createHash('sha256').update(last.source).digest('hex')
        });
        await idle;
    } finally {
        lock.release();
    }
    await client.logout();
    out({ event: 'done' });
}

main().catch((err) => {
    process.stderr.write('imapflow.mjs: ' + (err && err.stack ? err.stack : String(err)) + '\n');
    if (err && err.response) {
        process.stderr.write('server response: ' + err.response + '\n');
    }
    process.exit(1);
});
