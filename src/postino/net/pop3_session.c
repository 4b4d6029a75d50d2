/*
 * pop3_session.c - the inbound POP3 session (RFC 1939, 2449, 2595, 5034),
 * in the net role.
 *
 * Everything here comes from an untrusted peer.  Command lines are
 * bounded before they are copied, client text is escaped before it is
 * logged, and the state machine is the table pop3_cmds[]: only the
 * dispatcher answers unknown commands and commands out of state.  The
 * password goes to store, which verifies it and, on success, records
 * the POP-before-SMTP grant (R6.2) and opens the mailbox: net never
 * touches a Maildir.  A message reaches the client from a read-only
 * descriptor store hands over, read a piece at a time as the client
 * takes it (pop3_stuff makes the CRLF and dot-stuffed stream), so a
 * large message never sits whole in memory.  Deletions are only marks
 * until QUIT, when store applies them (RFC 1939 6, the UPDATE state).
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "addr.h"
#include "compat.h"
#include "log.h"
#include "mailbox.h"
#include "net.h"
#include "pop3_session.h"
#include "policy.h"
#include "pop3_syntax.h"
#include "proto.h"
#include "sasl.h"
#include "tls.h"
#include "xalloc.h"

/*
 * Limits.  RFC 2449 4 bounds a client's command line to 255 octets,
 * but an AUTH with its initial response may be longer (RFC 5034 4
 * leaves that to the client), and so may a USER with a long address:
 * we take up to 1024.  The exchange lines of AUTH follow SMTP's bound.
 */
#define CMD_LINE_MAX		1024
#define READ_CHUNK		(64 * 1024)	/* octets read from a message */
#define OUTPUT_HIGH		(256 * 1024)	/* stop reading above this */
#define OUTPUT_LOW		(64 * 1024)	/* and go on below this */
#define INPUT_MAX		(64 * 1024)	/* read watermark */
#define AUTH_FAILURES_MAX	3		/* in one session, then close */

enum pop3_state {
	P_AUTH,		/* AUTHORIZATION */
	P_TRANS,	/* TRANSACTION */
	P_UPDATE,	/* QUIT sent, store applies the marks */
	P_QUIT		/* closing */
};
static const char *const state_names[] = {
	"authorization", "transaction", "update", "quit"
};

#define ST(s)	(1U << (s))

enum pop3_wait {
	W_NONE, W_CONNECT, W_AUTH, W_OPEN, W_LIST, W_READ, W_UPDATE
};

struct pop3_msg {
	uint64_t	size;	/* POP3 size: CRLF line ends */
	uint32_t	uid;
	uint8_t		marks;	/* MAILBOX_DELE, MAILBOX_SEEN */
};

struct pop3_session {
	uint64_t			 id;
	const struct conf_listener	*l;
	const struct conf		*conf;
	struct bufferevent		*bev;
	char				 ip[64];
	int				 port;
	enum pop3_state			 state;
	enum pop3_wait			 wait;
	bool				 closing, tls, skip_line;
	struct event			*linger;	/* closing under TLS */
	unsigned int			 linger_ticks;
	unsigned int			 errors, commands;
	char				 tls_desc[160];

	/* AUTHORIZATION */
	char				 user[SASL_USER_MAX + 1];	/* USER */
	struct sasl_server		*sasl;
	bool				 sasl_reading;	/* a "+ " is out */
	unsigned int			 auth_failures;
	bool				 store_decided;	/* the last failure */
	char				 mech[32];
	char				 account[ADDR_PATH_MAX + 1];

	/* TRANSACTION: the maildrop as it was at login */
	struct pop3_msg			*msgs;
	uint32_t			 nmsg, listed;
	uint32_t			 uidvalidity;

	/* a RETR or TOP being sent */
	int				 send_fd;
	bool				 send_top;
	uint32_t			 send_msg;	/* 0-based */
	uint64_t			 send_lines;
	struct pop3_stuff		 stuff;
	uint8_t				*rbuf;
};

struct pop3_cmd {
	const char	*name;
	unsigned int	 states;
	void		(*run)(struct pop3_session *, const char *);
};

static void	do_capa(struct pop3_session *, const char *);
static void	do_user(struct pop3_session *, const char *);
static void	do_pass(struct pop3_session *, const char *);
static void	do_auth(struct pop3_session *, const char *);
static void	do_stls(struct pop3_session *, const char *);
static void	do_quit(struct pop3_session *, const char *);
static void	do_stat(struct pop3_session *, const char *);
static void	do_list(struct pop3_session *, const char *);
static void	do_retr(struct pop3_session *, const char *);
static void	do_dele(struct pop3_session *, const char *);
static void	do_noop(struct pop3_session *, const char *);
static void	do_rset(struct pop3_session *, const char *);
static void	do_top(struct pop3_session *, const char *);
static void	do_uidl(struct pop3_session *, const char *);

