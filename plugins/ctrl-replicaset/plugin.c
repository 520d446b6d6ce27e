/* plugins/ctrl-replicaset/plugin.c — the ReplicaSet controller plugin:
 * options, informers on replicasets and pods, and which ReplicaSet each
 * event concerns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsc.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct rsc_cfg, ctl),
	KB_OPT_INT("burst_replicas", struct rsc_cfg, burst, "500", 1, 100000,
	    "most pods created or deleted in one reconcile"),
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

struct match {
	struct rsc *r;
	const msgpack_object *pod;
	char (*keys)[512];
	size_t n, cap;
};

static void match_rs(void *arg, const msgpack_object *rs)
{
	struct match *m = arg;
	if (!ctrl_str_eq(rs, "metadata.namespace", m->pod,
		"metadata.namespace"))
		return;
	const msgpack_object *sel = kb_mp_get(rs, "spec.selector");
	if (ctrl_selector_empty(sel) ||
	    !ctrl_selector_matches(sel, kb_mp_get(m->pod, "metadata.labels")))
		return;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4;
		void *k = realloc(m->keys, cap * sizeof(*m->keys));
		if (k == NULL)
			return;
		m->keys = k;
		m->cap = cap;
	}
	if (kb_object_key(rs, m->keys[m->n], sizeof(m->keys[0])))
		m->n++;
}

/* The ReplicaSet that controls the pod, or every one that could adopt it. */
static void enqueue_for_pod(struct rsc *r, const msgpack_object *pod)
{
	const msgpack_object *ref = ctrl_controller_ref(pod);
	char key[512];
	if (ref) {
		const char *ns, *name;
		size_t nsl, nl;
		if (!kb_mp_streq(ref, "kind", "ReplicaSet") ||
		    !kb_mp_str(pod, "metadata.namespace", &ns, &nsl) ||
		    !kb_mp_str(ref, "name", &name, &nl))
			return;
		snprintf(key, sizeof(key), "%.*s/%.*s", (int)nsl, ns, (int)nl,
		    name);
		ctrl_enqueue(&r->c, key);
		return;
	}
	if (ctrl_deleting(pod))
		return;
	struct match m = { .r = r, .pod = pod };
	kb_informer_each(r->rs, match_rs, &m);
	for (size_t i = 0; i < m.n; i++)
		ctrl_enqueue(&r->c, m.keys[i]);
	free(m.keys);
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
	    !(r->pods = ctrl_watch(&r->c, &KB_GVR_PODS, &podh, r))) {
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
