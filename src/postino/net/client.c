/*
 * client.c - outbound SMTP sessions, one per job of store's scheduler.
 *
 * A job walks a route: the hops (MX hosts by preference, the domain
 * itself when it has no MX, or the smart host), and for each hop its
 * addresses.  On each address it opens a session and runs as many
 * transactions as the recipients need (max_recipients_per_session
 * each).  A failure of the connection or of the session before a
 * transaction (connect, greeting, EHLO, STARTTLS, AUTH) moves to the
 * next address; what a server answers to MAIL, RCPT, DATA and the final
 * dot decides the recipients it concerns.  When every recipient is
 * decided, or no address is left, the outcome goes back to store.
 *
 * Everything read here comes from the network: replies are bounded in
 * line length, line count and time, and only cleaned text of them
 * leaves this file.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "client.h"
#include "compat.h"
#include "ipc.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "resolve.h"
#include "smtp_reply.h"
#include "smtp_syntax.h"
#include "tls.h"
#include "xalloc.h"

#define REPLY_LINE_MAX	2048	/* longer is a protocol error */
#define TEXT_MAX	512	/* of a reply, kept for the outcome */
#define CHUNK		(64 * 1024)	/* message octets read at a time */
#define OUT_HIGH	(256 * 1024)	/* output kept in memory, at most */
#define TIMEOUT_CONNECT	30
#define TIMEOUT_REPLY	300	/* RFC 5321 4.5.3.2 */
#define TIMEOUT_DOT	600
#define HOPS_MAX	(RESOLVE_MX_MAX + 1)

enum cstate {
	C_RESOLVE, C_CONNECT, C_GREETING, C_EHLO, C_HELO, C_STARTTLS,
	C_AUTH, C_AUTH_USER, C_AUTH_PASS, C_TX, C_BODY, C_DOT, C_RSET,
	C_QUIT
};

/* One command of a transaction, in the order of their replies. */
enum txcmd { TX_MAIL, TX_RCPT, TX_DATA };

struct outcome {
	unsigned int	code;		/* 0: undecided */
	char		status[16];
	char		remote[300];
	char		text[TEXT_MAX];
};

struct hop {
	char		host[254];	/* a name, or a numeric address */
	uint16_t	port;
};

struct client {
	uint64_t	 id;
	int		 fd;
	uint64_t	 msglen;
	char		 qid[QID_LEN + 1];
	char		 from[ADDR_PATH_MAX + 1];
	unsigned int	 body;
	bool		 utf8;
	char		 domain[ADDR_DOMAIN_MAX + 1];
	char		 auth_user[256], auth_pass[256];
	const char	*auth_mech;	/* the one sent, for the log */
	size_t		 n;
	char		(*rcpt)[ADDR_PATH_MAX + 1];
	struct outcome	*out;

	/* The route. */
	struct hop	 hops[HOPS_MAX];
	size_t		 nhops, ihop;
	bool		 via_smarthost, fallback_tried;
	unsigned int	 nxdomain_hops;	/* hops whose name does not exist */
	uint8_t		 addrs[RESOLVE_ADDRS_MAX][16];
	size_t		 naddrs, iaddr;
	bool		 no_tls;	/* this address failed the handshake */
	char		 remote[300];	/* "host[address]" */

	/* The session. */
	struct bufferevent *bev;
	enum cstate	 state;
	bool		 tls;
	struct smtp_ehlo ext;		/* what the server offers */
	struct smtp_reply r;		/* the reply being read, or last */

	/* The transaction: recipients [batch, bend). */
	size_t		 batch, bend;
	size_t		 sent, got;	/* commands of the group */
	size_t		 accepted;
	bool		*ok;
	bool		 mail_failed, data_discard;
	bool		 bdat;		/* CHUNKING: BDAT n LAST, no stuffing */
	off_t		 off;
	bool		 bol;		/* at the start of a line */

	bool		*gone;		/* set by client_free() */
	bool		 lmtp;		/* LHLO, one reply per recipient */
	int		 sock;		/* connected by store (unix:), or -1 */
	size_t		 dot_next;	/* LMTP: next recipient to answer */

	/* Why the last address failed, for the recipients left. */
	unsigned int	 last_code;
	char		 last_status[16];
	char		 last_text[TEXT_MAX];
};

static struct {
	SSL_CTX		*ctx;
} cl;

static void	next_address(struct client *);
static void	session_start(struct client *);
static void	tx_start(struct client *);

/* Record a recipient's outcome, once. */
static void
decide(struct client *c, size_t i, unsigned int code, const char *status,
    const char *text)
{
	struct outcome	*o = &c->out[i];

	if (o->code != 0)
		return;
	o->code = code;
	strlcpy(o->status, status, sizeof(o->status));
	strlcpy(o->remote, c->remote, sizeof(o->remote));
	strlcpy(o->text, text, sizeof(o->text));
}

static bool
all_decided(const struct client *c)
{
	size_t	i;

	for (i = 0; i < c->n; i++)
		if (c->out[i].code == 0)
			return false;
	return true;
}

static void
session_drop(struct client *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
}

static void
client_free(struct client *c)
{
	if (c->gone != NULL)
		*c->gone = true;	/* for the read loop that runs */
	session_drop(c);
	close(c->fd);
	free(c->rcpt);
	free(c->out);
	free(c->ok);
	explicit_bzero(c->auth_pass, sizeof(c->auth_pass));
	free(c);
	net.stats.out_current--;
}

