/* plugins/proxy/plugin.c — the service proxy's descriptor and lifecycle:
 * load the backend, clean up after the other backends, route the service
 * CIDR, then watch Services and EndpointSlices and sync.
 *
 *   - name: proxy
 *     use: proxy
 *     config:
 *       backend: proxy-nftables     # or proxy-iptables, proxy-userspace
 *       node_name: node-1
 *       node_ip: 192.168.1.10
 *       service_cidr: 10.96.0.0/12
 *       min_sync_period: 50ms
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"

/* The backends this proxy knows to clean up after; a third party's is
 * cleaned up only by itself. */
static const char *const known_backends[] = { "proxy-nftables",
	"proxy-iptables", "proxy-userspace" };

static void on_add(void *arg, const msgpack_object *obj)
{
	(void)obj;
	px_kick(arg);
}

static void on_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	(void)old;
	(void)obj;
	px_kick(arg);
}

static void on_del(void *arg, const msgpack_object *obj)
{
	(void)obj;
	px_kick(arg);
}

/* The file of backend `name` on the plugin path, into buf; false if none. */
static bool find_on_path(struct proxy *px, const char *name, char *buf,
    size_t len)
{
	const char *path = KB_HOST_HAS(px->ctx, plugin_path) ?
	    px->ctx->api->plugin_path(px->ctx) :
	    NULL;
	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		if (n &&
		    (size_t)snprintf(buf, len, "%.*s/kubus-%s.so", (int)n, path,
			name) < len &&
		    access(buf, R_OK) == 0)
			return true;
		path = end ? end + 1 : NULL;
	}
	return false;
}

/* The name a backend goes by: "proxy-iptables" also for a path to
 * .../kubus-proxy-iptables.so. */
static bool same_backend(const char *configured, const char *known)
{
	const char *b = strrchr(configured, '/');
	char want[128];
	if (b == NULL)
		return strcmp(configured, known) == 0;
	snprintf(want, sizeof(want), "kubus-%s.so", known);
	return strcmp(b + 1, want) == 0;
}

static void cleanup_others(struct proxy *px)
{
	for (size_t i = 0; i < sizeof(known_backends) / sizeof(*known_backends);
	     i++) {
		const char *name = known_backends[i];
		char file[1024];
		if (same_backend(px->cfg.backend, name) ||
		    !find_on_path(px, name, file, sizeof(file)))
			continue;
		struct kb_ext *ext = NULL;
		if (kb_ext_load(px->ctx, KB_KIND_PROXY_BACKEND, file, NULL,
			&ext) != 0) {
			kb_warn(px->ctx, "cannot load a backend to clean up",
			    "backend=%s", name);
			continue;
		}
		const struct kb_proxy_ops *ops = ext->ops;
		int rc = ops && ops->cleanup ? ops->cleanup(ext->state) : 0;
		if (rc)
			kb_warn(px->ctx, "cleanup of another backend failed",
			    "backend=%s err=\"%s\"", name, kb_strerror(rc));
		kb_ext_unload(px->ctx, ext);
	}
}

static void proxy_free(struct proxy *px)
{
	if (px->be_ext)
		kb_ext_unload(px->ctx, px->be_ext);
	px_config_free(px);
	pthread_cond_destroy(&px->cv);
	pthread_mutex_destroy(&px->mu);
	free(px);
}

static int proxy_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct proxy *px = calloc(1, sizeof(*px));
	if (px == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	px->ctx = ctx;
	pthread_mutex_init(&px->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&px->cv, &ca);
	pthread_condattr_destroy(&ca);

	int rc = px_config(px, conf);
	if (rc == 0)
		rc = kb_ext_load(ctx, KB_KIND_PROXY_BACKEND, px->cfg.backend,
		    px->cfg.backend_config, &px->be_ext);
	if (rc == 0) {
		px->be = px->be_ext->ops;
		if (px->be == NULL ||
		    px->be->size < offsetof(struct kb_proxy_ops, cleanup) +
			    sizeof(px->be->cleanup) ||
		    px->be->sync == NULL || px->be->cleanup == NULL)
			rc = kb_fail(ctx, KB_EABI,
			    "backend %s: its vtable (%zu bytes) is older than proxy-backend ABI 1.0",
			    px->cfg.backend, px->be ? px->be->size : 0);
	}
	if (rc) {
		proxy_free(px);
		return rc;
	}
	*state = px;
	return 0;
}

static int proxy_start(kb_ctx *ctx, void *state)
{
	struct proxy *px = state;
	if (px->cfg.cleanup_others)
		cleanup_others(px);
	int rc;
	if (px->cfg.route && (rc = px_route_setup(px)) != 0)
		return rc;
	static const struct kb_informer_handlers h = { on_add, on_update,
		on_del };
	struct kb_informer_opts so = { 0 };
	struct kb_informer_opts eo = {
		.label_selector = "kubernetes.io/service-name",
	};
	px->svc_inf = kb_informer_new(ctx, &KB_GVR_SERVICES, &so, &h, px);
	px->slice_inf =
	    kb_informer_new(ctx, &KB_GVR_ENDPOINTSLICES, &eo, &h, px);
	if (px->svc_inf == NULL || px->slice_inf == NULL)
		return kb_fail(ctx, KB_ENOMEM, "cannot make the informers");
	if ((rc = kb_informer_start(px->svc_inf)) != 0 ||
	    (rc = kb_informer_start(px->slice_inf)) != 0)
		return kb_fail(ctx, rc, "cannot watch services: %s",
		    kb_strerror(rc));
	if ((rc = px_sync_start(px)) != 0)
		return kb_fail(ctx, rc, "cannot start the sync thread");
	kb_info(ctx, "proxy started", "node=%s backend=%s service_cidr=%s",
	    px->node, px->cfg.backend, px->cfg.service_cidr);
	return 0;
}

/* Also undoes a start that failed half-way (fini after a failed start). */
static void proxy_halt(struct proxy *px)
{
	px_sync_stop(px);
	if (px->svc_inf)
		kb_informer_free(px->svc_inf);
	if (px->slice_inf)
		kb_informer_free(px->slice_inf);
	px->svc_inf = px->slice_inf = NULL;
}

static void proxy_stop(kb_ctx *ctx, void *state)
{
	struct proxy *px = state;
	(void)ctx;
	proxy_halt(px);
	/* A stopped proxy leaves no rules behind: the next one, whatever
	 * its backend, starts from a clean machine. */
	int rc = px->be->cleanup(px->be_ext->state);
	if (rc)
		kb_warn(px->ctx, "backend cleanup failed",
		    "backend=%s err=\"%s\"", px->cfg.backend, kb_strerror(rc));
}

static void proxy_fini(void *state)
{
	struct proxy *px = state;
	if (px == NULL)
		return;
	proxy_halt(px);
	proxy_free(px);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "proxy",
		.version = "0.1.0",
		.description =
		    "service proxy: Services and EndpointSlices to a backend (nftables, iptables, userspace)",
		.kind = KB_KIND_PROXY,
		.init = proxy_init,
		.start = proxy_start,
		.stop = proxy_stop,
		.fini = proxy_fini,
	};
	return &p;
}
