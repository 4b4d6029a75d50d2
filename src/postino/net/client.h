/*
 * client.h - the outbound SMTP client of the net role (SPEC R5.3,
 * R5.4): one job of the store's scheduler is one message for the
 * recipients of one domain, delivered by MX (RFC 5321 5.1: MX records
 * by preference, else the domain's own address; RFC 7505 null MX) or
 * through the smart host, with opportunistic STARTTLS, PIPELINING,
 * SIZE, 8BITMIME, SMTPUTF8 and at most max_recipients_per_session
 * recipients per transaction.  The outcome of every recipient goes back
 * to store in one IMSG_DELIVER_RESULT.
 */
#ifndef NET_CLIENT_H
#define NET_CLIENT_H

struct ipc_msg;

/* Make the TLS client context and the resolver: before the chroot. */
void	client_init(void);

/* IMSG_DELIVER from store: start the job (takes the descriptor). */
void	client_deliver(struct ipc_msg *);

/* IMSG_DELIVER_SOCK: the LMTP socket of the job that follows. */
void	client_deliver_sock(struct ipc_msg *);

#endif
