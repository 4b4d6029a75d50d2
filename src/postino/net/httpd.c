/*
 * httpd.c - the Prometheus endpoint of R7.5 ([metrics] listen), in the
 * net role: GET /metrics over HTTP/1.0 or 1.1, one request a
 * connection, then close.
 *
 * It is an attack surface like any listener, and it needs none of
 * HTTP's generality, so it takes as little as it can: a request head
 * of at most HEAD_MAX octets, complete within REQUEST_TIMEOUT seconds
 * from the connect (a slow sender is cut), at most CLIENTS_MAX
 * clients at once; everything else gets a short error and the close.
 * Every phase of a client has a deadline of its own (the head, store's
 * text, the answer leaving, the linger after it), so no client holds
 * one of the few places for long, whatever it sends or does not.
 * The head is parsed by lib/http (fuzzed); nothing of it is logged
 * but the method and the target, escaped.  The text itself comes from
 * store (store/stats.c), which holds most of the numbers: net sends
 * its own with the request.
 */
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "proto.h"
#include "xalloc.h"

#define HEAD_MAX		4096
#define REQUEST_TIMEOUT		5	/* s, connect to the end of the head */
#define STORE_TIMEOUT		10	/* s, for store's text */
#define WRITE_TIMEOUT		10	/* s, for the answer to leave */
#define LINGER_TIMEOUT		2	/* s, reading what is left after */
#define LINGER_MAX		(64 * 1024)	/* octets read and dropped */
#define CLIENTS_MAX		8
#define CLIENT_BUCKETS		16

struct http_client {
	struct http_client	*next;
	uint64_t		 id;
	struct bufferevent	*bev;
	struct event		*deadline;	/* of the phase it is in */
	bool			 waiting;	/* for store's text */
	bool			 answered;	/* respond() was called */
	bool			 lingering;	/* the answer has left */
	size_t			 drained;	/* after the answer */
	char			 ip[64];
};

static struct {
	struct http_client	*clients[CLIENT_BUCKETS];
	unsigned int		 nclients;
	uint64_t		 next_id;
	struct event		*resume;	/* after an accept error */
} hd;

static struct http_client **
client_slot(uint64_t id)
{
	struct http_client	**pp = &hd.clients[id % CLIENT_BUCKETS];

	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static void
client_free(struct http_client *c)
{
	struct http_client	**pp = client_slot(c->id);

	if (*pp == c)
		*pp = c->next;
	event_free(c->deadline);
	bufferevent_free(c->bev);
	hd.nclients--;
	free(c);
}

/* The client closed, an error, or the answer or the linger timed out. */
static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	client_free(arg);
}

/* What the client still sends after the answer is read and dropped. */
static void
drain_cb(struct bufferevent *bev, void *arg)
{
	struct http_client	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);

	c->drained += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (c->drained > LINGER_MAX)
		client_free(c);
}

/*
 * The answer has left: end our side, then read until the client closes
 * (a little while, a little data at most).  Closing at once with its
 * unread input would send a reset, which may destroy the answer before
 * the client read it (a request refused before its end).
 */
static void
write_done(struct bufferevent *bev, void *arg)
{
	struct http_client	*c = arg;
	struct timeval		 tv = { LINGER_TIMEOUT, 0 };

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	shutdown(bufferevent_getfd(bev), SHUT_WR);
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_setcb(bev, drain_cb, NULL, event_cb, c);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
	/* LINGER_TIMEOUT in all, however the client trickles. */
	c->lingering = true;
	evtimer_add(c->deadline, &tv);
}

/* One response, then the close; body may be NULL (len 0). */
static void
respond(struct http_client *c, const char *status, const char *extra,
    const char *body, size_t len)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	struct timeval	 tv = { WRITE_TIMEOUT, 0 };

	evbuffer_add_printf(out, "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
	    body != NULL && strncmp(status, "200", 3) == 0 ?
	    "text/plain; version=0.0.4; charset=utf-8" :
	    "text/plain; charset=utf-8", len, extra);
	if (len > 0)
		evbuffer_add(out, body, len);
	c->waiting = false;
	c->answered = true;
	evtimer_del(c->deadline);	/* the write timeout holds now */
	/* What was read is dropped, and reading may go on past HEAD_MAX
	 * (the linger), or it would stop for good at the watermark. */
	c->drained += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_setcb(c->bev, NULL, write_done, event_cb, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
respond_error(struct http_client *c, const char *status, const char *extra)
{
	char	body[64];
	int	n = snprintf(body, sizeof(body), "%s\n", status);

	respond(c, status, extra, body, (size_t)n);
}

/* net's numbers to store, which renders the text (IMSG_METRICS). */
static void
send_numbers(enum metrics_for why, uint64_t id)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_u32(&o, why);
	metrics_net_put(&o, &net.stats);
	ipc_send(net.store, IMSG_METRICS, id, -1, &o);
}

