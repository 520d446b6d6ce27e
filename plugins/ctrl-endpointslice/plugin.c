/* plugins/ctrl-endpointslice/plugin.c — the EndpointSlice controller
 * plugin: options, informers on services, pods and endpointslices, and
 * which Service each event concerns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct esc_cfg, ctl),
	KB_OPT_INT("max_endpoints_per_slice", struct esc_cfg, max_per_slice,
	    "100", 1, 1000, "most endpoints in one EndpointSlice"),
	KB_OPT_DURATION("stale_timeout", struct esc_cfg, stale_timeout_ms,
	    "30s",
	    "act again after this long even if slices written never showed "
	    "in the cache"),
	KB_OPT_END,
};

/* --- events --------------------------------------------------------------------- */

static void svc_add(void *arg, const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct esc *)arg)->c, obj);
}

static void svc_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct esc *)arg)->c, obj);
}

static void pod_add(void *arg, const msgpack_object *pod)
{
	struct esc *e = arg;
	sp_enqueue_services(&e->c, e->svcs, pod);
}

static void pod_update(void *arg, const msgpack_object *old,
    const msgpack_object *pod)
{
	struct esc *e = arg;
	sp_pod_updated(&e->c, e->svcs, old, pod);
}

/* "ns/service" of a slice this controller manages, into key. */
static bool slice_service(const msgpack_object *s, char *key, size_t len)
{
	const char *ns, *svc;
	size_t nl, sl;
	if (!kb_mp_streq(s,
		"metadata.labels.endpointslice\\.kubernetes\\.io/managed-by",
		ESC_CONTROLLER) ||
	    !kb_mp_str(s, "metadata.labels.kubernetes\\.io/service-name", &svc,
		&sl) ||
	    !kb_mp_str(s, "metadata.namespace", &ns, &nl))
		return false;
	return snprintf(key, len, "%.*s/%.*s", (int)nl, ns, (int)sl, svc) <
	    (int)len;
}

static void slice_add(void *arg, const msgpack_object *s)
{
	char key[520];
	if (slice_service(s, key, sizeof(key)))
		ctrl_enqueue(&((struct esc *)arg)->c, key);
}

static void slice_update(void *arg, const msgpack_object *old,
    const msgpack_object *s)
{
	char key[520];
	if (old == s)
		return;
	/* relabelled away from a service: that one lost a slice */
	if (slice_service(old, key, sizeof(key)))
		ctrl_enqueue(&((struct esc *)arg)->c, key);
	if (slice_service(s, key, sizeof(key)))
		ctrl_enqueue(&((struct esc *)arg)->c, key);
}

static void slice_del(void *arg, const msgpack_object *s)
{
	struct esc *e = arg;
	char key[520], name[SP_NAME];
	if (!slice_service(s, key, sizeof(key)))
		return;
	sp_str(s, "metadata.name", name, sizeof(name));
	esc_track_gone(e, key, name);
	ctrl_enqueue(&e->c, key);
}

/* --- lifecycle ------------------------------------------------------------------- */

static void esc_free(struct esc *e)
{
	ctrl_fini(&e->c);
	esc_track_free_all(e);
	pthread_mutex_destroy(&e->mu);
	kb_conf_opts_free(opts, &e->cfg);
	free(e);
}

static int esc_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct esc *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &e->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(e);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	pthread_mutex_init(&e->mu, NULL);
	static const struct kb_informer_handlers svch = { svc_add, svc_update,
		svc_add };
	static const struct kb_informer_handlers podh = { pod_add, pod_update,
		pod_add };
	static const struct kb_informer_handlers sliceh = { slice_add,
		slice_update, slice_del };
	if (ctrl_init(&e->c, ctx, "endpointslice", &e->cfg.ctl, esc_sync, e) ||
	    !(e->svcs = ctrl_watch(&e->c, &KB_GVR_SERVICES, &svch, e)) ||
	    !(e->pods = ctrl_watch_lazy(&e->c, &KB_GVR_PODS, &podh, e)) ||
	    !(e->slices =
		    ctrl_watch(&e->c, &KB_GVR_ENDPOINTSLICES, &sliceh, e))) {
		esc_free(e);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	*state = e;
	return 0;
}

static int esc_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct esc *)state)->c);
}

static void esc_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct esc *)state)->c);
}

static void esc_fini(void *state)
{
	esc_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-endpointslice",
		.version = "0.1.0",
		.description = "EndpointSlice controller: discovery.k8s.io/v1 "
			       "slices of each selecting Service's pods",
		.kind = KB_KIND_CONTROLLER,
		.init = esc_init,
		.start = esc_start,
		.stop = esc_stop,
		.fini = esc_fini,
	};
	return &p;
}
