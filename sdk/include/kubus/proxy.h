/* kubus/proxy.h — the service proxy's backend vtable (extension kind
 * "proxy-backend").
 *
 * The proxy plugin (plugins/proxy) watches Services and EndpointSlices
 * through the `api` bus service, computes the desired state of this node —
 * which virtual address and port goes to which endpoints — and hands it to
 * the backend named by its config key `backend` (`proxy-nftables`,
 * `proxy-iptables`, `proxy-userspace`, or a third party's) as one batch
 * after a short coalescing window.
 *
 * What the proxy has already decided, so that every backend behaves the
 * same: only ready endpoints (serving and not terminating) are listed;
 * targetPort names are resolved to numbers per endpoint; for
 * `internalTrafficPolicy: Local` only this node's endpoints are in `eps`;
 * for NodePort with `externalTrafficPolicy: Local`, `node_eps` holds only
 * this node's endpoints (otherwise node_eps == eps). A service with no
 * ClusterIP (headless) is not handed over at all.
 *
 * A backend:
 *   - does nothing to the system in init (the proxy loads other backends
 *     only to call their cleanup);
 *   - in sync, makes the system match the state: a packet to
 *     cluster_ip:port/proto is DNAT'd to one of `eps` (round robin or
 *     random; with affinity the same client IP keeps its endpoint for
 *     affinity_timeout_s), to node_ip:node_port likewise to `node_eps`; a
 *     service port with no endpoints is rejected (ICMP port unreachable /
 *     TCP reset), and so is any address in service_cidr that is no
 *     service's cluster_ip — never forwarded off the machine;
 *   - with full == false, may touch only the services in `changed` (their
 *     entries in svcs are the new state; a key in `changed` with no entry
 *     in svcs was removed): the cost of a sync should follow the number
 *     of changed services, not the total;
 *   - in cleanup, removes everything it ever created — also what a
 *     previous process left (it finds its objects by their fixed names:
 *     the nft table, the iptables chains, the dummy device) — and returns
 *     0 when there was nothing.
 *
 * The proxy calls sync and cleanup from one thread only.
 * Errors: 0 or a kb_err; the message goes to the log, and the proxy
 * retries with full == true after a back-off.
 */
#ifndef KUBUS_PROXY_H
#define KUBUS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kb_px_proto {
	KB_PX_TCP = 6,
	KB_PX_UDP = 17,
	KB_PX_SCTP = 132,
};

struct kb_px_endpoint {
	const char *ip;  /* IPv4 text */
	uint16_t port;   /* targetPort resolved for this endpoint */
	bool local;      /* on this node */
};

struct kb_px_port {
	const char *name; /* the service port's name; may be "" */
	int proto;        /* enum kb_px_proto */
	uint16_t port;
	uint16_t node_port; /* 0: none */
	const struct kb_px_endpoint *eps;      /* for the ClusterIP */
	size_t neps;
	const struct kb_px_endpoint *node_eps; /* for the NodePort */
	size_t nnode_eps;
};

struct kb_px_service {
	const char *key; /* "ns/name" */
	const char *cluster_ip;
	bool affinity;   /* sessionAffinity: ClientIP */
	uint32_t affinity_timeout_s; /* default 10800 */
	const struct kb_px_port *ports;
	size_t nports;
};

struct kb_px_state {
	size_t size; /* sizeof(struct kb_px_state) the proxy was built with */
	const struct kb_px_service *svcs; /* every service, sorted by key */
	size_t nsvcs;
	bool full;
	const char *const *changed; /* keys, when !full */
	size_t nchanged;
	const char *service_cidr;   /* "10.96.0.0/12" */
	const char *node_ip;        /* this node's address, for NodePorts */
};

struct kb_proxy_ops {
	size_t size; /* sizeof(struct kb_proxy_ops) the backend was built with */
	int (*sync)(void *be, const struct kb_px_state *st);
	int (*cleanup)(void *be);
	/* --- ABI 1.0 ends here; append new slots below. --- */
};

#ifdef __cplusplus
}
#endif
#endif
