/* plugins/ctrl-nodelifecycle/plugin.c — the node lifecycle controller
 * plugin: options, informers on nodes, node Leases and pods, the reconcile
 * of one node (health, taints, pods), and the monitor period that brings
 * each node back even when nothing about it changes — a silent node is the
 * very thing to notice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlc.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct nlc_cfg, ctl),
	KB_OPT_DURATION("grace_period", struct nlc_cfg, grace_ms, "40s",
	    "a node whose Lease and status have not moved for this long is "
	    "Unknown"),
	KB_OPT_DURATION("monitor_period", struct nlc_cfg, monitor_ms, "5s",
	    "how often each node's health is checked"),
	KB_OPT_DOUBLE("eviction_rate", struct nlc_cfg, eviction_rate, "0.1",
	    "nodes per second that get NoExecute taints (0: no limit)"),
	KB_OPT_BOOL("mark_pods_not_ready", struct nlc_cfg, mark_pods_not_ready,
	    "true", "set the Ready condition of a down node's pods to False"),
	KB_OPT_END,
};

/* --- events ------------------------------------------------------------------------- */

static void node_add(void *arg, const msgpack_object *node)
{
	ctrl_enqueue_obj(&((struct nlc *)arg)->c, node);
}

static void node_update(void *arg, const msgpack_object *old,
    const msgpack_object *node)
{
	node_add(arg, node);
}

static void lease_add(void *arg, const msgpack_object *lease)
{
	struct nlc *n = arg;
	const char *name;
	size_t len;
	char key[256];
	if (!kb_mp_streq(lease, "metadata.namespace", NLC_LEASE_NS) ||
	    !kb_mp_str(lease, "metadata.name", &name, &len) ||
	    len >= sizeof(key))
		return;
	snprintf(key, sizeof(key), "%.*s", (int)len, name);
	ctrl_enqueue(&n->c, key);
}

static void lease_update(void *arg, const msgpack_object *old,
    const msgpack_object *lease)
{
	if (old != lease)
		lease_add(arg, lease);
}

static void lease_del(void *arg, const msgpack_object *lease)
{
}

/* A pod on a node that is down, or tainted NoExecute, may need evicting
 * (it arrived, or its tolerations changed). */
static void pod_event(void *arg, const msgpack_object *pod)
{
	struct nlc *n = arg;
	const char *nn;
	size_t nl;
	char key[256];
	if (ctrl_deleting(pod) || !kb_mp_str(pod, "spec.nodeName", &nn, &nl) ||
	    nl == 0 || nl >= sizeof(key))
		return;
	snprintf(key, sizeof(key), "%.*s", (int)nl, nn);
	kb_body *nb = kb_informer_get(n->nodes, NULL, key);
	if (nb == NULL)
		return;
	const msgpack_object *node = kb_body_obj(nb);
	const msgpack_object *ts = kb_mp_get(node, "spec.taints");
	const char *ready = nlc_ready_status(node);
	bool care = !strcmp(ready, "False") || !strcmp(ready, "Unknown");
	for (uint32_t i = 0; !care && ts && ts->type == MSGPACK_OBJECT_ARRAY &&
	     i < ts->via.array.size;
	     i++)
		care =
		    kb_mp_streq(&ts->via.array.ptr[i], "effect", "NoExecute");
	kb_body_unref(nb);
	if (care)
		ctrl_enqueue(&n->c, key);
}

static void pod_update(void *arg, const msgpack_object *old,
    const msgpack_object *pod)
{
	if (old != pod)
		pod_event(arg, pod);
}

static void pod_del(void *arg, const msgpack_object *pod)
{
}

/* --- the reconcile -------------------------------------------------------------------- */

static void sooner(int64_t *due, int64_t v)
{
	if (v > 0 && (*due < 0 || v < *due))
		*due = v;
}

int nlc_sync(void *arg, const char *key)
{
	struct nlc *n = arg;
	kb_body *nb = kb_informer_get(n->nodes, NULL, key);
	if (nb == NULL) {
		nlc_forget(n, key);
		return 0;
	}
	int64_t due = n->cfg.monitor_ms, probe_due = -1;
	bool stale = false;
	nlc_probe(n, key, kb_body_obj(nb), &stale, &probe_due);
	sooner(&due, probe_due);
	int rc = 0;
	if (stale)
		rc = nlc_mark_unknown(n, &nb);
	if (rc == 0)
		rc = nlc_sync_taints(n, &nb, &due);
	const msgpack_object *node = kb_body_obj(nb);
	const char *ready = nlc_ready_status(node);
	if (rc == 0 && n->cfg.mark_pods_not_ready &&
	    (!strcmp(ready, "False") || !strcmp(ready, "Unknown")))
		rc = nlc_pods_not_ready(n, node);
	int64_t evict_due = -1;
	int e = nlc_evict(n, node, &evict_due);
	if (rc == 0)
		rc = e;
	sooner(&due, evict_due);
	kb_body_unref(nb);
	if (rc == 0)
		ctrl_requeue_after(&n->c, key, due);
	return rc;
}

/* --- lifecycle ------------------------------------------------------------------------- */

static void nlc_free(struct nlc *n)
{
	ctrl_fini(&n->c);
	nlc_health_free(n);
	pthread_mutex_destroy(&n->mu);
	kb_conf_opts_free(opts, &n->cfg);
	free(n);
}

static int nlc_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct nlc *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &n->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(n);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	pthread_mutex_init(&n->mu, NULL);
	if (n->cfg.grace_ms <= 0 || n->cfg.monitor_ms <= 0 ||
	    n->cfg.eviction_rate < 0) {
		int rc = kb_fail(ctx, KB_EINVAL,
		    "%s: grace_period and monitor_period must be more than 0 "
		    "and eviction_rate not negative (got %lldms, %lldms, %g)",
		    kb_instance(ctx), (long long)n->cfg.grace_ms,
		    (long long)n->cfg.monitor_ms, n->cfg.eviction_rate);
		nlc_free(n);
		return rc;
	}
	n->tokens = 1.0;
	n->tokens_at = ctrl_now_ms();
	static const struct kb_informer_handlers nh = { node_add, node_update,
		node_add };
	static const struct kb_informer_handlers lh = { lease_add, lease_update,
		lease_del };
	static const struct kb_informer_handlers ph = { pod_event, pod_update,
		pod_del };
	if (ctrl_init(&n->c, ctx, "nodelifecycle", &n->cfg.ctl, nlc_sync, n) ||
	    !(n->nodes = ctrl_watch(&n->c, &KB_GVR_NODES, &nh, n)) ||
	    !(n->leases = ctrl_watch(&n->c, &KB_GVR_LEASES, &lh, n)) ||
	    !(n->pods = ctrl_watch(&n->c, &KB_GVR_PODS, &ph, n))) {
		nlc_free(n);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	/* Kubernetes' node lifecycle controller records as this */
	snprintf(n->c.component, sizeof(n->c.component), "node-controller");
	*state = n;
	return 0;
}

static int nlc_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct nlc *)state)->c);
}

static void nlc_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct nlc *)state)->c);
}

static void nlc_fini(void *state)
{
	nlc_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-nodelifecycle",
		.version = "0.1.0",
		.description = "node lifecycle controller: node health from "
			       "Leases, taints, taint-based eviction",
		.kind = KB_KIND_CONTROLLER,
		.init = nlc_init,
		.start = nlc_start,
		.stop = nlc_stop,
		.fini = nlc_fini,
	};
	return &p;
}
