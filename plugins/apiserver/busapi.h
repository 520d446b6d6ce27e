/* plugins/apiserver/busapi.h — the `api` bus service (busapi.c). */
#ifndef KUBUS_APISERVER_BUSAPI_H
#define KUBUS_APISERVER_BUSAPI_H

#include "server.h"

struct api_busapi;

/* During init: register the `api` service. */
struct api_busapi *api_busapi_new(struct api_server *s);
/* During start: the worker threads. */
int api_busapi_start(struct api_busapi *ba);
/* During stop: end workers and every bus watch. */
void api_busapi_stop(struct api_busapi *ba);
void api_busapi_free(struct api_busapi *ba);

/* Run run(arg) on a worker (the HTTP side's requests that may wait);
 * KB_EUNAVAILABLE once the workers stop. */
int api_busapi_run(struct api_busapi *ba, void (*run)(void *), void *arg);

/* kb_call, from any thread of the API server; on an `api` worker it
 * counts as blocked meanwhile, so that queued requests go to another
 * worker rather than wait for this one. */
int api_call(kb_ctx *ctx, const char *service, const char *op, kb_body *body,
    int timeout_ms, kb_msg **rep);
/* The same around another wait (on a worker; nothing elsewhere). */
void api_bus_blocking(bool on);

/* A create's object that the service left as msgpack bytes
 * (api_req.obj_mp), decoded as it decodes every other object. */
json_t *api_busapi_object(const void *data, size_t len);

/* For tests: the request's fields as the service reads them from a body's
 * bytes, {<field>: {"s": string, "i": integer}, …, "body": object}: in one
 * pass (fast; NULL when that path declines the body) or through the SDK's
 * decoded tree. Both must say the same wherever the first answers. */
json_t *api_busapi_fields(const void *data, size_t len, bool fast);

#endif