static const struct pop3_cmd pop3_cmds[] = {
	{ "CAPA",	ST(P_AUTH) | ST(P_TRANS),	do_capa },
	{ "USER",	ST(P_AUTH),			do_user },
	{ "PASS",	ST(P_AUTH),			do_pass },
	{ "AUTH",	ST(P_AUTH),			do_auth },
	{ "STLS",	ST(P_AUTH),			do_stls },
	{ "QUIT",	ST(P_AUTH) | ST(P_TRANS),	do_quit },
	{ "STAT",	ST(P_TRANS),			do_stat },
	{ "LIST",	ST(P_TRANS),			do_list },
	{ "RETR",	ST(P_TRANS),			do_retr },
	{ "DELE",	ST(P_TRANS),			do_dele },
	{ "NOOP",	ST(P_TRANS),			do_noop },
	{ "RSET",	ST(P_TRANS),			do_rset },
	{ "TOP",	ST(P_TRANS),			do_top },
	{ "UIDL",	ST(P_TRANS),			do_uidl },
};

static const char auth_failed[] = "-ERR [AUTH] Authentication failed.";
static const char plaintext_refused[] = "-ERR [AUTH] Plaintext "
    "authentication disallowed on non-secure (SSL/TLS) connections.";

static void	session_process(struct pop3_session *);
static void	login_failed(struct pop3_session *);
static void	session_read_cb(struct bufferevent *, void *);
static void	session_write_cb(struct bufferevent *, void *);
static void	session_event_cb(struct bufferevent *, short, void *);

/* --- logs, replies and the session's life --------------------------- */

static void
slog(const struct pop3_session *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
slog(const struct pop3_session *s, int level, const char *fmt, ...)
{
	char	msg[2048];
	va_list	ap;

	if (level > log_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level == LOGL_DEBUG)
		log_debug("pop3 session=%016llx address=[%s] %s",
		    (unsigned long long)s->id, s->ip, msg);
	else
		log_info("pop3 session=%016llx address=[%s] %s",
		    (unsigned long long)s->id, s->ip, msg);
}

/*
 * A refusal of the client, one line (R7.4, docs/logs.md): as SMTP's,
 * with POP3's status and the response code of RFC 2449 ("-ERR [SYS/TEMP]
 * ...") in place of SMTP's reply codes.
 */
static void
log_refusal(const struct pop3_session *s, const char *check,
    const char *text)
{
	char	code[32] = "";
	size_t	i;

	if (strncmp(text, "-ERR [", 6) == 0) {
		for (i = 0; i + 1 < sizeof(code) && text[6 + i] != ']' &&
		    (isalnum((unsigned char)text[6 + i]) ||
		    text[6 + i] == '/' || text[6 + i] == '-'); i++)
			code[i] = text[6 + i];
		code[text[6 + i] == ']' ? i : 0] = '\0';
	}
	slog(s, LOGL_INFO, "event=%s check=%s status=-ERR%s%s",
	    net_refusal_event(check, text), check,
	    code[0] != '\0' ? " resp_code=" : "", code);
}

static void
reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct pop3_session *s, const char *fmt, ...)
{
	char	line[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		panic("pop3: reply too long");
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(bufferevent_get_output(s->bev), line, (size_t)n + 2);
}

/* A reply that refuses something the client did wrong. */
static void
reply_error(struct pop3_session *s, const char *text)
{
	reply(s, "%s", text);
	s->errors++;
}

static void
session_enter_state(struct pop3_session *s, enum pop3_state state)
{
	if (s->state == state)
		return;
	slog(s, LOGL_DEBUG, "event=state from=%s to=%s", state_names[s->state],
	    state_names[state]);
	s->state = state;
}

/* RFC 1939 3: an autologout timer of at least 10 minutes (default). */
static void
session_timeouts(struct pop3_session *s)
{
	struct timeval	tv = { s->conf->pop3.timeout, 0 };

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void
send_stop(struct pop3_session *s)
{
	if (s->send_fd != -1) {
		close(s->send_fd);
		s->send_fd = -1;
	}
	free(s->rbuf);		/* an idle session holds no read buffer */
	s->rbuf = NULL;
}

static void
session_free(struct pop3_session *s)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_u32(&o, s->errors);
	ipc_send(net.store, IMSG_SESSION_END, s->id, -1, &o);
	send_stop(s);
	sasl_server_free(&s->sasl);
	explicit_bzero(s->user, sizeof(s->user));
	net_session_del(s->id);
	net_conn_release(s->ip);
	net.nconn--;
	net_stat_session(s->l, false);
	if (s->linger != NULL)
		event_free(s->linger);
	bufferevent_free(s->bev);
	free(s->msgs);
	conf_unref(&s->conf);
	free(s);
}

static void	session_finish(struct pop3_session *);

static void
linger_tick(evutil_socket_t fd, short ev, void *arg)
{
	session_finish(arg);
}

/*
 * Free the session once its last replies have left: from our output
 * buffer and, after STLS, from the buffer under the TLS filter too.
 */
static void
session_finish(struct pop3_session *s)
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
session_close(struct pop3_session *s, const char *reason)
{
	if (s->closing)
		return;
	slog(s, LOGL_INFO, "event=disconnect reason=%s", reason);
	s->closing = true;
	send_stop(s);
	session_enter_state(s, P_QUIT);
	/* Under implicit TLS a refusal at connect goes out once the
	 * handshake is done, and the handshake needs to read. */
	if (!s->tls || s->tls_desc[0] != '\0')
		bufferevent_disable(s->bev, EV_READ);
	session_finish(s);
}

/* --- AUTHORIZATION ---------------------------------------------------- */

/* USER/PASS and the plaintext mechanisms: under TLS, or if allowed. */
static bool
plaintext_ok(const struct pop3_session *s)
{
	return s->tls || s->l->auth_plaintext_without_tls;
}

/* The mechanisms offered now (CAPA's SASL line, AUTH without one). */
static bool
mech_offered(const struct pop3_session *s, const struct sasl_mech *m)
{
	const struct conf_list	*l = &s->conf->smtp.auth_mechanisms;
	size_t			 i;

	if (m->plaintext && !plaintext_ok(s))
		return false;
	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], m->name) == 0)
			return true;
	return false;
}

