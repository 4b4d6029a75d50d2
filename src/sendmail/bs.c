/*
 * bs.c - sendmail -bs: an SMTP session (RFC 5321) on standard input and
 * output, for local programs that speak SMTP over a pipe (as Postfix's
 * and OpenSMTPD's sendmail -bs do).  Each accepted transaction becomes
 * one drop file (drop.c), the same file a run without -bs makes for
 * that sender and those recipients; the 250 after DATA is sent once the
 * file is on disk under its final name.
 *
 * It runs as the invoking user, its only peer, and trusts the input no
 * more than a run without -bs: the sender is taken as given, as with
 * -f, and the store role believes only the file's owner and checks the
 * recipients again at pickup.  Input is bounded all the same: command
 * lines, recipients ([smtp] max_recipients), the message's size, lines
 * and header section (mail/smtp_data, with the server's bounds).  The
 * replies are the server's (docs/replies.md).  The state machine is the
 * table bs_cmds[]: only the dispatcher answers unknown commands and
 * commands out of state.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "bs.h"
#include "compat.h"
#include "drop.h"
#include "fsio.h"
#include "log.h"
#include "maildrop.h"
#include "smtp_data.h"
#include "smtp_syntax.h"

/* The server's limits (R1.4; src/postino/net/smtp_session.c). */
#define CMD_LINE_MAX	512	/* RFC 5321 4.5.3.1.4, CRLF included */
#define CMD_LINE_EXT	1024	/* MAIL and RCPT: RFC 1869, 512 more */
#define TEXT_LINE_MAX	1000	/* RFC 5321 4.5.3.1.6 */
#define HEADER_MAX	(64 * 1024)
#define IN_MAX		(64 * 1024)	/* one read */
#define OUT_MAX		(16 * 1024)	/* replies held until a read */
#define REPLY_MAX	512

enum bs_state {
	S_CONNECTED,	/* no HELO/EHLO yet */
	S_READY,	/* no transaction */
	S_MAIL,		/* MAIL accepted */
	S_RCPT,		/* at least one RCPT accepted */
	S_DATA,		/* reading the message into the drop file */
	S_QUIT		/* the session is over */
};

#define ST(s)		(1U << (s))
#define ST_TX		(ST(S_MAIL) | ST(S_RCPT))
#define ST_ANY		(ST(S_CONNECTED) | ST(S_READY) | ST_TX)

struct bs_session {
	const struct conf	*conf;
	enum bs_state		 state;
	unsigned int		 errors;
	int			 status;	/* the exit status */
	size_t			 rcpt_max;
	bool			 normalize;	/* [smtp] bare_lf */

	/* standard input: in[off..len) is not consumed yet */
	uint8_t			 in[IN_MAX];
	size_t			 off, len;
	bool			 skip_line;	/* in an over-long line */
	/* standard output */
	char			 out[OUT_MAX];
	size_t			 olen;
	bool			 out_failed;

	/* the transaction */
	struct smtp_mail_params	 mparams;
	struct maildrop_env	*env;
	struct smtp_data	 data;
	struct drop		 drop;
};

struct bs_cmd {
	const char	*name;
	unsigned int	 states;	/* where the command is legal */
	void		(*run)(struct bs_session *, const char *);
};

static void	do_helo(struct bs_session *, const char *);
static void	do_ehlo(struct bs_session *, const char *);
static void	do_mail(struct bs_session *, const char *);
static void	do_rcpt(struct bs_session *, const char *);
static void	do_data(struct bs_session *, const char *);
static void	do_rset(struct bs_session *, const char *);
static void	do_noop(struct bs_session *, const char *);
static void	do_quit(struct bs_session *, const char *);
static void	do_help(struct bs_session *, const char *);
static void	do_vrfy(struct bs_session *, const char *);

static const struct bs_cmd bs_cmds[] = {
	{ "HELO",	ST_ANY,				do_helo },
	{ "EHLO",	ST_ANY,				do_ehlo },
	{ "MAIL",	ST(S_CONNECTED) | ST(S_READY),	do_mail },
	{ "RCPT",	ST_TX,				do_rcpt },
	{ "DATA",	ST(S_RCPT),			do_data },
	{ "RSET",	ST_ANY,				do_rset },
	{ "NOOP",	ST_ANY,				do_noop },
	{ "QUIT",	ST_ANY,				do_quit },
	{ "HELP",	ST_ANY,				do_help },
	{ "VRFY",	ST_ANY,				do_vrfy },
};

/* --- standard error, standard output -------------------------------- */

