/*
 * smtp_session.c - the inbound SMTP session (RFC 5321), in the net role.
 *
 * Everything here comes from an untrusted peer.  Input is bounded
 * before it is copied (command lines, DATA lines through mail/smtp_data,
 * BDAT chunks by their announced size), client text is escaped before
 * it is logged, and the state machine is the table smtp_cmds[]: only
 * the dispatcher answers unknown commands and commands out of state.
 * The message goes straight into a spool file whose descriptor store
 * hands over; the 250 is sent only after store says it is committed.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "addr.h"
#include "clamd_reply.h"
#include "compat.h"
#include "fsio.h"
#include "ipmatch.h"
#include "log.h"
#include "net.h"
#include "resolve.h"
#include "policy.h"
#include "proto.h"
#include "sasl.h"
#include "smtp_data.h"
#include "smtp_session.h"
#include "smtp_syntax.h"
#include "tls.h"
#include "xalloc.h"

/* Limits (R1.4).  RFC 5321 4.5.3.1.4: 512 octets a command line, CRLF
 * included; MAIL and RCPT may grow by the parameters of the extensions
 * we offer (RFC 1869: 512 more). */
#define CMD_LINE_MAX	512
#define CMD_LINE_EXT	1024
#define TEXT_LINE_MAX	1000	/* RFC 5321 4.5.3.1.6 */
#define HEADER_MAX	(64 * 1024)
#define SPOOL_BUF	(64 * 1024)
#define INPUT_MAX	(256 * 1024)	/* read watermark */
#define TRACE_MAX	4096		/* a trace field from store */

enum smtp_state {
	S_CONNECTED,	/* no HELO/EHLO yet */
	S_READY,	/* greeted, no transaction */
	S_MAIL,		/* MAIL accepted */
	S_RCPT,		/* at least one RCPT accepted */
	S_DATA,		/* reading the DATA stream */
	S_BDAT,		/* reading a BDAT chunk */
	S_QUIT		/* closing */
};
static const char *const state_names[] = {
	"connected", "ready", "mail", "rcpt", "data", "bdat", "quit"
};

#define ST(s)		(1U << (s))
#define ST_ANY		(ST(S_CONNECTED) | ST(S_READY) | ST(S_MAIL) | ST(S_RCPT))
#define ST_TX		(ST(S_MAIL) | ST(S_RCPT))

#define CMD_F_NOERR	0x01	/* never counts as a protocol error */

enum smtp_wait {
	W_NONE, W_CONNECT, W_MAIL, W_RCPT, W_SPOOL, W_COMMIT, W_AUTH
};

#define AUTH_FAILURES_MAX	3	/* in one session, then 421 */

struct rcpt {
	char	given[ADDR_PATH_MAX + 1];	/* between < and > */
};

struct smtp_session {
	uint64_t			 id;
	const struct conf_listener	*l;
	const struct conf		*conf;
	struct bufferevent		*bev;
	char				 ip[64];	/* text, for logs */
	char				 rcvd_ip[80];	/* as in Received */
	char				 host[256];	/* FCrDNS name, or "unknown" */
	struct fcrdns			*fcrdns;	/* the lookup under way */
	int				 port;
	enum smtp_state			 state;
	enum smtp_wait			 wait;
	bool				 closing, skip_line, esmtp, tls;
	struct event			*linger;	/* closing under TLS */
	struct event			*pregreet;	/* timeout_greeting */
	bool				 banner_due;	/* pregreet is over */
	char				*banner;	/* until it is sent */
	unsigned int			 linger_ticks;
	unsigned int			 errors;
	char				 helo[256];

	/* SMTP AUTH (RFC 4954) */
	struct sasl_server		*sasl;
	bool				 sasl_reading;	/* a 334 is out */
	unsigned int			 auth_failures;
	bool				 auth_store_decided;
	char				 auth_user[ADDR_PATH_MAX + 1];
	char				 auth_account[ADDR_PATH_MAX + 1];
	char				 auth_mech[32];
	char				 tls_desc[160];

	/* the transaction */
	struct mailaddr			 from;
	char				 from_given[ADDR_PATH_MAX + 1];
	char				*trace;		/* Received-SPF, or NULL */
	struct smtp_mail_params		 mparams;
	struct rcpt			*rcpts;
	size_t				 nrcpt;
	struct rcpt			 pending;	/* RCPT being looked up */

	/* the message */
	struct timespec			 tx_start;	/* MAIL, R7.5 */
	char				 qid[QID_LEN + 1];
	int				 spool_fd;
	int				 spool_errno;
	uint64_t			 spool_len;	/* octets written */
	uint8_t				*wbuf;
	size_t				 wlen;
	bool				 too_big;
	struct smtp_data		 data;
	struct header_scan		 hdr;		/* BDAT */
	bool				 bdat;		/* BDAT used in tx */
	bool				 bdat_last;
	uint64_t			 bdat_left, bdat_size;
	const char			*bdat_discard;	/* reply after skip */
};

struct smtp_cmd {
	const char	*name;
	unsigned int	 states;
	unsigned int	 flags;
	void		(*run)(struct smtp_session *, const char *);
};

static void	do_helo(struct smtp_session *, const char *);
static void	do_ehlo(struct smtp_session *, const char *);
static void	do_mail(struct smtp_session *, const char *);
static void	do_rcpt(struct smtp_session *, const char *);
static void	do_data(struct smtp_session *, const char *);
static void	do_bdat(struct smtp_session *, const char *);
static void	do_rset(struct smtp_session *, const char *);
static void	do_noop(struct smtp_session *, const char *);
static void	do_quit(struct smtp_session *, const char *);
static void	do_help(struct smtp_session *, const char *);
static void	do_vrfy(struct smtp_session *, const char *);
static void	do_starttls(struct smtp_session *, const char *);
static void	do_auth(struct smtp_session *, const char *);

static const struct smtp_cmd smtp_cmds[] = {
	{ "HELO",	ST_ANY,			0,		do_helo },
	{ "EHLO",	ST_ANY,			0,		do_ehlo },
	{ "MAIL",	ST(S_CONNECTED) | ST(S_READY), 0,	do_mail },
	{ "RCPT",	ST_TX,			0,		do_rcpt },
	{ "DATA",	ST(S_RCPT),		0,		do_data },
	{ "BDAT",	ST_ANY,			0,		do_bdat },
	{ "RSET",	ST_ANY,			CMD_F_NOERR,	do_rset },
	{ "NOOP",	ST_ANY,			CMD_F_NOERR,	do_noop },
	{ "QUIT",	ST_ANY,			CMD_F_NOERR,	do_quit },
	{ "HELP",	ST_ANY,			CMD_F_NOERR,	do_help },
	{ "VRFY",	ST_ANY,			CMD_F_NOERR,	do_vrfy },
	{ "STARTTLS",	ST(S_CONNECTED) | ST(S_READY), 0,	do_starttls },
	{ "AUTH",	ST_ANY,			0,		do_auth },
};

static void	session_process(struct smtp_session *);
static void	connect_result(struct smtp_session *, enum policy_action,
		    const char *, const char *);
static void	rcpt_result(struct smtp_session *, enum policy_action,
		    unsigned int, const char *, const char *);