static void
mech_list(const struct pop3_session *s, char *buf, size_t size,
    const char *sep)
{
	const struct conf_list	*l = &s->conf->smtp.auth_mechanisms;
	const struct sasl_mech	*m;
	size_t			 i;

	buf[0] = '\0';
	for (i = 0; i < l->n; i++) {
		if ((m = sasl_mech_find(l->v[i])) == NULL ||
		    !mech_offered(s, m))
			continue;
		if (buf[0] != '\0')
			strlcat(buf, sep, size);
		strlcat(buf, m->name, size);
	}
}

static void
do_capa(struct pop3_session *s, const char *arg)
{
	char	mechs[256];

	reply(s, "+OK Capability list follows");
	reply(s, "CAPA");
	reply(s, "TOP");
	reply(s, "UIDL");
	reply(s, "RESP-CODES");
	reply(s, "AUTH-RESP-CODE");
	reply(s, "PIPELINING");
	if (s->state == P_AUTH) {
		if (plaintext_ok(s))
			reply(s, "USER");
		mech_list(s, mechs, sizeof(mechs), " ");
		if (mechs[0] != '\0')
			reply(s, "SASL %s", mechs);
		if (!s->tls && s->l->tls == TLS_STARTTLS && net.ssl_ctx != NULL)
			reply(s, "STLS");
	}
	reply(s, ".");
}

static void
do_user(struct pop3_session *s, const char *arg)
{
	if (!plaintext_ok(s)) {
		reply_error(s, plaintext_refused);
		return;
	}
	if (*arg == '\0' || strlen(arg) > SASL_USER_MAX) {
		reply_error(s, "-ERR No username given.");
		return;
	}
	strlcpy(s->user, arg, sizeof(s->user));
	reply(s, "+OK");
}

/* Ask store whether user and password are right (the PLAIN check). */
static void
do_pass(struct pop3_session *s, const char *arg)
{
	struct sasl_req	r = { .type = SASL_REQ_PASSWORD, .mech = "PLAIN",
	    .authzid = "", .user = s->user, .challenge = "", .response = "",
	    .authmsg = "" };

	if (!plaintext_ok(s)) {
		reply_error(s, plaintext_refused);
		return;
	}
	if (s->user[0] == '\0') {
		reply_error(s, "-ERR No username given.");
		return;
	}
	strlcpy(s->mech, "USER", sizeof(s->mech));
	if (*arg == '\0' || strlen(arg) > SASL_PASS_MAX) {
		s->user[0] = '\0';
		s->errors++;
		s->store_decided = false;
		login_failed(s);
		return;
	}
	s->store_decided = true;	/* store verifies, logs, counts */
	r.password = arg;
	net_auth_request(s->id, &r, s->ip, AUTH_POP3);
	s->user[0] = '\0';	/* RFC 1939 7: a PASS follows its USER */
	s->wait = W_AUTH;
}

static void
open_mailbox(struct pop3_session *s)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_send(net.store, IMSG_POP3_OPEN, s->id, -1, &o);
	s->wait = W_OPEN;
}

static void
login_failed(struct pop3_session *s)
{
	slog(s, LOGL_INFO, "event=auth result=fail sasl_method=%s", s->mech);
	if (!s->store_decided)		/* store counts it all the same */
		net_auth_failed(s->id, s->ip, s->mech, AUTH_POP3);
	reply(s, "%s", auth_failed);
	if (++s->auth_failures >= AUTH_FAILURES_MAX)
		session_close(s, "auth-failures");
}

