/* plugins/ctrl-endpoints/plugin.c — the Endpoints controller plugin:
 * options, informers on services, pods and endpoints, and which Service
 * each event concerns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epc.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct epc_cfg, ctl),
	KB_OPT_INT("max_capacity", struct epc_cfg, max_capacity, "1000", 1,
	    1000000,
	    "most addresses in one Endpoints (beyond: truncated and annotated "
	    "endpoints.kubernetes.io/over-capacity)"),
	KB_OPT_END,
};

/* --- events --------------------------------------------------------------------- */

static void svc_add(void *arg, const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct epc *)arg)->c, obj);
}

static void svc_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct epc *)arg)->c, obj);
}

static void pod_add(void *arg, const msgpack_object *pod)
{
	struct epc *e = arg;
	sp_enqueue_services(&e->c, e->svcs, pod);
}

static void pod_update(void *arg, const msgpack_object *old,
    const msgpack_object *pod)
{
	struct epc *e = arg;
	sp_pod_updated(&e->c, e->svcs, old, pod);
}

/* An Endpoints deleted or edited by someone else: its service puts it back
 * (only services that select pods: the others' are not ours). */
static void eps_changed(struct epc *e, const msgpack_object *eps)
{
	char ns[256], name[256];
	const char *s;
	size_t n;
	if (!kb_mp_str(eps, "metadata.namespace", &s, &n) || n >= sizeof(ns))
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)n, s);
	if (!kb_mp_str(eps, "metadata.name", &s, &n) || n >= sizeof(name))
		return;
	snprintf(name, sizeof(name), "%.*s", (int)n, s);
	kb_body *svc = kb_informer_get(e->svcs, ns, name);
	if (svc && sp_svc_selects_pods(kb_body_obj(svc)))
		ctrl_enqueue_obj(&e->c, kb_body_obj(svc));
	if (svc)
		kb_body_unref(svc);
}

static void eps_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	if (old != obj)
		eps_changed(arg, obj);
}

static void eps_del(void *arg, const msgpack_object *obj)
{
	eps_changed(arg, obj);
}

/* --- lifecycle ------------------------------------------------------------------- */

static void epc_free(struct epc *e)
{
	ctrl_fini(&e->c);
	kb_conf_opts_free(opts, &e->cfg);
	free(e);
}

static int epc_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct epc *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &e->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(e);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	static const struct kb_informer_handlers svch = { svc_add, svc_update,
		svc_add };
	static const struct kb_informer_handlers podh = { pod_add, pod_update,
		pod_add };
	static const struct kb_informer_handlers epsh = { NULL, eps_update,
		eps_del };
	if (ctrl_init(&e->c, ctx, "endpoints", &e->cfg.ctl, epc_sync, e) ||
	    !(e->svcs = ctrl_watch(&e->c, &KB_GVR_SERVICES, &svch, e)) ||
	    !(e->pods = ctrl_watch_lazy(&e->c, &KB_GVR_PODS, &podh, e)) ||
	    !(e->eps = ctrl_watch(&e->c, &KB_GVR_ENDPOINTS, &epsh, e))) {
		epc_free(e);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	*state = e;
	return 0;
}

static int epc_start(kb_ctx *ctx, void *state)
{
	struct epc *e = state;
	ctrl_enqueue(&e->c, EPC_LEFTOVER_KEY);
	return ctrl_start(&e->c);
}

static void epc_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct epc *)state)->c);
}

static void epc_fini(void *state)
{
	epc_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-endpoints",
		.version = "0.1.0",
		.description =
		    "Endpoints controller: each selecting Service's pod addresses",
		.kind = KB_KIND_CONTROLLER,
		.init = epc_init,
		.start = epc_start,
		.stop = epc_stop,
		.fini = epc_fini,
	};
	return &p;
}
