/* kubus/bus.h — talking on the bus: bodies, requests, replies, topics.
 *
 * Every message is an envelope (DESIGN.md) whose body is one msgpack value.
 * A plugin never sees the envelope itself: it sends a body to a service or a
 * topic and receives kb_msg handles whose source and principal the core has
 * stamped. Whether the peer runs in this process, in an isolated child or on
 * another host is invisible here.
 *
 * Ownership (as nng): a function that takes a kb_body * owns it once it
 * returns 0; on error the caller still owns it and must kb_body_unref() it.
 *
 * Threading:
 *   - service handlers (kb_serve) and topic handlers (kb_subscribe) of one
 *     plugin instance run on that instance's dispatch thread, one at a time,
 *     in arrival order; messages from one sender arrive in the order sent.
 *     They must not block for long: hand slow work to a thread of your own
 *     and reply from there (kb_reply may be called from any thread).
 *   - reply callbacks (kb_request) run on whichever bus thread completed
 *     the request (the replier's, the timer's, a connection's; with an
 *     inline service, the requester's own, before kb_request returns; a
 *     request sent from there goes through the service's thread).
 *     They must not block and must not call kb_call().
 *   - kb_call() blocks the calling thread; never call it from a reply
 *     callback, and never call your own service from its dispatch thread.
 */
#ifndef KUBUS_BUS_H
#define KUBUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_ctx kb_ctx;
typedef struct kb_body kb_body;
typedef struct kb_msg kb_msg;

/* Largest body the bus carries (the wire frame adds a few bytes). */
#define KB_BODY_MAX (64u * 1024 * 1024)

/* --- bodies: immutable, reference-counted msgpack values ----------------- */

/* Copies `len` bytes. NULL on allocation failure. */
kb_body *kb_body_new(const void *data, size_t len);
/* `len` bytes in the body's own block, for the caller to write through
 * *data before it hands the body to anyone (a body is immutable once
 * shared): an encoder that knows the size makes one allocation, not a
 * buffer and then its copy. NULL on allocation failure. */
kb_body *kb_body_alloc(size_t len, void **data);
/* Takes a malloc()ed buffer; frees it with free() on the last unref. */
kb_body *kb_body_take(void *data, size_t len);
/* Takes the sbuffer's data and leaves the sbuffer empty and reusable. */
kb_body *kb_body_from_sbuf(msgpack_sbuffer *sb);
/* A body holding msgpack nil. */
kb_body *kb_body_nil(void);
kb_body *kb_body_ref(kb_body *b);
void kb_body_unref(kb_body *b);
const void *kb_body_data(const kb_body *b, size_t *len);
/* The decoded value, decoded once on first use and shared by every holder.
 * Borrowed: valid while the body is referenced. NULL if the bytes are not
 * exactly one well-formed msgpack value. Thread-safe. */
const msgpack_object *kb_body_obj(kb_body *b);

/* --- received messages ---------------------------------------------------- */

/* Accessors. Strings are borrowed and valid while the message is. */
const char *kb_msg_op(const kb_msg *m);        /* "get", "watch", …; "" for pub */
const char *kb_msg_dst(const kb_msg *m);       /* service or topic */
const char *kb_msg_src(const kb_msg *m);       /* sender endpoint (core-stamped) */
const char *kb_msg_principal(const kb_msg *m); /* sender principal (core-stamped) */
/* The sender's groups as stamped by the core, e.g. "kubus:plugins". */
size_t kb_msg_ngroups(const kb_msg *m);
const char *kb_msg_group(const kb_msg *m, size_t i);
bool kb_msg_in_group(const kb_msg *m, const char *group);
/* The body value (NULL if malformed) and a new reference to the raw body. */
const msgpack_object *kb_msg_body(const kb_msg *m);
kb_body *kb_msg_body_ref(const kb_msg *m);
/* On an error reply: the code and the message ("" when none). */
kb_err kb_msg_err(const kb_msg *m, const char **message);
/* Milliseconds left before the request's deadline; -1 when none. */
int64_t kb_msg_remaining_ms(const kb_msg *m);