/* Act on what the exchange (USER/PASS or AUTH) says now. */
static void
auth_result(struct pop3_session *s, enum sasl_result r)
{
	s->sasl_reading = false;
	switch (r) {
	case SASL_CONTINUE:
		reply(s, "+ %s", sasl_server_challenge(s->sasl));
		s->sasl_reading = true;
		return;
	case SASL_NEED_VERIFY:
		net_auth_request(s->id, sasl_server_request(s->sasl), s->ip,
		    AUTH_POP3);
		s->wait = W_AUTH;
		return;
	case SASL_OK:
		slog(s, LOGL_INFO, "event=auth result=ok sasl_method=%s "
		    "sasl_username=%s", s->mech, s->account);
		open_mailbox(s);
		break;
	case SASL_FAIL:
		login_failed(s);
		break;
	case SASL_CANCEL:
		reply_error(s, "-ERR Authentication aborted.");
		break;
	case SASL_MALFORMED:
		reply_error(s, "-ERR Cannot decode response.");
		break;
	case SASL_TOOLONG:
		reply_error(s, "-ERR Authentication exchange line is too "
		    "long.");
		break;
	case SASL_NOMECH:
		reply_error(s, "-ERR Unsupported authentication mechanism.");
		break;
	case SASL_TEMPFAIL:
		reply(s, "-ERR [SYS/TEMP] Temporary authentication failure.");
		break;
	default:
		panic("pop3: SASL result %d", (int)r);
	}
	sasl_server_free(&s->sasl);
}

static void
auth_verified(struct pop3_session *s, struct ipc_msg *m)
{
	struct sasl_reply	r;

	net_auth_reply(m, &r, s->account, sizeof(s->account));
	if (s->sasl != NULL) {
		s->store_decided = sasl_server_request(s->sasl)->type !=
		    SASL_REQ_SCRAM_FIRST;
		auth_result(s, sasl_server_verified(s->sasl, &r));
	} else
		auth_result(s, r.result);	/* PASS */
}

/* AUTH (RFC 5034); without a mechanism, the list (as Dovecot does). */
static void
do_auth(struct pop3_session *s, const char *arg)
{
	const struct sasl_mech	*m;
	struct sasl_params	 p = { .hostname = s->conf->hostname };
	char			 name[32], mechs[256];
	const char		*sp, *initial = NULL;
	size_t			 len;

	if (*arg == '\0') {
		mech_list(s, mechs, sizeof(mechs), "\r\n");
		reply(s, "+OK");
		if (mechs[0] != '\0')
			reply(s, "%s", mechs);
		reply(s, ".");
		return;
	}
	len = (sp = strchr(arg, ' ')) != NULL ? (size_t)(sp - arg) :
	    strlen(arg);
	if (sp != NULL)
		initial = sp + 1;
	if (len >= sizeof(name)) {
		reply_error(s, "-ERR Unsupported authentication mechanism.");
		return;
	}
	memcpy(name, arg, len);
	name[len] = '\0';
	if ((m = sasl_mech_find(name)) == NULL ||
	    !mech_offered(s, m)) {
		reply_error(s, m != NULL && m->plaintext && !plaintext_ok(s) ?
		    plaintext_refused :
		    "-ERR Unsupported authentication mechanism.");
		return;
	}
	if (s->sasl == NULL && (s->sasl = sasl_server_new()) == NULL)
		fatal("sasl_server_new");
	strlcpy(s->mech, m->name, sizeof(s->mech));
	s->account[0] = '\0';
	s->store_decided = false;
	auth_result(s, sasl_server_start(s->sasl, m->name, initial, &p));
}

/* One line of an exchange after a "+ "; false to wait for more. */
static bool
auth_line_step(struct pop3_session *s)
{
	static char	line[SASL_LINE_MAX + 3];
	size_t		len;

	switch (net_line(bufferevent_get_input(s->bev), line, SASL_LINE_MAX + 2,
	    &s->skip_line, true, &len)) {
	case NET_LINE_MORE:
		return false;
	case NET_LINE_LONG:
		auth_result(s, SASL_TOOLONG);
		return true;
	}
	if (strlen(line) != len)
		auth_result(s, SASL_MALFORMED);
	else
		auth_result(s, sasl_server_step(s->sasl, line));
	explicit_bzero(line, len);
	return true;
}

/* The mailbox is open and listed: the TRANSACTION state. */
static void
logged_in(struct pop3_session *s)
{
	uint64_t	octets = 0;
	uint32_t	i;

	for (i = 0; i < s->nmsg; i++)
		octets += s->msgs[i].size;
	slog(s, LOGL_INFO, "event=login sasl_method=%s sasl_username=%s%s%s "
	    "messages=%u octets=%llu", s->mech, s->account,
	    s->tls_desc[0] ? " tls=" : "", s->tls_desc[0] ?
	    SSL_get_version(bufferevent_openssl_get_ssl(s->bev)) : "",
	    s->nmsg, (unsigned long long)octets);
	session_enter_state(s, P_TRANS);
	reply(s, "+OK Logged in.");
}

