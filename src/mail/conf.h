/*
 * conf.h - the configuration file (R7.1, SPEC section 8).
 *
 * One file of "key = value" lines in [sections]; a repeated section
 * carries a name ("[listener submission]").  Every key is one row of the
 * table in conf.c (section, name, type, default, min, max, doc) that
 * feeds the parser, check-config and docs/config.md.  Every role parses
 * the file itself (after re-exec), so the struct holds no pointers into
 * another process.
 */
#ifndef MAIL_CONF_H
#define MAIL_CONF_H

#include <sys/socket.h>

#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_NAME_MAX		64
#define CONF_LISTEN_MAX		8	/* addresses per listener */
#define CONF_LISTENERS_MAX	32
#define CONF_LIST_MAX		64	/* items of a list value */

enum listener_profile {
	PROFILE_MX, PROFILE_SUBMISSION, PROFILE_SUBMISSIONS, PROFILE_DEVICES,
	PROFILE_POP3, PROFILE_POP3S
};
enum tls_mode { TLS_NONE, TLS_STARTTLS, TLS_IMPLICIT };
enum bare_lf_mode { BARE_LF_REJECT, BARE_LF_NORMALIZE };
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

struct conf_listener {
	char		name[CONF_NAME_MAX];
	int		line;			/* of the [listener] header */
	size_t		naddrs;
	struct sockaddr_storage addrs[CONF_LISTEN_MAX];
	socklen_t	addrlens[CONF_LISTEN_MAX];
	enum listener_profile profile;
	enum tls_mode	tls;	/* default: by profile (mx, submission: starttls;
				   submissions, pop3s: implicit; devices: none;
				   pop3: starttls) */
	bool		auth_plaintext_without_tls;
};

#define CONF_FILE_MAX	(1024 * 1024)	/* octets of the whole file */

struct conf_list {
	size_t		n;
	char		*v[CONF_LIST_MAX];
};

struct conf {
	unsigned int	refs;		/* conf_ref; 1 when made */
	char		path[PATH_MAX];
	char		hostname[256];		/* default: gethostname() */
	char		data_dir[PATH_MAX];	/* default: /var/lib/postino */
	char		user[CONF_NAME_MAX];	/* default: postino */
	unsigned int	workers;		/* 40, 1..1024 */
	enum log_level	log_level;		/* info */

	size_t		nlisteners;
	struct conf_listener listeners[CONF_LISTENERS_MAX];

	struct {
		char	cert[PATH_MAX];	/* default: <data_dir>/tls/cert.pem */
		char	key[PATH_MAX];	/* default: <data_dir>/tls/key.pem */
	} tls;

	struct {
		unsigned int	max_connections;	/* 256 */
		unsigned int	max_connections_per_ip;	/* 20 */
		unsigned int	backlog;		/* 5000 */
		uint64_t	max_message_size;	/* 50M (size: K, M, G) */
		unsigned int	max_recipients;		/* 100 */
		unsigned int	max_hops;		/* 20 */
		bool		require_helo;		/* yes */
		unsigned int	max_errors;		/* 10 */
		enum bare_lf_mode bare_lf;		/* reject */
		struct conf_list auth_mechanisms;	/* PLAIN LOGIN CRAM-MD5
							   SCRAM-SHA-256 SCRAM-SHA-1 */
		unsigned int	timeout_command;	/* 300 s (RFC 5321 4.5.3.2.7) */
		unsigned int	timeout_data;		/* 600 s (4.5.3.2.6) */
		unsigned int	timeout_greeting;	/* 0 s: wait before banner */
		unsigned int	scram_iterations;	/* 4096 (RFC 7677 4) */
		bool		peername_lookup;	/* yes */
	} smtp;

	struct {
		unsigned int	timeout;		/* 600 s (RFC 1939 3) */
		unsigned int	max_commands;		/* 1000000 a session */
		unsigned int	max_messages;		/* 100000 listed */
	} pop3;

	struct {
		bool		reject_unauthorized_local_sender;	/* yes */
		bool		reject_auth_sender_mismatch;		/* yes */
		bool		relay_only_local_senders;		/* no */
		unsigned int	pop_before_smtp_minutes;		/* 15 */
		bool		pop_before_smtp_global;			/* no */
	} relay;