/* --- serving ------------------------------------------------------------- */

/* Called for each request to a service. The handler owns `req` and must
 * answer it exactly once, with kb_reply() or kb_reply_err(), from any thread
 * and at any time before its deadline; the answer frees it. */
typedef void (*kb_serve_fn)(void *arg, kb_msg *req);

/* Register a service name. During init only. KB_EEXIST if the name is
 * taken on this host. Names: [A-Za-z0-9._/-:]+, at most 127 bytes. */
int kb_serve(kb_ctx *ctx, const char *service, kb_serve_fn fn, void *arg);
/* The same, for a handler that is thread-safe (several at once, and at
 * once with the dispatch thread's handlers) and never blocks: a request
 * from a plugin of this process then runs it on the requester's thread,
 * without the hand-over to the dispatch thread (requests from other
 * processes still come there). On a host without it (KB_HOST_HAS
 * serve_inline), kb_serve. */
int kb_serve_inline(kb_ctx *ctx, const char *service, kb_serve_fn fn,
    void *arg);

/* Answer a request. Takes `body` (and frees `req`) on success. On error
 * the caller still owns `body` but `req` is freed all the same. */
int kb_reply(kb_msg *req, kb_body *body);
/* Answer with an error (KB_ENOTFOUND, …) and a message saying what was
 * expected and what came. Frees `req`. */
int kb_reply_err(kb_msg *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answer with an error that also carries a body (e.g. a store Conflict with
 * the current value). Takes `body` on success, frees `req` either way. */
int kb_reply_err_body(kb_msg *req, int code, kb_body *body, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

/* --- requesting ---------------------------------------------------------- */

/* Called once per request: rc is 0 and `rep` the reply, or rc is the error
 * (KB_ETIMEOUT, KB_EUNAVAILABLE, KB_EFORBIDDEN, or the code the service
 * answered) and `rep` the error reply when there was one (else NULL).
 * `rep` is borrowed for the duration of the call. */
typedef void (*kb_reply_fn)(void *arg, int rc, const kb_msg *rep);

/* Send a request to `service`. timeout_ms <= 0 means the host's default
 * (`bus.timeout` in its config, 30 s unless set).
 * Takes `body` on success (NULL sends nil). The callback is always called
 * exactly once when this returns 0, and never when it returns an error. */
int kb_request(kb_ctx *ctx, const char *service, const char *op,
    kb_body *body, int timeout_ms, kb_reply_fn fn, void *arg);

/* Blocking request. On success *rep is the reply (free it with
 * kb_msg_free()); on error *rep may hold the error reply or be NULL.
 * Takes `body` whatever it returns. */
int kb_call(kb_ctx *ctx, const char *service, const char *op, kb_body *body,
    int timeout_ms, kb_msg **rep);
void kb_msg_free(kb_msg *m);

/* --- topics -------------------------------------------------------------- */

/* Called for each publication on a matching topic; `m` is borrowed. */
typedef void (*kb_sub_fn)(void *arg, const kb_msg *m);

/* Subscribe to a topic. A pattern ending in '*' matches every topic that
 * starts with what precedes it; any other pattern matches exactly. May be
 * called at any time after init began. */
int kb_subscribe(kb_ctx *ctx, const char *pattern, kb_sub_fn fn, void *arg);
/* No publication is queued for the pattern once this returns, but one
 * queued before (or being handled on the dispatch thread) may still reach
 * fn afterwards: what `arg` points to must outlive that, e.g. until the
 * plugin's fini, or be found through it under a lock (the SDK's informer
 * and the API server's watch cache do so). */
int kb_unsubscribe(kb_ctx *ctx, const char *pattern);

/* Publish to every subscriber. Takes `body` on success; the body is encoded
 * once and shared by every delivery. */
int kb_publish(kb_ctx *ctx, const char *topic, kb_body *body);

#ifdef __cplusplus
}
#endif
#endif