static void
mailbox_opened(struct pop3_session *s, struct ipc_msg *m)
{
	struct ipc_out	o;
	uint32_t	status, n;

	status = ipc_get_u32(m);
	s->uidvalidity = ipc_get_u32(m);
	n = ipc_get_u32(m);
	ipc_end(m);
	if (status == POP3_OPEN_OK && n <= MAILBOX_MSGS_MAX) {
		s->nmsg = n;
		s->listed = 0;
		s->msgs = xreallocarray(NULL, n ? n : 1, sizeof(*s->msgs));
		if (n == 0) {
			logged_in(s);
			return;
		}
		s->wait = W_LIST;
		return;
	}
	if (status != POP3_OPEN_IN_USE && status != POP3_OPEN_TEMPFAIL)
		fatalx("net: bad POP3 open status %u from store", status);
	/* Store forgets the login: the client may try again. */
	ipc_out_init(&o);
	ipc_send(net.store, IMSG_AUTH_END, s->id, -1, &o);
	if (status == POP3_OPEN_IN_USE) {
		slog(s, LOGL_INFO, "event=mailbox-in-use user=%s", s->account);
		reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 "
		    "session.");
	} else
		reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox.");
	s->account[0] = '\0';
}

static void
mailbox_listed(struct pop3_session *s, struct ipc_msg *m)
{
	uint32_t	n, i;

	n = ipc_get_u32(m);
	if (n > POP3_MSGS_CHUNK || n > s->nmsg - s->listed)
		fatalx("net: store listed too many messages");
	for (i = 0; i < n; i++, s->listed++) {
		s->msgs[s->listed].size = ipc_get_u64(m);
		s->msgs[s->listed].uid = ipc_get_u32(m);
		s->msgs[s->listed].marks = 0;
	}
	ipc_end(m);
	if (s->listed < s->nmsg) {
		s->wait = W_LIST;
		return;
	}
	logged_in(s);
}

static void
do_stls(struct pop3_session *s, const char *arg)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct bufferevent	*bev;

	if (s->tls) {
		reply_error(s, "-ERR TLS is already active.");
		return;
	}
	if (s->l->tls != TLS_STARTTLS || net.ssl_ctx == NULL) {
		reply_error(s, "-ERR TLS support isn't enabled.");
		return;
	}
	reply(s, "+OK Begin TLS negotiation now.");
	/* Whatever came after STLS in the clear is not to be run inside
	 * TLS (CVE-2011-0411, RFC 2595 4). */
	evbuffer_drain(in, evbuffer_get_length(in));
	if ((bev = net_tls_wrap(-1, s->bev)) == NULL) {
		session_close(s, "tls-setup");
		return;
	}
	/* The filter moves what we write into the socket's buffer as long
	 * as that one is under its high watermark: without one, a whole
	 * message would pile up there. */
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, OUTPUT_HIGH);
	s->bev = bev;
	s->tls = true;
	explicit_bzero(s->user, sizeof(s->user));
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_MAX);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_LOW, 0);
	session_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* --- TRANSACTION ------------------------------------------------------ */

/* The message a number names, or NULL after a -ERR. */
static struct pop3_msg *
msg_arg(struct pop3_session *s, const char *arg, uint32_t *n_r)
{
	uint32_t	n;

	if (pop3_parse_msgno(arg, UINT32_MAX, &n) == -1) {
		reply_error(s, "-ERR Invalid message number.");
		return NULL;
	}
	if (n > s->nmsg || (s->msgs[n - 1].marks & MAILBOX_DELE)) {
		reply(s, "-ERR There's no message %u.", n);
		return NULL;
	}
	*n_r = n;
	return &s->msgs[n - 1];
}

static void
do_stat(struct pop3_session *s, const char *arg)
{
	uint64_t	octets = 0;
	uint32_t	i, n = 0;

	for (i = 0; i < s->nmsg; i++)
		if (!(s->msgs[i].marks & MAILBOX_DELE)) {
			n++;
			octets += s->msgs[i].size;
		}
	reply(s, "+OK %u %llu", n, (unsigned long long)octets);
}

/* LIST and UIDL: one message, or all that are not marked deleted. */
/*
 * The UIDL of a message is Dovecot's default pop3_uidl_format,
 * %08Xu%08Xv, which Dovecot prints in lower case: a client that leaves
 * mail on the server sees the same ids from either server.
 */
