/* plugins/ctrl-deployment/plugin.c — the Deployment controller plugin:
 * options, informers on deployments and replicasets, and which Deployment
 * each event concerns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct dc_cfg, ctl),
	KB_OPT_END,
};

static void dep_add(void *arg, const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct dc *)arg)->c, obj);
}

static void dep_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	ctrl_enqueue_obj(&((struct dc *)arg)->c, obj);
}

static void enqueue_for_rs(struct dc *d, const msgpack_object *rs)
{
	ctrl_enqueue_owners(&d->c, d->deps, "Deployment", rs);
}

static void rs_add(void *arg, const msgpack_object *rs)
{
	enqueue_for_rs(arg, rs);
}

static void rs_update(void *arg, const msgpack_object *old,
    const msgpack_object *rs)
{
	if (old == rs)
		return; /* a resync: the Deployments' own covers it */
	const msgpack_object *a = ctrl_controller_ref(old),
			     *b = ctrl_controller_ref(rs);
	if (a && !(b && ctrl_str_eq(a, "uid", b, "uid")))
		enqueue_for_rs(arg, old);
	enqueue_for_rs(arg, rs);
}

static void dc_free(struct dc *d)
{
	ctrl_fini(&d->c);
	kb_conf_opts_free(opts, &d->cfg);
	free(d);
}

static int dc_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct dc *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &d->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(d);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	static const struct kb_informer_handlers deph = { dep_add, dep_update,
		dep_add };
	static const struct kb_informer_handlers rsh = { rs_add, rs_update,
		rs_add };
	if (ctrl_init(&d->c, ctx, "deployment", &d->cfg.ctl, dc_sync, d) ||
	    !(d->deps = ctrl_watch(&d->c, &KB_GVR_DEPLOYMENTS, &deph, d)) ||
	    !(d->rss = ctrl_watch(&d->c, &KB_GVR_REPLICASETS, &rsh, d))) {
		dc_free(d);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	*state = d;
	return 0;
}

static int dc_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct dc *)state)->c);
}

static void dc_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct dc *)state)->c);
}

static void dc_fini(void *state)
{
	dc_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-deployment",
		.version = "0.1.0",
		.description =
		    "Deployment controller: ReplicaSets, rollouts, status",
		.kind = KB_KIND_CONTROLLER,
		.init = dc_init,
		.start = dc_start,
		.stop = dc_stop,
		.fini = dc_fini,
	};
	return &p;
}
