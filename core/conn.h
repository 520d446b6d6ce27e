/* core/conn.h — the bus between processes and hosts, over nng streams.
 *
 * Listeners accept peers (ipc for local tools and isolated plugins, tcp on
 * loopback, tls+tcp with mutual TLS for other hosts); every peer proves a
 * token in a hello before anything of its is routed. The uplink is the one
 * connection this host dials: requests for services it does not know go
 * there, and its local services and subscriptions are registered there.
 * It may have several addresses (control-plane hosts of one cluster): it
 * holds one connection, to the first that answers; when that drops it
 * tries the others in turn, the next one first, with a capped exponential
 * backoff between rounds, and registers everything again where it lands.
 * It pings its host every bus.keepalive and hangs up after
 * bus.keepalive_timeout without a byte from it, so a frozen or cut-off
 * host is left as soon as a closed one; a host drops a peer that pinged
 * and then went quiet for as long as its pings said.
 */
#ifndef KUBUS_CORE_CONN_H
#define KUBUS_CORE_CONN_H

#include <stddef.h>

struct kb_host;
struct kb_net;

struct kb_net *kb_net_new(struct kb_host *h);
/* Close every connection and listener, then free. NULL is fine. */
void kb_net_free(struct kb_net *n);
int kb_net_listen(struct kb_net *n, const char *url, char *err, size_t errlen);
/* Dial the uplink, say hello with `token`, wait for the answer: each of
 * `urls` (NULL-terminated, at least one) in order until one accepts; err
 * gives every address's reason when none does. Called once. */
int kb_net_join(struct kb_net *n, const char *const *urls, const char *token,
    char *err, size_t errlen);
/* The address the uplink is connected to now, or NULL while it is down
 * (valid until kb_net_free). */
const char *kb_net_uplink_url(struct kb_net *n);
/* Register this host's services and subscriptions upstream, then say
 * ready. Called once after start and again after every reconnect. */
void kb_net_uplink_ready(struct kb_net *n);
void kb_net_uplink_sub(struct kb_net *n, const char *pattern);
/* The URL a listener ended up on (ipc paths resolved); i-th listener. */
const char *kb_net_listen_url(struct kb_net *n, size_t i);

/* Turn "ipc://x.sock" into "ipc://DATA_DIR/x.sock"; malloc'd. */
char *kb_net_resolve_url(const char *url, const char *data_dir);

#endif