/* Every recipient decided (or given up on): tell store. */
static void
report(struct client *c)
{
	struct ipc_out	o;
	size_t		i;

	ipc_out_init(&o);
	ipc_put_u32(&o, (uint32_t)c->n);
	for (i = 0; i < c->n; i++) {
		struct outcome *x = &c->out[i];

		if (x->code == 0) {
			x->code = c->last_code ? c->last_code : 451;
			strlcpy(x->status, c->last_status[0] ? c->last_status :
			    "4.4.1", sizeof(x->status));
			strlcpy(x->text, c->last_text[0] ? c->last_text :
			    "no server could be reached", sizeof(x->text));
			strlcpy(x->remote, "", sizeof(x->remote));
		}
		ipc_put_u32(&o, x->code);
		ipc_put_str(&o, x->status);
		ipc_put_str(&o, x->remote);
		ipc_put_str(&o, x->text);
	}
	ipc_send(net.store, IMSG_DELIVER_RESULT, c->id, -1, &o);
}

static void
client_done(struct client *c)
{
	report(c);
	client_free(c);
}

static void
decide_all(struct client *c, unsigned int code, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
decide_all(struct client *c, unsigned int code, const char *status,
    const char *fmt, ...)
{
	char	text[TEXT_MAX];
	va_list	ap;
	size_t	i;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (i = 0; i < c->n; i++)
		decide(c, i, code, status, text);
}

/* A peer's reply for a log line: quotes and backslashes escaped, so a
 * hostile peer cannot end the reply="..." field (one buffer: net has
 * one thread). */
static const char *
esc_text(const char *text)
{
	static char	buf[4 * 1024];

	return log_escape_quoted(text, strlen(text), buf, sizeof(buf));
}

/*
 * The session on this address failed: remember why for whoever is
 * left, and try the next address.  code 4xx or 5xx; a 5xx here (null
 * MX, loop, size) is final for every recipient still undecided.
 */
static void
address_failed(struct client *c, unsigned int code, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
address_failed(struct client *c, unsigned int code, const char *status,
    const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(c->last_text, sizeof(c->last_text), fmt, ap);
	va_end(ap);
	c->last_code = code;
	strlcpy(c->last_status, status, sizeof(c->last_status));
	log_info("client job=%" PRIu64 " qid=%s event=address-failed "
	    "relay=%s reply=\"%s\"", c->id, c->qid, c->remote[0] ?
	    c->remote : c->domain, esc_text(c->last_text));
	session_drop(c);
	if (code >= 500)
		decide_all(c, code, status, "%s", c->last_text);
	if (all_decided(c)) {
		client_done(c);
		return;
	}
	next_address(c);
}

static void
send_line(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
send_line(struct client *c, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
set_timeout(struct client *c, int seconds)
{
	struct timeval	tv = { seconds, 0 };

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/* --- replies --------------------------------------------------------- */

/*
 * Read one whole reply into c->r (mail/smtp_reply.c); in C_EHLO, each
 * line after the first is also a keyword for c->ext.  Returns 1 with a
 * reply, 0 when more input is needed, -1 on a protocol error (already
 * handled: c may be gone).
 */
static int
read_reply(struct client *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	size_t		 len;
	char		*line;
	int		 r;

	for (;;) {
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX) {
				address_failed(c, 451, "4.4.2", "%s: reply "
				    "line too long", c->remote);
				return -1;
			}
			return 0;
		}
		if (c->r.lines == 0) {
			smtp_reply_init(&c->r);
			if (c->state == C_EHLO)
				smtp_ehlo_init(&c->ext);
		}
		if (len > REPLY_LINE_MAX ||
		    (r = smtp_reply_add(&c->r, line, len)) == -1) {
			free(line);
			address_failed(c, 451, "4.4.2", "%s: malformed reply",
			    c->remote);
			return -1;
		}
		if (c->state == C_EHLO && c->r.lines > 1 && c->r.code == 250 &&
		    len > 4)
			smtp_ehlo_keyword(&c->ext, line + 4, len - 4);
		free(line);
		if (r == 1) {
			c->r.lines = 0;		/* the next one starts anew */
			return 1;
		}
	}
}

/* --- session: greeting, EHLO, STARTTLS, AUTH ------------------------ */

/* The first word after the code of an EHLO reply: the server's name. */
static bool
loops_back(const struct client *c)
{
	char	name[256];
	size_t	n;

	if (c->r.len < 5)
		return false;
	n = strcspn(c->r.text + 4, " ");
	if (n >= sizeof(name))
		return false;
	memcpy(name, c->r.text + 4, n);
	name[n] = '\0';
	return strcasecmp(name, net.conf->hostname) == 0;
}

static void
tls_start(struct client *c)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if (cl.ctx == NULL || (ssl = SSL_new(cl.ctx)) == NULL) {
		address_failed(c, 451, "4.7.5", "TLS is not available here");
		return;
	}
	if (!isdigit((unsigned char)c->hops[c->ihop].host[0]))
		SSL_set_tlsext_host_name(ssl, c->hops[c->ihop].host);
	bev = bufferevent_openssl_filter_new(net.base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		address_failed(c, 451, "4.7.5", "TLS setup failed");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->bev = bev;
	c->tls = true;
	session_start(c);	/* callbacks on the new bufferevent */
	c->state = C_EHLO;
	send_line(c, "EHLO %s", net.conf->hostname);
}

static void
b64(const char *in, size_t len, char *out, size_t size)
{
	if (size < 4 * ((len + 2) / 3) + 1) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in,
	    (int)len);
}

/* After EHLO: TLS, then AUTH (smart host), then the transactions. */
static void
session_ready(struct client *c)
{
	bool	require = c->via_smarthost &&
		    net.conf->delivery.smarthost_tls_require;
	char	buf[1024], enc[1400];
	size_t	lu, lp;

	if (!c->tls && c->ext.starttls && !c->no_tls && cl.ctx != NULL &&
	    !c->lmtp) {
		c->state = C_STARTTLS;
		send_line(c, "STARTTLS");
		return;
	}
	if (!c->tls && require) {
		address_failed(c, 451, "4.7.4", "%s offers no STARTTLS "
		    "(smarthost_tls = require)", c->remote);
		return;
	}
	if (c->via_smarthost && c->auth_user[0] != '\0' &&
	    (c->ext.auth_plain || c->ext.auth_login)) {
		lu = strlen(c->auth_user);
		lp = strlen(c->auth_pass);
		if (c->ext.auth_plain && lu + lp + 2 < sizeof(buf)) {
			buf[0] = '\0';
			memcpy(buf + 1, c->auth_user, lu);
			buf[lu + 1] = '\0';
			memcpy(buf + lu + 2, c->auth_pass, lp);
			b64(buf, lu + lp + 2, enc, sizeof(enc));
			explicit_bzero(buf, sizeof(buf));
			c->state = C_AUTH;
			c->auth_mech = "PLAIN";
			send_line(c, "AUTH PLAIN %s", enc);
			explicit_bzero(enc, sizeof(enc));
		} else {
			c->state = C_AUTH_USER;
			c->auth_mech = "LOGIN";
			send_line(c, "AUTH LOGIN");
		}
		return;
	}
	tx_start(c);
}

static void
on_session_reply(struct client *c)
{
	char	enc[400], esc[sizeof(c->auth_user) * 4];
	const char *v;

	switch (c->state) {
	case C_GREETING:
		if (c->r.code != 220) {
			address_failed(c, 451, c->r.code >= 500 ? "4.4.0" :
			    c->r.status, "%s refused to talk to me: %s",
			    c->remote, c->r.text);
			return;
		}
		c->state = C_EHLO;
		send_line(c, "%s %s", c->lmtp ? "LHLO" : "EHLO",
		    net.conf->hostname);
		return;
	case C_EHLO:
		if (c->r.code / 100 != 2 && c->lmtp) {
			address_failed(c, 451, "4.4.0", "%s refused LHLO: %s",
			    c->remote, c->r.text);
			return;
		}
		if (c->r.code / 100 != 2) {
			c->state = C_HELO;
			send_line(c, "HELO %s", net.conf->hostname);
			return;
		}
		if (c->tls) {
			char fields[160];

			tls_log_fields(bufferevent_openssl_get_ssl(c->bev),
			    fields, sizeof(fields));
			log_info("client job=%" PRIu64 " qid=%s event=tls "
			    "relay=%s %s", c->id, c->qid, c->remote, fields);
		}
		if (!c->lmtp && loops_back(c)) {
			address_failed(c, 554, "5.4.6", "mail for %s loops "
			    "back to myself", c->domain);
			return;
		}
		session_ready(c);
		return;
	case C_HELO:
		if (c->r.code / 100 != 2) {
			address_failed(c, 451, "4.4.0", "%s refused HELO: %s",
			    c->remote, c->r.text);
			return;
		}
		smtp_ehlo_init(&c->ext);	/* HELO: no extensions */
		session_ready(c);
		return;
	case C_STARTTLS:
		if (c->r.code != 220) {
			c->no_tls = true;	/* go on in clear */
			session_ready(c);
			return;
		}
		tls_start(c);
		return;
	case C_AUTH_USER:
	case C_AUTH_PASS:
		if (c->r.code == 334) {
			v = c->state == C_AUTH_USER ? c->auth_user :
			    c->auth_pass;
			b64(v, strlen(v), enc, sizeof(enc));
			send_line(c, "%s", enc);
			explicit_bzero(enc, sizeof(enc));
			c->state = c->state == C_AUTH_USER ? C_AUTH_PASS :
			    C_AUTH;
			return;
		}
		/* FALLTHROUGH */
	case C_AUTH:
		if (c->r.code != 235) {
			address_failed(c, 451, "4.7.0", "%s refused our AUTH: "
			    "%s", c->remote, c->r.text);
			return;
		}
		log_info("client job=%" PRIu64 " qid=%s event=auth relay=%s "
		    "sasl_method=%s sasl_username=%s", c->id, c->qid, c->remote,
		    c->auth_mech, log_escape(c->auth_user, strlen(c->auth_user),
		    esc, sizeof(esc)));
		tx_start(c);
		return;
	default:
		panic("client: session reply in state %d", (int)c->state);
	}
}

/* --- transactions ---------------------------------------------------- */

static size_t
group_len(const struct client *c)
{
	return (c->bend - c->batch) + 2;	/* MAIL, RCPTs, DATA */
}

static enum txcmd
group_cmd(const struct client *c, size_t k)
{
	return k == 0 ? TX_MAIL : k == group_len(c) - 1 ? TX_DATA : TX_RCPT;
}

static void
send_cmd(struct client *c, size_t k)
{
	char	params[128];

	switch (group_cmd(c, k)) {
	case TX_MAIL:
		params[0] = '\0';
		if (c->ext.has_size)
			snprintf(params, sizeof(params), " SIZE=%" PRIu64,
			    c->msglen);
		if (c->body == BODY_BINARYMIME)
			strlcat(params, " BODY=BINARYMIME", sizeof(params));
		else if (c->body != BODY_7BIT && c->ext.eightbit)
			strlcat(params, " BODY=8BITMIME", sizeof(params));
		if (c->utf8 && c->ext.smtputf8)
			strlcat(params, " SMTPUTF8", sizeof(params));
		send_line(c, "MAIL FROM:<%s>%s", c->from, params);
		break;
	case TX_RCPT:
		send_line(c, "RCPT TO:<%s>", c->rcpt[c->batch + k - 1]);
		break;
	case TX_DATA:
		send_line(c, "DATA");
		break;
	}
}

static void	tx_abort(struct client *);
static void	body_fill(struct client *);

/* RFC 3030: the whole message in one chunk, as it is stored. */
static void
bdat_start(struct client *c)
{
	c->off = 0;
	c->dot_next = c->batch;
	c->state = C_BODY;
	send_line(c, "BDAT %" PRIu64 " LAST", c->msglen);
	body_fill(c);
}

/* Send what the window allows: everything with PIPELINING, else one. */
static void
send_group(struct client *c)
{
	size_t	n = group_len(c);

	while (c->sent < n && (c->ext.pipelining || c->sent == c->got)) {
		/* BDAT carries the message: only once every RCPT answered. */
		if (c->bdat && group_cmd(c, c->sent) == TX_DATA) {
			if (c->got < c->sent)
				return;
			if (c->mail_failed || c->accepted == 0) {
				tx_abort(c);
				return;
			}
			c->sent++;
			c->got++;	/* its reply is the final one */
			bdat_start(c);
			return;
		}
		/* Without pipelining, no DATA when no RCPT was taken. */
		if (!c->ext.pipelining && (c->mail_failed ||
		    (group_cmd(c, c->sent) == TX_DATA && c->accepted == 0)))
			return;
		send_cmd(c, c->sent++);
	}
}

static void
tx_start(struct client *c)
{
	size_t	max = net.conf->delivery.max_recipients_per_session;

	/* The first recipient not yet decided opens the next batch. */
	while (c->batch < c->n && c->out[c->batch].code != 0)
		c->batch++;
	if (c->batch >= c->n) {
		/* The outcome is known: report it, then say goodbye. */
		report(c);
		c->state = C_QUIT;
		set_timeout(c, TIMEOUT_CONNECT);
		send_line(c, "QUIT");
		return;
	}
	if (c->body == BODY_BINARYMIME && !(c->ext.chunking &&
	    c->ext.binarymime)) {
		decide_all(c, 554, "5.6.3", "the message is binary "
		    "(BINARYMIME) and %s does not take it", c->remote);
		tx_start(c);
		return;
	}
	if (c->utf8 && !c->ext.smtputf8) {
		decide_all(c, 553, "5.6.7", "%s does not offer SMTPUTF8, "
		    "which the message needs", c->remote);
		tx_start(c);
		return;
	}
	if (c->ext.has_size && c->ext.size_max > 0 && c->msglen > c->ext.size_max) {
		decide_all(c, 552, "5.3.4", "message size %" PRIu64 " exceeds "
		    "the limit of %s (%" PRIu64 ")", c->msglen, c->remote,
		    c->ext.size_max);
		tx_start(c);
		return;
	}
	c->bend = c->batch;
	while (c->bend < c->n && c->bend - c->batch < max &&
	    c->out[c->bend].code == 0)
		c->bend++;
	c->sent = c->got = c->accepted = 0;
	c->mail_failed = c->data_discard = false;
	c->bdat = c->ext.chunking;
	memset(c->ok, 0, c->n * sizeof(*c->ok));
	c->state = C_TX;
	set_timeout(c, TIMEOUT_REPLY);
	send_group(c);
}

/* The transaction ended without a message: reset, then the next one. */
static void
tx_abort(struct client *c)
{
	c->state = C_RSET;
	send_line(c, "RSET");
}

static void
body_fill(struct client *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	char		 in[CHUNK];
	ssize_t		 got;
	size_t		 i, start;

	while (evbuffer_get_length(out) < OUT_HIGH &&
	    (uint64_t)c->off < c->msglen) {
		size_t want = c->msglen - (uint64_t)c->off < CHUNK ?
		    (size_t)(c->msglen - (uint64_t)c->off) : CHUNK;

		got = pread(c->fd, in, want, c->off);
		if (got <= 0) {
			log_err("client job=%" PRIu64 " qid=%s event=read-"
			    "failed error=\"%s\"", c->id, c->qid, got == 0 ?
			    "short file" : strerror(errno));
			address_failed(c, 451, "4.3.0", "cannot read the "
			    "queued message");
			return;
		}
		if (c->bdat) {
			evbuffer_add(out, in, (size_t)got);
			c->off += got;
			continue;
		}
		/* Dot-stuffing (RFC 5321 4.5.2). */
		for (i = start = 0; i < (size_t)got; i++) {
			if (c->bol && in[i] == '.') {
				evbuffer_add(out, in + start, i - start);
				evbuffer_add(out, ".", 1);
				start = i;
			}
			c->bol = in[i] == '\n';
		}
		evbuffer_add(out, in + start, (size_t)got - start);
		c->off += got;
	}
	if ((uint64_t)c->off >= c->msglen) {
		if (!c->bdat && !c->bol && c->msglen > 0)
			evbuffer_add(out, "\r\n", 2);
		if (!c->bdat)
			evbuffer_add(out, ".\r\n", 3);
		c->state = C_DOT;
		set_timeout(c, TIMEOUT_DOT);
	}
}

static void
on_tx_reply(struct client *c)
{
	size_t	k = c->got++, i;

	switch (group_cmd(c, k)) {
	case TX_MAIL:
		if (c->r.code / 100 != 2) {
			c->mail_failed = true;
			for (i = c->batch; i < c->bend; i++)
				decide(c, i, c->r.code, c->r.status, c->r.text);
		}
		break;
	case TX_RCPT:
		i = c->batch + k - 1;
		if (c->mail_failed)
			break;
		if (c->r.code / 100 == 2) {
			c->ok[i] = true;
			c->accepted++;
		} else
			decide(c, i, c->r.code, c->r.status, c->r.text);
		break;
	case TX_DATA:
		if (c->r.code == 354 && (c->mail_failed || c->accepted == 0)) {
			/* Nothing to send it for: an empty message ends it. */
			c->data_discard = true;
			c->state = C_DOT;
			send_line(c, ".");
			return;
		}
		if (c->r.code == 354) {
			c->off = 0;
			c->dot_next = c->batch;
			c->bol = true;
			c->state = C_BODY;
			body_fill(c);
			return;
		}
		for (i = c->batch; i < c->bend; i++)
			if (c->ok[i])
				decide(c, i, c->r.code, c->r.status, c->r.text);
		tx_abort(c);
		return;
	}
	if (c->got == c->sent && !c->ext.pipelining &&
	    (c->mail_failed || (group_cmd(c, c->sent) == TX_DATA &&
	    c->accepted == 0))) {
		tx_abort(c);
		return;
	}
	send_group(c);
}

static void
on_dot_reply(struct client *c)
{
	size_t	i;

	if (c->lmtp && !c->data_discard) {
		/* RFC 2033 4.2: a reply for each accepted recipient. */
		while (c->dot_next < c->bend && !c->ok[c->dot_next])
			c->dot_next++;
		if (c->dot_next < c->bend) {
			decide(c, c->dot_next, c->r.code, c->r.status, c->r.text);
			log_info("client job=%" PRIu64 " qid=%s event=sent "
			    "relay=%s to=<%s> reply=\"%s\"", c->id, c->qid,
			    c->remote, c->rcpt[c->dot_next],
			    esc_text(c->r.text));
			c->dot_next++;
		}
		while (c->dot_next < c->bend && !c->ok[c->dot_next])
			c->dot_next++;
		if (c->dot_next < c->bend)
			return;		/* more replies to come */
		c->batch = c->bend;
		set_timeout(c, TIMEOUT_REPLY);
		tx_start(c);
		return;
	}
	if (!c->data_discard)
		for (i = c->batch; i < c->bend; i++)
			if (c->ok[i])
				decide(c, i, c->r.code, c->r.status, c->r.text);
	if (!c->data_discard)
		log_info("client job=%" PRIu64 " qid=%s event=sent relay=%s "
		    "rcpts=%zu reply=\"%s\"", c->id, c->qid, c->remote,
		    c->accepted, esc_text(c->r.text));
	c->batch = c->bend;
	set_timeout(c, TIMEOUT_REPLY);
	tx_start(c);
}

/* --- the connection -------------------------------------------------- */

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;
	bool		 gone = false;
	int		 r;

	c->gone = &gone;
	for (;;) {
		r = read_reply(c);
		if (r != 1)
			break;		/* more to come, or c is gone */
		switch (c->state) {
		case C_TX:
			on_tx_reply(c);
			break;
		case C_DOT:
			on_dot_reply(c);
			break;
		case C_RSET:
			c->batch = c->bend;
			tx_start(c);
			break;
		case C_BODY:
			address_failed(c, 451, "4.4.2", "%s replied during "
			    "the message: %s", c->remote, c->r.text);
			break;
		case C_QUIT:
			client_free(c);		/* reported already */
			break;
		default:
			on_session_reply(c);
			break;
		}
		/* Go on only if c lives and still reads from this bev. */
		if (gone || c->bev != bev)
			break;
	}
	if (!gone)
		c->gone = NULL;
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;

	if (c->state == C_BODY)
		body_fill(c);
	else if (c->state == C_QUIT &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(c);
}

static const char *
state_doing(enum cstate s)
{
	switch (s) {
	case C_CONNECT:		return "connecting";
	case C_GREETING:	return "waiting for the greeting";
	case C_EHLO:
	case C_HELO:		return "sending EHLO";
	case C_STARTTLS:	return "starting TLS";
	case C_AUTH:
	case C_AUTH_USER:
	case C_AUTH_PASS:	return "authenticating";
	case C_TX:		return "sending the envelope";
	case C_BODY:		return "sending the message";
	case C_DOT:		return "waiting for the end-of-data reply";
	default:		return "talking";
	}
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client	*c = arg;
	size_t		 i;
	unsigned long	 e;
	char		 why[256];

	if (c->state == C_QUIT) {
		client_free(c);		/* reported already */
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof(one));
		if (c->state == C_CONNECT) {
			c->state = C_GREETING;
			set_timeout(c, TIMEOUT_REPLY);
		}
		return;
	}
	if (c->tls && c->state == C_EHLO && c->r.lines == 0 &&
	    (e = bufferevent_get_openssl_error(bev)) != 0) {
		/* The handshake failed: again on this address, in clear. */
		ERR_error_string_n(e, why, sizeof(why));
		log_info("client job=%" PRIu64 " qid=%s event=tls-failed "
		    "relay=%s error=\"%s\"", c->id, c->qid, c->remote, why);
		if (c->via_smarthost &&
		    net.conf->delivery.smarthost_tls_require) {
			address_failed(c, 451, "4.7.5", "TLS with %s failed: "
			    "%s", c->remote, why);
			return;
		}
		session_drop(c);
		c->no_tls = true;
		c->iaddr--;
		next_address(c);
		return;
	}
	if (c->state == C_DOT && !c->data_discard) {
		/* The server may have the message: try later, not now. */
		for (i = c->batch; i < c->bend; i++)
			if (c->ok[i])
				decide(c, i, 451, "4.4.2", "lost connection "
				    "after the message was sent");
	}
	if (what & BEV_EVENT_TIMEOUT)
		address_failed(c, 451, "4.4.2", "timeout with %s while %s",
		    c->remote, state_doing(c->state));
	else if (c->state == C_CONNECT)
		address_failed(c, 451, "4.4.1", "connect to %s: %s",
		    c->remote, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	else
		address_failed(c, 451, "4.4.2", "lost connection with %s "
		    "while %s", c->remote, state_doing(c->state));
}

static void
session_start(struct client *c)
{
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_HIGH / 4, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
connect_address(struct client *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	const uint8_t		*a = c->addrs[c->iaddr];
	char			 ip[INET6_ADDRSTRLEN];
	uint16_t		 port = c->hops[c->ihop].port;

	memset(&ss, 0, sizeof(ss));
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a + 12, 4);
		sl = sizeof(*s4);
		inet_ntop(AF_INET, a + 12, ip, sizeof(ip));
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a, 16);
		sl = sizeof(*s6);
		inet_ntop(AF_INET6, a, ip, sizeof(ip));
	}
	if (port == 25)
		snprintf(c->remote, sizeof(c->remote), "%s[%s]",
		    c->hops[c->ihop].host, ip);
	else
		snprintf(c->remote, sizeof(c->remote), "%s[%s]:%u",
		    c->hops[c->ihop].host, ip, port);
	c->tls = false;
	c->r.lines = 0;
	c->bev = bufferevent_socket_new(net.base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		address_failed(c, 451, "4.3.0", "out of sockets");
		return;
	}
	session_start(c);
	c->state = C_CONNECT;
	set_timeout(c, TIMEOUT_CONNECT);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss,
	    (int)sl) == -1)
		address_failed(c, 451, "4.4.1", "connect to %s: %s",
		    c->remote, strerror(errno));
}

