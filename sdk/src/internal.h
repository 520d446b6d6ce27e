/* sdk/src/internal.h — structures shared by the SDK library and the host.
 *
 * Plugins never see these: they hold opaque pointers and use accessors.
 * The host (core/) includes this header to build and route messages.
 */
#ifndef KUBUS_SDK_INTERNAL_H
#define KUBUS_SDK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <kubus/kubus.h>

#define KB_HIDDEN __attribute__((visibility("hidden")))

/* Who sent a message: endpoint and principal, stamped by the core. Shared
 * by every message from the same endpoint; reference-counted, immutable. */
struct kb_ident {
	atomic_int refs;
	char *endpoint;  /* "apiserver", "node-1/kubelet", "conn:7" */
	char *user;      /* "plugin:apiserver", "admin", "node:node-1" */
	char *uid;
	size_t ngroups;
	char **groups;   /* "kubus:plugins", "kubus:kind:store", … */
	uint64_t serial; /* unique in the process, never 0: what a decision
	                  * remembered for this identity is keyed by (an
	                  * address can be reused by another identity) */
};

struct kb_ident *kb_ident_new(const char *endpoint, const char *user,
    const char *uid, const char *const *groups, size_t ngroups);
struct kb_ident *kb_ident_ref(struct kb_ident *id);
void kb_ident_unref(struct kb_ident *id);
bool kb_ident_in_group(const struct kb_ident *id, const char *group);

struct kb_body {
	atomic_int refs;
	size_t len;
	void *data;
	void (*free_fn)(void *);   /* frees data; NULL when data is inline */
	pthread_mutex_t mu;        /* guards the lazy decode */
	atomic_int decoded;        /* 0 not yet, 1 ok, -1 malformed */
	msgpack_zone zone;         /* the decoded tree, when decoded is 1 */
	uint32_t share_slot;       /* 1 + its slot among the shared bodies
	                            * (kb_body_shared_decoded), or 0 */
	msgpack_object obj;
};

/* body.c: a body holding a copy of p[0..len), decoded at once (kb_body_obj
 * says whether that worked); NULL when out of memory. */
KB_HIDDEN kb_body *kb_body_new_decoded(const void *p, size_t len);
/* The same, or a new reference to a body with the same bytes that some
 * holder still has (one made by this function: the informers of a process
 * share each object they all receive instead of each decoding a copy;
 * *found tells which). NULL when out of memory. */
KB_HIDDEN kb_body *kb_body_shared_decoded(const void *p, size_t len,
    bool *found);
/* informer.c: inside an informer's handler, a new reference to the body
 * whose decoded root `obj` is (an object the handler was passed), else
 * NULL. */
KB_HIDDEN kb_body *kb_informer_body_of(const msgpack_object *obj);

enum kb_msg_type {
	KB_T_REQ = 1,
	KB_T_REP = 2,
	KB_T_ERR = 3,
	KB_T_PUB = 4,
};

/* A message as delivered to a plugin. */
struct kb_msg {
	int type;
	uint64_t id;             /* the core's pending-request id (req) */
	struct kb_ident *who;    /* sender; never NULL once delivered */
	char *dst;               /* service or topic (in the message's block) */
	char *op;                /* operation ("" for pub; in the block too) */
	kb_body *body;           /* never NULL once delivered */
	int err;                 /* on KB_T_ERR */
	char *err_msg;           /* on KB_T_ERR (malloc'd or NULL) */
	int64_t deadline_ns;     /* absolute CLOCK_MONOTONIC, 0 = none */
	/* reply route: the host that must see kb_reply() */
	const struct kb_host_api *api;
	void *route;             /* host-private */
	/* host-private queueing: a mailbox link and the handler to run */
	struct kb_msg *next;
	void (*handler)(void *arg, kb_msg *m);
	void *handler_arg;
};

struct kb_msg *kb_msg_new(int type, struct kb_ident *who, const char *dst,
    const char *op, kb_body *body);
int64_t kb_now_ns(void);

#endif