static void
list_uidl(struct pop3_session *s, const char *arg, bool uidl)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	struct pop3_msg	*m;
	uint32_t	 i, n = 0;

	if (*arg != '\0') {
		if ((m = msg_arg(s, arg, &n)) == NULL)
			return;
		if (uidl)
			reply(s, "+OK %u %08x%08x", n, m->uid, s->uidvalidity);
		else
			reply(s, "+OK %u %llu", n, (unsigned long long)m->size);
		return;
	}
	for (i = 0; i < s->nmsg; i++)
		if (!(s->msgs[i].marks & MAILBOX_DELE))
			n++;
	if (uidl)
		reply(s, "+OK");
	else
		reply(s, "+OK %u messages:", n);
	for (i = 0; i < s->nmsg; i++) {
		m = &s->msgs[i];
		if (m->marks & MAILBOX_DELE)
			continue;
		if (uidl)
			evbuffer_add_printf(out, "%u %08x%08x\r\n", i + 1,
			    m->uid, s->uidvalidity);
		else
			evbuffer_add_printf(out, "%u %llu\r\n", i + 1,
			    (unsigned long long)m->size);
	}
	reply(s, ".");
}

static void
do_list(struct pop3_session *s, const char *arg)
{
	list_uidl(s, arg, false);
}

static void
do_uidl(struct pop3_session *s, const char *arg)
{
	list_uidl(s, arg, true);
}

/* Ask store for message n's file; sending starts in read_ready. */
static void
read_request(struct pop3_session *s, uint32_t n, bool top, uint64_t lines)
{
	struct ipc_out	o;

	s->send_msg = n - 1;
	s->send_top = top;
	s->send_lines = lines;
	ipc_out_init(&o);
	ipc_put_u32(&o, n - 1);
	ipc_send(net.store, IMSG_POP3_READ, s->id, -1, &o);
	s->wait = W_READ;
}

static void
do_retr(struct pop3_session *s, const char *arg)
{
	uint32_t	n;

	if (msg_arg(s, arg, &n) != NULL)
		read_request(s, n, false, 0);
}

static void
do_top(struct pop3_session *s, const char *arg)
{
	uint64_t	lines;
	uint32_t	n;

	if (pop3_parse_top(arg, UINT32_MAX, &n, &lines) == -1) {
		reply_error(s, "-ERR Invalid arguments.");
		return;
	}
	if (n > s->nmsg || (s->msgs[n - 1].marks & MAILBOX_DELE)) {
		reply(s, "-ERR There's no message %u.", n);
		return;
	}
	read_request(s, n, true, lines);
}

static void
send_out(void *arg, const uint8_t *p, size_t len)
{
	struct pop3_session	*s = arg;

	evbuffer_add(bufferevent_get_output(s->bev), p, len);
}

/*
 * Read the message being sent while the client keeps up: the output
 * buffer stays under OUTPUT_HIGH, and the write callback calls again
 * once it drained to OUTPUT_LOW.  True once the whole of it is out.
 */
static bool
send_step(struct pop3_session *s)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	ssize_t		 n;

	while (evbuffer_get_length(out) < OUTPUT_HIGH) {
		n = read(s->send_fd, s->rbuf, READ_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			/* Half a message is out: only closing can tell the
			 * client that it is not whole. */
			slog(s, LOGL_INFO, "event=read-error error=\"%s\"",
			    strerror(errno));
			session_close(s, "read-error");
			return false;
		}
		if (n == 0 || pop3_stuff_feed(&s->stuff, s->rbuf, (size_t)n,
		    send_out, s)) {
			pop3_stuff_end(&s->stuff, send_out, s);
			slog(s, LOGL_DEBUG, "event=%s msg=%u octets=%llu",
			    s->send_top ? "top" : "retr", s->send_msg + 1,
			    (unsigned long long)s->stuff.out_len);
			send_stop(s);
			return true;
		}
	}
	return false;
}

static void
read_ready(struct pop3_session *s, struct ipc_msg *m)
{
	struct pop3_msg	*msg = &s->msgs[s->send_msg];
	uint32_t	 ok = ipc_get_u32(m);

	ipc_end(m);
	if (!ok || m->fd == -1) {
		if (m->fd != -1)
			close(m->fd);
		reply(s, "-ERR Message no longer exists.");
		return;
	}
	s->send_fd = m->fd;
	if (s->rbuf == NULL)
		s->rbuf = xmalloc(READ_CHUNK);
	if (s->send_top) {
		reply(s, "+OK");
	} else {
		reply(s, "+OK %llu octets", (unsigned long long)msg->size);
		msg->marks |= MAILBOX_SEEN;
	}
	pop3_stuff_init(&s->stuff, s->send_top, s->send_lines);
	/* A client reading a long message sends nothing meanwhile: only
	 * the write side is timed until it is out. */
	bufferevent_set_timeouts(s->bev, NULL, &(struct timeval){
	    s->conf->pop3.timeout, 0 });
	if (send_step(s))
		session_timeouts(s);
}

static void
do_dele(struct pop3_session *s, const char *arg)
{
	struct pop3_msg	*m;
	uint32_t	 n;

	if ((m = msg_arg(s, arg, &n)) == NULL)
		return;
	m->marks |= MAILBOX_DELE;
	reply(s, "+OK Marked to be deleted.");
}