static void
hop_addrs_cb(void *arg, enum resolve_status status,
    const uint8_t (*addrs)[16], size_t n, unsigned int ttl)
{
	struct client	*c = arg;

	if (status == RESOLVE_CANCELLED)
		return;
	c->naddrs = 0;
	c->iaddr = 0;
	if (status == RESOLVE_OK && n > 0) {
		memcpy(c->addrs, addrs, n * sizeof(*addrs));
		c->naddrs = n;
		c->no_tls = false;
		connect_address(c);
		return;
	}
	if (status == RESOLVE_NXDOMAIN)
		c->nxdomain_hops++;
	if (c->last_code == 0 || status == RESOLVE_TEMPFAIL) {
		c->last_code = 451;
		strlcpy(c->last_status, "4.4.3", sizeof(c->last_status));
		snprintf(c->last_text, sizeof(c->last_text), "%s: %s",
		    c->hops[c->ihop].host, status == RESOLVE_NXDOMAIN ?
		    "host not found" : "temporary DNS failure");
	}
	c->ihop++;
	next_address(c);
}

/* One host as the only hop: "[host]:port", "host:port", "host". */
static void
route_host(struct client *c, const char *sh, bool smarthost)
{
	const char	*colon;
	struct hop	*h = &c->hops[0];
	size_t		 n;

	h->port = (uint16_t)net.conf->delivery.smtp_port;
	if (sh[0] == '[' && (colon = strchr(sh, ']')) != NULL) {
		n = (size_t)(colon - sh - 1);
		colon = colon[1] == ':' ? colon + 1 : NULL;
		sh++;
	} else {
		colon = strrchr(sh, ':');
		if (colon != NULL && strchr(sh, ':') != colon)
			colon = NULL;		/* a bare IPv6 address */
		n = colon ? (size_t)(colon - sh) : strlen(sh);
	}
	if (n >= sizeof(h->host))
		n = sizeof(h->host) - 1;
	memcpy(h->host, sh, n);
	h->host[n] = '\0';
	if (colon != NULL)
		h->port = (uint16_t)atoi(colon + 1);
	c->nhops = 1;
	c->ihop = 0;
	c->nxdomain_hops = 0;
	c->via_smarthost = smarthost;
}

