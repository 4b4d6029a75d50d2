/*
 * ipc.c - typed messages over SOCK_SEQPACKET socketpairs (see ipc.h).
 *
 * Runs in every role.  Trusts nothing it reads: lengths are checked
 * against the packet, and a peer that breaks the format is fatal for
 * the reader, which the parent then restarts.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "ipc.h"
#include "log.h"
#include "xalloc.h"

struct ipc_hdr {
	uint32_t	type;
	uint32_t	flags;
	uint64_t	id;
};
#define IPC_F_FD	0x1

struct ipc_pending {
	struct ipc_pending	*next;
	int			 fd;
	size_t			 len;
	uint8_t			 data[];
};

struct ipc {
	int			 fd;
	const char		*peer;
	struct event		*rev, *wev;
	struct ipc_pending	*head, **tail;
	ipc_cb			 cb;
	void			*arg;
	uint8_t			*rbuf;
	bool			 untrusted;	/* ipc_set_untrusted */
};

static void	ipc_read(evutil_socket_t, short, void *);
static void	ipc_flush(evutil_socket_t, short, void *);

struct ipc *
ipc_new(struct event_base *base, int fd, const char *peer, ipc_cb cb,
    void *arg)
{
	struct ipc	*c = xcalloc(1, sizeof(*c));

	evutil_make_socket_nonblocking(fd);
	c->fd = fd;
	c->peer = peer;
	c->cb = cb;
	c->arg = arg;
	c->tail = &c->head;
	c->rbuf = xmalloc(sizeof(struct ipc_hdr) + IPC_MSG_MAX);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, ipc_read, c);
	c->wev = event_new(base, fd, EV_WRITE, ipc_flush, c);
	event_add(c->rev, NULL);
	return c;
}

void
ipc_set_untrusted(struct ipc *c)
{
	c->untrusted = true;
}

void
ipc_free(struct ipc **cp)
{
	struct ipc		*c = *cp;
	struct ipc_pending	*p;

	if (c == NULL)
		return;
	event_free(c->rev);
	event_free(c->wev);
	while ((p = c->head) != NULL) {
		c->head = p->next;
		if (p->fd != -1)
			close(p->fd);
		free(p);
	}
	close(c->fd);
	free(c->rbuf);
	free(c);
	*cp = NULL;
}

void
ipc_out_init(struct ipc_out *o)
{
	o->len = 0;
	o->overflow = false;
}

void
ipc_put_bytes(struct ipc_out *o, const void *p, size_t len)
{
	if (o->overflow || len > IPC_MSG_MAX - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
}

void
ipc_put_u32(struct ipc_out *o, uint32_t v)
{
	ipc_put_bytes(o, &v, sizeof(v));
}

void
ipc_put_u64(struct ipc_out *o, uint64_t v)
{
	ipc_put_bytes(o, &v, sizeof(v));
}

void
ipc_put_str(struct ipc_out *o, const char *s)
{
	if (s == NULL) {
		ipc_put_u32(o, UINT32_MAX);
		return;
	}
	ipc_put_u32(o, (uint32_t)strlen(s));
	ipc_put_bytes(o, s, strlen(s) + 1);	/* with its NUL */
}

/* Try to send one packet; 1 sent, 0 would block, fatal otherwise. */
static int
ipc_sendmsg(struct ipc *c, const uint8_t *data, size_t len, int fd)
{
	struct msghdr	 mh;
	struct iovec	 iov = { (void *)data, len };
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd != -1) {
		struct cmsghdr *ch;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_len = CMSG_LEN(sizeof(int));
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(ch), &fd, sizeof(int));
	}
	if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) != -1)
		return 1;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
		return 0;
	if (errno == EPIPE || errno == ECONNRESET)
		return 1;	/* the read side will see the EOF */
	fatal("ipc: send to %s", c->peer);
}

void
ipc_send(struct ipc *c, uint32_t type, uint64_t id, int fd,
    struct ipc_out *o)
{
	struct ipc_hdr		 h = { type, fd != -1 ? IPC_F_FD : 0, id };
	struct ipc_pending	*p;

	if (o->overflow)
		panic("ipc: message %u to %s over %d octets", type, c->peer,
		    IPC_MSG_MAX);
	p = xmalloc(sizeof(*p) + sizeof(h) + o->len);
	memcpy(p->data, &h, sizeof(h));
	memcpy(p->data + sizeof(h), o->buf, o->len);
	p->len = sizeof(h) + o->len;
	p->fd = fd;
	p->next = NULL;
	if (c->head == NULL && ipc_sendmsg(c, p->data, p->len, fd)) {
		if (fd != -1)
			close(fd);
		free(p);
		return;
	}
	*c->tail = p;
	c->tail = &p->next;
	event_add(c->wev, NULL);
}