static void
do_noop(struct pop3_session *s, const char *arg)
{
	reply(s, "+OK");
}

static void
do_rset(struct pop3_session *s, const char *arg)
{
	uint32_t	i;

	for (i = 0; i < s->nmsg; i++)
		s->msgs[i].marks &= ~MAILBOX_DELE;
	reply(s, "+OK");
}

/*
 * QUIT: in TRANSACTION, hand store the marks (in pieces that fit an
 * IPC message) and answer once it applied them (RFC 1939 6).
 */
static void
do_quit(struct pop3_session *s, const char *arg)
{
	struct ipc_out	o;
	uint32_t	i, n, k;

	if (s->state == P_AUTH) {
		reply(s, "+OK Logging out.");
		session_close(s, "quit");
		return;
	}
	session_enter_state(s, P_UPDATE);
	i = 0;
	do {
		ipc_out_init(&o);
		for (n = 0, k = i; k < s->nmsg && n < POP3_MSGS_CHUNK; k++)
			if (s->msgs[k].marks != 0)
				n++;
		ipc_put_u32(&o, n);
		for (n = 0; i < s->nmsg && n < POP3_MSGS_CHUNK; i++)
			if (s->msgs[i].marks != 0) {
				ipc_put_u32(&o, i);
				ipc_put_u32(&o, s->msgs[i].marks);
				n++;
			}
		ipc_put_u32(&o, i == s->nmsg);
		ipc_send(net.store, IMSG_POP3_UPDATE, s->id, -1, &o);
	} while (i < s->nmsg);
	s->wait = W_UPDATE;
}

static void
updated(struct pop3_session *s, struct ipc_msg *m)
{
	uint32_t	failed = ipc_get_u32(m), i, deleted = 0;

	ipc_end(m);
	for (i = 0; i < s->nmsg; i++)
		if (s->msgs[i].marks & MAILBOX_DELE)
			deleted++;
	slog(s, LOGL_INFO, "event=update user=%s deleted=%u failed=%u",
	    s->account, deleted - (failed < deleted ? failed : deleted),
	    failed);
	if (failed != 0)
		reply(s, "-ERR Some deleted messages were not removed.");
	else if (deleted != 0)
		reply(s, "+OK Logging out, messages deleted.");
	else
		reply(s, "+OK Logging out.");
	session_close(s, "quit");
}

/* --- the dispatcher --------------------------------------------------- */

