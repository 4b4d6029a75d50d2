/*
 * parent.c - the parent: runs as root when started so, and keeps only
 * what needs it: binding the listeners, making the data directory and
 * the certificate, starting the roles and restarting them.
 *
 * Two phases (STYLE section 1): open everything, then start the roles,
 * which drop their own privileges after re-exec.  When either role
 * dies, the other is stopped and both start again: the listening
 * sockets stay open here, so clients wait in the backlog meanwhile,
 * and an acknowledged message is already on disk.
 *
 * Reload (SIGHUP, or postino-admin reload through store): the file is
 * read into a sealed memory file and checked here; on an error the
 * running configuration stays and the error names FILE:LINE.  Else the
 * listeners of the new file are bound (an address already bound keeps
 * its socket, so nothing waiting in its backlog is lost), and each role
 * gets the new text; net also gets every listening socket and the
 * certificate files, which it cannot open itself from its chroot.
 * Sessions in flight finish on the configuration they started with.
 * The roles always parse the text checked here, never the file, so a
 * role restarted later cannot pick up an edit nobody reloaded.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "compat.h"
#include "fsio.h"
#include "ipc.h"
#include "log.h"
#include "net.h"
#include "parent.h"
#include "proto.h"
#include "role.h"
#include "tls.h"

#define LISTEN_MAX	(CONF_LISTENERS_MAX * CONF_LISTEN_MAX)
#define ROLE_NET	1
#define ROLE_STORE	2
#define RELOAD_WAIT	10	/* s for the roles' answers to a reload */

/* A listening socket, bound for one address of one listener. */
struct sock {
	int			 fd;
	size_t			 idx;	/* listener of pa.conf */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
};

static struct {
	struct conf	*conf;
	const char	*conf_path;
	int		 conf_fd;	/* the text of conf (memfd) */
	int		 metrics_fd;	/* [metrics] listen, or -1 */
	struct sock	 socks[LISTEN_MAX];
	size_t		 nsocks;
	struct event_base *base;
	pid_t		 net, store;
	struct ipc	*net_ch, *store_ch;
	time_t		 started;
	int		 delay;
	struct event	*restart;
	uint64_t	 generation;
	/* The last reload, until both roles have applied it. */
	struct {
		uint64_t	 gen;
		int		 waiting;	/* ROLE_NET | ROLE_STORE */
		int		 failed;	/* ROLE_NET | ROLE_STORE */
		bool		 asked;		/* by store, for ask_id */
		uint64_t	 ask_id;
		struct event	*timer;
	} reload;
} pa;

/* What to do when a port cannot be bound. */
static const char *
bind_hint(int e)
{
	if (e == EADDRINUSE)
		return "; another server holds that port: stop it, or "
		    "change listen";
	if (e == EACCES)
		return "; ports below 1024 need root: start as root, or "
		    "change listen";
	if (e == EADDRNOTAVAIL)
		return "; no interface has that address: change listen";
	return "";
}

/*
 * The line a newcomer reads when the port is taken or privileged:
 * which address, where it is configured, and what to do.
 */
static void
bind_error(const char *path, const struct conf_listener *l,
    const struct sockaddr *sa, char *err, size_t errlen)
{
	char		 host[INET6_ADDRSTRLEN] = "?";
	int		 port = 0, e = errno;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
	}
	snprintf(err, errlen, "%s:%d: listener %s: cannot listen on "
	    "%s%s%s:%d: %s%s", path, l->line, l->name,
	    sa->sa_family == AF_INET6 ? "[" : "", host,
	    sa->sa_family == AF_INET6 ? "]" : "", port, strerror(e),
	    bind_hint(e));
}

/*
 * R7.5: the Prometheus endpoint's socket, served by net (httpd.c),
 * bound once at start ([metrics] listen takes a restart to change).
 */
static void
bind_metrics(void)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	int			fd, one = 1, e;

	pa.metrics_fd = -1;
	if (pa.conf->metrics.listen[0] == '\0')
		return;
	if (conf_addr_parse(pa.conf->metrics.listen, &ss, &len) == -1)
		fatalx("%s: [metrics] listen %s: not ADDR:PORT", pa.conf_path,
		    pa.conf->metrics.listen);
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("[metrics] listen: socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 16) == -1) {
		e = errno;
		fatalx("%s: [metrics] listen: cannot listen on %s: %s%s",
		    pa.conf_path, pa.conf->metrics.listen, strerror(e),
		    bind_hint(e));
	}
	pa.metrics_fd = fd;
	log_info("parent event=listen name=metrics address=%s",
	    pa.conf->metrics.listen);
}