static void	auth_forget(struct smtp_session *);
static void	auth_ehlo_line(const struct smtp_session *, char *, size_t);
static void	session_read_cb(struct bufferevent *, void *);
static void	session_write_cb(struct bufferevent *, void *);
static void	session_event_cb(struct bufferevent *, short, void *);

/* --- logs, replies and the session's life --------------------------- */

/* One log line of this session: its id and the client's address first,
 * so that every line can be matched to a client (R7.4, fail2ban). */
static void
slog(const struct smtp_session *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
slog(const struct smtp_session *s, int level, const char *fmt, ...)
{
	char	msg[2048];
	va_list	ap;

	if (level > log_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level == LOGL_DEBUG)
		log_debug("smtp session=%016llx address=[%s] %s",
		    (unsigned long long)s->id, s->ip, msg);
	else
		log_info("smtp session=%016llx address=[%s] %s",
		    (unsigned long long)s->id, s->ip, msg);
}

/*
 * The client as a line recording a decision names it (R7.4): its name
 * (forward-confirmed, else "unknown"), and the session's TLS and SASL
 * when it has them.
 */
static const char *
client_fields(const struct smtp_session *s, char *buf, size_t size)
{
	char	host[sizeof(s->host) * 4];

	snprintf(buf, size, "host=%s%s%s%s%s%s%s",
	    log_escape(s->host, strlen(s->host), host, sizeof(host)),
	    s->tls_desc[0] ? " tls=" : "", s->tls_desc[0] ?
	    SSL_get_version(bufferevent_openssl_get_ssl(s->bev)) : "",
	    s->auth_user[0] ? " sasl_method=" : "",
	    s->auth_user[0] ? s->auth_mech : "",
	    s->auth_user[0] ? " sasl_username=" : "", s->auth_user);
	return buf;
}

static const char	*reply_codes(const char *, char *, size_t);

/* "from=<...>" or "to=<...>": a path the client gave, escaped. */
static const char *
path_field(const char *key, const char *given, char *buf, size_t size)
{
	char	esc[ADDR_PATH_MAX * 4];

	snprintf(buf, size, "%s=<%s>", key,
	    log_escape(given, strlen(given), esc, sizeof(esc)));
	return buf;
}

/*
 * A refusal of the client, one line (R7.4, docs/logs.md): "event=reject"
 * or "event=defer" (net_refusal_event), what was refused (subject: its
 * from=, to= or qid=, or ""), the check that refused and the reply's
 * codes.
 */
static void
log_refusal(const struct smtp_session *s, const char *subject,
    const char *check, const char *text)
{
	char	codes[32], client[512];

	slog(s, LOGL_INFO, "event=%s %s%scheck=%s %s %s",
	    net_refusal_event(check, text), subject, subject[0] ? " " : "",
	    check, reply_codes(text, codes, sizeof(codes)),
	    client_fields(s, client, sizeof(client)));
}

static void
reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	char		 line[1024];
	va_list		 ap;
	int		 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		panic("smtp: reply too long");
	if (log_level() >= LOGL_DEBUG) {
		char esc[sizeof(line) * 4];	/* replies quote client text */

		slog(s, LOGL_DEBUG, "event=reply text=\"%s\"",
		    log_escape(line, (size_t)n, esc, sizeof(esc)));
	}
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(out, line, (size_t)n + 2);
}

/* A reply that refuses something the client did wrong (R1.4). */
static void
reply_error(struct smtp_session *s, const char *text)
{
	reply(s, "%s", text);
	s->errors++;
}

static void
session_enter_state(struct smtp_session *s, enum smtp_state state)
{
	if (s->state == state)
		return;
	slog(s, LOGL_DEBUG, "event=state from=%s to=%s", state_names[s->state],
	    state_names[state]);
	s->state = state;
}

static void
session_timeouts(struct smtp_session *s)
{
	struct timeval	tv = { s->state == S_DATA || s->state == S_BDAT ?
	    s->conf->smtp.timeout_data : s->conf->smtp.timeout_command, 0 };

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* A name lookup of the client (fcrdns_start, below). */
struct fcrdns {
	struct smtp_session	*s;	/* NULL once the session has gone */
	struct event		*timer;	/* the banner waits this long */
	uint8_t			 addr[16];
	char			 name[256];
};

#define FCRDNS_WAIT	3	/* seconds the banner waits for the name */

static void
session_free(struct smtp_session *s)
{
	struct ipc_out	o;

	if (s->qid[0] != '\0') {
		ipc_out_init(&o);
		ipc_put_str(&o, s->qid);
		ipc_send(net.store, IMSG_SPOOL_ABORT, s->id, -1, &o);
	}
	if (s->spool_fd != -1)
		close(s->spool_fd);
	ipc_out_init(&o);
	ipc_put_u32(&o, s->errors);
	ipc_send(net.store, IMSG_SESSION_END, s->id, -1, &o);
	sasl_server_free(&s->sasl);
	if (s->fcrdns != NULL) {
		s->fcrdns->s = NULL;	/* its callback frees it */
		if (s->fcrdns->timer != NULL) {
			event_free(s->fcrdns->timer);
			s->fcrdns->timer = NULL;
		}
	}
	net_session_del(s->id);
	net_conn_release(s->ip);
	net.nconn--;
	net_stat_session(s->l, false);
	if (s->linger != NULL)
		event_free(s->linger);
	if (s->pregreet != NULL)
		event_free(s->pregreet);
	bufferevent_free(s->bev);
	free(s->banner);
	free(s->trace);
	free(s->rcpts);
	free(s->wbuf);
	conf_unref(&s->conf);
	free(s);
}

static void	session_finish(struct smtp_session *);

static void
linger_tick(evutil_socket_t fd, short ev, void *arg)
{
	session_finish(arg);
}

/*
 * Free the session once its last replies have left: from our output
 * buffer and, after STARTTLS, from the buffer under the TLS filter too
 * (whose callbacks the filter owns, hence the short timer; at most 5 s).
 */
static void
session_finish(struct smtp_session *s)
{
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) != 0) {
		bufferevent_setcb(s->bev, NULL, session_write_cb,
		    session_event_cb, s);
		return;
	}
	if (net_flushed(s->bev, &s->linger, &s->linger_ticks, linger_tick, s))
		session_free(s);
}

/* Close once the replies already queued have left. */
static void
session_close(struct smtp_session *s, const char *reason)
{
	if (s->closing)
		return;
	slog(s, LOGL_INFO, "event=disconnect reason=%s", reason);
	s->closing = true;
	session_enter_state(s, S_QUIT);
	/* Under implicit TLS a refusal at connect goes out once the
	 * handshake is done, and the handshake needs to read. */
	if (!s->tls || s->tls_desc[0] != '\0')
		bufferevent_disable(s->bev, EV_READ);
	session_finish(s);
}

