/*
 * pop3.c - the mailboxes of POP3 sessions, in the store role (R6.1).
 *
 * net asks for a session's mailbox once store itself has verified the
 * login (auth.c): the mailbox is that account's, never one net names.
 * Opening (lock, scan, UIDs) and the UPDATE state's deletions run on
 * the worker pool (mailbox.c); the loop keeps one entry per session,
 * hands out read-only descriptors of its messages, and closes the
 * mailbox - releasing its lock - when the session ends, whatever way
 * it ends.  Nothing net sends is trusted: message numbers are bounded
 * by the listing store made, and a message out of turn is fatal.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "compat.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "mailbox.h"
#include "maildir.h"
#include "pool.h"
#include "pop3.h"
#include "proto.h"
#include "xalloc.h"

#define BUCKETS	1024

struct pop3_box {
	struct pop3_box	*next;
	uint64_t	 session;
	char		 account[320];
	char		 path[PATH_MAX];
	struct mailbox	*mb;
	int		 status;	/* of mailbox_open: 0, -1, -2 */
	int		 error;		/* its errno */
	uint8_t		*marks;		/* IMSG_POP3_UPDATE, mb->n of them */
	size_t		 failed;	/* of mailbox_commit */
	bool		 busy;		/* a worker has it */
	bool		 gone;		/* the session ended meanwhile */
};

static struct {
	const struct conf	*conf;
	struct pool		*pool;
	struct ipc		*net;
	struct pop3_box		*boxes[BUCKETS];
} p3;

void
pop3_reconf(const struct conf *conf)
{
	p3.conf = conf;
}

void
pop3_init(const struct conf *conf, struct pool *pool, struct ipc *net)
{
	p3.conf = conf;
	p3.pool = pool;
	p3.net = net;
}

static struct pop3_box **
box_slot(uint64_t session)
{
	struct pop3_box	**pp = &p3.boxes[session % BUCKETS];

	while (*pp != NULL && (*pp)->session != session)
		pp = &(*pp)->next;
	return pp;
}

static void
box_free(struct pop3_box *b)
{
	struct pop3_box	**pp = box_slot(b->session);

	if (*pp == b)
		*pp = b->next;
	mailbox_close(&b->mb);
	free(b->marks);
	free(b);
}

static void
open_work(void *arg)
{
	struct pop3_box	*b = arg;

	b->status = mailbox_open(b->path, p3.conf->pop3.max_messages, &b->mb);
	b->error = errno;
}

static void
send_opened(uint64_t session, uint32_t status, uint32_t uidvalidity,
    uint32_t n)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_u32(&o, status);
	ipc_put_u32(&o, uidvalidity);
	ipc_put_u32(&o, n);
	ipc_send(p3.net, IMSG_POP3_OPENED, session, -1, &o);
}

/* The listing, in pieces that fit an IPC message. */
static void
send_listing(const struct pop3_box *b)
{
	struct ipc_out	o;
	size_t		i = 0, k, n;

	send_opened(b->session, POP3_OPEN_OK, b->mb->uidvalidity,
	    (uint32_t)b->mb->n);
	while (i < b->mb->n) {
		n = b->mb->n - i < POP3_MSGS_CHUNK ? b->mb->n - i :
		    POP3_MSGS_CHUNK;
		ipc_out_init(&o);
		ipc_put_u32(&o, (uint32_t)n);
		for (k = 0; k < n; k++, i++) {
			ipc_put_u64(&o, b->mb->msgs[i].vsize);
			ipc_put_u32(&o, b->mb->msgs[i].uid);
		}
		ipc_send(p3.net, IMSG_POP3_MSGS, b->session, -1, &o);
	}
}

static void
open_done(void *arg)
{
	struct pop3_box	*b = arg;
	char		 path[sizeof(b->path) * 4 + 3];

	b->busy = false;
	if (b->gone) {
		box_free(b);
		return;
	}
	if (b->status == 0) {
		log_info("pop3 session=%016llx event=mailbox-open user=%s "
		    "messages=%zu uidvalidity=%u",
		    (unsigned long long)b->session, b->account, b->mb->n,
		    b->mb->uidvalidity);
		send_listing(b);
		return;
	}
	if (b->status == -2)
		log_info("pop3 session=%016llx event=mailbox-in-use user=%s",
		    (unsigned long long)b->session, b->account);
	else
		log_err("pop3 session=%016llx event=mailbox-error user=%s "
		    "mailbox=%s error=\"%s\"", (unsigned long long)b->session,
		    b->account, log_value(b->path, path, sizeof(path)),
		    strerror(b->error));
	send_opened(b->session, b->status == -2 ? POP3_OPEN_IN_USE :
	    POP3_OPEN_TEMPFAIL, 0, 0);
	box_free(b);
}

