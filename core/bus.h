/* core/bus.h — the router: endpoints, services, topics, pending requests.
 *
 * Every plugin instance and every remote peer is an endpoint. In-process
 * endpoints have a mailbox drained by one dispatch thread (that is what
 * keeps per-sender order and lets handlers be simple); remote endpoints
 * hand messages to their connection (conn.c), which encodes them. Requests
 * are tracked in a pending table keyed by a bus-wide id, so replies,
 * timeouts and "service went away" all end a request exactly once.
 */
#ifndef KUBUS_CORE_BUS_H
#define KUBUS_CORE_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <kubus/kubus.h>

#include "internal.h"

struct kb_auth;
struct kb_bus;
struct kb_endpoint;

/* What the bus knows of the context a plugin holds. Every kb_ctx the host
 * hands out is one of these. */
struct kb_hctx {
	kb_ctx ctx;                 /* first: kb_ctx * == struct kb_hctx * */
	struct kb_endpoint *ep;     /* whose bus identity calls use; NULL
	                             * once closed (calls get KB_ECLOSED) */
	struct kb_hctx *parent;     /* extensions: the owner's context */
	void *owner;                /* host-private (plugin instance) */
	char *name;                 /* instance or extension name for logs */
};

/* How a remote endpoint's messages leave the process (conn.c). */
struct kb_ep_ops {
	/* Send a request or publication to the peer. Takes `m` on success;
	 * on error the caller still owns it. */
	int (*deliver)(void *peer, kb_msg *m);
};

struct kb_bus_stats {
	atomic_ullong requests, replies, timeouts, unavailable, denied;
	atomic_ullong published, delivered, malformed, disconnects;
};

struct kb_bus *kb_bus_new(const struct kb_host_api *api, struct kb_auth *auth,
    int default_timeout_ms);
/* Closes every endpoint still open, then frees. */
void kb_bus_free(struct kb_bus *bus);
struct kb_bus_stats *kb_bus_stats(struct kb_bus *bus);
struct kb_auth *kb_bus_auth(struct kb_bus *bus);

/* A local endpoint with its dispatch thread; `who` is referenced. */
struct kb_endpoint *kb_bus_open_local(struct kb_bus *bus, const char *name,
    struct kb_ident *who, void *owner);
/* A remote endpoint. `trusted` (the uplink) keeps the src and principal the
 * peer stamped instead of stamping its own, and skips the ACL. */
struct kb_endpoint *kb_bus_open_remote(struct kb_bus *bus, const char *name,
    struct kb_ident *who, const struct kb_ep_ops *ops, void *peer,
    bool trusted);
/* Unregister its services and subscriptions, fail the requests waiting on
 * it (ServiceUnavailable), drop the ones it sent, drain its mailbox, stop
 * its thread, wait for callbacks running on its behalf, free it. */
void kb_bus_close(struct kb_endpoint *ep);

kb_ctx *kb_ep_ctx(struct kb_endpoint *ep);
struct kb_endpoint *kb_ctx_ep(kb_ctx *ctx);
struct kb_ident *kb_ep_ident(struct kb_endpoint *ep);
const char *kb_ep_name(struct kb_endpoint *ep);
struct kb_bus *kb_ep_bus(struct kb_endpoint *ep);

/* The uplink: where requests for unknown services go (NULL: none). */
void kb_bus_set_uplink(struct kb_bus *bus, struct kb_endpoint *ep);

/* Operations. `who` is the stamped sender (NULL: the endpoint's own). */
int kb_bus_serve(struct kb_endpoint *ep, const char *service, kb_serve_fn fn,
    void *arg);
/* The same, and a request from another local endpoint runs fn on the
 * requester's thread instead of handing it to ep's (fn is then thread-safe
 * and does not block: the store's reads and queued writes, the api
 * service's queue). kb_bus_close waits for those calls too. */
int kb_bus_serve_inline(struct kb_endpoint *ep, const char *service,
    kb_serve_fn fn, void *arg);
int kb_bus_subscribe(struct kb_endpoint *ep, const char *pattern,
    kb_sub_fn fn, void *arg);
int kb_bus_unsubscribe(struct kb_endpoint *ep, const char *pattern);
int kb_bus_request(struct kb_endpoint *ep, struct kb_ident *who,
    const char *service, const char *op, kb_body *body, int timeout_ms,
    kb_reply_fn fn, void *arg);
int kb_bus_publish(struct kb_endpoint *ep, struct kb_ident *who,
    const char *topic, kb_body *body);
/* The reply slot of the host API table. */
int kb_bus_reply(kb_msg *req, kb_body *body, int code, const char *message);
/* A reply that came back from remote endpoint `from` for request `id`.
 * Ignored (and counted) if that request is not pending on `from`. Takes
 * `body`. */
void kb_bus_complete(struct kb_endpoint *from, uint64_t id, int code,
    const char *message, kb_body *body);

/* Call `fn` for each service / subscription pattern of `ep` (the uplink
 * re-registers them after a reconnect). */
void kb_bus_each_service(struct kb_bus *bus, struct kb_endpoint *ep,
    void (*fn)(void *arg, const char *name), void *arg);
void kb_bus_each_local_pattern(struct kb_bus *bus,
    void (*fn)(void *arg, const char *pattern), void *arg);
bool kb_bus_has_service(struct kb_bus *bus, const char *service);

/* Topic pattern match: "x*" prefix, else exact. */
bool kb_topic_match(const char *pattern, const char *topic);

#endif