static void
next_address(struct client *c)
{
	if (c->ihop < c->nhops && ++c->iaddr < c->naddrs) {
		connect_address(c);
		return;
	}
	if (c->naddrs > 0 && c->iaddr >= c->naddrs) {
		c->naddrs = c->iaddr = 0;
		c->ihop++;
	}
	if (c->ihop < c->nhops) {
		c->iaddr = 0;
		resolver_addrs(net.resolver, c->hops[c->ihop].host,
		    hop_addrs_cb, c);
		return;
	}
	/* No hop left. */
	if (!c->via_smarthost && !c->lmtp && !c->fallback_tried &&
	    net.conf->delivery.smarthost_mode == SMARTHOST_FALLBACK &&
	    net.conf->delivery.smarthost[0] != '\0') {
		c->fallback_tried = true;
		log_info("client job=%" PRIu64 " qid=%s event=fallback "
		    "smarthost=%s reason=\"%s\"", c->id, c->qid,
		    net.conf->delivery.smarthost, esc_text(c->last_text));
		route_host(c, net.conf->delivery.smarthost, true);
		resolver_addrs(net.resolver, c->hops[0].host, hop_addrs_cb,
		    c);
		return;
	}
	if (c->nhops > 0 && c->nxdomain_hops == c->nhops &&
	    strcmp(c->last_status, "4.4.3") == 0 && !c->via_smarthost &&
	    !c->fallback_tried) {
		c->last_code = 550;
		strlcpy(c->last_status, "5.4.4", sizeof(c->last_status));
		snprintf(c->last_text, sizeof(c->last_text), "no address "
		    "for any mail host of %s", c->domain);
	}
	client_done(c);
}

