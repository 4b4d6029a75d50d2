/*
 * main.c - postino: the parent, and the entry of the two roles it
 * re-executes (net, store).  The peer graph is all here:
 *
 *	parent --fork+exec--> net   <--socketpair--> store <--fork+exec-- parent
 *
 * The parent keeps the listening sockets and restarts the roles; net
 * owns the network peers; store owns the files.  See DESIGN.md.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "parent.h"
#include "proto.h"
#include "role.h"
#include "xalloc.h"

static void
usage(void)
{
	fprintf(stderr, "usage: postino -c FILE [check-config]\n");
	exit(2);
}

void
role_reload(struct ipc *c, struct ipc_msg *m,
    bool (*apply)(int, const char *, uint64_t))
{
	struct ipc_out	 o;
	const char	*path;
	uint64_t	 gen;
	bool		 ok;

	gen = ipc_get_u64(m);
	path = ipc_get_str(m);
	if (m->fd == -1 || path == NULL)
		fatalx("reload without a configuration from the parent");
	ok = apply(m->fd, path, gen);
	ipc_end(m);
	close(m->fd);
	ipc_out_init(&o);
	ipc_put_u64(&o, gen);
	ipc_put_u32(&o, ok);
	ipc_send(c, IMSG_PARENT_RELOADED, 0, -1, &o);
}

void
role_drop(const char *role, const char *user, const char *dir)
{
	struct passwd	*pw;
	char		 path[PATH_MAX * 4 + 3];

	if (geteuid() != 0) {
		log_info("%s event=privileges user=%s chroot=none "
		    "note=\"not started as root: every role runs as this "
		    "user\"", role, getpwuid(geteuid()) ?
		    getpwuid(geteuid())->pw_name : "?");
		goto out;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("%s: user %s does not exist (scripts/install-deps.sh "
		    "creates it)", role, user);
	if (dir != NULL && (chroot(dir) == -1 || chdir("/") == -1))
		fatal("%s: chroot %s", role, dir);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("%s: cannot become %s", role, user);
	log_info("%s event=privileges user=%s chroot=%s", role, user,
	    dir ? log_value(dir, path, sizeof(path)) : "none");
out:
	/* Die with the parent; checked again against the race. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		exit(0);
}

/* path made absolute against the working directory, links kept. */
static int
absolute(const char *path, char *buf, size_t size)
{
	char	cwd[PATH_MAX];

	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	if ((size_t)snprintf(buf, size, "%s%s%s", path[0] == '/' ? "" : cwd,
	    path[0] == '/' ? "" : "/", path) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* "4:0,5:0,6:1": descriptor and listener index of each socket. */
static size_t
parse_listen(const char *arg, struct role_listen *ls, size_t max,
    const struct conf *conf)
{
	size_t	n = 0;
	char	*copy = xstrdup(arg), *tok, *save = NULL, *colon;

	for (tok = strtok_r(copy, ",", &save); tok != NULL && n < max;
	    tok = strtok_r(NULL, ",", &save)) {
		if ((colon = strchr(tok, ':')) == NULL)
			fatalx("bad --listen %s", arg);
		ls[n].fd = atoi(tok);
		ls[n].listener = (size_t)strtoul(colon + 1, NULL, 10);
		if (ls[n].listener >= conf->nlisteners)
			fatalx("bad --listen %s", arg);
		n++;
	}
	free(copy);
	return n;
}

int
main(int argc, char *argv[])
{
	struct conf		*conf;
	struct role_listen	 ls[CONF_LISTENERS_MAX * CONF_LISTEN_MAX];
	const char		*path = NULL, *role = NULL, *listen = NULL;
	int			 metrics_fd = -1;
	char			 err[1024], abspath[PATH_MAX];
	int			 ch;
	bool			 check = false;


	while ((ch = getopt(argc, argv, "c:R:L:M:")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'R':
			role = optarg;
			break;
		case 'L':
			listen = optarg;
			break;
		case 'M':		/* net: the [metrics] listen socket */
			metrics_fd = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (path == NULL)
		usage();
	if (argc == 1 && strcmp(argv[0], "check-config") == 0)
		check = true;
	else if (argc != 0)
		usage();
	/*
	 * The parent keeps the path as given, made absolute but not
	 * resolved, so that a reload follows a symbolic link switched to
	 * another file; a role gets the resolved name of the text the
	 * parent checked, and never opens the file at all.
	 */
	if (role != NULL)
		strlcpy(abspath, path, sizeof(abspath));
	else if (absolute(path, abspath, sizeof(abspath)) == -1) {
		fprintf(stderr, "postino: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((role != NULL ? conf_load_fd(ROLE_FD_CONF, abspath, &conf, err,
	    sizeof(err)) : conf_load(abspath, &conf, err, sizeof(err))) == -1) {
		fprintf(stderr, "postino: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", abspath);
		conf_free(&conf);
		return 0;
	}
	if (role == NULL) {
		log_init("parent", (int)conf->log_level);
		parent_main(conf, abspath);
	}
	close(ROLE_FD_CONF);
	log_init(role, (int)conf->log_level);
	if (strcmp(role, "net") == 0)
		net_main(conf, ls, listen ? parse_listen(listen, ls,
		    sizeof(ls) / sizeof(ls[0]), conf) : 0, metrics_fd);
	if (strcmp(role, "store") == 0)
		store_main(conf);
	usage();
}
