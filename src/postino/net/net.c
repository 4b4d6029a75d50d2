/*
 * net.c - the net role: every network peer.
 *
 * Starts as root (when the daemon was), loads the TLS key, then chroots
 * into the empty directory and becomes the unprivileged network user;
 * accepts connections on the listening sockets the parent passed, and
 * talks to store over its channel.  Holds no password and no file of
 * the data directory: what a client sends reaches disk only through a
 * spool descriptor that store opened.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "client.h"
#include "compat.h"
#include "httpd.h"
#include "log.h"
#include "net.h"
#include "strhash.h"
#include "proto.h"
#include "role.h"
#include "pop3_session.h"
#include "smtp_session.h"
#include "tls.h"
#include "xalloc.h"

struct net net;

#define BUCKETS	4096

struct sess_ent {
	struct sess_ent			*next;
	uint64_t			 id;
	void				*s;
	const struct net_session_ops	*ops;
};
static struct sess_ent	*sessions[BUCKETS];

struct ip_ent {
	struct ip_ent	*next;
	char		 ip[64];
	unsigned int	 count;
};
static struct ip_ent	*ips[BUCKETS];

static const char too_many[] =
    "421 4.7.0 Too many connections, try again later\r\n";
static const char too_many_pop3[] =
    "-ERR [SYS/TEMP] Too many connections, try again later.\r\n";

void
net_session_add(uint64_t id, void *s, const struct net_session_ops *ops)
{
	struct sess_ent	*e = xmalloc(sizeof(*e));

	e->id = id;
	e->s = s;
	e->ops = ops;
	e->next = sessions[id % BUCKETS];
	sessions[id % BUCKETS] = e;
}

void
net_session_del(uint64_t id)
{
	struct sess_ent	**pp, *e;

	for (pp = &sessions[id % BUCKETS]; (e = *pp) != NULL; pp = &e->next)
		if (e->id == id) {
			*pp = e->next;
			free(e);
			return;
		}
}

static struct sess_ent *
session_find(uint64_t id)
{
	struct sess_ent	*e;

	for (e = sessions[id % BUCKETS]; e != NULL; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

static unsigned int
ip_hash(const char *ip)
{
	return strhash(ip) % BUCKETS;
}

bool
net_conn_acquire(const char *ip, unsigned int max)
{
	struct ip_ent	*e;

	for (e = ips[ip_hash(ip)]; e != NULL; e = e->next)
		if (strcmp(e->ip, ip) == 0)
			break;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		strlcpy(e->ip, ip, sizeof(e->ip));
		e->next = ips[ip_hash(ip)];
		ips[ip_hash(ip)] = e;
	}
	if (e->count >= max)
		return false;
	e->count++;
	return true;
}

void
net_conn_release(const char *ip)
{
	struct ip_ent	**pp, *e;

	for (pp = &ips[ip_hash(ip)]; (e = *pp) != NULL; pp = &e->next)
		if (strcmp(e->ip, ip) == 0) {
			if (--e->count == 0) {
				*pp = e->next;
				free(e);
			}
			return;
		}
}

void
net_sockaddr_text(const struct sockaddr *sa, char *buf, size_t size)
{
	const void	*a;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf,
			    (socklen_t)size);
			return;
		}
		a = &s6->sin6_addr;
	} else
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	if (inet_ntop(sa->sa_family, a, buf, (socklen_t)size) == NULL)
		strlcpy(buf, "unknown", size);
}

/* net.h says which refusals are the client's doing. */
const char *
net_refusal_event(const char *check, const char *text)
{
	static const char *const not_theirs[] = { "store-error", "virus-scan",
	    "max-recipients", "max-connections" };
	size_t	i;

	for (i = 0; i < sizeof(not_theirs) / sizeof(not_theirs[0]); i++)
		if (strcmp(check, not_theirs[i]) == 0)
			return "defer";
	if (text[0] == '4' && strlen(text) > 8 && text[3] == ' ' &&
	    (strncmp(text + 4, "4.3.", 4) == 0 ||
	    strncmp(text + 4, "4.4.", 4) == 0))
		return "defer";
	return "reject";
}

/*
 * Over a connection limit: say so in the listener's protocol and close.
 * Under implicit TLS nothing is written: no handshake has been made,
 * and plain text would only confuse the client's TLS.  The log line has
 * a session id of its own, so that it reads like any session's.
 */
