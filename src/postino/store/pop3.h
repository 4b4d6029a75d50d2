/*
 * pop3.h - the mailboxes of POP3 sessions, in the store role (R6.1).
 */
#ifndef STORE_POP3_H
#define STORE_POP3_H

#include <stdint.h>

struct conf;
struct ipc;
struct ipc_msg;
struct pool;

void	pop3_init(const struct conf *, struct pool *, struct ipc *net);
void	pop3_reconf(const struct conf *);

/* IMSG_POP3_OPEN, IMSG_POP3_READ, IMSG_POP3_UPDATE from net. */
void	pop3_open(struct ipc_msg *);
void	pop3_read(struct ipc_msg *);
void	pop3_update(struct ipc_msg *);

/* The session has ended: its mailbox is closed, its marks forgotten. */
void	pop3_session_end(uint64_t session);

#endif