static void
tx_reset(struct smtp_session *s)
{
	if (s->qid[0] != '\0') {
		struct ipc_out o;

		ipc_out_init(&o);
		ipc_put_str(&o, s->qid);
		ipc_send(net.store, IMSG_SPOOL_ABORT, s->id, -1, &o);
		s->qid[0] = '\0';
	}
	if (s->spool_fd != -1) {
		close(s->spool_fd);
		s->spool_fd = -1;
	}
	memset(&s->from, 0, sizeof(s->from));
	s->from_given[0] = '\0';
	free(s->trace);
	s->trace = NULL;
	memset(&s->mparams, 0, sizeof(s->mparams));
	s->nrcpt = 0;
	s->spool_len = 0;
	s->spool_errno = 0;
	s->wlen = 0;
	free(s->wbuf);		/* an idle session holds no spool buffer */
	s->wbuf = NULL;
	s->too_big = false;
	s->bdat = false;
	if (s->state != S_CONNECTED)
		session_enter_state(s, S_READY);
}

/* --- the message: writing the spool file ---------------------------- */

static void
spool_flush(struct smtp_session *s)
{
	if (s->wlen == 0)
		return;
	if (s->spool_errno == 0 &&
	    fsio_write_all(s->spool_fd, s->wbuf, s->wlen) == -1)
		s->spool_errno = errno;
	s->wlen = 0;
}

static void
spool_out(void *arg, const uint8_t *p, size_t len)
{
	struct smtp_session	*s = arg;
	size_t			 n;

	if (s->too_big || s->spool_errno != 0)
		return;
	if (s->spool_len + len > s->conf->smtp.max_message_size) {
		s->too_big = true;
		return;
	}
	s->spool_len += len;
	while (len > 0) {
		if (s->wlen == SPOOL_BUF)
			spool_flush(s);
		n = SPOOL_BUF - s->wlen < len ? SPOOL_BUF - s->wlen : len;
		memcpy(s->wbuf + s->wlen, p, n);
		s->wlen += n;
		p += n;
		len -= n;
	}
}

/* The with-protocol of RFC 3848. */
static const char *
protocol(const struct smtp_session *s)
{
	if (!s->esmtp)
		return s->tls ? "SMTPS" : "SMTP";
	if (s->auth_user[0] != '\0')
		return s->tls ? "ESMTPSA" : "ESMTPA";
	return s->tls ? "ESMTPS" : "ESMTP";
}

/* The Received: trace field of R1.7 (RFC 5321 4.4). */
static void
spool_received(struct smtp_session *s)
{
	char		 buf[2048], date[64];
	time_t		 now = time(NULL);
	struct tm	 tm;
	int		 n;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	n = snprintf(buf, sizeof(buf),
	    "Received: from %s (%s [%s])\r\n%s%s%s"
	    "\tby %s (postino) with %s id %s%s%s%s;\r\n\t%s\r\n",
	    s->helo, s->host, s->rcvd_ip,
	    s->tls ? "\t(using " : "", s->tls ? s->tls_desc : "",
	    s->tls ? ")\r\n" : "",
	    s->conf->hostname, protocol(s), s->qid,
	    s->nrcpt == 1 ? "\r\n\tfor <" : "",
	    s->nrcpt == 1 ? s->rcpts[0].given : "",
	    s->nrcpt == 1 ? ">" : "", date);
	if (n < 0 || (size_t)n >= sizeof(buf))
		panic("smtp: Received header too long");
	/* RFC 7208 9.1: Received-SPF above our Received: */
	if (s->trace != NULL)
		spool_out(s, (const uint8_t *)s->trace, strlen(s->trace));
	spool_out(s, (const uint8_t *)buf, (size_t)n);
}

/*
 * The reply for a message whose end was reached, and in *check the name
 * the log gives the refusal; or NULL to commit.
 */
static const char *
message_verdict(struct smtp_session *s, unsigned int dflags,
    unsigned int received, const char **check)
{
	*check = "size";
	if (s->too_big)
		return "552 5.3.4 Message size exceeds fixed limit";
	/* With bare_lf = normalize they were rewritten to CRLF. */
	*check = "bare-lf";
	if ((dflags & DATA_F_BARE_LF) && !s->data.normalize)
		return "554 5.6.0 Bare <LF> received";
	*check = "bare-cr";
	if ((dflags & DATA_F_BARE_CR) && !s->data.normalize)
		return "554 5.6.0 Bare <CR> received";
	*check = "line-length";
	if (dflags & DATA_F_LONG_LINE)
		return "500 5.5.2 Line too long";
	*check = "header-size";
	if (dflags & DATA_F_LONG_HEADER)
		return "552 5.6.0 Header section too long";
	*check = "max-hops";
	if (received > s->conf->smtp.max_hops)
		return "554 5.4.6 Too many hops";
	*check = "store-error";
	if (s->spool_errno == ENOSPC || s->spool_errno == EDQUOT)
		return "452 4.3.1 Insufficient system storage";
	if (s->spool_errno != 0)
		return "451 4.3.0 Error: local error in processing";
	return NULL;
}

/* Refuse the message under way: "qid=... from=<...>" in the log. */
static void
message_refused(struct smtp_session *s, const char *check, const char *text)
{
	char	from[ADDR_PATH_MAX * 4 + 16], subject[sizeof(from) + 64];

	snprintf(subject, sizeof(subject), "qid=%s %s", s->qid,
	    path_field("from", s->from_given, from, sizeof(from)));
	log_refusal(s, subject, check, text);
	reply(s, "%s", text);
}

static void
message_commit(struct smtp_session *s)
{
	struct ipc_out	 o;
	char		 from[ADDR_PATH_MAX + 1];
	size_t		 i;

	if (addr_format(&s->from, from, sizeof(from)) == -1)
		from[0] = '\0';
	close(s->spool_fd);
	s->spool_fd = -1;
	ipc_out_init(&o);
	ipc_put_str(&o, s->qid);
	ipc_put_u64(&o, s->spool_len);
	ipc_put_str(&o, s->helo);
	ipc_put_str(&o, s->ip);
	ipc_put_str(&o, protocol(s));
	ipc_put_str(&o, from);		/* canonical: no source route */
	ipc_put_u32(&o, s->mparams.body);
	ipc_put_u32(&o, s->mparams.smtputf8);
	ipc_put_u32(&o, (uint32_t)s->nrcpt);
	for (i = 0; i < s->nrcpt; i++)
		ipc_put_str(&o, s->rcpts[i].given);
	if (o.overflow) {
		message_refused(s, "store-error",
		    "451 4.3.0 Error: local error in processing");
		net_stat_refused("data", "store-error");
		net_stat_transaction(s->l, &s->tx_start);
		tx_reset(s);
		return;
	}
	ipc_send(net.store, IMSG_SPOOL_COMMIT, s->id, -1, &o);
	s->wait = W_COMMIT;
}

/* End of DATA or of the last BDAT chunk: refuse or commit. */
static void
message_end(struct smtp_session *s, unsigned int dflags,
    unsigned int received)
{
	const char	*refuse, *check;

	spool_flush(s);
	if ((refuse = message_verdict(s, dflags, received, &check)) != NULL) {
		message_refused(s, check, refuse);
		net_stat_refused("data", check);
		net_stat_transaction(s->l, &s->tx_start);
		tx_reset(s);
		return;
	}
	message_commit(s);
}

