/* plugins/proxy/proxy.h — what the service proxy's files share.
 *
 * Threads: the two informers' threads (services, endpointslices) only mark
 * the proxy dirty and wake the sync thread; the sync thread waits
 * min_sync_period after the first change (so a burst becomes one batch),
 * builds the desired state from both caches (model.c), compares each
 * service with what the backend last got, and calls the backend — full on
 * start and after an error, else with the changed keys. `mu` guards the
 * dirty flag and the stop flag only.
 */
#ifndef KUBUS_PROXY_PLUGIN_H
#define KUBUS_PROXY_PLUGIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <kubus/client.h>
#include <kubus/kubus.h>
#include <kubus/proxy.h>
#include <kubus/strmap.h>

struct px_cfg {
	char *backend;
	const kb_conf *backend_config;
	char *node_name;
	char *node_ip;
	char *service_cidr;
	int64_t min_sync_ms;
	int64_t retry_ms;
	bool route;
	bool cleanup_others;
};

/* Bump allocator: everything of one built state, freed at once. */
struct px_arena {
	struct px_block *head;
};

void *px_alloc(struct px_arena *a, size_t n);
char *px_strdup(struct px_arena *a, const char *s, size_t n);
void px_arena_free(struct px_arena *a);

/* One built desired state (model.c). */
struct px_model {
	struct px_arena arena;
	struct kb_px_service *svcs; /* sorted by key */
	size_t nsvcs;
};

struct proxy {
	kb_ctx *ctx;
	struct px_cfg cfg;
	char *node; /* node name, resolved */
	struct kb_ext *be_ext;
	const struct kb_proxy_ops *be;
	struct kb_informer *svc_inf, *slice_inf;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool dirty, stopping, thread_started;
	pthread_t thread;

	/* sync thread only */
	struct kb_strmap last; /* key -> malloc'd rendering last handed over */
	bool need_full;
	uint64_t syncs, full_syncs, errors;
};

int px_config(struct proxy *px, const kb_conf *conf);
void px_config_free(struct proxy *px);

/* Build the desired state of this node from the informers' caches. */
int px_model_build(struct proxy *px, struct px_model *m);
void px_model_free(struct px_model *m);
/* A canonical text of one service's state, malloc'd: equal texts mean
 * the backend has nothing to do for it. */
char *px_render(const struct kb_px_service *s);

int px_sync_start(struct proxy *px);
void px_sync_stop(struct proxy *px);
void px_kick(struct proxy *px);

/* The service CIDR goes to a dummy device of the proxy's own (route.c). */
int px_route_setup(struct proxy *px);
/* Run argv (argv[0] found on PATH), output discarded: exit status or -1. */
int px_run(char *const argv[]);

#endif
