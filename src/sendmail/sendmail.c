/*
 * sendmail.c - the sendmail(1) command for local programs (R7.6):
 *
 *	sendmail [-t] [-i] [-f ADDR] [-F NAME] [-C FILE] [ADDR ...]
 *	sendmail -bs [-C FILE]
 *
 * reads a message on standard input and leaves it as one drop file in
 * <data_dir>/maildrop/ (format in maildrop.h; written by drop.c), which
 * the store role picks up, checks again and queues (Postfix postdrop ->
 * maildrop/ -> pickup; OpenSMTPD enqueue).  With -bs it speaks SMTP on
 * standard input and output instead, one drop file a transaction
 * (bs.c).  It never talks to the network.
 *
 * It runs as the invoking user with no privileges and trusts its input
 * no more than that user: the store role believes nothing in the file but
 * its owner.  Because -C and POSTINO_CONF choose the data directory, this
 * program must never be installed set-user-ID or set-group-ID.
 */
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "bs.h"
#include "compat.h"
#include "conf.h"
#include "drop.h"
#include "maildrop.h"

#define DEFAULT_CONF	"/etc/postino/postino.conf"
#define INPUT_MAX	(64 * 1024)	/* one read; longest piece of a line */
#define HEADER_MAX	(1024 * 1024)	/* header section held for -t */

struct opts {
	bool		 smtp;		/* -bs */
	bool		 extract;	/* -t */
	bool		 ignore_dots;	/* -i, -oi */
	const char	*from;		/* -f, -r */
	const char	*conf;		/* -C */
};

/* Standard input, cut into lines; a longer line comes in pieces. */
struct input {
	uint8_t		 buf[INPUT_MAX];
	size_t		 off, len;
	bool		 eof;
	bool		 bol;		/* the next piece begins a line */
};

struct piece {
	const uint8_t	*p;
	size_t		 n;
	bool		 bol;		/* it begins a line */
};

/* What the address callbacks need. */
struct addrs {
	struct maildrop_env *env;
	const char	*hostname;
	size_t		 nsenders;
	char		 bad[ADDR_PATH_MAX * 2 + 1];	/* the one refused */
};

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list	ap;

	drop_tmp_unlink();
	fputs("sendmail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: sendmail [-it] [-C file] [-F name] "
	    "[-f sender] [address ...]\n"
	    "       sendmail -bs [-C file]\n");
	exit(EX_USAGE);
}

static void
on_signal(int sig)
{
	drop_tmp_unlink();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
setup_signals(void)
{
	static const int	 sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM };
	struct sigaction	 sa;
	size_t			 i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	/* Past a file size limit, write(2) fails with EFBIG and we say so. */
	signal(SIGXFSZ, SIG_IGN);
}

/* -bX: -bm, the default, and -bs are implemented. */
static void
check_mode(const char *mode, struct opts *o)
{
	if (strcmp(mode, "m") == 0)
		o->smtp = false;
	else if (strcmp(mode, "s") == 0)
		o->smtp = true;
	else
		die(EX_USAGE, "-b%s is not supported", mode);
}

/*
 * Options of the traditional sendmail that local programs pass.  Those
 * that have no meaning here (-F, -N, -O, -o other than -oi, ...) are
 * accepted and ignored.  '+': stop at the first address, as POSIX does.
 */
static int
parse_opts(int argc, char *argv[], struct opts *o)
{
	int	ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt(argc, argv, "+B:b:C:F:f:imN:nO:o:R:r:tUV:vX:"))
	    != -1) {
		switch (ch) {
		case 'b':
			check_mode(optarg, o);
			break;
		case 'C':
			o->conf = optarg;
			break;
		case 'f':
		case 'r':
			o->from = optarg;
			break;
		case 'i':
			o->ignore_dots = true;
			break;
		case 'o':
			if (strcmp(optarg, "i") == 0)
				o->ignore_dots = true;
			break;
		case 't':
			o->extract = true;
			break;
		case '?':
			usage();
		default:
			break;
		}
	}
	return optind;
}

static struct conf *
load_conf(const struct opts *o)
{
	struct conf	*conf;
	const char	*path = o->conf;
	char		 err[1024];

	if (path == NULL)
		path = getenv("POSTINO_CONF");
	if (path == NULL || *path == '\0')
		path = DEFAULT_CONF;
	if (conf_load(path, &conf, err, sizeof(err)) == -1)
		die(EX_CONFIG, "%s", err);
	return conf;
}

/*
 * Parse s as an address, "@hostname" added when it has no '@' (a local
 * user, as the traditional sendmail does).  On error the text is kept in
 * r->bad for the message.
 */