static void
mx_cb(void *arg, enum resolve_status status, const struct resolve_mx *mx,
    size_t n, unsigned int ttl)
{
	struct client	*c = arg;
	size_t		 i;

	if (status == RESOLVE_CANCELLED)
		return;
	c->remote[0] = '\0';
	if (status == RESOLVE_TEMPFAIL) {
		c->last_code = 451;
		strlcpy(c->last_status, "4.4.3", sizeof(c->last_status));
		snprintf(c->last_text, sizeof(c->last_text), "temporary DNS "
		    "failure looking up the MX of %s", c->domain);
		c->nhops = 0;
		next_address(c);
		return;
	}
	if (status == RESOLVE_NXDOMAIN) {
		decide_all(c, 550, "5.1.2", "domain %s does not exist",
		    c->domain);
		client_done(c);
		return;
	}
	if (n == 1 && mx[0].host[0] == '\0') {
		decide_all(c, 556, "5.1.10", "domain %s does not accept mail "
		    "(null MX, RFC 7505)", c->domain);
		client_done(c);
		return;
	}
	c->nhops = 0;
	if (n == 0)		/* no MX: the domain is its own host */
		strlcpy(c->hops[c->nhops++].host, c->domain,
		    sizeof(c->hops[0].host));
	for (i = 0; i < n && c->nhops < HOPS_MAX; i++)
		strlcpy(c->hops[c->nhops++].host, mx[i].host,
		    sizeof(c->hops[0].host));
	for (i = 0; i < c->nhops; i++)
		c->hops[i].port = (uint16_t)net.conf->delivery.smtp_port;
	c->ihop = 0;
	c->naddrs = c->iaddr = 0;
	next_address(c);
}

