/* plugins/ctrl-namespace/plugin.c — the namespace controller plugin:
 * options and an informer on namespaces; each deleting namespace is a key
 * for sync.c. */
#include <stdlib.h>

#include "nsc.h"

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct nsc_cfg, ctl),
	KB_OPT_DURATION("recheck", struct nsc_cfg, recheck_ms, "2s",
	    "look again this often while a deleting namespace still holds objects"),
	KB_OPT_END,
};

static void ns_add(void *arg, const msgpack_object *obj)
{
	if (ctrl_deleting(obj))
		ctrl_enqueue_obj(&((struct nsc *)arg)->c, obj);
}

static void ns_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	ns_add(arg, obj);
}

static void nsc_free(struct nsc *n)
{
	ctrl_fini(&n->c);
	kb_conf_opts_free(opts, &n->cfg);
	free(n);
}

static int nsc_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct nsc *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	if (kb_conf_opts(conf, opts, &n->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(n);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	static const struct kb_informer_handlers h = { ns_add, ns_update,
		NULL };
	if (ctrl_init(&n->c, ctx, "namespace", &n->cfg.ctl, nsc_sync, n) ||
	    !(n->nss = ctrl_watch(&n->c, &KB_GVR_NAMESPACES, &h, n))) {
		nsc_free(n);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	*state = n;
	return 0;
}

static int nsc_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct nsc *)state)->c);
}

static void nsc_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct nsc *)state)->c);
}

static void nsc_fini(void *state)
{
	nsc_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-namespace",
		.version = "0.1.0",
		.description =
		    "namespace controller: empties and removes deleted namespaces",
		.kind = KB_KIND_CONTROLLER,
		.init = nsc_init,
		.start = nsc_start,
		.stop = nsc_stop,
		.fini = nsc_fini,
	};
	return &p;
}