/* -1 with err on failure. */
static int
bind_one(const char *path, const struct conf_listener *l, size_t i,
    unsigned int backlog, char *err, size_t errlen)
{
	const struct sockaddr	*sa = (const void *)&l->addrs[i];
	int			 fd, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "listener %s: socket: %s", l->name,
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, l->addrlens[i]) == -1 ||
	    listen(fd, (int)backlog) == -1) {
		int e = errno;

		bind_error(path, l, sa, err, errlen);
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static bool
same_addr(const struct sock *k, const struct conf_listener *l, size_t i)
{
	return k->sslen == l->addrlens[i] &&
	    memcmp(&k->ss, &l->addrs[i], k->sslen) == 0;
}

/*
 * The port is taken by our own socket at another address (a wildcard
 * and a specific address of one port cannot be bound together): say
 * so, rather than "another server holds that port".
 */
static void
own_port(const struct conf *conf, const struct conf_listener *l, size_t j,
    const struct sock *old, size_t nold, char *err, size_t errlen)
{
	int	port = net_sockaddr_port((const void *)&l->addrs[j]);
	size_t	o;

	for (o = 0; o < nold; o++)
		if (old[o].ss.ss_family ==
		    l->addrs[j].ss_family &&
		    net_sockaddr_port((const void *)&old[o].ss) == port)
			break;
	if (o == nold)
		return;
	snprintf(err, errlen, "%s:%d: listener %s: port %d is the running "
	    "server's at another address; moving a port between a wildcard "
	    "and a specific address takes a restart", conf->path, l->line,
	    l->name, port);
}

/*
 * The sockets of every listener of conf into socks: the one of old
 * (nold) for an address bound already, marked taken there (fd -1), a
 * new one otherwise.  -1 with err, and nothing new left open, when an
 * address cannot be bound.
 */
static int
bind_listeners(const struct conf *conf, struct sock *old, size_t nold,
    struct sock *socks, size_t *nsocks, char *err, size_t errlen)
{
	const struct conf_listener	*l;
	struct sock			*k;
	size_t				 i, j, o, n = 0;

	for (i = 0; i < conf->nlisteners; i++) {
		l = &conf->listeners[i];
		for (j = 0; j < l->naddrs; j++) {
			k = &socks[n];
			k->idx = i;
			k->sslen = l->addrlens[j];
			memcpy(&k->ss, &l->addrs[j], k->sslen);
			for (o = 0; o < nold; o++)
				if (old[o].fd != -1 && same_addr(&old[o], l, j))
					break;
			if (o < nold) {
				k->fd = old[o].fd;
				old[o].fd = -1;
			} else if ((k->fd = bind_one(conf->path[0] ?
			    conf->path : pa.conf_path, l, j,
			    conf->smtp.backlog, err, errlen)) == -1) {
				if (errno == EADDRINUSE)
					own_port(conf, l, j, old, nold, err,
					    errlen);
				goto fail;
			}
			n++;
		}
	}
	*nsocks = n;
	return 0;
fail:
	/* Give back what was taken, close what was bound. */
	while (n-- > 0) {
		for (o = 0; o < nold; o++)
			if (old[o].fd == -1 && old[o].sslen == socks[n].sslen &&
			    memcmp(&old[o].ss, &socks[n].ss, old[o].sslen) == 0)
				break;
		if (o < nold)
			old[o].fd = socks[n].fd;
		else
			close(socks[n].fd);
	}
	return -1;
}

static void
log_listeners(const struct conf *conf, const char *event)
{
	const struct conf_listener	*l;
	size_t				 i;

	for (i = 0; i < conf->nlisteners; i++) {
		l = &conf->listeners[i];
		log_info("parent event=%s name=%s profile=%s tls=%s "
		    "addresses=%zu", event, l->name,
		    conf_profile_name(l->profile), conf_tls_name(l->tls),
		    l->naddrs);
	}
}

static void
prepare_data_dir(void)
{
	struct passwd	*pw = NULL;
	char		 path[PATH_MAX];

	if (geteuid() == 0 && (pw = getpwnam(pa.conf->user)) == NULL)
		fatalx("user %s does not exist (scripts/install-deps.sh "
		    "creates it, or set 'user' in %s)", pa.conf->user,
		    pa.conf_path);
	if (fsio_mkdirs(pa.conf->data_dir, 0750) == -1)
		fatal("data_dir %s", pa.conf->data_dir);
	if (pw != NULL && chown(pa.conf->data_dir, pw->pw_uid, pw->pw_gid)
	    == -1)
		fatal("chown %s", pa.conf->data_dir);
	/* net's root: empty, and not writable by net. */
	if ((size_t)snprintf(path, sizeof(path), "%s/" CHROOT_DIR,
	    pa.conf->data_dir) >= sizeof(path))
		fatalx("data_dir %s: path too long", pa.conf->data_dir);
	if (mkdir(path, 0555) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (pw != NULL && (chown(path, 0, 0) == -1 || chmod(path, 0555) == -1))
		fatal("chown %s", path);
}

static void
prepare_tls(void)
{
	char	dir[PATH_MAX], err[512], *slash;
	char	cert[PATH_MAX * 4 + 3], key[PATH_MAX * 4 + 3];
	bool	has_cert = access(pa.conf->tls.cert, F_OK) == 0;
	bool	has_key = access(pa.conf->tls.key, F_OK) == 0;

	if (has_cert && has_key)
		return;
	if (has_cert != has_key)
		fatalx("[tls] cert %s and key %s: one exists without the "
		    "other; give both or neither", pa.conf->tls.cert,
		    pa.conf->tls.key);
	strlcpy(dir, pa.conf->tls.key, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if (fsio_mkdirs(dir, 0750) == -1)
			fatal("mkdir %s", dir);
	}
	if (tls_make_selfsigned(pa.conf->tls.cert, pa.conf->tls.key,
	    pa.conf->hostname, err, sizeof(err)) == -1)
		fatalx("%s", err);
	log_info("parent event=tls-certificate-made cert=%s key=%s cn=%s",
	    log_value(pa.conf->tls.cert, cert, sizeof(cert)),
	    log_value(pa.conf->tls.key, key, sizeof(key)), pa.conf->hostname);
}

/*
 * The file's text in a sealed memory file, and its configuration read
 * from that copy: what is checked here is what the roles will parse.
 * -1 with err (FILE:LINE for a mistake in the file).
 */
static int
conf_snapshot(struct conf **conf_r, char *err, size_t errlen)
{
	char	buf[8192], real[PATH_MAX];
	ssize_t	n;
	size_t	total = 0;
	int	in, mfd;

	/*
	 * Named by the file the path leads to now (a link may have been
	 * switched), which also anchors its relative paths, as at start.
	 */
	if (realpath(pa.conf_path, real) == NULL ||
	    (in = open(real, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: cannot read: %s", pa.conf_path,
		    strerror(errno));
		return -1;
	}
	if ((mfd = memfd_create("postino.conf", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1)
		fatal("memfd_create");
	/* Bounded: the parser refuses a file over its limit anyway. */
	while (total <= CONF_FILE_MAX &&
	    (n = read(in, buf, sizeof(buf))) > 0) {
		if (write(mfd, buf, (size_t)n) != n)
			fatal("memfd write");
		total += (size_t)n;
	}
	if (total <= CONF_FILE_MAX && n == -1) {
		snprintf(err, errlen, "%s: cannot read: %s", pa.conf_path,
		    strerror(errno));
		close(in);
		close(mfd);
		return -1;
	}
	close(in);
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1)
		fatal("memfd seal");
	if (conf_load_fd(mfd, real, conf_r, err, errlen) == -1) {
		close(mfd);
		return -1;
	}
	return mfd;
}

/* Move fd to at least 64 so the dup2 calls below cannot clobber it. */
static int
fd_high(int fd)
{
	int	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 64);

	if (nfd == -1)
		fatal("fcntl F_DUPFD");
	return nfd;
}

static void
fd_to(int fd, int to)
{
	if (dup2(fd, to) == -1)
		fatal("dup2");
}

static pid_t
start_role(const char *role, int peer, int parent, bool with_listeners)
{
	char		listen[LISTEN_MAX * 12] = "", item[32], metrics[16] = "";
	int		high[LISTEN_MAX], hpeer, hconf, hparent, hmetrics = -1;
	int		top;
	size_t		i, n = with_listeners ? pa.nsocks : 0;
	pid_t		pid;
	sigset_t	none;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid != 0)
		return pid;
	/*
	 * The parent's signal handling is its own.  SIGHUP is the parent's
	 * alone: one sent to the whole group (pkill -HUP postino, a hangup
	 * of the terminal) must not end a role and its sessions.
	 */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGHUP, SIG_IGN);
	hpeer = fd_high(peer);
	hconf = fd_high(pa.conf_fd);
	hparent = fd_high(parent);
	for (i = 0; i < n; i++)
		high[i] = fd_high(pa.socks[i].fd);
	if (with_listeners && pa.metrics_fd != -1)
		hmetrics = fd_high(pa.metrics_fd);
	fd_to(hpeer, ROLE_FD_PEER);
	fd_to(hconf, ROLE_FD_CONF);
	fd_to(hparent, ROLE_FD_PARENT);
	for (i = 0; i < n; i++) {
		fd_to(high[i], ROLE_FD_LISTEN + (int)i);
		snprintf(item, sizeof(item), "%s%d:%zu", i ? "," : "",
		    ROLE_FD_LISTEN + (int)i, pa.socks[i].idx);
		strlcat(listen, item, sizeof(listen));
	}
	top = ROLE_FD_LISTEN + (int)n;
	/* the metrics socket follows the listeners: "-M fd" */
	if (hmetrics != -1) {
		fd_to(hmetrics, top);
		snprintf(metrics, sizeof(metrics), "%d", top++);
	}
	closefrom(top);
	if (n > 0 && metrics[0] != '\0')
		execl("/proc/self/exe", "postino", "-c", pa.conf->path, "-R",
		    role, "-L", listen, "-M", metrics, (char *)NULL);
	else if (n > 0)
		execl("/proc/self/exe", "postino", "-c", pa.conf->path, "-R",
		    role, "-L", listen, (char *)NULL);
	else
		execl("/proc/self/exe", "postino", "-c", pa.conf->path, "-R",
		    role, (char *)NULL);
	fatal("exec %s role", role);
}

static void	role_dispatch(struct ipc *, struct ipc_msg *, void *);
static void	reload_role_done(int);

static void
start_roles(void)
{
	int	sp[2], pn[2], ps[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pn) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ps) == -1)
		fatal("socketpair");
	pa.store = start_role("store", sp[0], ps[1], false);
	pa.net = start_role("net", sp[1], pn[1], true);
	close(sp[0]);
	close(sp[1]);
	close(pn[1]);
	close(ps[1]);
	pa.net_ch = ipc_new(pa.base, pn[0], "net", role_dispatch, NULL);
	pa.store_ch = ipc_new(pa.base, ps[0], "store", role_dispatch, NULL);
	ipc_set_untrusted(pa.net_ch);
	ipc_set_untrusted(pa.store_ch);
	pa.started = time(NULL);
	log_info("parent event=roles-started net=%d store=%d", (int)pa.net,
	    (int)pa.store);
}