/* The Maildir of account "local@domain", relative to the data dir. */
static int
account_path(const char *account, char *buf, size_t size)
{
	char		 local[256];
	const char	*at = strrchr(account, '@');

	if (at == NULL || (size_t)(at - account) >= sizeof(local))
		return -1;
	memcpy(local, account, (size_t)(at - account));
	local[at - account] = '\0';
	return maildir_box_path(buf, size, MAILDIR_ROOT, at + 1, local,
	    NULL) == 0 ? 0 : -1;
}

void
pop3_open(struct ipc_msg *m)
{
	struct pop3_box	**pp, *b;
	const char	*account;

	ipc_end(m);
	if ((account = auth_session_user(m->id)) == NULL)
		fatalx("store: POP3 open for a session that has not logged "
		    "in");
	if (*(pp = box_slot(m->id)) != NULL)
		fatalx("store: POP3 session opens its mailbox twice");
	b = xcalloc(1, sizeof(*b));
	b->session = m->id;
	strlcpy(b->account, account, sizeof(b->account));
	if (account_path(account, b->path, sizeof(b->path)) == -1) {
		log_err("pop3 session=%016llx event=mailbox-error user=%s "
		    "error=\"no usable Maildir name\"",
		    (unsigned long long)m->id, account);
		send_opened(m->id, POP3_OPEN_TEMPFAIL, 0, 0);
		free(b);
		return;
	}
	*pp = b;
	b->busy = true;
	pool_run(p3.pool, open_work, open_done, b);
}

/* The open, idle mailbox of a session, or fatal: net asked out of turn. */
static struct pop3_box *
box_ready(uint64_t session)
{
	struct pop3_box	*b = *box_slot(session);

	if (b == NULL || b->busy || b->mb == NULL)
		fatalx("store: POP3 request for a session without a mailbox");
	return b;
}

void
pop3_read(struct ipc_msg *m)
{
	struct pop3_box	*b = box_ready(m->id);
	struct ipc_out	 o;
	uint32_t	 i = ipc_get_u32(m);
	int		 fd;

	ipc_end(m);
	if (i >= b->mb->n)
		fatalx("store: POP3 read of message %u of %zu", i, b->mb->n);
	if ((fd = mailbox_msg_open(b->mb, i)) == -1)
		log_warn("pop3 session=%016llx event=read-error user=%s "
		    "file=%s error=\"%s\"", (unsigned long long)m->id,
		    b->account, b->mb->msgs[i].name, strerror(errno));
	ipc_out_init(&o);
	ipc_put_u32(&o, fd != -1);
	ipc_send(p3.net, IMSG_POP3_FD, m->id, fd, &o);
}

static void
update_work(void *arg)
{
	struct pop3_box	*b = arg;

	if (mailbox_commit(b->mb, b->marks, &b->failed) == -1)
		b->failed = b->mb->n;
	mailbox_close(&b->mb);		/* the lock goes before the reply */
}

static void
update_done(void *arg)
{
	struct pop3_box	*b = arg;
	struct ipc_out	 o;

	if (!b->gone) {
		ipc_out_init(&o);
		ipc_put_u32(&o, (uint32_t)b->failed);
		ipc_send(p3.net, IMSG_POP3_UPDATED, b->session, -1, &o);
	}
	log_info("pop3 session=%016llx event=mailbox-update user=%s "
	    "failed=%zu", (unsigned long long)b->session, b->account,
	    b->failed);
	box_free(b);
}

void
pop3_update(struct ipc_msg *m)
{
	struct pop3_box	*b = box_ready(m->id);
	uint32_t	 n, i, k, marks, last;

	if (b->marks == NULL)
		b->marks = xcalloc(b->mb->n ? b->mb->n : 1, 1);
	n = ipc_get_u32(m);
	for (k = 0; k < n; k++) {
		i = ipc_get_u32(m);
		marks = ipc_get_u32(m);
		if (i >= b->mb->n ||
		    (marks & ~(uint32_t)(MAILBOX_DELE | MAILBOX_SEEN)) != 0)
			fatalx("store: bad POP3 update from net");
		b->marks[i] = (uint8_t)marks;
	}
	last = ipc_get_u32(m);
	ipc_end(m);
	if (!last)
		return;
	b->busy = true;
	pool_run(p3.pool, update_work, update_done, b);
}

void
pop3_session_end(uint64_t session)
{
	struct pop3_box	*b = *box_slot(session);

	if (b == NULL)
		return;
	if (b->busy) {
		b->gone = true;		/* its done callback frees it */
		return;
	}
	box_free(b);
}
