/* plugins/ctrl-nodeipam/plugin.c — the node IPAM controller plugin
 * (kube-controller-manager's nodeipam with the RangeAllocator): options,
 * the node informer, lifecycle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct ipam_cfg, ctl),
	KB_OPT_STR("cluster_cidr", struct ipam_cfg, cluster_cidr,
	    "10.244.0.0/16", "the pod network, cut into one block per node"),
	KB_OPT_INT("node_cidr_mask_size", struct ipam_cfg, mask, "24", 1, 32,
	    "prefix length of each node's block"),
	KB_OPT_DURATION("full_retry", struct ipam_cfg, full_retry_ms, "30s",
	    "how often a node left without a block (range full) is retried"),
	KB_OPT_END,
};

static void node_add(void *arg, const msgpack_object *node)
{
	struct ipam *p = arg;
	ipam_observe(p, node);
	ctrl_enqueue_obj(&p->c, node);
}

static void node_update(void *arg, const msgpack_object *old,
    const msgpack_object *node)
{
	node_add(arg, node);
}

static void node_del(void *arg, const msgpack_object *node)
{
	struct ipam *p = arg;
	ipam_forget(p, node);
}

static void ipam_free(struct ipam *p)
{
	ctrl_fini(&p->c);
	ipam_owners_free(p);
	ipam_range_free(&p->r);
	pthread_mutex_destroy(&p->mu);
	kb_conf_opts_free(opts, &p->cfg);
	free(p);
}

static int ipam_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct ipam *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &p->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(p);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	pthread_mutex_init(&p->mu, NULL);
	int rc = ipam_range_init(&p->r, p->cfg.cluster_cidr, (int)p->cfg.mask,
	    err, sizeof(err));
	if (rc) {
		rc = kb_fail(ctx, rc, "%s: %s", kb_instance(ctx), err);
		ipam_free(p);
		return rc;
	}
	static const struct kb_informer_handlers nh = { node_add, node_update,
		node_del };
	if (ctrl_init(&p->c, ctx, "nodeipam", &p->cfg.ctl, ipam_sync, p) ||
	    !(p->nodes = ctrl_watch(&p->c, &KB_GVR_NODES, &nh, p))) {
		ipam_free(p);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	snprintf(p->c.component, sizeof(p->c.component), "cidrAllocator");
	*state = p;
	return 0;
}

static int ipam_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct ipam *)state)->c);
}

static void ipam_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct ipam *)state)->c);
}

static void ipam_fini(void *state)
{
	ipam_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-nodeipam",
		.version = "0.1.0",
		.description = "node IPAM controller: a podCIDR for each Node",
		.kind = KB_KIND_CONTROLLER,
		.init = ipam_init,
		.start = ipam_start,
		.stop = ipam_stop,
		.fini = ipam_fini,
	};
	return &p;
}