static void
refuse(int fd, const char *ip, const struct conf_listener *l,
    const char *why)
{
	bool			 pop3 = l->profile == PROFILE_POP3 ||
				    l->profile == PROFILE_POP3S;
	const char		*text = pop3 ? too_many_pop3 : too_many;
	struct metrics_listener	*m;

	log_info("%s session=%016llx address=[%s] event=%s check=%s %s "
	    "listener=%s", pop3 ? "pop3" : "smtp",
	    (unsigned long long)++net.next_id, ip, net_refusal_event(why, text),
	    why, pop3 ? "status=-ERR resp_code=SYS/TEMP" :
	    "status=421 dsn=4.7.0", l->name);
	if ((m = metrics_listener(&net.stats, l->name, net.conf)) != NULL)
		m->conn_refused++;
	/* Best effort: the socket buffer is empty, the reply fits. */
	if (l->tls != TLS_IMPLICIT && send(fd, text, strlen(text),
	    MSG_NOSIGNAL | MSG_DONTWAIT) == -1 && errno != EAGAIN)
		log_debug("%s address=[%s] event=reply-failed error=\"%s\"",
		    pop3 ? "pop3" : "smtp", ip, strerror(errno));
	close(fd);
}

struct bufferevent *
net_tls_wrap(int fd, struct bufferevent *under)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if (net.ssl_ctx == NULL || (ssl = SSL_new(net.ssl_ctx)) == NULL)
		return NULL;
	if (fd != -1)
		bev = bufferevent_openssl_socket_new(net.base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	else
		bev = bufferevent_openssl_filter_new(net.base, under, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

void
net_auth_request(uint64_t id, const struct sasl_req *r, const char *ip,
    enum auth_service service)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_u32(&o, r->type);
	ipc_put_str(&o, r->mech);
	ipc_put_str(&o, r->authzid);
	ipc_put_str(&o, r->user);
	ipc_put_str(&o, r->password);
	ipc_put_str(&o, r->challenge);
	ipc_put_str(&o, r->response);
	ipc_put_str(&o, r->authmsg);
	ipc_put_str(&o, ip);
	ipc_put_u32(&o, service);
	ipc_send(net.store, IMSG_AUTH_VERIFY, id, -1, &o);
	explicit_bzero(&o, sizeof(o));		/* it held the password */
}

void
net_auth_failed(uint64_t id, const char *ip, const char *mech,
    enum auth_service service)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_str(&o, ip);
	ipc_put_str(&o, mech);
	ipc_put_u32(&o, service);
	ipc_send(net.store, IMSG_AUTH_FAILED, id, -1, &o);
}

void
net_auth_reply(struct ipc_msg *m, struct sasl_reply *r, char *account,
    size_t size)
{
	memset(r, 0, sizeof(*r));
	r->result = (enum sasl_result)ipc_get_u32(m);
	ipc_get_strbuf(m, r->salt, sizeof(r->salt));
	r->iterations = ipc_get_u32(m);
	ipc_get_strbuf(m, r->server_sig, sizeof(r->server_sig));
	ipc_get_strbuf(m, account, size);
	ipc_end(m);
	if (r->result != SASL_OK && r->result != SASL_FAIL &&
	    r->result != SASL_TEMPFAIL)
		fatalx("net: store sent SASL result %d", (int)r->result);
}

bool
net_flushed(struct bufferevent *bev, struct event **linger,
    unsigned int *ticks, event_callback_fn tick, void *arg)
{
	struct bufferevent	*under = bufferevent_get_underlying(bev);
	struct timeval		 tv = { 0, 10000 };

	if (under == NULL || evbuffer_get_length(
	    bufferevent_get_output(under)) == 0 || (*ticks)++ > 500)
		return true;
	if (*linger == NULL)
		*linger = evtimer_new(net.base, tick, arg);
	evtimer_add(*linger, &tv);
	return false;
}