/* A well-formed head: only GET /metrics is served. */
static void
request(struct http_client *c, const struct http_request *r)
{
	char		 esc[HTTP_TARGET_MAX * 4 + 1];
	size_t		 plen = strcspn(r->target, "?");
	struct timeval	 tv = { STORE_TIMEOUT, 0 };

	log_debug("metrics event=request address=[%s] method=%s target=%s",
	    c->ip, r->method, log_escape(r->target, strlen(r->target), esc,
	    sizeof(esc)));
	if (strcmp(r->method, "GET") != 0) {
		respond_error(c, "405 Method Not Allowed", "Allow: GET\r\n");
		return;
	}
	if (plen != 8 || strncmp(r->target, "/metrics", 8) != 0) {
		respond_error(c, "404 Not Found", "");
		return;
	}
	bufferevent_disable(c->bev, EV_READ);
	c->waiting = true;
	evtimer_add(c->deadline, &tv);
	send_numbers(METRICS_FOR_HTTP, c->id);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct http_client	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct http_request	 r;
	size_t			 len = evbuffer_get_length(in);
	const char		*head;

	if (c->waiting || c->answered)
		return;
	head = (const char *)evbuffer_pullup(in, len < HEAD_MAX ? -1 :
	    HEAD_MAX);
	switch (http_request_parse(head, len < HEAD_MAX ? len : HEAD_MAX,
	    &r)) {
	case HTTP_DONE:
		request(c, &r);
		break;
	case HTTP_BAD:
		log_info("metrics event=bad-request address=[%s]", c->ip);
		respond_error(c, "400 Bad Request", "");
		break;
	case HTTP_MORE:
		if (len >= HEAD_MAX) {
			log_info("metrics event=request-too-large "
			    "address=[%s]", c->ip);
			respond_error(c, "431 Request Header Fields Too Large",
			    "");
		}
		break;
	default:
		panic("httpd: parse result");
	}
}

/* The deadline of the phase: the head, store's text, the linger. */
static void
deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct http_client	*c = arg;

	if (c->lingering) {
		client_free(c);
		return;
	}
	if (c->waiting) {
		/* A late text from store finds the client not waiting. */
		log_warn("metrics event=timeout address=[%s] waiting=store",
		    c->ip);
		respond_error(c, "503 Service Unavailable", "");
		return;
	}
	if (c->answered)
		return;
	log_info("metrics event=timeout address=[%s]", c->ip);
	respond_error(c, "408 Request Timeout", "");
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct http_client	*c;
	struct timeval		 tv = { REQUEST_TIMEOUT, 0 };

	if (net.closing || hd.nclients >= CLIENTS_MAX) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->id = ++hd.next_id;
	net_sockaddr_text(sa, c->ip, sizeof(c->ip));
	evutil_make_socket_nonblocking(fd);
	if ((c->bev = bufferevent_socket_new(net.base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		free(c);
		return;
	}
	c->next = hd.clients[c->id % CLIENT_BUCKETS];
	hd.clients[c->id % CLIENT_BUCKETS] = c;
	hd.nclients++;
	bufferevent_setwatermark(c->bev, EV_READ, 0, HEAD_MAX);
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	c->deadline = evtimer_new(net.base, deadline, c);
	evtimer_add(c->deadline, &tv);
}

void
httpd_text(struct ipc_msg *m)
{
	struct http_client	*c = *client_slot(m->id);
	uint32_t		 ok = ipc_get_u32(m);
	const char		*text = ipc_get_str(m);

	ipc_end(m);
	if (text == NULL)
		fatalx("net: null metrics text from store");
	if (c == NULL || !c->waiting)
		return;		/* the client has gone */
	if (!ok) {
		respond_error(c, "500 Internal Server Error", "");
		return;
	}
	respond(c, "200 OK", "", text, strlen(text));
}

void
httpd_ask(struct ipc_msg *m)
{
	ipc_end(m);
	send_numbers(METRICS_FOR_ADMIN, m->id);
}

static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	net_accept_pause(lev, hd.resume, "metrics");
}

void
httpd_start(int fd)
{
	struct evconnlistener	*lev;

	evutil_make_socket_nonblocking(fd);
	lev = evconnlistener_new(net.base, on_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (lev == NULL)
		fatalx("net: cannot listen on metrics descriptor %d", fd);
	evconnlistener_set_error_cb(lev, on_accept_error);
	hd.resume = net_resume_timer(lev);
}