static void
ipc_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct ipc		*c = arg;
	struct ipc_pending	*p;

	while ((p = c->head) != NULL) {
		if (!ipc_sendmsg(c, p->data, p->len, p->fd)) {
			event_add(c->wev, NULL);
			return;
		}
		c->head = p->next;
		if (c->head == NULL)
			c->tail = &c->head;
		if (p->fd != -1)
			close(p->fd);
		free(p);
	}
}

static int
ipc_recv(struct ipc *c, ssize_t *n_r, int *fd_r)
{
	struct msghdr	 mh;
	struct iovec	 iov = { c->rbuf, sizeof(struct ipc_hdr) + IPC_MSG_MAX };
	struct cmsghdr	*ch;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	*fd_r = -1;
	*n_r = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	if (*n_r == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (!c->untrusted)
			fatalx("ipc: truncated message from %s", c->peer);
		log_warn("ipc event=malformed peer=%s what=truncated",
		    c->peer);
		for (ch = CMSG_FIRSTHDR(&mh); ch != NULL;
		    ch = CMSG_NXTHDR(&mh, ch))
			if (ch->cmsg_level == SOL_SOCKET &&
			    ch->cmsg_type == SCM_RIGHTS) {
				memcpy(fd_r, CMSG_DATA(ch), sizeof(int));
				close(*fd_r);
			}
		*fd_r = -1;
		return -1;
	}
	for (ch = CMSG_FIRSTHDR(&mh); ch != NULL; ch = CMSG_NXTHDR(&mh, ch))
		if (ch->cmsg_level == SOL_SOCKET &&
		    ch->cmsg_type == SCM_RIGHTS)
			memcpy(fd_r, CMSG_DATA(ch), sizeof(int));
	return 1;
}

static void
ipc_read(evutil_socket_t fd, short ev, void *arg)
{
	struct ipc	*c = arg;
	struct ipc_hdr	 h;
	struct ipc_msg	 m;
	ssize_t		 n;
	int		 pfd, i, r;

	/* A bounded batch, so one busy peer cannot starve the loop. */
	for (i = 0; i < 64; i++) {
		if ((r = ipc_recv(c, &n, &pfd)) == 0)
			return;
		if (r == -1 || n == 0) {
			c->cb(c, NULL, c->arg);
			return;
		}
		if ((size_t)n >= sizeof(h))
			memcpy(&h, c->rbuf, sizeof(h));
		if ((size_t)n < sizeof(h) ||
		    ((h.flags & IPC_F_FD) != 0) != (pfd != -1)) {
			if (!c->untrusted)
				fatalx("ipc: %s from %s", (size_t)n < sizeof(h) ?
				    "short message" : "descriptor mismatch",
				    c->peer);
			log_warn("ipc event=malformed peer=%s", c->peer);
			if (pfd != -1)
				close(pfd);
			c->cb(c, NULL, c->arg);
			return;
		}
		m.type = h.type;
		m.id = h.id;
		m.fd = pfd;
		m.data = c->rbuf + sizeof(h);
		m.len = (size_t)n - sizeof(h);
		m.pos = 0;
		m.peer = c->peer;
		c->cb(c, &m, c->arg);
	}
}

static const uint8_t *
ipc_take(struct ipc_msg *m, size_t len)
{
	const uint8_t	*p;

	if (len > m->len - m->pos)
		fatalx("ipc: short message %u from %s", m->type, m->peer);
	p = m->data + m->pos;
	m->pos += len;
	return p;
}

uint32_t
ipc_get_u32(struct ipc_msg *m)
{
	uint32_t	v;

	memcpy(&v, ipc_take(m, sizeof(v)), sizeof(v));
	return v;
}

uint64_t
ipc_get_u64(struct ipc_msg *m)
{
	uint64_t	v;

	memcpy(&v, ipc_take(m, sizeof(v)), sizeof(v));
	return v;
}

const char *
ipc_get_str(struct ipc_msg *m)
{
	uint32_t	 len = ipc_get_u32(m);
	const uint8_t	*p;

	if (len == UINT32_MAX)
		return NULL;
	if (len >= IPC_MSG_MAX)
		fatalx("ipc: bad string length from %s", m->peer);
	p = ipc_take(m, (size_t)len + 1);	/* the text and its NUL */
	if (p[len] != '\0' || memchr(p, '\0', len) != NULL)
		fatalx("ipc: malformed string from %s", m->peer);
	return (const char *)p;
}

void
ipc_get_strbuf(struct ipc_msg *m, char *buf, size_t size)
{
	const char	*s = ipc_get_str(m);

	if (s == NULL)
		s = "";
	if (strlcpy(buf, s, size) >= size)
		fatalx("ipc: string too long in message %u from %s", m->type,
		    m->peer);
}

void
ipc_end(struct ipc_msg *m)
{
	if (m->pos != m->len)
		fatalx("ipc: %zu trailing octets in message %u from %s",
		    m->len - m->pos, m->type, m->peer);
}