int
net_line(struct evbuffer *in, char *line, size_t max, bool *skip,
    bool lf_ok, size_t *len_r)
{
	struct evbuffer_ptr	lf = evbuffer_search(in, "\n", 1, NULL);
	size_t			len;

	if (lf.pos == -1) {
		if ((len = evbuffer_get_length(in)) > max) {
			evbuffer_drain(in, len);
			*skip = true;		/* its end is still to come */
		}
		return NET_LINE_MORE;
	}
	len = (size_t)lf.pos + 1;
	if (*skip || len > max) {
		evbuffer_drain(in, len);
		*skip = false;
		return NET_LINE_LONG;
	}
	evbuffer_remove(in, line, len);
	line[--len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	else if (!lf_ok) {
		explicit_bzero(line, len);
		return NET_LINE_BARE_LF;
	}
	*len_r = len;
	return NET_LINE_OK;
}

void
net_stat_refused(const char *stage, const char *check)
{
	enum metrics_refusal	r = metrics_refusal_find(stage, check);

	if (r != MR_MAX)
		net.stats.refused[r]++;
	else
		log_warn("net event=metrics-unknown-refusal stage=%s check=%s",
		    stage, check);
}

void
net_stat_session(const struct conf_listener *l, bool open)
{
	struct metrics_listener	*m = metrics_listener(&net.stats, l->name,
				    net.conf);

	if (m == NULL)
		return;
	if (!open) {
		if (m->conn_current > 0)	/* counted at open */
			m->conn_current--;
		return;
	}
	m->conn_total++;
	if (++m->conn_current > m->conn_peak)
		m->conn_peak = m->conn_current;
}

void
net_stat_transaction(const struct conf_listener *l,
    const struct timespec *start)
{
	struct metrics_listener	*m = metrics_listener(&net.stats, l->name,
				    net.conf);
	struct timespec		 now;
	int64_t			 us;

	if (m == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (int64_t)(now.tv_sec - start->tv_sec) * 1000000 +
	    (now.tv_nsec - start->tv_nsec) / 1000;
	if (us < 0)
		us = 0;
	m->tx_bucket[metrics_bucket((uint64_t)us)]++;
	m->tx_count++;
	m->tx_sum_us += (uint64_t)us;
}

int
net_sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	const struct conf_listener	*l = arg;
	char				 ip[INET6_ADDRSTRLEN];

	net_sockaddr_text(sa, ip, sizeof(ip));
	if (net.closing) {
		close(fd);
		return;
	}
	if (net.nconn >= net.conf->smtp.max_connections) {
		refuse(fd, ip, l, "max-connections");
		return;
	}
	if (!net_conn_acquire(ip, net.conf->smtp.max_connections_per_ip)) {
		refuse(fd, ip, l, "max-connections-per-ip");
		return;
	}
	if (l->profile == PROFILE_POP3 || l->profile == PROFILE_POP3S)
		pop3_session_new(l, fd, sa, ip);
	else
		smtp_session_new(l, fd, sa, (socklen_t)salen, ip);
}

/*
 * The listening sockets of the running configuration, each with the
 * timer that resumes it after an accept error; and what the parent
 * sends ahead of the next configuration (reload).
 */
#define LISTEN_MAX	(CONF_LISTENERS_MAX * CONF_LISTEN_MAX)
static struct {
	struct evconnlistener	*lev[LISTEN_MAX];
	struct event		*resume[LISTEN_MAX];
	size_t			 n;
	struct role_listen	 next[LISTEN_MAX];
	size_t			 nnext;
	int			 tls[2];	/* cert, key */
	size_t			 ntls;
} lst;

static void
listener_resume(evutil_socket_t fd, short ev, void *arg)
{
	evconnlistener_enable(arg);
}

struct event *
net_resume_timer(struct evconnlistener *lev)
{
	return evtimer_new(net.base, listener_resume, lev);
}

void
net_accept_pause(struct evconnlistener *lev, struct event *resume,
    const char *proto)
{
	struct timeval	tv = { 1, 0 };

	log_warn("%s event=accept-error error=\"%s\"", proto,
	    strerror(errno));
	evconnlistener_disable(lev);
	evtimer_add(resume, &tv);
}

static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	size_t	i;

	for (i = 0; i < lst.n; i++)
		if (lst.lev[i] == lev)
			net_accept_pause(lev, lst.resume[i], "smtp");
}

static void
listeners_open(struct conf *conf, const struct role_listen *ls, size_t nls)
{
	struct evconnlistener	*lev;
	size_t			 i;

	for (i = 0; i < nls; i++) {
		if (ls[i].listener >= conf->nlisteners)
			fatalx("net: listener %zu of %zu", ls[i].listener,
			    conf->nlisteners);
		evutil_make_socket_nonblocking(ls[i].fd);
		lev = evconnlistener_new(net.base, on_accept,
		    &conf->listeners[ls[i].listener], LEV_OPT_CLOSE_ON_FREE,
		    0, ls[i].fd);
		if (lev == NULL)
			fatalx("net: cannot listen on descriptor %d", ls[i].fd);
		evconnlistener_set_error_cb(lev, on_accept_error);
		lst.lev[lst.n] = lev;
		lst.resume[lst.n++] = net_resume_timer(lev);
	}
}

/* Our copies only: the parent keeps every socket still configured
 * open, so a connection waiting in its backlog is accepted after. */