static void
data_step(struct smtp_session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec	 v;
	size_t			 used;
	bool			 done = false;

	while (!done && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		used = smtp_data_feed(&s->data, v.iov_base, v.iov_len, &done,
		    spool_out, s);
		evbuffer_drain(in, used);
	}
	if (!done)
		return;
	session_enter_state(s, S_RCPT);
	session_timeouts(s);
	message_end(s, s->data.flags, s->data.hdr.received);
}

static void
bdat_step(struct smtp_session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec	 v;
	size_t			 n;

	while (s->bdat_left > 0 && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		n = v.iov_len < s->bdat_left ? v.iov_len : s->bdat_left;
		if (s->bdat_discard == NULL) {
			header_scan_feed(&s->hdr, HEADER_MAX, v.iov_base, n);
			spool_out(s, v.iov_base, n);
		}
		evbuffer_drain(in, n);
		s->bdat_left -= n;
	}
	if (s->bdat_left > 0)
		return;
	if (s->bdat_discard != NULL) {
		session_enter_state(s, s->nrcpt ? S_RCPT : S_READY);
		session_timeouts(s);
		reply_error(s, s->bdat_discard);
		s->bdat_discard = NULL;
		return;
	}
	session_enter_state(s, S_RCPT);
	session_timeouts(s);
	if (s->bdat_last) {
		message_end(s, s->hdr.too_long ? DATA_F_LONG_HEADER : 0,
		    s->hdr.received);
		return;
	}
	if (s->too_big) {
		spool_flush(s);
		message_refused(s, "size",
		    "552 5.3.4 Message size exceeds fixed limit");
		net_stat_refused("data", "size");
		net_stat_transaction(s->l, &s->tx_start);
		tx_reset(s);
		return;
	}
	reply(s, "250 2.0.0 %llu octets received",
	    (unsigned long long)s->bdat_size);
}

/* --- commands --------------------------------------------------------- */

static bool
helo_arg_ok(const char *arg)
{
	size_t	len = strlen(arg);
	size_t	i;

	if (len == 0 || len > 255)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)arg[i] <= 0x20 || arg[i] == 0x7f)
			return false;
	return true;
}

static void
greet(struct smtp_session *s, const char *arg, bool esmtp)
{
	tx_reset(s);
	strlcpy(s->helo, arg, sizeof(s->helo));
	s->esmtp = esmtp;
	session_enter_state(s, S_READY);
}

