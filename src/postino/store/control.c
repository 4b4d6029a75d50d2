/*
 * control.c - the store's control socket, data_dir/control.sock: how
 * postino-admin reaches the running daemon (R5.7 queue tools).
 *
 * A client sends one line, "queue VERB [ID]", "reload" (R7.1) or
 * "stats" (R7.5), and reads the answer until the store closes: "ok"
 * and the output, or "error REASON".  The socket is mode 0600, owned by
 * the store's user, so only that user and root may talk to it; what
 * they send is still parsed with bounds.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "control.h"
#include "log.h"
#include "scheduler.h"
#include "stats.h"
#include "xalloc.h"

#define CONTROL_LINE_MAX	256
#define CONTROL_CLIENTS_MAX	16
#define CONTROL_TIMEOUT		30

struct ctl_client {
	struct bufferevent	*bev;
	bool			 asked;	/* the request went to the scheduler */
	bool			 gone;	/* the client left before the answer */
};

static struct {
	struct sched		*sched;
	control_reload_fn	 reload;
	struct evconnlistener	*lev;
	unsigned int		 clients;
} ctl;

static void
client_close(struct ctl_client *c)
{
	bufferevent_free(c->bev);
	ctl.clients--;
	free(c);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client	*c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_close(c);
}

static void
answer(void *arg, const char *text, size_t len)
{
	struct ctl_client	*c = arg;

	if (c->gone) {
		client_close(c);
		return;
	}
	bufferevent_write(c->bev, text, len);
	bufferevent_setcb(c->bev, NULL, write_cb, NULL, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client	*c = arg;

	if (c->asked) {
		c->gone = true;		/* answer() frees it */
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		return;
	}
	client_close(c);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line, verb[16] = "", qid[32] = "", extra[2];
	size_t			 len;
	int			 n;

	if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			answer(c, "error request too long\n", 23);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if (strcmp(line, "reload") == 0) {
		free(line);
		c->asked = true;
		ctl.reload(answer, c);
		return;
	}
	if (strcmp(line, "stats") == 0) {
		free(line);
		c->asked = true;
		stats_control(answer, c);	/* R7.5 */
		return;
	}
	n = sscanf(line, "queue %15s %31s %1s", verb, qid, extra);
	free(line);
	if (n < 1 || n > 2) {
		answer(c, "error expected: queue VERB [ID], reload or stats\n", 49);
		return;
	}
	c->asked = true;
	sched_control(ctl.sched, verb, qid, answer, c);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_client	*c;
	struct timeval		 tv = { CONTROL_TIMEOUT, 0 };

	if (ctl.clients >= CONTROL_CLIENTS_MAX) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->bev = bufferevent_socket_new(evconnlistener_get_base(lev), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	ctl.clients++;
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

/* A clean exit leaves no socket behind ("not running", not "refused"). */
static void
control_unlink(void)
{
	unlink(CONTROL_SOCKET);
}

void
control_stop(void)
{
	if (ctl.lev == NULL)
		return;
	control_unlink();
	evconnlistener_free(ctl.lev);
	ctl.lev = NULL;
}

void
control_start(struct event_base *base, struct sched *sched,
    control_reload_fn reload)
{
	struct sockaddr_un	 sun;
	struct evconnlistener	*lev;
	mode_t			 old;
	int			 fd;

	ctl.sched = sched;
	ctl.reload = reload;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, CONTROL_SOCKET, sizeof(sun.sun_path));
	/* A socket left by a store that died: nobody listens on it. */
	unlink(CONTROL_SOCKET);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		fatal("control: socket");
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("control: bind %s", CONTROL_SOCKET);
	umask(old);
	atexit(control_unlink);
	lev = evconnlistener_new(base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (lev == NULL)
		fatalx("control: cannot listen on %s", CONTROL_SOCKET);
	ctl.lev = lev;
	log_info("store event=control-ready socket=%s", CONTROL_SOCKET);
}