/* Stop whatever role still runs and reap both. */
static void
stop_roles(int sig)
{
	pid_t	*roles[] = { &pa.net, &pa.store };
	size_t	 i;
	int	 tries;

	for (i = 0; i < 2; i++)
		if (*roles[i] > 0)
			kill(*roles[i], sig);
	for (tries = 0; tries < 100 && (pa.net > 0 || pa.store > 0); tries++) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		/* first: once one role is reaped, its pid 0 matches "none" */
		if (pid <= 0)
			usleep(50000);
		else if (pid == pa.net)
			pa.net = 0;
		else if (pid == pa.store)
			pa.store = 0;
	}
	for (i = 0; i < 2; i++)
		if (*roles[i] > 0) {
			kill(*roles[i], SIGKILL);
			waitpid(*roles[i], NULL, 0);
			*roles[i] = 0;
		}
	ipc_free(&pa.net_ch);
	ipc_free(&pa.store_ch);
	/* Whatever reload waited is on the text they start with next. */
	pa.reload.asked = false;
	reload_role_done(ROLE_NET | ROLE_STORE);
}

/*
 * Keys read once at start (the data directory, the user, the store,
 * the worker pool, the resolver): a change needs a restart, and a
 * reload that changes one is refused rather than half applied.
 */
static const char *
restart_key(const struct conf *o, const struct conf *n)
{
	size_t	i;

	if (strcmp(o->data_dir, n->data_dir) != 0)
		return "data_dir";
	if (strcmp(o->user, n->user) != 0)
		return "user";
	if (o->workers != n->workers)
		return "workers";
	if (o->store.driver != n->store.driver)
		return "[store] driver";
	if (strcmp(o->store.dsn, n->store.dsn) != 0)
		return "[store] dsn";
	if (strcmp(o->metrics.listen, n->metrics.listen) != 0)
		return "[metrics] listen";
	if (o->dns.servers.n != n->dns.servers.n)
		return "[dns] servers";
	for (i = 0; i < o->dns.servers.n; i++)
		if (strcmp(o->dns.servers.v[i], n->dns.servers.v[i]) != 0)
			return "[dns] servers";
	return NULL;
}