static void
do_helo(struct smtp_session *s, const char *arg)
{
	if (!helo_arg_ok(arg)) {
		reply_error(s, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	greet(s, arg, false);
	reply(s, "250 %s", s->conf->hostname);
}

static void
do_ehlo(struct smtp_session *s, const char *arg)
{
	char	line[256];

	if (!helo_arg_ok(arg)) {
		reply_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	greet(s, arg, true);
	reply(s, "250-%s", s->conf->hostname);
	reply(s, "250-SIZE %llu",
	    (unsigned long long)s->conf->smtp.max_message_size);
	reply(s, "250-PIPELINING");
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->l->tls == TLS_STARTTLS && !s->tls && net.ssl_ctx != NULL)
		reply(s, "250-STARTTLS");
	auth_ehlo_line(s, line, sizeof(line));
	if (line[0] != '\0')
		reply(s, "250-%s", line);
	reply(s, "250-SMTPUTF8");
	reply(s, "250 CHUNKING");
}

/* The path as the client wrote it, between the brackets. */
static void
path_given(const char *arg, char *buf, size_t size)
{
	const char	*lt = strchr(arg, '<'), *end, *errstr;
	struct mailaddr	 a;

	buf[0] = '\0';
	if (lt == NULL || addr_parse_path(lt, true, &a, &end, &errstr) == -1)
		return;
	if ((size_t)(end - lt - 2) < size) {
		memcpy(buf, lt + 1, (size_t)(end - lt - 2));
		buf[end - lt - 2] = '\0';
	}
}

static void
do_mail(struct smtp_session *s, const char *arg)
{
	struct ipc_out	 o;
	const char	*err;

	if (s->state == S_CONNECTED && s->conf->smtp.require_helo) {
		reply_error(s, "503 5.5.1 Send HELO/EHLO first");
		return;
	}
	if (smtp_parse_mail(arg, &s->from, &s->mparams, &err) == -1) {
		reply_error(s, err);
		return;
	}
	if (s->mparams.body == BODY_BINARYMIME) {
		reply_error(s, "555 5.5.4 Unsupported parameter");
		return;
	}
	path_given(arg, s->from_given, sizeof(s->from_given));
	if (s->mparams.has_size &&
	    s->mparams.size > s->conf->smtp.max_message_size) {
		char from[ADDR_PATH_MAX * 4 + 16];
		const char *text = "552 5.3.4 Message size exceeds fixed limit";

		log_refusal(s, path_field("from", s->from_given, from,
		    sizeof(from)), "size", text);
		net_stat_refused("mail", "size");
		reply(s, "%s", text);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &s->tx_start);
	ipc_out_init(&o);
	ipc_put_u32(&o, POLICY_MAIL);
	ipc_put_str(&o, s->helo);
	ipc_put_str(&o, s->from_given);
	ipc_put_u32(&o, s->mparams.smtputf8);
	ipc_send(net.store, IMSG_POLICY, s->id, -1, &o);
	s->wait = W_MAIL;
}

/*
 * "status=550 dsn=5.7.1" of a policy reply for the log: its text holds
 * the client's addresses, already logged (escaped) beside it.
 */
static const char *
reply_codes(const char *text, char *buf, size_t size)
{
	size_t	i = 0, j;

	if (strlen(text) < 3 || size < 24)
		return "status=?";
	j = (size_t)snprintf(buf, size, "status=%.3s", text);
	if (text[3] == ' ') {
		j += (size_t)snprintf(buf + j, size - j, " dsn=");
		for (i = 4; i < 16 && j + 1 < size &&
		    ((text[i] >= '0' && text[i] <= '9') || text[i] == '.');
		    i++)
			buf[j++] = text[i];
		buf[j] = '\0';
	}
	return buf;
}

static void
mail_result(struct smtp_session *s, enum policy_action a, const char *check,
    const char *text)
{
	char	from[ADDR_PATH_MAX * 4 + 16];

	path_field("from", s->from_given, from, sizeof(from));
	if (a != POLICY_ACCEPT) {
		log_refusal(s, from, check, text);
		reply_error(s, text);
		return;
	}
	slog(s, LOGL_INFO, "event=mail %s", from);
	session_enter_state(s, S_MAIL);
	reply(s, "%s", text);
}

static void
do_rcpt(struct smtp_session *s, const char *arg)
{
	struct smtp_rcpt_params	 p;
	struct mailaddr		 to;
	struct ipc_out		 o;
	const char		*err;

	if (smtp_parse_rcpt(arg, s->mparams.smtputf8, &to, &p, &err) == -1) {
		reply_error(s, err);
		return;
	}
	memset(&s->pending, 0, sizeof(s->pending));
	path_given(arg, s->pending.given, sizeof(s->pending.given));
	if (s->nrcpt >= s->conf->smtp.max_recipients) {
		/* store counts too (R3.10); this bounds our own array */
		net_stat_refused("rcpt", "max-recipients");
		rcpt_result(s, POLICY_TEMPFAIL, 0, "max-recipients",
		    "452 4.5.3 Too many recipients");
		return;
	}
	ipc_out_init(&o);
	ipc_put_u32(&o, POLICY_RCPT);
	ipc_put_str(&o, s->pending.given);
	ipc_send(net.store, IMSG_POLICY, s->id, -1, &o);
	s->wait = W_RCPT;
}

static void
rcpt_result(struct smtp_session *s, enum policy_action a, unsigned int relay,
    const char *check, const char *text)
{
	char	to[ADDR_PATH_MAX * 4 + 16];

	path_field("to", s->pending.given, to, sizeof(to));
	if (a != POLICY_ACCEPT) {
		log_refusal(s, to, check, text);
		/* a relay attempt, or a local sender from outside (R3.1),
		 * is what a probe does: it counts toward max_errors */
		if (strcmp(check, "relay") == 0 ||
		    strcmp(check, "local-sender") == 0)
			reply_error(s, text);
		else
			reply(s, "%s", text);
		return;
	}
	s->rcpts = xreallocarray(s->rcpts, s->nrcpt + 1, sizeof(*s->rcpts));
	s->rcpts[s->nrcpt++] = s->pending;
	session_enter_state(s, S_RCPT);
	slog(s, LOGL_INFO, "event=rcpt %s%s%s", to, relay ? " relay=" :
	    "", relay ? policy_authz_word(relay) : "");
	reply(s, "%s", text);
}

/* The answer to a policy request: which command waited decides. */
static void
policy_result(struct smtp_session *s, enum smtp_wait w, struct ipc_msg *m)
{
	uint32_t	 a, relay;
	const char	*check, *text, *header;
	size_t		 hlen;

	a = ipc_get_u32(m);
	relay = ipc_get_u32(m);
	check = ipc_get_str(m);
	text = ipc_get_str(m);
	header = ipc_get_str(m);
	ipc_end(m);
	if (check == NULL || text == NULL || header == NULL ||
	    a == POLICY_DUNNO || a > POLICY_TEMPFAIL || strlen(text) < 3 ||
	    ((hlen = strlen(header)) > 0 && (hlen > TRACE_MAX ||
	    strcmp(header + hlen - 2, "\r\n") != 0)))
		fatalx("net: bad policy result from store");
	if (w == W_MAIL && a == POLICY_ACCEPT) {
		free(s->trace);
		s->trace = hlen > 0 ? xstrdup(header) : NULL;
	}
	switch (w) {
	case W_CONNECT:
		connect_result(s, a, check, text);
		break;
	case W_MAIL:
		mail_result(s, a, check, text);
		break;
	case W_RCPT:
		if (relay > AUTHZ_DEVICE)
			fatalx("net: bad relay in policy result");
		rcpt_result(s, a, relay, check, text);
		break;
	default:
		fatalx("net: policy result in wait state %d", (int)w);
	}
}

/* Ask store for the spool file; the command resumes in spool_ready. */
static void
spool_request(struct smtp_session *s)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_send(net.store, IMSG_SPOOL_OPEN, s->id, -1, &o);
	s->wait = W_SPOOL;
}

static void
do_data(struct smtp_session *s, const char *arg)
{
	if (*arg != '\0') {
		reply_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->bdat) {
		reply_error(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	spool_request(s);
}

static void
do_bdat(struct smtp_session *s, const char *arg)
{
	const char	*err;
	uint64_t	 size;
	bool		 last;

	if (smtp_parse_bdat(arg, &size, &last, &err) == -1) {
		reply_error(s, err);
		return;
	}
	s->bdat_left = s->bdat_size = size;
	s->bdat_last = last;
	if (s->state != S_RCPT) {
		/* Skip the chunk, then refuse it (RFC 3030: the octets
		 * are not commands, whatever state we are in). */
		s->bdat_discard = s->state == S_MAIL ?
		    "503 5.5.1 Error: need RCPT command" :
		    "503 5.5.1 Error: need MAIL command";
		session_enter_state(s, S_BDAT);
		session_timeouts(s);
		return;
	}
	if (!s->bdat) {
		s->bdat = true;
		header_scan_init(&s->hdr);
		spool_request(s);
		return;
	}
	session_enter_state(s, S_BDAT);
	session_timeouts(s);
}

static void
spool_ready(struct smtp_session *s, struct ipc_msg *m)
{
	uint32_t	 ok = ipc_get_u32(m);
	const char	*qid = ipc_get_str(m);

	ipc_end(m);
	if (!ok || m->fd == -1 || qid == NULL || strlen(qid) != QID_LEN) {
		const char *text = "451 4.3.0 Error: local error in processing";

		if (m->fd != -1)
			close(m->fd);
		log_refusal(s, "", "store-error", text);
		net_stat_refused("data", "store-error");
		if (!s->bdat) {
			net_stat_transaction(s->l, &s->tx_start);
			reply(s, "%s", text);
			return;
		}
		/* the chunk still has to be skipped */
		tx_reset(s);
		s->bdat_discard = text;
		session_enter_state(s, S_BDAT);
		session_timeouts(s);
		return;
	}
	strlcpy(s->qid, qid, sizeof(s->qid));
	s->spool_fd = m->fd;
	s->spool_len = 0;
	if (s->wbuf == NULL)
		s->wbuf = xmalloc(SPOOL_BUF);
	spool_received(s);
	if (s->bdat) {
		session_enter_state(s, S_BDAT);
	} else {
		smtp_data_init(&s->data, TEXT_LINE_MAX, HEADER_MAX,
		    s->conf->smtp.bare_lf == BARE_LF_NORMALIZE);
		reply(s, "354 End data with <CR><LF>.<CR><LF>");
		session_enter_state(s, S_DATA);
	}
	session_timeouts(s);
}

/* R4.5: clamd found a virus, or could not scan (on_error = tempfail). */
static void
virus_refused(struct smtp_session *s, enum commit_status st,
    const char *virus)
{
	char	name[CLAMD_NAME_MAX + 1], text[256];

	clamd_text_clean(name, sizeof(name), virus, strlen(virus));
	if (st == COMMIT_INFECTED)
		snprintf(text, sizeof(text), "554 5.7.1 Message rejected: "
		    "virus found: %s", name);
	else
		snprintf(text, sizeof(text), "451 4.7.1 Virus scan failed, "
		    "try again later");
	message_refused(s, st == COMMIT_INFECTED ? "virus" : "virus-scan",
	    text);
	s->qid[0] = '\0';	/* store removed it */
}

static void
committed(struct smtp_session *s, enum commit_status st, const char *virus)
{
	char	from[ADDR_PATH_MAX * 4 + 16], client[512];

	net_stat_transaction(s->l, &s->tx_start);
	switch (st) {
	case COMMIT_OK:
		slog(s, LOGL_INFO, "event=queued qid=%s %s nrcpt=%zu size=%llu "
		    "proto=%s status=250 dsn=2.0.0 %s", s->qid,
		    path_field("from", s->from_given, from, sizeof(from)),
		    s->nrcpt, (unsigned long long)s->spool_len, protocol(s),
		    client_fields(s, client, sizeof(client)));
		reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
		s->qid[0] = '\0';	/* it is store's now */
		break;
	case COMMIT_NOSPACE:
		message_refused(s, "store-error",
		    "452 4.3.1 Insufficient system storage");
		s->qid[0] = '\0';
		break;
	case COMMIT_TEMPFAIL:
		message_refused(s, "store-error",
		    "451 4.3.0 Error: local error in processing");
		s->qid[0] = '\0';
		break;
	case COMMIT_INFECTED:
	case COMMIT_SCANFAIL:
		virus_refused(s, st, virus);
		break;
	default:
		fatalx("smtp: store sent commit status %d", (int)st);
	}
	tx_reset(s);
}

static void
do_rset(struct smtp_session *s, const char *arg)
{
	tx_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void
do_noop(struct smtp_session *s, const char *arg)
{
	reply(s, "250 2.0.0 Ok");
}

static void
do_quit(struct smtp_session *s, const char *arg)
{
	reply(s, "221 2.0.0 Bye");
	session_close(s, "quit");
}

static void
do_help(struct smtp_session *s, const char *arg)
{
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET "
	    "NOOP QUIT HELP VRFY STARTTLS");
}

static void
do_vrfy(struct smtp_session *s, const char *arg)
{
	reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and "
	    "attempt delivery");
}

/* --- SMTP AUTH (RFC 4954, R2) --------------------------------------- */

/* AUTH is offered on submission listeners, and on mx only under TLS. */
static bool
auth_offered(const struct smtp_session *s)
{
	switch (s->l->profile) {
	case PROFILE_SUBMISSION:
	case PROFILE_SUBMISSIONS:
		return true;
	case PROFILE_MX:
		return s->tls;
	default:
		return false;
	}
}

static bool
auth_configured(const struct smtp_session *s, const char *name)
{
	const struct conf_list	*l = &s->conf->smtp.auth_mechanisms;
	size_t			 i;

	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], name) == 0)
			return true;
	return false;
}

