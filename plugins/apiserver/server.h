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
struct api_cache_feed;

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
	int64_t bus_workers_max;     /* ... while requests wait for one */
	char *cluster_domain;
	int64_t event_ttl_ms;        /* Events expire this long after their
	                              * last write; 0: never (evttl.c) */
	/* watch caches, one per resource, started on first use (cache.c) */
	pthread_mutex_t cache_mu;
	struct api_cache **caches;   /* indexed like api_resources[] */
	struct api_cache_feed *cache_feeds; /* the store events' way to them */
	/* re-establishes store watches the store dropped (cache.c) */
	pthread_t cache_keeper;
	pthread_cond_t keeper_cv;    /* with cache_mu */
	bool keeper_on, keeper_stop;
	struct api_evttl *evttl;     /* the Events' sweep (evttl.c), made
	                              * and run by the keeper */
	/* allocation of ClusterIPs and NodePorts (rest.c) */
	pthread_mutex_t alloc_mu;
	/* the HTTP side (http.c): opaque here */
	void *http;
	int64_t http_threads;        /* libmicrohttpd's event loops */
	int64_t store_get_ns;        /* store gets' moving average (store.c;
				      * __atomic): http.c reads one object in
				      * its event loop only while it is short */
	struct api_busapi *workers;  /* the `api` service's pool (busapi.c),
				      * which runs HTTP requests that wait */
	/* counters for /metrics (metrics.c) */
	void *metrics;
	/* the other API servers of the cluster (peer.c); NULL on plain HTTP */
	struct api_peer *peer;
	bool stopping;
};

/* peer.c: this server's Lease (kube-system/apiserver-HOST, naming `url`)
 * and the token its peers know it by, derived from DIR/ca.key. */
int api_peer_start(struct api_server *s, const char *dir, const char *ca_pem,
    const char *url, char *err, size_t errlen);
void api_peer_stop(struct api_server *s); /* ends the Lease thread */
void api_peer_free(struct api_server *s);
/* https://HOST:PORT: `advertise` (HOST or HOST:PORT) when set, else the
 * listen host (a wildcard: this host's first address) and `port`. */
void api_peer_url(const char *listen, const char *advertise, int port,
    char *out, size_t len);
/* A bearer token shaped like a peer's; one that is a peer's. */
bool api_peer_token_like(const char *tok);
bool api_peer_token_ok(struct api_server *s, const char *tok);
/* req's pod log, from the first peer whose host reaches `node`: 0 with
 * resp filled (the peer's answer, a stream for follow), or -1 with resp
 * untouched and why each peer did not answer in `why`. */
int api_peer_pod_log(struct api_req *req, const char *node,
    const char *container, struct api_resp *resp, char *why, size_t whylen);

/* store.c: a store KV map -> object with resourceVersion (new ref). */
json_t *api_store_kv_object(const msgpack_object *kv, int64_t *mod_rev);

/* bootstrap.c: the default namespaces and the `kubernetes` service. */
void api_bootstrap(struct api_server *s);

/* cache.c */
int api_cache_start_all(struct api_server *s, struct api_error *e);
void api_cache_stop_all(struct api_server *s);
/* After the plugin's endpoint has closed: what the store events found the
 * caches by. */
void api_cache_fini(struct api_server *s);
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
/* key's object as r's cache holds it, if that is the store's value
 * (msgpack, metadata.resourceVersion spliced in last by api_mp_with_rv)
 * at mod_rev *rev: a malloc'd copy in *mp, *len. KB_ENOTFOUND when the
 * cache does not run, lost its watch, lacks the key or holds the object
 * in another form. It may be behind the store: a writer puts with
 * if_mod_rev *rev and reads the store when that conflicts. */
int api_cache_stored(struct api_server *s, const struct api_resource *r,
    const char *key, char **mp, size_t *len, int64_t *rev);
/* An expired Event: its key (malloc'd) and the mod revision it was seen
 * at. */
