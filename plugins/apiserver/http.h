/* plugins/apiserver/http.h — the HTTP(S) front (http.c) and /metrics
 * (metrics.c). */
#ifndef KUBUS_APISERVER_HTTP_H
#define KUBUS_APISERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pki.h"
#include "server.h"

struct api_http;

/* Serve s->listen ("HOST:PORT"): HTTPS with pki's certificate, or plain
 * HTTP when s->plain_http (refused unless HOST is loopback). Returns NULL
 * with err set. The port actually bound (for PORT 0) is in *port. */
struct api_http *api_http_start(struct api_server *s, const struct api_pki *pki,
    int *port, char *err, size_t errlen);
/* Stop accepting, end every stream, wait for request threads. */
void api_http_stop(struct api_http *h);

/* authn.c: keep the token digest's algorithm fetched while an HTTP front
 * runs (api_http_start holds it, api_http_stop releases it). */
void api_authn_hold(void);
void api_authn_release(void);
/* api_authenticate, and until when its answer may be reused (the time
 * the auth service vouched for the token plus the cache's lifetime): a
 * connection keeps it for its next requests with the same token. */
int api_authenticate_until(struct api_server *s, const char *token,
    struct api_user *out, time_t *until);
/* A deep copy (fields NULL when out of memory). */
void api_user_copy(struct api_user *dst, const struct api_user *src);

/* metrics.c: counters the HTTP layer and the store calls feed. */
void api_metrics_request(struct api_server *s, const char *verb,
    const char *resource, int code, double seconds);
void api_metrics_watchers(struct api_server *s, int delta);
void api_metrics_store(struct api_server *s, const char *op, double seconds);
/* The Prometheus text (malloc'd). */
char *api_metrics_text(struct api_server *s, size_t *len);
void api_metrics_free(struct api_server *s);

#endif