/* R2.2: PLAIN and LOGIN only under TLS, unless the listener allows. */
static bool
auth_in_clear_ok(const struct smtp_session *s, const struct sasl_mech *m)
{
	return !m->plaintext || s->tls || s->l->auth_plaintext_without_tls;
}

/* The AUTH line of the EHLO reply, or "" when nothing is offered. */
static void
auth_ehlo_line(const struct smtp_session *s, char *buf, size_t size)
{
	const struct conf_list	*l = &s->conf->smtp.auth_mechanisms;
	const struct sasl_mech	*m;
	size_t			 i;

	buf[0] = '\0';
	if (!auth_offered(s))
		return;
	for (i = 0; i < l->n; i++) {
		if ((m = sasl_mech_find(l->v[i])) == NULL ||
		    !auth_in_clear_ok(s, m))
			continue;
		strlcat(buf, buf[0] == '\0' ? "AUTH " : " ", size);
		strlcat(buf, m->name, size);
	}
}

/* Tell store to forget the session's AUTH (STARTTLS). */
static void
auth_forget(struct smtp_session *s)
{
	struct ipc_out	o;

	if (s->auth_user[0] == '\0')
		return;
	ipc_out_init(&o);
	ipc_send(net.store, IMSG_AUTH_END, s->id, -1, &o);
	s->auth_user[0] = '\0';
}

static void
auth_request(struct smtp_session *s)
{
	net_auth_request(s->id, sasl_server_request(s->sasl), s->ip,
	    AUTH_SMTP);
	s->wait = W_AUTH;
}

/* Act on what the SASL exchange says now. */
static void
auth_result(struct smtp_session *s, enum sasl_result r)
{
	s->sasl_reading = false;
	switch (r) {
	case SASL_CONTINUE:
		reply(s, "334 %s", sasl_server_challenge(s->sasl));
		s->sasl_reading = true;
		return;
	case SASL_NEED_VERIFY:
		auth_request(s);
		return;
	case SASL_OK:
		strlcpy(s->auth_user, s->auth_account, sizeof(s->auth_user));
		slog(s, LOGL_INFO, "event=auth result=ok sasl_method=%s "
		    "sasl_username=%s", s->auth_mech, s->auth_user);
		reply(s, "235 2.7.0 Authentication successful");
		break;
	case SASL_FAIL:
		slog(s, LOGL_INFO, "event=auth result=fail sasl_method=%s",
		    s->auth_mech);
		if (!s->auth_store_decided)	/* store counts it all the same */
			net_auth_failed(s->id, s->ip, s->auth_mech, AUTH_SMTP);
		reply(s, "535 5.7.8 Authentication credentials invalid");
		if (++s->auth_failures >= AUTH_FAILURES_MAX) {
			reply(s, "421 4.7.0 %s Error: too many failed "
			    "authentications", s->conf->hostname);
			session_close(s, "auth-failures");
		}
		break;
	case SASL_CANCEL:
		reply_error(s, "501 5.7.0 Authentication aborted");
		break;
	case SASL_MALFORMED:
		reply_error(s, "501 5.5.2 Cannot decode response");
		break;
	case SASL_TOOLONG:
		reply_error(s, "500 5.5.6 Authentication exchange line is too "
		    "long");
		break;
	case SASL_NOMECH:
		reply_error(s, "504 5.5.4 Unrecognized authentication type");
		break;
	case SASL_TEMPFAIL:
		reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	default:
		panic("smtp: SASL result %d", (int)r);
	}
	sasl_server_free(&s->sasl);
}