static void
dispatch(struct pop3_session *s, const char *line)
{
	const struct pop3_cmd	*c = NULL;
	char			 verb[POP3_VERB_MAX + 1];
	const char		*args;
	size_t			 i;

	if (pop3_cmd_split(line, verb, &args) == 0)
		for (i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
			if (strcmp(verb, pop3_cmds[i].name) == 0)
				c = &pop3_cmds[i];
	if (c == NULL) {
		reply_error(s, "-ERR Unknown command.");
		return;
	}
	if ((c->states & ST(s->state)) == 0) {
		reply_error(s, "-ERR Command not valid in this state.");
		return;
	}
	if (strcmp(c->name, "PASS") != 0 && strcmp(c->name, "AUTH") != 0 &&
	    log_level() >= LOGL_DEBUG) {
		char esc[CMD_LINE_MAX * 4 + 1];

		slog(s, LOGL_DEBUG, "event=command line=\"%s\"",
		    log_escape(line, strlen(line), esc, sizeof(esc)));
	}
	c->run(s, args);
}

/*
 * One command line, if a whole one is there; false to wait.  A bare LF
 * ends a line too: POP3 has no message data to smuggle anything into.
 */
static bool
command_step(struct pop3_session *s)
{
	char	line[CMD_LINE_MAX + 1];
	size_t	len;

	switch (net_line(bufferevent_get_input(s->bev), line, CMD_LINE_MAX,
	    &s->skip_line, true, &len)) {
	case NET_LINE_MORE:
		return false;
	case NET_LINE_LONG:
		reply_error(s, "-ERR Line too long.");
		return true;
	}
	if (++s->commands > s->conf->pop3.max_commands) {
		reply(s, "-ERR Too many commands.");
		session_close(s, "commands");
		return true;
	}
	if (strlen(line) != len)
		reply_error(s, "-ERR Unknown command.");
	else
		dispatch(s, line);
	explicit_bzero(line, len);	/* PASS */
	return true;
}

static void
session_process(struct pop3_session *s)
{
	unsigned int	errors;

	while (!s->closing && s->wait == W_NONE && s->send_fd == -1) {
		errors = s->errors;
		if (s->sasl_reading) {
			if (!auth_line_step(s))
				break;
		} else if (!command_step(s))
			break;
		if (s->errors > errors && s->errors >= s->conf->smtp.max_errors) {
			log_refusal(s, "errors", "-ERR Too many bad commands.");
			reply(s, "-ERR Too many bad commands.");
			session_close(s, "errors");
		}
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
	struct pop3_session	*s = arg;

	if (s->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_finish(s);
		return;
	}
	if (s->send_fd != -1 && s->wait == W_NONE && send_step(s)) {
		session_timeouts(s);
		session_process(s);
	}
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session	*s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

		if (ssl != NULL && s->tls_desc[0] == '\0') {
			char fields[160];

			tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
			tls_log_fields(ssl, fields, sizeof(fields));
			slog(s, LOGL_INFO, "event=tls %s", fields);
		}
		return;
	}
	if (s->closing) {
		session_free(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->wait != W_NONE) {	/* store is slow, not the client */
			bufferevent_enable(bev, EV_READ | EV_WRITE);
			return;
		}
		reply(s, "-ERR Disconnected for inactivity.");
		session_close(s, "timeout");
		return;
	}
	slog(s, LOGL_INFO, "event=disconnect reason=%s",
	    what & BEV_EVENT_EOF ? "eof" : "error");
	s->closing = true;
	session_free(s);
}

/* The connect checks (R4.4: a blocked address): greet, or refuse. */
static void
connect_result(struct pop3_session *s, struct ipc_msg *m)
{
	uint32_t	 a;
	const char	*check, *text;

	a = ipc_get_u32(m);
	(void)ipc_get_u32(m);		/* relay: SMTP's */
	check = ipc_get_str(m);
	text = ipc_get_str(m);
	(void)ipc_get_str(m);		/* a trace header: SMTP's */
	ipc_end(m);
	if (check == NULL || text == NULL || a == POLICY_DUNNO ||
	    a > POLICY_TEMPFAIL)
		fatalx("net: bad policy result from store");
	if (a == POLICY_ACCEPT) {
		reply(s, "+OK postino ready.");
		return;
	}
	if (strncmp(text, "-ERR ", 5) != 0)
		fatalx("net: store refused a POP3 client with an SMTP reply");
	log_refusal(s, check, text);
	reply(s, "%s", text);
	session_close(s, check);
}

static void
store_reply(void *arg, struct ipc_msg *m)
{
	struct pop3_session	*s = arg;
	enum pop3_wait		 w = s->wait;

	if (m->fd != -1 && m->type != IMSG_POP3_FD)
		fatalx("net: unexpected descriptor from store");
	s->wait = W_NONE;
	if (m->type == IMSG_POLICY_RESULT && w == W_CONNECT)
		connect_result(s, m);
	else if (m->type == IMSG_AUTH_RESULT && w == W_AUTH)
		auth_verified(s, m);
	else if (m->type == IMSG_POP3_OPENED && w == W_OPEN)
		mailbox_opened(s, m);
	else if (m->type == IMSG_POP3_MSGS && w == W_LIST)
		mailbox_listed(s, m);
	else if (m->type == IMSG_POP3_FD && w == W_READ)
		read_ready(s, m);
	else if (m->type == IMSG_POP3_UPDATED && w == W_UPDATE)
		updated(s, m);
	else
		fatalx("net: store sent message %u to POP3 session in wait "
		    "state %d", m->type, (int)w);
	if (!s->closing)
		session_process(s);
}

static void
shutdown_session(void *arg)
{
	struct pop3_session	*s = arg;

	if (s->closing)
		return;
	reply(s, "-ERR Server shutting down.");
	session_close(s, "shutdown");
}

static const struct net_session_ops pop3_ops = {
	store_reply, shutdown_session
};

/* --- a new session ---------------------------------------------------- */

void
pop3_session_new(const struct conf_listener *l, int fd,
    const struct sockaddr *sa, const char *ip)
{
	struct pop3_session	*s = xcalloc(1, sizeof(*s));
	struct ipc_out		 o;
	int			 one = 1;

	s->id = ++net.next_id;
	s->l = l;
	s->conf = conf_ref(net.conf);
	s->send_fd = -1;
	strlcpy(s->ip, ip, sizeof(s->ip));
	s->port = net_sockaddr_port(sa);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);
	if (l->tls == TLS_IMPLICIT) {
		s->bev = net_tls_wrap(fd, NULL);
		s->tls = true;
	} else
		s->bev = bufferevent_socket_new(net.base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	net.nconn++;
	net_stat_session(l, true);
	net_session_add(s->id, s, &pop3_ops);
	slog(s, LOGL_INFO, "event=connect port=%d listener=%s", s->port,
	    l->name);
	if (s->bev == NULL) {
		close(fd);
		s->bev = bufferevent_socket_new(net.base, -1, 0);
		session_close(s, "tls-setup");
		return;
	}
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_MAX);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_LOW, 0);
	session_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	ipc_out_init(&o);
	ipc_put_u32(&o, POLICY_CONNECT);
	ipc_put_str(&o, s->ip);
	ipc_put_u32(&o, l->profile);
	ipc_send(net.store, IMSG_POLICY, s->id, -1, &o);
	s->wait = W_CONNECT;
}