static void
listeners_close(void)
{
	size_t	i;

	for (i = 0; i < lst.n; i++) {
		event_free(lst.resume[i]);
		evconnlistener_free(lst.lev[i]);
	}
	lst.n = 0;
}

static void
pending_drop(void)
{
	size_t	i;

	for (i = 0; i < lst.nnext; i++)
		close(lst.next[i].fd);
	for (i = 0; i < lst.ntls; i++)
		close(lst.tls[i]);
	lst.nnext = lst.ntls = 0;
}

/*
 * The certificate and key files' bytes, hashed: a reload that leaves
 * both as they were keeps the context, and with it the TLS session
 * cache and ticket keys (a client could not resume after every reload).
 */
static unsigned char	tls_md[SHA256_DIGEST_LENGTH];

static void
tls_digest(int cfd, int kfd, unsigned char *md)
{
	EVP_MD_CTX	*ctx;
	char		 buf[8192];
	int		 fds[2] = { cfd, kfd };
	ssize_t		 n;
	off_t		 off;
	size_t		 i;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		fatalx("net: sha256");
	for (i = 0; i < 2; i++) {
		for (off = 0; off < CONF_FILE_MAX * 16 &&
		    (n = pread(fds[i], buf, sizeof(buf), off)) > 0; off += n)
			EVP_DigestUpdate(ctx, buf, (size_t)n);
		EVP_DigestUpdate(ctx, "\n--\n", 4);
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
}

/* A context from the files, remembering what they held. */
static SSL_CTX *
tls_load(int cfd, int kfd, const char *cert, const char *key, char *err,
    size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = tls_server_ctx_fd(cfd, kfd, cert, key, err, errlen)) !=
	    NULL)
		tls_digest(cfd, kfd, tls_md);
	return ctx;
}

/* The new configuration's certificate: false (and the old one stays)
 * when it cannot be loaded. */