/* One line on standard error: standard output is the SMTP channel. */
static void __attribute__((format(printf, 1, 2)))
bs_warn(const char *fmt, ...)
{
	va_list	ap;

	fputs("sendmail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void	tx_reset(struct bs_session *);

/* End the session with this exit status; a transaction is dropped. */
static void
session_end(struct bs_session *s, int status)
{
	tx_reset(s);
	s->status = status;
	s->state = S_QUIT;
}

/*
 * Send the replies held.  Called before each read, so that a pipelined
 * group gets its replies together (RFC 2920) and none waits for input.
 */
static void
output_flush(struct bs_session *s)
{
	if (s->olen == 0 || s->out_failed)
		return;
	if (fsio_write_all(STDOUT_FILENO, s->out, s->olen) == -1) {
		bs_warn("writing standard output: %s", strerror(errno));
		s->out_failed = true;
		session_end(s, EX_IOERR);
	}
	s->olen = 0;
}

static void __attribute__((format(printf, 2, 3)))
reply(struct bs_session *s, const char *fmt, ...)
{
	char	line[REPLY_MAX];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		panic("sendmail: reply too long");
	memcpy(line + n, "\r\n", 2);
	n += 2;
	if ((size_t)n > sizeof(s->out) - s->olen)
		output_flush(s);
	if (s->out_failed)
		return;
	memcpy(s->out + s->olen, line, (size_t)n);
	s->olen += (size_t)n;
}

/* A reply that refuses something the client did wrong (R1.4). */
static void
reply_error(struct bs_session *s, const char *text)
{
	reply(s, "%s", text);
	s->errors++;
}

/* --- the transaction -------------------------------------------------- */

static void
tx_reset(struct bs_session *s)
{
	drop_abort(&s->drop);
	memset(&s->mparams, 0, sizeof(s->mparams));
	memset(&s->env->sender, 0, sizeof(s->env->sender));
	s->env->nrcpts = 0;
	if (s->state != S_CONNECTED && s->state != S_QUIT)
		s->state = S_READY;
}

/*
 * The address as the drop file will hold it.  "<postmaster>" gets the
 * configured hostname, as a local name does without -bs.  An address
 * that would not read back from the file is refused here rather than
 * at DATA.
 */
static int
path_check(const struct bs_session *s, struct mailaddr *a)
{
	struct mailaddr	 check;
	const char	*errstr;
	char		 buf[ADDR_PATH_MAX + 1];

	if (a->flags & ADDR_F_NULL)
		return 0;
	if ((a->flags & ADDR_F_POSTMASTER) &&
	    ((size_t)snprintf(buf, sizeof(buf), "postmaster@%s",
	    s->conf->hostname) >= sizeof(buf) ||
	    addr_parse(buf, false, a, &errstr) == -1))
		return -1;
	if (addr_format(a, buf, sizeof(buf)) == -1)
		return -1;
	return addr_parse(buf, true, &check, &errstr);
}

static bool
rcpt_known(const struct maildrop_env *env, const struct mailaddr *a)
{
	size_t	i;

	for (i = 0; i < env->nrcpts; i++)
		if (strcmp(env->rcpts[i].local, a->local) == 0 &&
		    strcmp(env->rcpts[i].domain, a->domain) == 0)
			return true;
	return false;
}

/* The reply for a drop file that could not be written. */
static const char *
drop_reply(struct bs_session *s)
{
	if (s->drop.status == EX_DATAERR)
		return "552 5.3.4 Message size exceeds fixed limit";
	bs_warn("%s", s->drop.err);
	if (s->drop.errnum == ENOSPC || s->drop.errnum == EDQUOT)
		return "452 4.3.1 Insufficient system storage";
	return "451 4.3.0 Error: local error in processing";
}

/* The reply for a message whose end was reached, or NULL to commit. */
static const char *
data_verdict(struct bs_session *s)
{
	unsigned int	flags = s->data.flags;

	if (s->drop.status == EX_DATAERR)
		return drop_reply(s);
	/* With bare_lf = normalize they were rewritten to CRLF. */
	if ((flags & DATA_F_BARE_LF) && !s->normalize)
		return "554 5.6.0 Bare <LF> received";
	if ((flags & DATA_F_BARE_CR) && !s->normalize)
		return "554 5.6.0 Bare <CR> received";
	if (flags & DATA_F_LONG_LINE)
		return "500 5.5.2 Line too long";
	if (flags & DATA_F_LONG_HEADER)
		return "552 5.6.0 Header section too long";
	if (s->data.hdr.received > s->conf->smtp.max_hops)
		return "554 5.4.6 Too many hops";
	if (s->drop.status != 0)
		return drop_reply(s);
	return NULL;
}

static void
data_out(void *arg, const uint8_t *p, size_t len)
{
	struct bs_session	*s = arg;

	drop_put(&s->drop, p, len);
}

/* The end of data: refuse the message, or make it durable and say so. */
static void
data_end(struct bs_session *s)
{
	const char	*refuse;

	if ((refuse = data_verdict(s)) == NULL &&
	    drop_commit(&s->drop) == -1)
		refuse = drop_reply(s);
	if (refuse != NULL)
		reply(s, "%s", refuse);
	else
		reply(s, "250 2.0.0 Ok: queued as %s", s->drop.name);
	tx_reset(s);
}

/* Feed what input there is to the message; false to wait for more. */
static bool
data_step(struct bs_session *s)
{
	size_t	used;
	bool	done = false;

	if (s->off == s->len)
		return false;
	used = smtp_data_feed(&s->data, s->in + s->off, s->len - s->off,
	    &done, data_out, s);
	s->off += used;
	if (!done)
		return false;
	data_end(s);
	return true;
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
do_helo(struct bs_session *s, const char *arg)
{
	if (!helo_arg_ok(arg)) {
		reply_error(s, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	tx_reset(s);
	s->state = S_READY;
	reply(s, "250 %s", s->conf->hostname);
}

static void
do_ehlo(struct bs_session *s, const char *arg)
{
	if (!helo_arg_ok(arg)) {
		reply_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	tx_reset(s);
	s->state = S_READY;
	reply(s, "250-%s", s->conf->hostname);
	reply(s, "250-SIZE %llu",
	    (unsigned long long)s->conf->smtp.max_message_size);
	reply(s, "250-PIPELINING");
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250 SMTPUTF8");
}

static void
do_mail(struct bs_session *s, const char *arg)
{
	struct mailaddr	 from;
	const char	*err;

	if (s->state == S_CONNECTED && s->conf->smtp.require_helo) {
		reply_error(s, "503 5.5.1 Send HELO/EHLO first");
		return;
	}
	if (smtp_parse_mail(arg, &from, &s->mparams, &err) == -1) {
		reply_error(s, err);
		return;
	}
	if (s->mparams.body == BODY_BINARYMIME) {
		reply_error(s, "555 5.5.4 Unsupported parameter");
		return;
	}
	if (s->mparams.has_size &&
	    s->mparams.size > s->conf->smtp.max_message_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (path_check(s, &from) == -1) {
		reply_error(s, "553 5.1.7 Bad sender address syntax");
		return;
	}
	s->env->sender = from;
	s->state = S_MAIL;
	reply(s, "250 2.1.0 Ok");
}

static void
do_rcpt(struct bs_session *s, const char *arg)
{
	struct smtp_rcpt_params	 p;
	struct mailaddr		 to;
	const char		*err;

	if (smtp_parse_rcpt(arg, s->mparams.smtputf8, &to, &p, &err) == -1) {
		reply_error(s, err);
		return;
	}
	if (path_check(s, &to) == -1) {
		reply_error(s, "553 5.1.3 Bad recipient address syntax");
		return;
	}
	/* One rcpt line each, as sendmail without -bs writes them. */
	if (!rcpt_known(s->env, &to)) {
		if (s->env->nrcpts >= s->rcpt_max) {
			reply(s, "452 4.5.3 Too many recipients");
			return;
		}
		s->env->rcpts[s->env->nrcpts++] = to;
	}
	s->state = S_RCPT;
	reply(s, "250 2.1.5 Ok");
}

static void
do_data(struct bs_session *s, const char *arg)
{
	if (*arg != '\0') {
		reply_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	s->env->uid = getuid();
	if (drop_open(&s->drop, s->conf, s->env) == -1) {
		reply(s, "%s", drop_reply(s));
		return;
	}
	smtp_data_init(&s->data, TEXT_LINE_MAX, HEADER_MAX, s->normalize);
	s->state = S_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
do_rset(struct bs_session *s, const char *arg)
{
	tx_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void
do_noop(struct bs_session *s, const char *arg)
{
	reply(s, "250 2.0.0 Ok");
}

static void
do_quit(struct bs_session *s, const char *arg)
{
	reply(s, "221 2.0.0 Bye");
	session_end(s, EX_OK);
}

static void
do_help(struct bs_session *s, const char *arg)
{
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP "
	    "QUIT HELP VRFY");
}

static void
do_vrfy(struct bs_session *s, const char *arg)
{
	reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and "
	    "attempt delivery");
}

/* --- the dispatcher --------------------------------------------------- */

static const char *
wrong_state(const struct bs_session *s, const struct bs_cmd *c)
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
dispatch(struct bs_session *s, const char *line, size_t len)
{
	const struct bs_cmd	*c = NULL;
	char			 verb[SMTP_VERB_MAX];
	const char		*args;
	size_t			 i;

	if (strlen(line) == len && smtp_cmd_split(line, verb, &args) == 0)
		for (i = 0; i < sizeof(bs_cmds) / sizeof(bs_cmds[0]); i++)
			if (strcmp(verb, bs_cmds[i].name) == 0)
				c = &bs_cmds[i];
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

/*
 * Run one command line if a whole one is there; false to wait for more.
 * A line over CMD_LINE_EXT octets is skipped to its end and refused.
 * A bare LF ends a line only with bare_lf = normalize.
 */
static bool
command_step(struct bs_session *s)
{
	const uint8_t	*p = s->in + s->off, *lf;
	char		 line[CMD_LINE_EXT + 1];
	size_t		 avail = s->len - s->off, n;

	if ((lf = memchr(p, '\n', avail)) == NULL) {
		if (avail > CMD_LINE_EXT) {
			s->off = s->len;	/* its end is still to come */
			s->skip_line = true;
		}
		return false;
	}
	n = (size_t)(lf - p) + 1;
	s->off += n;
	if (s->skip_line || n > CMD_LINE_EXT) {
		s->skip_line = false;
		reply_error(s, "500 5.5.2 Line too long");
		return true;
	}
	n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	else if (!s->normalize) {
		reply_error(s, "500 5.5.2 Bare <LF> received");
		return true;
	}
	memcpy(line, p, n);
	line[n] = '\0';
	dispatch(s, line, n);
	return true;
}

/* --- the session ------------------------------------------------------ */

static void
input_eof(struct bs_session *s)
{
	if (s->state == S_MAIL || s->state == S_RCPT || s->state == S_DATA) {
		bs_warn("end of input in the middle of a transaction; "
		    "nothing queued");
		session_end(s, EX_PROTOCOL);
		return;
	}
	session_end(s, EX_OK);
}

/*
 * Wait for input, [smtp] timeout_command or timeout_data seconds as in
 * the server (R1.6), and read it.  The replies held go out first.
 */
static void
input_fill(struct bs_session *s)
{
	struct pollfd	pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	unsigned int	secs;
	ssize_t		r;
	int		n;

	output_flush(s);
	if (s->state == S_QUIT)
		return;
	memmove(s->in, s->in + s->off, s->len - s->off);
	s->len -= s->off;
	s->off = 0;
	if (s->len == sizeof(s->in))
		panic("sendmail: input buffer full");
	secs = s->state == S_DATA ? s->conf->smtp.timeout_data :
	    s->conf->smtp.timeout_command;
	while ((n = poll(&pfd, 1, (int)secs * 1000)) == -1 && errno == EINTR)
		;
	if (n == 0) {
		reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->conf->hostname);
		session_end(s, EX_PROTOCOL);
		return;
	}
	r = -1;
	if (n != -1)
		while ((r = read(STDIN_FILENO, s->in + s->len,
		    sizeof(s->in) - s->len)) == -1 && errno == EINTR)
			;
	if (r == -1) {
		bs_warn("reading standard input: %s", strerror(errno));
		session_end(s, EX_IOERR);
		return;
	}
	if (r == 0) {
		input_eof(s);
		return;
	}
	s->len += (size_t)r;
}

/* R1.4: the error that reaches max_errors (since errors) closes. */
static void
too_many_errors(struct bs_session *s, unsigned int errors)
{
	if (s->state == S_QUIT || s->errors <= errors ||
	    s->errors < s->conf->smtp.max_errors)
		return;
	reply(s, "421 4.7.0 %s Error: too many errors", s->conf->hostname);
	session_end(s, EX_PROTOCOL);
}

static bool
session_step(struct bs_session *s)
{
	unsigned int	errors = s->errors;
	bool		r;

	switch (s->state) {
	case S_DATA:
		r = data_step(s);
		break;
	case S_CONNECTED:
	case S_READY:
	case S_MAIL:
	case S_RCPT:
		r = command_step(s);
		break;
	default:
		panic("sendmail: step in state %d", (int)s->state);
	}
	too_many_errors(s, errors);
	return r;
}

int
bs_session_run(const struct conf *conf)
{
	static struct bs_session	s;

	s.conf = conf;
	s.state = S_CONNECTED;
	s.normalize = conf->smtp.bare_lf == BARE_LF_NORMALIZE;
	s.rcpt_max = conf->smtp.max_recipients < MAILDROP_RCPT_MAX ?
	    conf->smtp.max_recipients : MAILDROP_RCPT_MAX;
	if ((s.env = calloc(1, sizeof(*s.env))) == NULL) {
		bs_warn("out of memory");
		return EX_OSERR;
	}
	reply(&s, "220 %s ESMTP postino (sendmail -bs)", conf->hostname);
	while (s.state != S_QUIT)
		if (!session_step(&s))
			input_fill(&s);
	output_flush(&s);
	free(s.env);
	s.env = NULL;
	return s.status;
}
