/*
 * httpd.h - the Prometheus endpoint of R7.5 in the net role.
 */
#ifndef NET_HTTPD_H
#define NET_HTTPD_H

struct ipc_msg;

/* Serve GET /metrics on the listening socket fd ([metrics] listen). */
void	httpd_start(int fd);

/* IMSG_METRICS_TEXT from store: answer the scrape m->id, if it waits. */
void	httpd_text(struct ipc_msg *);

/* IMSG_METRICS_ASK from store: send net's numbers (IMSG_METRICS). */
void	httpd_ask(struct ipc_msg *);

#endif
