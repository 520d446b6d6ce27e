/* plugins/apiserver/server.h — the API server's shared state.
 *
 * One struct api_server per plugin instance. plugin.c fills it from config
 * and owns its lifecycle; the other parts read what they need.
 */
#ifndef KUBUS_APISERVER_SERVER_H
#define KUBUS_APISERVER_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"

struct api_cache;

struct api_server {
	kb_ctx *ctx;                 /* the plugin's bus context */
	/* config (plugin.c) */
	char *listen;                /* "127.0.0.1:6443" */
	bool plain_http;             /* serve HTTP (loopback only) */
	char *service_cidr;          /* "10.96.0.0/12" */
	int64_t node_port_min, node_port_max;
	int64_t request_timeout_ms;  /* per request, store calls included */
	int64_t max_body;            /* bytes; 413 beyond */
	int64_t max_inflight;        /* 429 beyond */
	int64_t watch_buffer;        /* events a watcher may lag behind */
	int64_t bookmark_ms;         /* bookmark interval */
	int64_t bus_workers;         /* threads answering the `api` bus service */
	char *cluster_domain;
	/* watch caches, one per resource, started on first use (cache.c) */
	pthread_mutex_t cache_mu;
	struct api_cache **caches;   /* indexed like api_resources[] */
	/* re-establishes store watches the store dropped (cache.c) */
	pthread_t cache_keeper;
	pthread_cond_t keeper_cv;    /* with cache_mu */
	bool keeper_on, keeper_stop;
	/* allocation of ClusterIPs and NodePorts (rest.c) */
	pthread_mutex_t alloc_mu;
	/* the HTTP side (http.c): opaque here */
	void *http;
	/* counters for /metrics (metrics.c) */
	void *metrics;
	bool stopping;
};

/* store.c: a store KV map -> object with resourceVersion (new ref). */
json_t *api_store_kv_object(const msgpack_object *kv, int64_t *mod_rev);

/* bootstrap.c: the default namespaces and the `kubernetes` service. */
void api_bootstrap(struct api_server *s);

/* cache.c */
int api_cache_start_all(struct api_server *s, struct api_error *e);
void api_cache_stop_all(struct api_server *s);
/* How often resource i's cache has re-established its store watch. */
uint64_t api_cache_resyncs(struct api_server *s, size_t i);
/* List from the cache (resourceVersion=0 semantics): items (new array of
 * new references) under ns (NULL: all) at the cache's revision. */
int api_cache_list(struct api_server *s, const struct api_resource *r,
    const char *ns, json_t **items, int64_t *rev, struct api_error *e);
/* A write this server made to the store (put or delete of key at rev):
 * api_cache_peek answers for key's resource only once its cache has it. */
void api_cache_wrote(struct api_server *s, const char *key, int64_t rev);
/* key in r's cache, as Kubernetes' admission reads its informers: 1 when
 * the cache holds it (*deleting: it has a deletionTimestamp); 0 when the
 * cache cannot tell (it does not hold the key, or it is behind a write of
 * this server's for more than a second, or the store dropped its watch):
 * ask the store then. */
int api_cache_peek(struct api_server *s, const struct api_resource *r,
    const char *key, bool *deleting);
/* Watch with a callback instead of a stream (the `api` bus service):
 * returns a handle for api_unwatch. */
struct api_watcher;
struct api_watcher *api_watch_fn(struct api_server *s,
    const struct api_req *req, api_event_fn fn, void *arg,
    struct api_error *e);
void api_unwatch(struct api_watcher *w);

#endif