	struct {
		struct conf_list dnsbl;				/* empty */
		bool		dnsbl_close;			/* yes */
		bool		reject_unknown_sender_domain;	/* yes */
		bool		spf;				/* yes */
		bool		spf_fail_reject;	/* spf_fail: reject|tag */
		bool		spf_softfail_reject;	/* spf_softfail: tag|reject */
		unsigned int	dns_timeout;		/* 5 s */
	} antispam;

	struct {
		unsigned int	block_minutes;			/* 30 */
		unsigned int	max_auth_failures;		/* 5 */
		unsigned int	max_unknown_rcpts;		/* 10 */
		unsigned int	max_connections_per_minute;	/* 60 */
		unsigned int	max_messages_per_hour;		/* 0 = off */
		unsigned int	max_protocol_errors;		/* 50 an hour */
		struct conf_list bypass;
	} intrusion;

	struct {
		unsigned int	messages_per_account;	/* an hour; 0 = off */
		unsigned int	recipients_per_account;
		unsigned int	messages_per_ip;
		unsigned int	recipients_per_ip;
	} ratelimit;

	struct {
		char		clamd[PATH_MAX];		/* empty = off */
		bool		on_error_accept;	/* on_error: tempfail|accept */
		unsigned int	timeout;		/* 30 s, each wait */
	} antivirus;

	struct {
		char		smarthost[256];
		enum { SMARTHOST_NEVER, SMARTHOST_ALWAYS, SMARTHOST_FALLBACK }
				smarthost_mode;
		char		smarthost_user[256];
		char		smarthost_password_file[PATH_MAX];
		bool		smarthost_tls_require;	/* smarthost_tls: may|require */
		unsigned int	max_outgoing;			/* 256 */
		unsigned int	max_outgoing_per_domain;	/* 20 */
		unsigned int	max_recipients_per_session;	/* 50 */
		unsigned int	delay_notify_hours;		/* 4 */
		unsigned int	bounce_after_days;		/* 5 */
		char		failed_mail[256];	/* postmaster@hostname */
		char		lmtp[256];			/* empty */
		bool		at_commit;			/* yes */
		unsigned int	smtp_port;			/* 25 */
		unsigned int	retry_first;			/* 300 s */
		unsigned int	retry_max;			/* 3600 s */
	} delivery;

	struct {
		struct conf_list servers;
	} dns;

	struct {
		enum { STORE_SQLITE, STORE_POSTGRES } driver;
		char		dsn[1024];
	} store;

	struct {
		char		listen[256];
	} metrics;
};

/*
 * Read and check the file.  On success returns 0 and *conf_r (free with
 * conf_free).  On error returns -1 and writes one line to err, of the
 * form "FILE:LINE: key 'NAME': WHAT, expected WHAT_WOULD_BE_RIGHT"
 * (or "FILE: ..." when no line is at fault, e.g. the file is missing).
 * Relative paths in the file are taken relative to the directory of the
 * configuration file.
 */
int	conf_load(const char *path, struct conf **conf_r, char *err,
	    size_t errlen);

/*
 * The same from an open file (the parent's copy of the text it checked,
 * passed to the roles), read from offset 0; path, absolute, names it in
 * messages and anchors relative paths.
 */
int	conf_load_fd(int fd, const char *path, struct conf **conf_r,
	    char *err, size_t errlen);

/* Parse from memory (fuzzing, unit tests); name is used in messages. */
int	conf_parse(const char *name, const char *text, size_t len,
	    struct conf **conf_r, char *err, size_t errlen);

void	conf_free(struct conf **conf);

/*
 * Shared by whoever still works with it (a session after a reload):
 * conf_ref counts one more holder, conf_unref one less and frees the
 * configuration with the last (the reference made with it counts).
 * One thread only.
 */
const struct conf	*conf_ref(const struct conf *);
void			 conf_unref(const struct conf **);

/*
 * A numeric "ADDR:PORT" or "[ADDR]:PORT", as the parser accepts it for
 * a listen key, into *ss and *len_r: 0, or -1.
 */
int	conf_addr_parse(const char *text, struct sockaddr_storage *ss,
	    socklen_t *len_r);

/* Names for the enums, for logs and check-config. */
const char	*conf_profile_name(enum listener_profile);
const char	*conf_tls_name(enum tls_mode);

/* Write the effective configuration, every key, to f (check-config -v,
 * postino-admin show config). */
void	conf_dump(const struct conf *conf, FILE *f);

/* Write docs/config.md's key reference (markdown) from the table. */
void	conf_doc(FILE *f);

/* Write postino.conf(5) (roff, man(7) macros) from the same table. */
void	conf_man(FILE *f);

#endif
