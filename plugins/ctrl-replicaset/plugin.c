/* plugins/ctrl-replicaset/plugin.c — the ReplicaSet controller plugin:
 * options, informers on replicasets and pods, and which ReplicaSet each
 * event concerns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsc.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct rsc_cfg, ctl),
	KB_OPT_INT("burst_replicas", struct rsc_cfg, burst, "5000", 1, 100000,
	    "most pods created or deleted in one reconcile"),
	KB_OPT_INT("concurrent_calls", struct rsc_cfg, concurrency, "500", 1,
	    1000, "creates or deletes of one reconcile in flight at once"),
	KB_OPT_DURATION("expectations_timeout", struct rsc_cfg,
	    expect_timeout_ms, "5m",
	    "act again after this long even if created or deleted pods never showed"),
	KB_OPT_END,
};

/* --- events --------------------------------------------------------------------- */

static void rs_add(void *arg, const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct rsc *)arg)->c, obj);
}

static void rs_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct rsc *)arg)->c, obj);
}

/* The ReplicaSet that controls the pod, or every one that could adopt it. */
static void enqueue_for_pod(struct rsc *r, const msgpack_object *pod)
{
	ctrl_enqueue_owners(&r->c, r->rs, "ReplicaSet", pod);
}

static void pod_add(void *arg, const msgpack_object *pod)
{
	enqueue_for_pod(arg, pod);
}

static void pod_update(void *arg, const msgpack_object *old,
    const msgpack_object *pod)
{
	if (old == pod)
		return; /* a resync: the ReplicaSets' own resync covers it */
	const msgpack_object *a = ctrl_controller_ref(old),
			     *b = ctrl_controller_ref(pod);
	if (a && !(b && ctrl_str_eq(a, "uid", b, "uid")))
		enqueue_for_pod(arg, old);
	enqueue_for_pod(arg, pod);
}

/* --- lifecycle ------------------------------------------------------------------- */

static void rsc_free(struct rsc *r)
{
	ctrl_fini(&r->c);
	rsc_expect_free_all(r);
	pthread_mutex_destroy(&r->mu);
	kb_conf_opts_free(opts, &r->cfg);
	free(r);
}

static int rsc_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct rsc *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &r->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(r);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	pthread_mutex_init(&r->mu, NULL);
	static const struct kb_informer_handlers rsh = { rs_add, rs_update,
		rs_add };
	static const struct kb_informer_handlers podh = { pod_add, pod_update,
		pod_add };
	if (ctrl_init(&r->c, ctx, "replicaset", &r->cfg.ctl, rsc_sync, r) ||
	    !(r->rs = ctrl_watch(&r->c, &KB_GVR_REPLICASETS, &rsh, r)) ||
	    !(r->pods = ctrl_watch(&r->c, &KB_GVR_PODS, &podh, r)) ||
	    kb_informer_set_index(r->pods, rsc_pod_index) != 0 ||
	    kb_informer_set_view(r->pods, sizeof(struct rsc_podv),
		rsc_pod_view) != 0) {
		rsc_free(r);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	*state = r;
	return 0;
}

static int rsc_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct rsc *)state)->c);
}

static void rsc_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct rsc *)state)->c);
}

static void rsc_fini(void *state)
{
	rsc_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-replicaset",
		.version = "0.1.0",
		.description = "ReplicaSet controller: pods to match replicas",
		.kind = KB_KIND_CONTROLLER,
		.init = rsc_init,
		.start = rsc_start,
		.stop = rsc_stop,
		.fini = rsc_fini,
	};
	return &p;
}