/* A domain literal "[192.0.2.1]" or "[IPv6:2001:db8::1]": one hop. */
static bool
route_literal(struct client *c)
{
	const char	*d = c->domain;
	size_t		 n = strlen(d);

	if (d[0] != '[' || n < 3 || d[n - 1] != ']')
		return false;
	d++;
	n -= 2;
	if (strncasecmp(d, "ipv6:", 5) == 0) {
		d += 5;
		n -= 5;
	}
	if (n >= sizeof(c->hops[0].host))
		n = sizeof(c->hops[0].host) - 1;
	memcpy(c->hops[0].host, d, n);
	c->hops[0].host[n] = '\0';
	c->hops[0].port = (uint16_t)net.conf->delivery.smtp_port;
	c->nhops = 1;
	return true;
}

/* Sockets store connected for LMTP jobs (unix:), until their job. */
struct sock_ent {
	struct sock_ent	*next;
	uint64_t	 id;
	int		 fd;
};
static struct sock_ent	*socks;

void
client_deliver_sock(struct ipc_msg *m)
{
	struct sock_ent	*e;

	ipc_end(m);
	if (m->fd == -1)
		fatalx("net: LMTP socket message without a descriptor");
	e = xcalloc(1, sizeof(*e));
	e->id = m->id;
	e->fd = m->fd;
	e->next = socks;
	socks = e;
}