struct api_expired {
	char *key;
	int64_t rev;
};
/* Up to max objects of r's cache that were last written at or before
 * `before` (ms since the epoch, as the cache stamped them: see evttl.c;
 * only Events are stamped, and only when they expire) into out: how many.
 * 0 when r's cache does not run. The keeper's, for evttl.c. */
size_t api_cache_expired(struct api_server *s, const struct api_resource *r,
    int64_t before, struct api_expired *out, size_t max);
/* Watch with a callback instead of a stream (the `api` bus service):
 * returns a handle for api_unwatch. The events carry the object as
 * msgpack only (obj_mp, always set; obj and old are NULL): the cache
 * builds no json_t for them. */
struct api_watcher;
struct api_watcher *api_watch_fn(struct api_server *s,
    const struct api_req *req, api_event_fn fn, void *arg,
    struct api_error *e);
void api_unwatch(struct api_watcher *w);

/* evttl.c: Events expire event_ttl_ms after their last write. */
/* r's objects are Events (core or events.k8s.io), which expire. */
bool api_event_expires(const struct api_resource *r);
/* When the Event mp (of resource r) was last written, as it shows: the
 * newest of its creationTimestamp, lastTimestamp (events.k8s.io:
 * deprecatedLastTimestamp), eventTime and series.lastObservedTime, in ms
 * since the epoch; 0 when none reads. */
int64_t api_event_written_ms(const struct api_resource *r, const void *mp,
    size_t len);
/* The keeper thread (cache.c), every tick: a sweep when one is due, and
 * the last one's count logged once its deletes are answered. */
void api_evttl_tick(struct api_server *s);
/* The keeper, as it ends: waits (a while) for the sweep's deletes. */
void api_evttl_drain(struct api_server *s);
/* After the plugin's endpoint has closed. */
void api_evttl_free(struct api_server *s);

/* select.c: reading an object's msgpack (as api_mp_encode writes it) in
 * place, as its decoded json_t reads. */
/* The string at a dotted path of map keys, *n bytes up to a NUL (as
 * json_string_value's C string); NULL when absent or not a string. */
const char *api_mp_str(const void *mp, size_t len, const char *path,
    size_t *n);
/* Where paths were found in one object's msgpack, so that many watchers'
 * filters read each path once (the watch cache keeps one per object, as
 * long as the bytes). Zeroed: empty. Paths of 40 bytes or more are not
 * kept. */
#define API_MP_MEMO 6
struct api_mp_memo {
	unsigned n;
	struct {
		char path[40];
		const unsigned char *at; /* the value, NULL: absent */
	} e[API_MP_MEMO];
};
/* The string at path equals want (absent or not a string reads ""); m
 * may be NULL. */
bool api_mp_str_is(const void *mp, size_t len, const char *path,
    const char *want, struct api_mp_memo *m);
/* Something (even null) is at path. */
bool api_mp_has(const void *mp, size_t len, const char *path);
/* api_selector_match on the decoded object, without decoding it; m
 * (may be NULL) is mp's memo. */
bool api_selector_match_mp(const struct api_selector *s, const void *mp,
    size_t len, struct api_mp_memo *m);
/* s selects everything. */
bool api_selector_empty(const struct api_selector *s);
/* The value of s's field requirement `path=value` (or `==`), or NULL:
 * every object s selects has it at path (the watch cache's index). */
const char *api_selector_eq(const struct api_selector *s, const char *path);
/* The value at path as a field selector reads it (strings, booleans,
 * integers; else ""), as a C string in out; false when it needs cap bytes
 * or more. m (may be NULL) is mp's memo. */
bool api_mp_field(const void *mp, size_t len, const char *path,
    struct api_mp_memo *m, char *out, size_t cap);
/* mp with its metadata.resourceVersion (a string) set to rev in place:
 * the bytes api_mp_encode writes for the decoded object after that
 * version is set. KB_EINVAL when mp has no such version. */
int api_mp_set_rv(const void *mp, size_t len, int64_t rev, char **out,
    size_t *outlen);

#endif