static void
do_auth(struct smtp_session *s, const char *arg)
{
	const struct sasl_mech	*m;
	struct sasl_params	 p = { .hostname = s->conf->hostname };
	char			 name[32];
	const char		*sp, *initial = NULL;
	size_t			 len;

	if (!auth_offered(s)) {
		reply_error(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (s->auth_user[0] != '\0') {
		reply_error(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->state == S_CONNECTED) {
		reply_error(s, "503 5.5.1 Send HELO/EHLO first");
		return;
	}
	len = (sp = strchr(arg, ' ')) != NULL ? (size_t)(sp - arg) :
	    strlen(arg);
	if (sp != NULL)
		initial = sp + 1;
	if (len == 0 || len >= sizeof(name)) {
		reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	memcpy(name, arg, len);
	name[len] = '\0';
	if ((m = sasl_mech_find(name)) == NULL || !auth_configured(s, name)) {
		reply_error(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	if (!auth_in_clear_ok(s, m)) {
		reply_error(s, "538 5.7.11 Encryption required for requested "
		    "authentication mechanism");
		return;
	}
	if (s->sasl == NULL && (s->sasl = sasl_server_new()) == NULL)
		fatal("sasl_server_new");
	strlcpy(s->auth_mech, m->name, sizeof(s->auth_mech));
	s->auth_account[0] = '\0';
	s->auth_store_decided = false;
	auth_result(s, sasl_server_start(s->sasl, m->name, initial, &p));
}

/* One line of an exchange after a 334; false to wait for more. */
static bool
auth_line_step(struct smtp_session *s)
{
	static char	line[SASL_LINE_MAX + 3];
	size_t		len;

	switch (net_line(bufferevent_get_input(s->bev), line, SASL_LINE_MAX + 2,
	    &s->skip_line, false, &len)) {
	case NET_LINE_MORE:
		return false;
	case NET_LINE_LONG:
		auth_result(s, SASL_TOOLONG);
		return true;
	case NET_LINE_BARE_LF:
		auth_result(s, SASL_MALFORMED);
		return true;
	}
	if (strlen(line) != len)
		auth_result(s, SASL_MALFORMED);
	else
		auth_result(s, sasl_server_step(s->sasl, line));
	explicit_bzero(line, len);
	return true;
}

static void
auth_verified(struct smtp_session *s, struct ipc_msg *m)
{
	struct sasl_reply	 r;

	net_auth_reply(m, &r, s->auth_account, sizeof(s->auth_account));
	/* store logged and counted the outcome of a final verification */
	s->auth_store_decided =
	    sasl_server_request(s->sasl)->type != SASL_REQ_SCRAM_FIRST;
	auth_result(s, sasl_server_verified(s->sasl, &r));
}

static void
tls_handshake_done(struct smtp_session *s)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(s->bev);
	char	 fields[160];

	if (ssl == NULL || s->tls_desc[0] != '\0')
		return;
	tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
	tls_log_fields(ssl, fields, sizeof(fields));
	slog(s, LOGL_INFO, "event=tls %s", fields);
}

static void
session_setup_bev(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, session_read_cb, NULL, session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_MAX);
	session_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
do_starttls(struct smtp_session *s, const char *arg)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct bufferevent	*bev;

	if (s->tls) {
		reply_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (s->l->tls != TLS_STARTTLS || net.ssl_ctx == NULL) {
		reply_error(s, "502 5.5.1 Error: STARTTLS not available");
		return;
	}
	if (*arg != '\0') {
		reply_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* Whatever came after STARTTLS in the clear is not to be run
	 * inside TLS (CVE-2011-0411). */
	evbuffer_drain(in, evbuffer_get_length(in));
	if ((bev = net_tls_wrap(-1, s->bev)) == NULL) {
		session_close(s, "tls-setup");
		return;
	}
	s->bev = bev;
	s->tls = true;
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	tx_reset(s);
	auth_forget(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	session_enter_state(s, S_CONNECTED);
	session_setup_bev(s);
}

/* --- the dispatcher --------------------------------------------------- */

static const char *
wrong_state(const struct smtp_session *s, const struct smtp_cmd *c)
{
	if (strcmp(c->name, "MAIL") == 0)
		return "503 5.5.1 Error: nested MAIL command";
	if (strcmp(c->name, "RCPT") == 0)
		return "503 5.5.1 Error: need MAIL command";
	if (strcmp(c->name, "DATA") == 0)
		return s->state == S_MAIL ?
		    "503 5.5.1 Error: need RCPT command" :
		    "503 5.5.1 Error: need MAIL command";
	return "503 5.5.1 Error: bad sequence of commands";
}

static void
dispatch(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_cmd	*c = NULL;
	char			 verb[SMTP_VERB_MAX];
	const char		*args;
	size_t			 i;

	if (strlen(line) == len && smtp_cmd_split(line, verb, &args) == 0)
		for (i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++)
			if (strcmp(verb, smtp_cmds[i].name) == 0)
				c = &smtp_cmds[i];
	if (c == NULL) {
		reply_error(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (len + 2 > CMD_LINE_MAX && strcmp(c->name, "MAIL") != 0 &&
	    strcmp(c->name, "RCPT") != 0) {
		reply_error(s, "500 5.5.2 Line too long");
		return;
	}
	if ((c->states & ST(s->state)) == 0) {
		reply_error(s, wrong_state(s, c));
		return;
	}
	c->run(s, args);
}

/* One command line, if a whole one is there; false to wait. */
static bool
command_step(struct smtp_session *s)
{
	char	line[CMD_LINE_EXT + 1];
	size_t	len;

	switch (net_line(bufferevent_get_input(s->bev), line, CMD_LINE_EXT,
	    &s->skip_line, false, &len)) {
	case NET_LINE_MORE:
		return false;
	case NET_LINE_LONG:
		reply_error(s, "500 5.5.2 Line too long");
		return true;
	case NET_LINE_BARE_LF:
		reply_error(s, "500 5.5.2 Bare <LF> received");
		return true;
	}
	dispatch(s, line, len);
	return true;
}

/* R1.4: the error that reaches max_errors (since errors) closes. */
static void
too_many_errors(struct smtp_session *s, unsigned int errors)
{
	char	text[300];

	if (s->closing || s->errors <= errors ||
	    s->errors < s->conf->smtp.max_errors)
		return;
	snprintf(text, sizeof(text), "421 4.7.0 %s Error: too many errors",
	    s->conf->hostname);
	log_refusal(s, "", "errors", text);
	net_stat_refused("session", "errors");
	reply(s, "%s", text);
	session_close(s, "errors");
}

static void
session_process(struct smtp_session *s)
{
	unsigned int	errors;
	char		text[300];

	if (s->pregreet != NULL) {
		/* A client that talks before the banner is no SMTP client
		 * (RFC 5321 4.3.1: it must wait for the greeting). */
		if (evbuffer_get_length(bufferevent_get_input(s->bev)) == 0)
			return;
		snprintf(text, sizeof(text), "554 5.5.1 %s Error: talked "
		    "before the greeting", s->conf->hostname);
		log_refusal(s, "", "pregreet", text);
		net_stat_refused("connect", "pregreet");
		reply(s, "%s", text);
		session_close(s, "pregreet");
		return;
	}

	while (!s->closing && s->wait == W_NONE) {
		errors = s->errors;
		if (s->state == S_DATA) {
			data_step(s);
			if (s->state == S_DATA)
				break;
		} else if (s->state == S_BDAT) {
			bdat_step(s);
			if (s->state == S_BDAT)
				break;
		} else if (s->sasl_reading) {
			if (!auth_line_step(s))
				break;
		} else if (!command_step(s))
			break;
		too_many_errors(s, errors);
	}
}

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session	*s = arg;

	if (s->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_finish(s);
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session	*s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		tls_handshake_done(s);
		return;
	}
	if (s->closing) {
		session_free(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->wait != W_NONE) {	/* store is slow, not the client */
			bufferevent_enable(bev, EV_READ);
			return;
		}
		reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->conf->hostname);
		session_close(s, "timeout");
		return;
	}
	slog(s, LOGL_INFO, "event=disconnect reason=%s",
	    what & BEV_EVENT_EOF ? "eof" : "error");
	s->closing = true;
	session_free(s);
}

static void
store_reply(void *arg, struct ipc_msg *m)
{
	struct smtp_session	*s = arg;
	enum smtp_wait		 w = s->wait;
	unsigned int		 errors = s->errors;

	if (m->fd != -1 && m->type != IMSG_SPOOL_FD)
		fatalx("net: unexpected descriptor from store");
	s->wait = W_NONE;
	if (m->type == IMSG_POLICY_RESULT &&
	    (w == W_CONNECT || w == W_MAIL || w == W_RCPT)) {
		policy_result(s, w, m);
	} else if (m->type == IMSG_SPOOL_FD && w == W_SPOOL) {
		spool_ready(s, m);
	} else if (m->type == IMSG_AUTH_RESULT && w == W_AUTH) {
		auth_verified(s, m);
	} else if (m->type == IMSG_SPOOL_COMMITTED && w == W_COMMIT) {
		uint32_t r = ipc_get_u32(m);
		const char *virus = ipc_get_str(m);

		ipc_end(m);
		if (virus == NULL)
			fatalx("net: null virus name from store");
		committed(s, (enum commit_status)r, virus);
	} else {
		fatalx("net: store sent message %u in wait state %d",
		    m->type, (int)w);
	}
	too_many_errors(s, errors);	/* a refusal of store's counts */
	if (!s->closing)
		session_process(s);
}

static void
shutdown_session(void *arg)
{
	struct smtp_session	*s = arg;

	if (s->closing)
		return;
	reply(s, "421 4.3.2 %s Service shutting down", s->conf->hostname);
	session_close(s, "shutdown");
}

static const struct net_session_ops smtp_ops = {
	store_reply, shutdown_session
};

/* --- a new session ---------------------------------------------------- */

/*
 * The client's name (R1.7, R7.4): the PTR of its address, believed only
 * when that name's own addresses include it (forward-confirmed).  The
 * session goes on meanwhile; Received: shows the name if it is known
 * by the time the message arrives, else "unknown".
 */
static void	send_banner(evutil_socket_t, short, void *);

/* The session no longer waits for the name (found, or not in time). */
static void
fcrdns_detach(struct fcrdns *f)
{
	struct smtp_session	*s = f->s;

	if (f->timer != NULL) {
		event_free(f->timer);
		f->timer = NULL;
	}
	if (s == NULL)
		return;
	s->fcrdns = NULL;
	f->s = NULL;
	if (s->banner_due)
		send_banner(-1, 0, s);
}

static void
fcrdns_end(struct fcrdns *f)
{
	fcrdns_detach(f);
	free(f);
}

static void
fcrdns_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct fcrdns	*f = arg;

	if (f->s != NULL)
		slog(f->s, LOGL_DEBUG, "event=client-name-timeout");
	fcrdns_detach(f);	/* the lookup's callback frees f */
}

static void
fcrdns_forward(void *arg, enum resolve_status status,
    const uint8_t (*addrs)[16], size_t n, unsigned int ttl)
{
	struct fcrdns	*f = arg;
	size_t		 i;

	if (f->s != NULL && status == RESOLVE_OK)
		for (i = 0; i < n; i++)
			if (memcmp(addrs[i], f->addr, 16) == 0) {
				strlcpy(f->s->host, f->name,
				    sizeof(f->s->host));
				slog(f->s, LOGL_INFO, "event=client-name "
				    "host=%s", f->name);
				break;
			}
	fcrdns_end(f);
}

static void
fcrdns_reverse(void *arg, enum resolve_status status, const char *name)
{
	struct fcrdns	*f = arg;

	if (f->s == NULL || status != RESOLVE_OK) {
		fcrdns_end(f);
		return;
	}
	strlcpy(f->name, name, sizeof(f->name));
	resolver_addrs(net.resolver, f->name, fcrdns_forward, f);
}

static void
fcrdns_start(struct smtp_session *s)
{
	struct fcrdns	*f;

	struct timeval	 tv = { FCRDNS_WAIT, 0 };

	if (net.resolver == NULL || !s->conf->smtp.peername_lookup)
		return;
	f = xcalloc(1, sizeof(*f));
	if (ipmatch_addr(s->ip, f->addr) == -1) {
		free(f);
		return;
	}
	f->s = s;
	s->fcrdns = f;
	f->timer = evtimer_new(net.base, fcrdns_timeout, f);
	evtimer_add(f->timer, &tv);
	resolver_ptr(net.resolver, f->addr, fcrdns_reverse, f);
}

static void
session_addresses(struct smtp_session *s, const struct sockaddr *sa,
    const char *ip)
{
	strlcpy(s->ip, ip, sizeof(s->ip));
	strlcpy(s->host, "unknown", sizeof(s->host));
	s->port = net_sockaddr_port(sa);
	if (sa->sa_family == AF_INET6)
		snprintf(s->rcvd_ip, sizeof(s->rcvd_ip), "IPv6:%s", ip);
	else
		strlcpy(s->rcvd_ip, ip, sizeof(s->rcvd_ip));
}

/*
 * The banner goes out when the connect checks have passed and, with
 * timeout_greeting, the wait is over: whichever comes last sends it.
 */
static void
send_banner(evutil_socket_t fd, short ev, void *arg)
{
	struct smtp_session	*s = arg;

	if (s->pregreet != NULL) {
		event_free(s->pregreet);
		s->pregreet = NULL;
	}
	/* The connect checks, and the client's name (Received, log). */
	if (s->wait == W_CONNECT || s->fcrdns != NULL || s->banner == NULL) {
		s->banner_due = true;
		return;
	}
	s->banner_due = false;
	reply(s, "%s", s->banner);
	free(s->banner);
	s->banner = NULL;
}

static void
connect_result(struct smtp_session *s, enum policy_action a,
    const char *check, const char *text)
{
	if (a != POLICY_ACCEPT) {
		log_refusal(s, "", check, text);
		reply(s, "%s", text);
		session_close(s, check);
		return;
	}
	s->banner = xstrdup(text);
	if (s->banner_due || s->pregreet == NULL)
		send_banner(-1, 0, s);
}

void
smtp_session_new(const struct conf_listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen, const char *ip)
{
	struct smtp_session	*s = xcalloc(1, sizeof(*s));
	struct ipc_out		 o;
	int			 one = 1;

	s->id = ++net.next_id;
	s->l = l;
	s->conf = conf_ref(net.conf);
	s->spool_fd = -1;
	session_addresses(s, sa, ip);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);
	if (l->tls == TLS_IMPLICIT) {
		s->bev = net_tls_wrap(fd, NULL);
		s->tls = true;
	} else {
		s->bev = bufferevent_socket_new(net.base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	}
	net.nconn++;
	net_stat_session(l, true);
	net_session_add(s->id, s, &smtp_ops);
	slog(s, LOGL_INFO, "event=connect port=%d listener=%s", s->port,
	    l->name);
	fcrdns_start(s);
	if (s->bev == NULL) {
		close(fd);
		s->bev = bufferevent_socket_new(net.base, -1, 0);
		session_close(s, "tls-setup");
		return;
	}
	session_setup_bev(s);
	ipc_out_init(&o);
	ipc_put_u32(&o, POLICY_CONNECT);
	ipc_put_str(&o, s->ip);
	ipc_put_u32(&o, l->profile);
	ipc_send(net.store, IMSG_POLICY, s->id, -1, &o);
	s->wait = W_CONNECT;
	if (s->conf->smtp.timeout_greeting > 0) {
		struct timeval tv = { s->conf->smtp.timeout_greeting, 0 };

		s->pregreet = evtimer_new(net.base, send_banner, s);
		evtimer_add(s->pregreet, &tv);
	}
}