static int
sock_take(uint64_t id)
{
	struct sock_ent	**ep, *e;
	int		  fd;

	for (ep = &socks; (e = *ep) != NULL; ep = &e->next)
		if (e->id == id) {
			*ep = e->next;
			fd = e->fd;
			free(e);
			return fd;
		}
	return -1;
}

/* "host:port" or "[address]:port" of [delivery] lmtp, as one hop. */
static void
route_lmtp(struct client *c)
{
	const char	*spec = net.conf->delivery.lmtp, *colon;
	struct hop	*h = &c->hops[0];
	size_t		 n;

	if (spec[0] == '[' && (colon = strchr(spec, ']')) != NULL) {
		n = (size_t)(colon - spec - 1);
		spec++;
		colon = strchr(colon, ':');
	} else {
		colon = strrchr(spec, ':');
		n = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (n >= sizeof(h->host))
		n = sizeof(h->host) - 1;
	memcpy(h->host, spec, n);
	h->host[n] = '\0';
	h->port = colon ? (uint16_t)atoi(colon + 1) : 24;
	c->nhops = 1;
	c->ihop = 0;
}

/* An LMTP session on the socket store connected: no connect here. */
static void
start_on_socket(struct client *c)
{
	snprintf(c->remote, sizeof(c->remote), "lmtp[%s]",
	    net.conf->delivery.lmtp + 5);
	evutil_make_socket_nonblocking(c->sock);
	c->bev = bufferevent_socket_new(net.base, c->sock,
	    BEV_OPT_CLOSE_ON_FREE);
	c->sock = -1;
	if (c->bev == NULL) {
		address_failed(c, 451, "4.3.0", "out of memory");
		return;
	}
	session_start(c);
	c->state = C_GREETING;
	set_timeout(c, TIMEOUT_REPLY);
}

void
client_deliver(struct ipc_msg *m)
{
	struct client	*c = xcalloc(1, sizeof(*c));
	char		 route[ADDR_DOMAIN_MAX + 8];
	char		 esc[sizeof(net.conf->delivery.lmtp) * 4 + 3];
	uint32_t	 i, n;

	if (m->fd == -1)
		fatalx("net: delivery job without a descriptor");
	c->id = m->id;
	c->fd = m->fd;
	c->sock = -1;
	net.stats.out_total++;
	if (++net.stats.out_current > net.stats.out_peak)
		net.stats.out_peak = net.stats.out_current;
	ipc_get_strbuf(m, c->qid, sizeof(c->qid));
	ipc_get_strbuf(m, c->from, sizeof(c->from));
	c->body = ipc_get_u32(m);
	c->utf8 = ipc_get_u32(m) != 0;
	c->msglen = ipc_get_u64(m);
	ipc_get_strbuf(m, c->domain, sizeof(c->domain));
	c->lmtp = ipc_get_u32(m) != 0;
	ipc_get_strbuf(m, route, sizeof(route));
	ipc_get_strbuf(m, c->auth_user, sizeof(c->auth_user));
	ipc_get_strbuf(m, c->auth_pass, sizeof(c->auth_pass));
	n = ipc_get_u32(m);
	if (n == 0 || n > 100000)
		fatalx("net: delivery job with %u recipients", n);
	c->n = n;
	c->rcpt = xreallocarray(NULL, n, sizeof(*c->rcpt));
	c->out = xcalloc(n, sizeof(*c->out));
	c->ok = xcalloc(n, sizeof(*c->ok));
	for (i = 0; i < n; i++)
		ipc_get_strbuf(m, c->rcpt[i], sizeof(c->rcpt[i]));
	ipc_end(m);
	log_info("client job=%" PRIu64 " qid=%s event=start %s=%s "
	    "rcpts=%zu size=%" PRIu64, c->id, c->qid, c->lmtp ? "lmtp" :
	    "domain", c->lmtp ? log_value(net.conf->delivery.lmtp, esc,
	    sizeof(esc)) : c->domain, c->n, c->msglen);
	if (c->lmtp) {
		if ((c->sock = sock_take(c->id)) != -1) {
			c->nhops = 1;	/* the socket is the one hop */
			strlcpy(c->hops[0].host, "lmtp", sizeof(c->hops[0].host));
			start_on_socket(c);
		} else if (strncmp(net.conf->delivery.lmtp, "unix:", 5) == 0) {
			decide_all(c, 451, "4.4.1", "cannot connect to the "
			    "LMTP server %s", net.conf->delivery.lmtp);
			client_done(c);
		} else {
			route_lmtp(c);
			resolver_addrs(net.resolver, c->hops[0].host,
			    hop_addrs_cb, c);
		}
	} else if (route[0] != '\0') {
		/* A redirection rule (R5.5): that host, for this domain. */
		route_host(c, route, false);
		c->fallback_tried = true;	/* the rule is the route */
		resolver_addrs(net.resolver, c->hops[0].host, hop_addrs_cb, c);
	} else if (net.conf->delivery.smarthost_mode == SMARTHOST_ALWAYS &&
	    net.conf->delivery.smarthost[0] != '\0') {
		route_host(c, net.conf->delivery.smarthost, true);
		resolver_addrs(net.resolver, c->hops[0].host, hop_addrs_cb, c);
	} else if (route_literal(c))
		resolver_addrs(net.resolver, c->hops[0].host, hop_addrs_cb, c);
	else
		resolver_mx(net.resolver, c->domain, mx_cb, c);
}

void
client_init(void)
{
	char	err[256];

	if ((cl.ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		log_warn("net event=tls-client-unavailable");
	else {
		/* Opportunistic: any certificate (RFC 7435). */
		SSL_CTX_set_verify(cl.ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_min_proto_version(cl.ctx, TLS1_2_VERSION);
	}
	net.resolver = resolver_new(net.base, net.conf->dns.servers.v,
	    net.conf->dns.servers.n, err, sizeof(err));
	if (net.resolver == NULL)
		fatalx("net: resolver: %s", err);
}
