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
 */
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

#include "compat.h"
#include "fsio.h"
#include "log.h"
#include "parent.h"
#include "role.h"
#include "tls.h"

#define LISTEN_MAX	(CONF_LISTENERS_MAX * CONF_LISTEN_MAX)

static struct {
	struct conf	*conf;
	const char	*conf_path;
	int		 fds[LISTEN_MAX];
	size_t		 idx[LISTEN_MAX];
	size_t		 nfds;
	pid_t		 net, store;
} pa;

/*
 * The one line a newcomer reads when the port is taken or privileged:
 * which address, where it is configured, and what to do.
 */
static void __attribute__((noreturn))
bind_failed(const struct conf_listener *l, const struct sockaddr *sa)
{
	char		 host[INET6_ADDRSTRLEN] = "?";
	const char	*hint = "";
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
	if (e == EADDRINUSE)
		hint = "; another server holds that port: stop it, or "
		    "change listen";
	else if (e == EACCES)
		hint = "; ports below 1024 need root: start as root, or "
		    "change listen";
	else if (e == EADDRNOTAVAIL)
		hint = "; no interface has that address: change listen";
	fatalx("%s:%d: listener %s: cannot listen on %s%s%s:%d: %s%s",
	    pa.conf_path, l->line, l->name, sa->sa_family == AF_INET6 ?
	    "[" : "", host, sa->sa_family == AF_INET6 ? "]" : "", port,
	    strerror(e), hint);
}

static int
bind_one(const struct conf_listener *l, size_t i, unsigned int backlog)
{
	const struct sockaddr	*sa = (const void *)&l->addrs[i];
	int			 fd, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		fatal("listener %s: socket", l->name);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, l->addrlens[i]) == -1)
		bind_failed(l, sa);
	if (listen(fd, (int)backlog) == -1)
		fatal("listener %s: listen", l->name);
	return fd;
}

static void
bind_listeners(void)
{
	const struct conf_listener	*l;
	size_t				 i, j;

	for (i = 0; i < pa.conf->nlisteners; i++) {
		l = &pa.conf->listeners[i];
		for (j = 0; j < l->naddrs; j++) {
			pa.fds[pa.nfds] = bind_one(l, j,
			    pa.conf->smtp.backlog);
			pa.idx[pa.nfds++] = i;
		}
		log_info("parent event=listen name=%s profile=%s tls=%s "
		    "addresses=%zu", l->name, conf_profile_name(l->profile),
		    conf_tls_name(l->tls), l->naddrs);
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
	    pa.conf->tls.cert, pa.conf->tls.key, pa.conf->hostname);
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

static pid_t
start_role(const char *role, int peer, bool with_listeners)
{
	char	listen[LISTEN_MAX * 12] = "", item[32];
	int		high[LISTEN_MAX], hpeer;
	size_t		i;
	pid_t		pid;
	sigset_t	none;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid != 0)
		return pid;
	/* The parent blocks the signals it waits for; a role must not. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	hpeer = fd_high(peer);
	for (i = 0; with_listeners && i < pa.nfds; i++)
		high[i] = fd_high(pa.fds[i]);
	if (dup2(hpeer, ROLE_FD_PEER) == -1)
		fatal("dup2");
	for (i = 0; with_listeners && i < pa.nfds; i++) {
		if (dup2(high[i], ROLE_FD_LISTEN + (int)i) == -1)
			fatal("dup2");
		snprintf(item, sizeof(item), "%s%d:%zu", i ? "," : "",
		    ROLE_FD_LISTEN + (int)i, pa.idx[i]);
		strlcat(listen, item, sizeof(listen));
	}
	closefrom(ROLE_FD_LISTEN + (with_listeners ? (int)pa.nfds : 0));
	if (with_listeners)
		execl("/proc/self/exe", "postino", "-c", pa.conf_path, "-R",
		    role, "-L", listen, (char *)NULL);
	else
		execl("/proc/self/exe", "postino", "-c", pa.conf_path, "-R",
		    role, (char *)NULL);
	fatal("exec %s role", role);
}

static void
start_roles(void)
{
	int	sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		fatal("socketpair");
	pa.store = start_role("store", sp[0], false);
	pa.net = start_role("net", sp[1], true);
	close(sp[0]);
	close(sp[1]);
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

		if (pid == pa.net)
			pa.net = 0;
		else if (pid == pa.store)
			pa.store = 0;
		else if (pid <= 0)
			usleep(50000);
	}
	for (i = 0; i < 2; i++)
		if (*roles[i] > 0) {
			kill(*roles[i], SIGKILL);
			waitpid(*roles[i], NULL, 0);
			*roles[i] = 0;
		}
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

void
parent_main(struct conf *conf, const char *conf_path)
{
	sigset_t	 set;
	siginfo_t	 si;
	time_t		 started;
	char		 how[32];
	int		 status, delay = 1;
	pid_t		 pid;

	pa.conf = conf;
	pa.conf_path = conf_path;
	signal(SIGPIPE, SIG_IGN);
	prepare_data_dir();
	prepare_tls();
	bind_listeners();

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	start_roles();
	started = time(NULL);
	log_info("parent event=ready hostname=%s data_dir=%s",
	    conf->hostname, conf->data_dir);
	for (;;) {
		if (sigwaitinfo(&set, &si) == -1)
			continue;
		if (si.si_signo == SIGTERM || si.si_signo == SIGINT) {
			log_info("parent event=shutdown");
			stop_roles(SIGTERM);
			exit(0);
		}
		if (si.si_signo == SIGHUP) {
			log_warn("parent event=sighup note=\"reload is not "
			    "available yet: restart to apply changes\"");
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != pa.net && pid != pa.store)
				continue;
			log_err("parent event=role-died role=%s pid=%d how=%s",
			    pid == pa.net ? "net" : "store", (int)pid,
			    exit_text(status, how, sizeof(how)));
			if (pid == pa.net)
				pa.net = 0;
			else
				pa.store = 0;
		}
		if (pa.net > 0 && pa.store > 0)
			continue;
		stop_roles(SIGTERM);
		/* A role that dies at once again and again waits longer. */
		delay = time(NULL) - started < 10 ? (delay < 16 ? delay * 2 :
		    delay) : 1;
		sleep((unsigned int)delay);
		start_roles();
		started = time(NULL);
	}
}