/* Send fd (a copy: ipc_send closes what it sent) to a role. */
static void
send_fd(struct ipc *ch, uint32_t type, int fd, struct ipc_out *o)
{
	int	dfd;

	if ((dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		fatal("dup");
	ipc_send(ch, type, 0, dfd, o);
}

static void
answer_ask(bool ok, const char *text)
{
	struct ipc_out	o;

	if (!pa.reload.asked)
		return;
	pa.reload.asked = false;
	if (pa.store_ch == NULL)
		return;
	ipc_out_init(&o);
	ipc_put_u32(&o, ok ? 1 : 0);
	ipc_put_str(&o, text);
	ipc_send(pa.store_ch, IMSG_PARENT_RELOAD_DONE, pa.reload.ask_id, -1,
	    &o);
}

static const char *
role_names(int roles)
{
	return roles == (ROLE_NET | ROLE_STORE) ? "net,store" :
	    roles == ROLE_NET ? "net" : roles == ROLE_STORE ? "store" : "";
}

/*
 * Both roles answered, or died (they start again on the new text), or
 * the wait ran out (late: the roles still waited for).
 */
static void
reload_settled(int late)
{
	char			text[160];
	unsigned long long	gen = pa.reload.gen;

	event_del(pa.reload.timer);
	pa.reload.waiting = 0;
	if (late) {
		log_warn("parent event=reload-slow generation=%llu waiting=%s",
		    gen, role_names(late));
		snprintf(text, sizeof(text), "configuration %llu sent, but %s "
		    "did not confirm it within %d s", gen, role_names(late),
		    RELOAD_WAIT);
		answer_ask(false, text);
	} else if (pa.reload.failed) {
		log_err("parent event=reload-failed generation=%llu role=%s",
		    gen, role_names(pa.reload.failed));
		snprintf(text, sizeof(text), "configuration %llu: %s could "
		    "not apply it (its log says why)", gen,
		    role_names(pa.reload.failed));
		answer_ask(false, text);
	} else {
		log_info("parent event=reloaded generation=%llu", gen);
		snprintf(text, sizeof(text), "configuration %llu applied", gen);
		answer_ask(true, text);
	}
}

static void
reload_role_done(int role)
{
	if ((pa.reload.waiting & role) == 0)
		return;
	pa.reload.waiting &= ~role;
	if (pa.reload.waiting == 0)
		reload_settled(0);
}

static void
reload_timeout(evutil_socket_t fd, short ev, void *arg)
{
	reload_settled(pa.reload.waiting);
}

/* The certificate and key for net, which cannot open them itself. */
static int
open_tls(const struct conf *conf, int *cfd, int *kfd, char *err,
    size_t errlen)
{
	SSL_CTX	*ctx;

	if (tls_open(conf->tls.cert, conf->tls.key, cfd, kfd, err, errlen)
	    == -1)
		return -1;
	/* Checked here, so that a bad pair is refused with the rest. */
	if ((ctx = tls_server_ctx_fd(*cfd, *kfd, conf->tls.cert,
	    conf->tls.key, err, errlen)) == NULL)
		goto fail;
	SSL_CTX_free(ctx);
	/* net reads them again, through the same open files. */
	if (lseek(*cfd, 0, SEEK_SET) == -1 || lseek(*kfd, 0, SEEK_SET) == -1) {
		snprintf(err, errlen, "[tls] lseek: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (*cfd != -1)
		close(*cfd);
	if (*kfd != -1)
		close(*kfd);
	return -1;
}

/* Hand the new configuration to the running roles. */
static void
send_reload(int cfd, int kfd)
{
	struct ipc_out	o;
	size_t		i;

	if (pa.net_ch != NULL) {
		for (i = 0; i < pa.nsocks; i++) {
			ipc_out_init(&o);
			ipc_put_u32(&o, (uint32_t)pa.socks[i].idx);
			send_fd(pa.net_ch, IMSG_PARENT_LISTEN, pa.socks[i].fd,
			    &o);
		}
		ipc_out_init(&o);
		ipc_send(pa.net_ch, IMSG_PARENT_TLS, 0, cfd, &o);
		ipc_out_init(&o);
		ipc_send(pa.net_ch, IMSG_PARENT_TLS, 0, kfd, &o);
		ipc_out_init(&o);
		ipc_put_u64(&o, pa.generation);
		ipc_put_str(&o, pa.conf->path);
		send_fd(pa.net_ch, IMSG_PARENT_RELOAD, pa.conf_fd, &o);
		pa.reload.waiting |= ROLE_NET;
	} else {
		close(cfd);
		close(kfd);
	}
	if (pa.store_ch != NULL) {
		ipc_out_init(&o);
		ipc_put_u64(&o, pa.generation);
		ipc_put_str(&o, pa.conf->path);
		send_fd(pa.store_ch, IMSG_PARENT_RELOAD, pa.conf_fd, &o);
		pa.reload.waiting |= ROLE_STORE;
	}
}

/*
 * Read, check and apply the file.  Returns 0, or -1 with err: then
 * nothing has changed.
 */
static int
reload(char *err, size_t errlen)
{
	struct conf	*nc;
	struct sock	 socks[LISTEN_MAX];
	const char	*key;
	size_t		 nsocks, i;
	int		 mfd, cfd, kfd;

	if ((mfd = conf_snapshot(&nc, err, errlen)) == -1)
		return -1;
	if ((key = restart_key(pa.conf, nc)) != NULL) {
		snprintf(err, errlen, "%s: %s changed: that takes a restart "
		    "(reload refused, nothing changed)", pa.conf_path, key);
		goto fail;
	}
	if (open_tls(nc, &cfd, &kfd, err, errlen) == -1)
		goto fail;
	if (bind_listeners(nc, pa.socks, pa.nsocks, socks, &nsocks, err,
	    errlen) == -1) {
		close(cfd);
		close(kfd);
		goto fail;
	}
	/* What the new file no longer listens on. */
	for (i = 0; i < pa.nsocks; i++)
		if (pa.socks[i].fd != -1)
			close(pa.socks[i].fd);
	/* A kept socket takes a changed backlog (Linux allows it). */
	for (i = 0; i < nsocks; i++)
		(void)listen(socks[i].fd, (int)nc->smtp.backlog);
	memcpy(pa.socks, socks, nsocks * sizeof(socks[0]));
	pa.nsocks = nsocks;
	close(pa.conf_fd);
	pa.conf_fd = mfd;
	conf_free(&pa.conf);
	pa.conf = nc;
	log_init("parent", (int)nc->log_level);
	pa.generation++;
	log_listeners(nc, "listen");
	pa.reload.gen = pa.generation;
	pa.reload.waiting = pa.reload.failed = 0;
	send_reload(cfd, kfd);
	if (pa.reload.waiting == 0)
		reload_settled(0);	/* no role running: they start on it */
	else {
		struct timeval tv = { RELOAD_WAIT, 0 };

		evtimer_add(pa.reload.timer, &tv);
	}
	return 0;
fail:
	conf_free(&nc);
	close(mfd);
	return -1;
}

static void
do_reload(const char *by, bool asked, uint64_t ask_id)
{
	char	err[PATH_MAX + 1024], esc[sizeof(err) * 4];

	/* An earlier request still waiting is answered now. */
	answer_ask(true, "configuration sent; a newer reload followed");
	log_info("parent event=reload by=%s", by);
	pa.reload.asked = asked;
	pa.reload.ask_id = ask_id;
	if (reload(err, sizeof(err)) == 0)
		return;
	log_err("parent event=reload-refused error=\"%s\"",
	    log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
	answer_ask(false, err);
}

/*
 * A role's channel has ended, or the role sent what it may not: the
 * parent trusts no role (net faces the network), so the role is killed
 * and starts again, instead of the parent dying of a bad packet.  A
 * reload request of a store that goes is never answered: a new store's
 * requests must not get its answer.
 */
static void
role_lost(int role)
{
	pid_t	pid = role == ROLE_STORE ? pa.store : pa.net;

	ipc_free(role == ROLE_STORE ? &pa.store_ch : &pa.net_ch);
	if (role == ROLE_STORE)
		pa.reload.asked = false;
	if (pid > 0)
		kill(pid, SIGKILL);
	reload_role_done(role);
}

/* Only the two messages a role may send the parent, checked whole
 * before they are read. */
static void
role_dispatch(struct ipc *ch, struct ipc_msg *m, void *arg)
{
	int		 role = ch == pa.store_ch ? ROLE_STORE : ROLE_NET;
	uint64_t	 gen;

	if (m == NULL) {
		role_lost(role);
		return;
	}
	if (m->fd == -1 && m->type == IMSG_PARENT_RELOADED && m->len == 12) {
		gen = ipc_get_u64(m);
		if (ipc_get_u32(m) == 0 && gen == pa.reload.gen)
			pa.reload.failed |= role;
		ipc_end(m);
		if (gen == pa.reload.gen)
			reload_role_done(role);
		return;
	}
	if (m->fd == -1 && m->type == IMSG_PARENT_RELOAD_ASK && m->len == 0 &&
	    role == ROLE_STORE) {
		do_reload("control", true, m->id);
		return;
	}
	log_err("parent event=bad-message role=%s type=%u length=%zu",
	    role_names(role), m->type, m->len);
	if (m->fd != -1)
		close(m->fd);
	role_lost(role);
}

static const char *
exit_text(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "signal-%d", WTERMSIG(status));
	else
		snprintf(buf, size, "exit-%d", WEXITSTATUS(status));
	return buf;
}

static void
restart_roles(evutil_socket_t fd, short ev, void *arg)
{
	start_roles();
}

static void
on_child(evutil_socket_t sig, short ev, void *arg)
{
	struct timeval	tv = { 0, 0 };
	char		how[32];
	int		status;
	pid_t		pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != pa.net && pid != pa.store)
			continue;
		log_err("parent event=role-died role=%s pid=%d how=%s",
		    pid == pa.net ? "net" : "store", (int)pid,
		    exit_text(status, how, sizeof(how)));
		if (pid == pa.net) {
			pa.net = 0;
			reload_role_done(ROLE_NET);
		} else {
			pa.store = 0;
			reload_role_done(ROLE_STORE);
		}
	}
	if ((pa.net > 0 && pa.store > 0) || evtimer_pending(pa.restart, NULL))
		return;
	stop_roles(SIGTERM);
	/* A role that dies at once again and again waits longer. */
	pa.delay = time(NULL) - pa.started < 10 ? (pa.delay < 16 ?
	    pa.delay * 2 : pa.delay) : 1;
	tv.tv_sec = pa.delay;
	evtimer_add(pa.restart, &tv);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	if (sig == SIGHUP) {
		do_reload("sighup", false, 0);
		return;
	}
	log_info("parent event=shutdown");
	stop_roles(SIGTERM);
	exit(0);
}

void
parent_main(struct conf *conf, const char *conf_path)
{
	char		 err[PATH_MAX + 1024], path[PATH_MAX * 4 + 3];
	int		 sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
	struct event	*ev;
	size_t		 i;

	pa.conf_path = conf_path;
	pa.delay = 1;
	signal(SIGPIPE, SIG_IGN);
	/* Again, from the copy the roles will read. */
	conf_free(&conf);
	if ((pa.conf_fd = conf_snapshot(&pa.conf, err, sizeof(err))) == -1)
		fatalx("%s", err);
	prepare_data_dir();
	prepare_tls();
	if (bind_listeners(pa.conf, NULL, 0, pa.socks, &pa.nsocks, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	log_listeners(pa.conf, "listen");
	bind_metrics();

	if ((pa.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ev = evsignal_new(pa.base, sigs[i], sigs[i] == SIGCHLD ?
		    on_child : on_signal, NULL);
		if (ev == NULL || evsignal_add(ev, NULL) == -1)
			fatalx("signal %d", sigs[i]);
	}
	pa.restart = evtimer_new(pa.base, restart_roles, NULL);
	pa.reload.timer = evtimer_new(pa.base, reload_timeout, NULL);
	start_roles();
	log_info("parent event=ready hostname=%s data_dir=%s",
	    pa.conf->hostname, log_value(pa.conf->data_dir, path,
	    sizeof(path)));
	event_base_dispatch(pa.base);
	fatalx("event loop ended");
}