static bool
reload_tls(const struct conf *nc)
{
	SSL_CTX		*ctx;
	unsigned char	 md[SHA256_DIGEST_LENGTH];
	char		 err[512], esc[sizeof(err) * 4];

	if (lst.ntls != 2)
		return false;
	tls_digest(lst.tls[0], lst.tls[1], md);
	if (net.ssl_ctx != NULL && memcmp(md, tls_md, sizeof(md)) == 0)
		return true;
	ctx = tls_load(lst.tls[0], lst.tls[1], nc->tls.cert, nc->tls.key, err,
	    sizeof(err));
	if (ctx == NULL) {
		log_warn("net event=tls-unchanged error=\"%s\"",
		    log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
		return false;
	}
	/* A TLS session already made keeps its own reference. */
	SSL_CTX_free(net.ssl_ctx);
	net.ssl_ctx = ctx;
	log_info("net event=tls-reloaded cert=%s", log_value(nc->tls.cert,
	    err, sizeof(err)));
	return true;
}

/* At start, from the files themselves (before the chroot). */
static SSL_CTX *
tls_start(const struct conf *conf, char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	int	 cfd, kfd;

	if (tls_open(conf->tls.cert, conf->tls.key, &cfd, &kfd, err, errlen)
	    == -1)
		return NULL;
	ctx = tls_load(cfd, kfd, conf->tls.cert, conf->tls.key, err, errlen);
	close(cfd);
	close(kfd);
	return ctx;
}

/* Apply the parent's new configuration, named path; false when some
 * of it could not be (the log says what). */
static bool
reload(int fd, const char *path, uint64_t gen)
{
	struct conf	*nc;
	const struct conf *old = net.conf;
	char		 err[1024], esc[sizeof(err) * 4];
	bool		 ok;

	if (conf_load_fd(fd, path, &nc, err, sizeof(err)) == -1) {
		/* The parent checked this very text: should not happen. */
		log_err("net event=reload-failed error=\"%s\"",
		    log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
		pending_drop();
		return false;
	}
	ok = reload_tls(nc);
	listeners_close();
	listeners_open(nc, lst.next, lst.nnext);
	lst.nnext = 0;
	pending_drop();
	/* The old one goes with the last session that started on it. */
	net.conf = nc;
	conf_unref(&old);
	log_init("net", (int)nc->log_level);
	log_info("net event=reload generation=%llu listeners=%zu",
	    (unsigned long long)gen, lst.n);
	return ok;
}

static void
parent_dispatch(struct ipc *c, struct ipc_msg *m, void *arg)
{
	uint32_t	idx;

	if (m == NULL) {
		log_info("net event=exit reason=\"parent has gone\"");
		exit(0);
	}
	switch (m->type) {
	case IMSG_PARENT_LISTEN:
		idx = ipc_get_u32(m);
		ipc_end(m);
		if (m->fd == -1 || lst.nnext == LISTEN_MAX)
			fatalx("net: unexpected listening socket");
		lst.next[lst.nnext].fd = m->fd;
		lst.next[lst.nnext++].listener = idx;
		break;
	case IMSG_PARENT_TLS:
		ipc_end(m);
		if (m->fd == -1 || lst.ntls == 2)
			fatalx("net: unexpected certificate file");
		lst.tls[lst.ntls++] = m->fd;
		break;
	case IMSG_PARENT_RELOAD:
		role_reload(c, m, reload);
		break;
	default:
		fatalx("net: unexpected message %u from the parent", m->type);
	}
}

static void
store_dispatch(struct ipc *c, struct ipc_msg *m, void *arg)
{
	struct sess_ent	*e;

	if (m == NULL) {
		log_info("net event=exit reason=\"store has gone\"");
		exit(0);
	}
	if (m->type == IMSG_DELIVER) {
		client_deliver(m);
		return;
	}
	if (m->type == IMSG_DELIVER_SOCK) {
		client_deliver_sock(m);
		return;
	}
	if (m->type == IMSG_METRICS_TEXT) {
		httpd_text(m);
		return;
	}
	if (m->type == IMSG_METRICS_ASK) {
		httpd_ask(m);
		return;
	}
	if ((e = session_find(m->id)) != NULL) {
		e->ops->store_reply(e->s, m);
		return;
	}
	/* The session has gone: give back what was made for it. */
	if (m->type == IMSG_SPOOL_FD && m->fd != -1) {
		struct ipc_out	 o;
		const char	*qid;

		(void)ipc_get_u32(m);
		qid = ipc_get_str(m);
		ipc_end(m);
		close(m->fd);
		ipc_out_init(&o);
		ipc_put_str(&o, qid);
		ipc_send(net.store, IMSG_SPOOL_ABORT, m->id, -1, &o);
	} else if (m->fd != -1)
		close(m->fd);
}

static void
shutdown_tick(evutil_socket_t fd, short ev, void *arg)
{
	static unsigned int	ticks;
	struct timeval		tv = { 0, 50000 };

	if (net.nconn == 0 || ++ticks > 40) {
		log_info("net event=exit reason=signal sessions-left=%u",
		    net.nconn);
		exit(0);
	}
	event_base_once(net.base, -1, EV_TIMEOUT, shutdown_tick, NULL, &tv);
}

/* SIGTERM: tell every client, let the replies leave (2 s at most). */
static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct sess_ent	*e, *next;
	size_t		 i;

	if (net.closing)
		return;
	net.closing = true;
	for (i = 0; i < BUCKETS; i++)
		for (e = sessions[i]; e != NULL; e = next) {
			next = e->next;		/* e may be freed */
			e->ops->shutdown(e->s);
		}
	shutdown_tick(-1, 0, NULL);
}

void
net_main(struct conf *conf, struct role_listen *ls, size_t nls,
    int metrics_fd)
{
	char		 err[PATH_MAX + 512], chroot_dir[PATH_MAX];
	struct event	*sigterm, *sigint;

	net.conf = conf;
	signal(SIGPIPE, SIG_IGN);
	tzset();
	net.ssl_ctx = tls_start(conf, err, sizeof(err));
	if (net.ssl_ctx == NULL)
		log_warn("net event=tls-unavailable error=\"%s\"", err);
	if ((size_t)snprintf(chroot_dir, sizeof(chroot_dir), "%s/" CHROOT_DIR,
	    conf->data_dir) >= sizeof(chroot_dir))
		fatalx("net: data_dir %s: path too long", conf->data_dir);
	net.base = event_base_new();
	client_init();		/* reads resolv.conf: before the chroot */
	role_drop("net", NET_USER, chroot_dir);

	net.store = ipc_new(net.base, ROLE_FD_PEER, "store", store_dispatch,
	    NULL);
	net.parent = ipc_new(net.base, ROLE_FD_PARENT, "parent",
	    parent_dispatch, NULL);
	listeners_open(conf, ls, nls);
	if (metrics_fd != -1)
		httpd_start(metrics_fd);
	sigterm = evsignal_new(net.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(net.base, SIGINT, on_signal, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("net event=ready listeners=%zu", nls);
	event_base_dispatch(net.base);
	exit(0);
}