static int
qualify(struct addrs *r, const char *s, struct mailaddr *a,
    const char **errstr_r)
{
	const char	*p = s;
	char		 buf[sizeof(r->bad)];

	if (strchr(s, '@') == NULL &&
	    (size_t)snprintf(buf, sizeof(buf), "%s@%s", s, r->hostname) <
	    sizeof(buf))
		p = buf;
	if (addr_parse(p, true, a, errstr_r) == 0)
		return 0;
	strlcpy(r->bad, s, sizeof(r->bad));
	return -1;
}

/* maildrop_addr_cb: add a recipient unless it is there already. */
static int
add_rcpt(void *arg, const char *s, const char **errstr_r)
{
	struct addrs		*r = arg;
	struct maildrop_env	*env = r->env;
	struct mailaddr		 a;
	size_t			 i;

	if (qualify(r, s, &a, errstr_r) == -1)
		return -1;
	for (i = 0; i < env->nrcpts; i++)
		if (strcmp(env->rcpts[i].local, a.local) == 0 &&
		    strcmp(env->rcpts[i].domain, a.domain) == 0)
			return 0;
	if (env->nrcpts == MAILDROP_RCPT_MAX)
		die(EX_DATAERR, "too many recipients (at most %d)",
		    MAILDROP_RCPT_MAX);
	env->rcpts[env->nrcpts++] = a;
	return 0;
}

/* maildrop_addr_cb: the one address of -f. */
static int
add_sender(void *arg, const char *s, const char **errstr_r)
{
	struct addrs	*r = arg;

	if (r->nsenders++ > 0) {
		*errstr_r = "more than one address";
		return -1;
	}
	return qualify(r, s, &r->env->sender, errstr_r);
}

/* Name the address refused by qualify(), else the list it was in. */
static void __attribute__((noreturn))
addr_die(const struct addrs *r, const char *what, const char *arg,
    const char *errstr)
{
	if (r->bad[0] != '\0')
		die(EX_DATAERR, "bad %s address '%s': %s", what, r->bad, errstr);
	if (arg != NULL)
		die(EX_DATAERR, "bad %s '%.300s': %s", what, arg, errstr);
	die(EX_DATAERR, "bad %s in To:, Cc: or Bcc: fields: %s", what, errstr);
}

/* The sender: -f ADDR ("" or "<>" for the null path), else user@host. */
static void
set_sender(struct addrs *r, const char *from)
{
	struct passwd	*pw;
	const char	*errstr = NULL;

	if (from != NULL && (*from == '\0' || strcmp(from, "<>") == 0)) {
		r->env->sender.flags = ADDR_F_NULL;
		return;
	}
	if (from == NULL) {
		if ((pw = getpwuid(getuid())) == NULL)
			die(EX_NOUSER, "no user name for uid %lu; use -f",
			    (unsigned long)getuid());
		from = pw->pw_name;
	}
	if (maildrop_addr_list((const uint8_t *)from, strlen(from),
	    add_sender, r, &errstr) == -1)
		addr_die(r, "sender", from, errstr);
	if (r->nsenders == 0)
		die(EX_DATAERR, "bad sender address '%s'", from);
}

/* Each argument is an address list: "a@b, Name <c@d>" works too. */
static void
add_args(struct addrs *r, int argc, char *argv[])
{
	const char	*errstr;
	int		 i;

	for (i = 0; i < argc; i++) {
		if (maildrop_addr_list((const uint8_t *)argv[i],
		    strlen(argv[i]), add_rcpt, r, &errstr) == -1)
			addr_die(r, "recipient", argv[i], errstr);
	}
}

/*
 * The next piece of input: a line with its LF, or the part of a longer
 * line that fills the buffer, or the last octets before EOF.  Returns 1,
 * or 0 at the end of input.
 */
static int
input_piece(struct input *in, struct piece *pc)
{
	const uint8_t	*nl;
	ssize_t		 r;

	for (;;) {
		nl = memchr(in->buf + in->off, '\n', in->len - in->off);
		if (nl != NULL || in->eof ||
		    (in->off == 0 && in->len == sizeof(in->buf)))
			break;
		memmove(in->buf, in->buf + in->off, in->len - in->off);
		in->len -= in->off;
		in->off = 0;
		r = read(STDIN_FILENO, in->buf + in->len,
		    sizeof(in->buf) - in->len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			die(EX_IOERR, "reading standard input: %s",
			    strerror(errno));
		in->eof = r == 0;
		in->len += (size_t)r;
	}
	pc->p = in->buf + in->off;
	pc->n = nl != NULL ? (size_t)(nl + 1 - pc->p) : in->len - in->off;
	pc->bol = in->bol;
	in->off += pc->n;
	in->bol = nl != NULL;
	return pc->n > 0;
}

/* Without -i, a line of a single dot ends the message (sendmail(8)). */
static bool
is_dot_line(const struct piece *pc, bool ignore_dots)
{
	if (ignore_dots || !pc->bol || pc->p[0] != '.')
		return false;
	/* A piece of one octet without LF is the last one. */
	return pc->n == 1 || (pc->n == 2 && pc->p[1] == '\n') ||
	    (pc->n == 3 && pc->p[1] == '\r' && pc->p[2] == '\n');
}

static bool
is_blank_line(const struct piece *pc)
{
	return pc->bol && ((pc->n == 1 && pc->p[0] == '\n') ||
	    (pc->n == 2 && pc->p[0] == '\r' && pc->p[1] == '\n'));
}

/*
 * Read the header section for -t, up to the empty line (not kept).
 * Returns true if a body follows, false if the message ended first.
 */
static bool
read_header(struct input *in, bool ignore_dots, uint8_t *hdr, size_t *len_r)
{
	struct piece	pc;

	*len_r = 0;
	while (input_piece(in, &pc)) {
		if (is_dot_line(&pc, ignore_dots))
			return false;
		if (is_blank_line(&pc))
			return true;
		if (pc.n > HEADER_MAX - *len_r)
			die(EX_DATAERR, "header section longer than %d octets",
			    HEADER_MAX);
		memcpy(hdr + *len_r, pc.p, pc.n);
		*len_r += pc.n;
	}
	return false;
}

/* The recipients of -t, and the message without its Bcc: fields. */
static bool
extract_rcpts(struct input *in, const struct opts *o, struct addrs *r,
    uint8_t *hdr, size_t *len_r)
{
	const char	*errstr;
	bool		 body;

	body = read_header(in, o->ignore_dots, hdr, len_r);
	if (maildrop_header_addrs(hdr, *len_r, add_rcpt, r, &errstr) == -1)
		addr_die(r, "recipient", NULL, errstr);
	*len_r = maildrop_header_strip(hdr, *len_r, "Bcc");
	return body;
}

/* Die with what made the drop file fail, if anything did. */
static void
drop_check(const struct drop *d)
{
	if (d->status != 0)
		die(d->status, "%s", d->err);
}

/* Copy the rest of standard input, up to EOF or a dot line. */
static void
copy_body(struct input *in, struct drop *d, bool ignore_dots)
{
	struct piece	pc;

	while (input_piece(in, &pc)) {
		if (is_dot_line(&pc, ignore_dots))
			return;
		drop_put(d, pc.p, pc.n);
		drop_check(d);
	}
}

static void
submit(const struct opts *o, const struct conf *conf, struct addrs *r)
{
	static struct input	 in = { .bol = true };
	static struct drop	 d;
	uint8_t			*hdr = NULL;
	size_t			 hdrlen = 0;
	bool			 body = true;

	if (o->extract) {
		if ((hdr = malloc(HEADER_MAX)) == NULL)
			die(EX_OSERR, "out of memory");
		body = extract_rcpts(&in, o, r, hdr, &hdrlen);
	}
	if (r->env->nrcpts == 0)
		die(EX_USAGE, "no recipients");
	if (drop_open(&d, conf, r->env) == -1)
		drop_check(&d);
	drop_put(&d, hdr, hdrlen);
	if (o->extract && body)
		drop_put(&d, (const uint8_t *)"\n", 1);
	drop_check(&d);
	if (body)
		copy_body(&in, &d, o->ignore_dots);
	if (drop_commit(&d) == -1)
		drop_check(&d);
	free(hdr);
}

/* -bs: the session gives the envelopes; -t, -i and -f are ignored. */
static int
run_smtp(const struct conf *conf)
{
	/* A client gone: write(2) fails with EPIPE and the session ends. */
	signal(SIGPIPE, SIG_IGN);
	return bs_session_run(conf);
}

int
main(int argc, char *argv[])
{
	struct opts	 o;
	struct conf	*conf;
	struct addrs	 r;
	int		 n, status;

	n = parse_opts(argc, argv, &o);
	if (o.smtp && n < argc)
		die(EX_USAGE, "-bs takes no address operands");
	setup_signals();
	conf = load_conf(&o);
	if (o.smtp) {
		status = run_smtp(conf);
		conf_free(&conf);
		return status;
	}
	memset(&r, 0, sizeof(r));
	if ((r.env = calloc(1, sizeof(*r.env))) == NULL)
		die(EX_OSERR, "out of memory");
	r.hostname = conf->hostname;
	r.env->uid = getuid();
	set_sender(&r, o.from);
	add_args(&r, argc - n, argv + n);
	if (!o.extract && r.env->nrcpts == 0)
		die(EX_USAGE, "no recipients");
	submit(&o, conf, &r);
	free(r.env);
	conf_free(&conf);
	return EX_OK;
}
